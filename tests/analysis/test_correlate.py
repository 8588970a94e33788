import pytest
import torch
from helpers import tiny_generator

from memorygan.analysis import correlation, cosine_correlation
from memorygan.errors import ConfigError


def test_identical_codes_correlate_fully():
    codes = torch.randn(5, 1, 8).expand(5, 3, 8) * torch.tensor([1.0, 2.0, 0.5])[None, :, None]  # scale-free
    mean, std = cosine_correlation(codes)
    assert torch.allclose(mean, torch.ones(3, 3, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(std, torch.zeros(3, 3, dtype=torch.float64), atol=1e-6)


def test_orthogonal_codes_give_identity():
    codes = torch.eye(4)[None].repeat(7, 1, 1) * torch.rand(7, 4, 1).add(0.1)
    mean, std = cosine_correlation(codes)
    assert torch.allclose(mean, torch.eye(4, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(std, torch.zeros(4, 4, dtype=torch.float64), atol=1e-6)


def test_hand_computed_mean_and_std():
    e1, e2 = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    # sample 0: parts equal (cos 1); sample 1: opposite (cos -1); sample 2: orthogonal (cos 0)
    codes = torch.stack([torch.stack([e1, e1]), torch.stack([e1, -e1]), torch.stack([e1, e2])])
    mean, std = cosine_correlation(codes, batch=2)  # across batches
    assert mean[0, 1] == pytest.approx(0.0, abs=1e-12) and mean[1, 0] == pytest.approx(0.0, abs=1e-12)
    assert std[0, 1] == pytest.approx((2 / 3) ** 0.5)
    assert mean[0, 0] == pytest.approx(1.0) and std[1, 1] == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ConfigError, match=r"codes must be \(N >= 1, K, D\)"):
        cosine_correlation(torch.zeros(3, 4))


@pytest.mark.parametrize("arch", ["memorygan", "ssg"])
def test_correlation_of_a_generator(arch):
    G = tiny_generator(arch).eval()
    res = correlation(G, num=20)
    assert list(res) == (["query", "latent"] if arch == "memorygan" else ["latent"])
    for r in res.values():
        assert r["mean"].shape == (4, 4)
        assert torch.allclose(r["mean"], r["mean"].T, atol=1e-12)
        assert torch.allclose(r["mean"].diagonal(), torch.ones(4, dtype=torch.float64), atol=1e-9)
        assert (r["std"] >= 0).all()
