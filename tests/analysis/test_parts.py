import pytest
import torch
from helpers import tiny_generator

from memorygan.analysis import part_codes
from memorygan.errors import ConfigError

@pytest.mark.parametrize("arch", ["memorygan", "ssg"])
def test_part_codes(arch):
    G = tiny_generator(arch).eval()
    k, d = G.config.num_classes, G.config.latent_dim
    codes = part_codes(G, 6, seed=1, space="latent")
    z = G.sample_z(6, 1)
    with torch.no_grad():
        out = G(z)
    if arch == "memorygan":
        assert codes.shape == (6, k, d)
        assert torch.allclose(codes, out.latents[:, 1:], atol=1e-6)
        queries = part_codes(G, 6, seed=1, space="query")
        assert torch.allclose(queries, out.queries[:, 1:], atol=1e-6)
    else:
        assert codes.shape == (6, k, 2 * d)
        _, shape, texture = G.split_latents(out.latents)
        assert torch.allclose(codes[..., :d], shape, atol=1e-6) and torch.allclose(codes[..., d:], texture, atol=1e-6)
        with pytest.raises(ConfigError, match="query codes exist only in MemoryGAN.*'ssg'"):
            part_codes(G, 6, space="query")
    # independent of the batch size; truncation 0 collapses the latent codes onto the mean
    assert torch.allclose(part_codes(G, 6, seed=1, batch=4), codes, atol=1e-6)
    flat = part_codes(G, 3, seed=2, truncation=0.0)
    assert torch.allclose(flat[0], flat[1], atol=1e-5)
