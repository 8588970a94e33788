import numpy as np
import pytest
import torch
from helpers import tiny_generator

from memorygan.analysis import embedding, tsne
from memorygan.errors import ConfigError


def test_tsne_shapes_labels_determinism():
    codes = torch.randn(8, 4, 16, generator=torch.Generator().manual_seed(0))
    codes += 5 * torch.eye(16)[:4]  # one cluster per part
    xy, part, sample, perplexity = tsne(codes, random_state=0, perplexity=5)
    assert xy.shape == (32, 2) and xy.dtype == np.float32
    assert part.tolist() == [0, 1, 2, 3] * 8
    assert sample.tolist() == [n for n in range(8) for _ in range(4)]
    assert perplexity == 5
    again = tsne(codes, random_state=0, perplexity=5)[0]
    assert np.array_equal(xy, again)
    # well separated parts stay separated: every point is nearer its own part's centre than any other
    centres = np.stack([xy[part == k].mean(0) for k in range(4)])
    nearest = np.linalg.norm(xy[:, None] - centres[None], axis=-1).argmin(1)
    assert (nearest == part).all()
    # perplexity is clamped below the number of points
    assert tsne(codes[:2], perplexity=30)[3] == pytest.approx(7 / 3)
    with pytest.raises(ConfigError, match=r"codes must be \(N, K, D\)"):
        tsne(codes[0])


def test_embedding_spaces():
    G = tiny_generator("memorygan").eval()
    res = embedding(G, num=6, seed=0, perplexity=5)
    assert list(res) == ["query", "latent"]
    for r in res.values():
        assert r["xy"].shape == (24, 2) and r["part"].shape == (24,)
    S = tiny_generator("ssg").eval()
    assert list(embedding(S, num=6, perplexity=5)) == ["latent"]
    with pytest.raises(ConfigError, match="query codes exist only in MemoryGAN"):
        embedding(S, num=6, spaces=["query"])
    with pytest.raises(ConfigError, match="unknown code space 'w'"):
        embedding(G, num=6, spaces=["w"])
