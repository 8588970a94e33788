"""The one table of layer roles, part names, code expansion and SemanticStyleGAN's W+ mixing (models/codes.py)."""
import pytest
import torch
from helpers import tiny_generator

from memorygan.errors import ConfigError
from memorygan.models.codes import (BASE, MIX_CHOICES, SHAPE, TEXTURE, expand_codes, layer_roles, mix_selector,
                                    mix_wplus, role_layers)

NAMES = ["background", "skin", "eyes", "hair"]


def test_layer_roles_table_by_hand():
    # K = 3, L = 6, base_layers = 2, depth_layers = 4 (DESIGN 2.2)
    B, S, T = BASE, SHAPE, TEXTURE
    assert layer_roles(3, 6, 2, 4).tolist() == [[S, S, S, S, T, T],      # background: no base code
                                                [B, B, S, S, T, T],
                                                [B, B, S, S, T, T]]
    assert layer_roles(2, 3, 0, 1).tolist() == [[S, T, T], [S, T, T]]
    with pytest.raises(ValueError, match="base_layers < depth_layers"):
        layer_roles(2, 6, 3, 3)


def test_every_consumer_reads_the_same_table():
    """Expansion, mixing, the analyses' swap rules and leakage all derive their layers from `layer_roles`."""
    from memorygan.analysis.mix import swap_layers
    from memorygan.metrics.leakage import part_layers

    G = tiny_generator("ssg", randomize=False, class_names=NAMES)   # L = 5, base 1, depth 3
    assert torch.equal(G.layer_roles, layer_roles(4, 5, 1, 3))
    assert role_layers(G.config, 2, ["shape"]) == [1, 2] and role_layers(G.config, 0, ["shape"]) == [0, 1, 2]
    assert part_layers(G, 2, "own") == [1, 2, 3, 4] and part_layers(G, 0, "own") == [0, 1, 2, 3, 4]
    assert swap_layers(G, "hair") == [1, 2, 3, 4]            # large part: shape + texture
    assert swap_layers(G, "eyes") == [0, 1, 2, 3, 4]         # small part: also the last base layer
    assert swap_layers(G, "eyes", "texture") == [3, 4] and swap_layers(G, "background") == [0, 1, 2, 3, 4]


def test_expand_codes_places_codes_by_role():
    d = 8
    eye = torch.eye(d)
    base, shape, texture = eye[None, :2], eye[None, 2:5], eye[None, 5:8]      # codes 0-1, 2-4, 5-7
    e = expand_codes(base, shape, texture, num_layers=6, base_layers=2, depth_layers=4)
    assert e.shape == (1, 3, 6, d)
    idx = e[0].argmax(-1).tolist()
    assert idx == [[2, 2, 2, 2, 5, 5], [0, 1, 3, 3, 6, 6], [0, 1, 4, 4, 7, 7]]
    # gradients reach every source code
    base, shape, texture = (t.clone().requires_grad_(True) for t in (base, shape, texture))
    expand_codes(base, shape, texture, 6, 2, 4).sum().backward()
    assert base.grad.tolist() == [[[2.0] * d] * 2]           # two foreground parts read each base code
    assert shape.grad[0, :, 0].tolist() == [4.0, 2.0, 2.0]      # background: shape on all 4 layers below depth
    assert (texture.grad == 2).all()


def _mix_wplus_by_hand(w1, w2, choice, nb):
    out = w1.clone()
    for b in range(w1.shape[0]):
        for k in range(choice.shape[1]):
            shape_src, tex_src = MIX_CHOICES[int(choice[b, k])]
            out[b, nb + 2 * k] = (w1 if shape_src == 1 else w2)[b, nb + 2 * k]
            out[b, nb + 2 * k + 1] = (w1 if tex_src == 1 else w2)[b, nb + 2 * k + 1]
    return out


def test_mix_wplus_and_selector_agree_with_the_rule_written_out():
    b, k, nb, d = 3, 4, 2, 5
    w1, w2 = torch.randn(b, nb + 2 * k, d), torch.randn(b, nb + 2 * k, d)
    choice = torch.tensor([[0, 1, 2, 0], [2, 2, 1, 1], [1, 0, 0, 2]])
    assert torch.equal(mix_wplus(w1, w2, choice, nb), _mix_wplus_by_hand(w1, w2, choice, nb))
    sel = mix_selector(torch.tensor([[1, 1, 2, 0]]), layer_roles(4, 7, 2, 5))
    assert sel[0].sum(1).tolist() == [2, 2, 5, 0]
    with pytest.raises(ValueError, match="values must be in"):
        mix_wplus(w1, w2, torch.full((b, k), 3), nb)


def test_part_names_and_resolution_belong_to_the_generator():
    G = tiny_generator("memorygan", randomize=False)
    assert G.part_names == ["part0", "part1", "part2", "part3"]
    G = tiny_generator("memorygan", randomize=False, class_names=NAMES)
    assert G.part_names == NAMES
    assert G.resolve_parts("hair") == [3] and G.resolve_parts("2") == [2] and G.resolve_parts(1) == [1]
    assert G.resolve_parts(["eyes", "0"]) == [2, 0] and G.resolve_parts("hair,skin") == [3, 1]
    assert G.resolve_parts(None) == [0, 1, 2, 3]
    with pytest.raises(ConfigError, match=r"parts: unknown part 'nose'.*0 background, 1 skin, 2 eyes, 3 hair"):
        G.resolve_parts(["nose"])
    with pytest.raises(ConfigError, match=r"order: part id 4 is out of range; this generator has parts 0..3"):
        G.resolve_parts([4], "order")
    with pytest.raises(ConfigError, match="listed twice"):
        G.resolve_parts(["hair", 3])
    with pytest.raises(ConfigError, match="unknown part True"):
        G.resolve_parts([True])
