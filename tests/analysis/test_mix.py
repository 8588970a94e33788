
import numpy as np
import pytest
import torch
from helpers import GeneratorParts, tiny_config, tiny_generator

from memorygan.analysis import large_part_ids, mix_parts, mixing, mixing_grid, swap_layers, swap_mask
from memorygan.errors import ConfigError

NAMES = ["background", "skin", "eyes", "hair"]


def fake(base_layers=1, depth_layers=3, local_layers=5, class_names=NAMES):
    """Only the config matters for the swap rules."""
    cfg = tiny_config(base_layers=base_layers, depth_layers=depth_layers, local_layers=local_layers,
                      class_names=class_names, num_classes=len(class_names) if class_names else 4,
                      transparent_classes=[])
    G = FakeG()
    G.config, G.arch = cfg, "memorygan"
    return G


class FakeG(GeneratorParts):
    pass


def test_swap_rules_tiny():
    G = fake()  # base [0], shape [1, 2], texture [3, 4]
    assert swap_layers(G, "background") == [0, 1, 2, 3, 4]
    assert swap_layers(G, "background", "shape") == [0, 1, 2]
    assert swap_layers(G, "background", "texture") == [3, 4]
    for large in ("skin", "hair"):
        assert swap_layers(G, large) == [1, 2, 3, 4]
        assert swap_layers(G, large, "shape") == [1, 2]
        assert swap_layers(G, large, "texture") == [3, 4]
    assert swap_layers(G, "eyes") == [0, 1, 2, 3, 4]          # last base layer + shape + texture
    assert swap_layers(G, "eyes", "shape") == [0, 1, 2]
    assert swap_layers(G, "eyes", "texture") == [3, 4]


def test_swap_rules_paper_layout():
    # 13 portrait classes with 2 base layers (small preset layout): base [0, 1], shape [2..5], texture [6..9]
    names = ["background", "skin", "eyes", "eyebrows", "mouth", "nose", "ears", "hair", "neck", "cloth",
             "eyeglasses", "hat", "earrings"]
    G = fake(2, 6, 10, names)
    assert sorted(large_part_ids(G)) == [1, 7, 8, 9, 11]      # skin, hair, neck, cloth, hat
    for name in ("skin", "hair", "neck", "cloth", "hat"):
        assert swap_layers(G, name) == list(range(2, 10))
    for name in ("eyes", "eyebrows", "mouth", "nose", "ears", "eyeglasses", "earrings"):
        assert swap_layers(G, name) == list(range(1, 10))     # only the LAST base layer (1), never layer 0
        assert swap_layers(G, name, "shape") == list(range(1, 6))
    assert swap_layers(G, "background") == list(range(10))
    # the large set is a parameter
    assert swap_layers(G, "eyes", large_parts=["eyes"]) == list(range(2, 10))
    assert swap_layers(G, "skin", large_parts=[]) == list(range(1, 10))
    # generators without those names (e.g. scenes) have every foreground part small
    assert large_part_ids(fake(class_names=None)) == set()


def test_swap_mask_and_errors():
    G = fake()
    mask = swap_mask(G, ["skin", "eyes"], "texture")
    want = torch.zeros(4, 5, dtype=torch.bool)
    want[1, 3:] = want[2, 3:] = True
    assert torch.equal(mask, want)
    with pytest.raises(ConfigError, match="mode must be one of both, shape, texture, got 'colour'"):
        swap_layers(G, "skin", "colour")
    with pytest.raises(ConfigError, match="large_parts: unknown part 'nose'"):
        swap_layers(G, "skin", large_parts=["nose"])


def test_mix_parts_swaps_exactly_the_rule_layers():
    G = fake()
    a, b = torch.randn(2, 4, 5, 16), torch.randn(2, 4, 5, 16)
    for mode in ("both", "shape", "texture"):
        assert torch.equal(mix_parts(G, a, a, ["eyes", "hair"], mode), a)  # mixing with itself: identity
        mixed = mix_parts(G, a, b, ["eyes", "hair"], mode)
        mask = swap_mask(G, ["eyes", "hair"], mode)
        for k in range(4):
            for layer in range(5):
                want = b if mask[k, layer] else a
                assert torch.equal(mixed[:, k, layer], want[:, k, layer])
    # a single source broadcasts over the targets
    assert torch.equal(mix_parts(G, a, b[:1], [0]), b[:1].expand(2, -1, -1, -1).clone().where(
        swap_mask(G, [0])[None, :, :, None], a))
    with pytest.raises(ConfigError, match=r"expanded_source must be \(B, 4, 5, 16\)"):
        mix_parts(G, a, b[:, :3], [1])


@pytest.mark.parametrize("arch", ["memorygan", "ssg"])
def test_mixing_renders(arch):
    G = tiny_generator(arch, class_names=NAMES).eval()
    res = mixing(G, [0, 1], [0, 2, 3], ["eyes"])
    assert res.mixed["image"].shape == (6, 3, 32, 32)
    # the target mixed with itself is the target
    assert torch.allclose(res.mixed["image"][0], res.target["image"][0], atol=1e-5)
    # a swapped part changes the picture
    assert not torch.allclose(res.mixed["image"][1], res.target["image"][0], atol=1e-3)
    # every part, all small (their last base layer = the only one moves too): every code is the source's
    full = mixing(G, [1], [2], [0, 1, 2, 3], large_parts=[])
    assert torch.allclose(full.mixed["image"], full.source["image"], atol=1e-5)
    stats = res.stats()
    assert np.array(stats["change"]).shape == (2, 3)
    assert stats["change"][0][0] < 1e-5 and stats["change"][0][1] > 0


def test_mixing_grid_size():
    G = tiny_generator("memorygan").eval()
    fig = mixing_grid(G, [0, 1], [2, 3, 4], [1])
    s, pad = 32, 2
    assert fig.dtype == np.uint8
    assert fig.shape == (2 * 3 * (s + pad) + pad, 4 * (s + pad) + pad, 3)
    assert (fig[pad:pad + s, pad:pad + s] == 255).all()  # blank corner
