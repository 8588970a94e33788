import pytest
import torch
from helpers import tiny_generator

from memorygan.analysis import part_codes, part_names, resolve_part, resolve_parts
from memorygan.errors import ConfigError

NAMES = ["background", "skin", "eyes", "hair"]


def test_part_names_and_resolution():
    G = tiny_generator("memorygan", randomize=False)
    assert part_names(G) == ["part0", "part1", "part2", "part3"]
    G = tiny_generator("memorygan", randomize=False, class_names=NAMES)
    assert part_names(G) == NAMES
    assert resolve_part(G, "hair") == 3 and resolve_part(G, "2") == 2 and resolve_part(G, 1) == 1
    assert resolve_parts(G, ["eyes", "0"]) == [2, 0]
    assert resolve_parts(G, None) == [0, 1, 2, 3]
    with pytest.raises(ConfigError, match=r"parts: unknown part 'nose'.*0 background, 1 skin, 2 eyes, 3 hair"):
        resolve_parts(G, ["nose"])
    with pytest.raises(ConfigError, match=r"order: part id 4 is out of range; this generator has parts 0..3"):
        resolve_parts(G, [4], "order")
    with pytest.raises(ConfigError, match="listed twice"):
        resolve_parts(G, ["hair", 3])


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
