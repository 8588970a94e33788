"""Part-wise style mixing on expanded codes (DESIGN 2.5, 3)."""
import pytest
import torch

from memorygan.models.codes import layer_roles, mix_wplus
from memorygan.training import MIX_CHOICES, mixing_coin, partwise_mix, random_partwise_mix

from helpers import tiny_generator

K, L, BASE, DEPTH = 4, 7, 2, 5
ROLES = layer_roles(K, L, BASE, DEPTH)


def _source_codes(b=3):
    """e1 = +1 and e2 = -1 on a one-hot of the layer index, so every output layer tells its source and layer."""
    onehot = torch.eye(L)[None, None].expand(b, K, L, L)  # (B, K, L, D=L)
    return onehot.clone(), -onehot.clone()


def _expected_source(k, layer, choice):
    """Reference rule written out per layer: which source (1 or 2) layer `layer` of part `k` reads."""
    shape_src, tex_src = MIX_CHOICES[choice]
    if layer >= DEPTH:
        return tex_src
    if k == 0:
        return shape_src              # background: shape code on [0, depth_layers)
    return 1 if layer < BASE else shape_src


def test_every_layer_comes_from_the_right_source():
    e1, e2 = _source_codes(3)
    choice = torch.tensor([[0, 1, 2, 0], [2, 2, 1, 1], [1, 0, 0, 2]])
    mixed = partwise_mix(e1, e2, choice, ROLES)
    for b in range(3):
        for k in range(K):
            for layer in range(L):
                src = _expected_source(k, layer, int(choice[b, k]))
                want = torch.zeros(L)
                want[layer] = 1.0 if src == 1 else -1.0
                assert torch.equal(mixed[b, k, layer], want), (b, k, layer)


def test_choice_zero_is_the_first_codes_and_all_two_is_the_second_except_base():
    e1, e2 = _source_codes(2)
    assert torch.equal(partwise_mix(e1, e2, torch.zeros(2, K, dtype=torch.long), ROLES), e1)
    all2 = partwise_mix(e1, e2, torch.full((2, K), 2), ROLES)
    assert torch.equal(all2[:, 0], e2[:, 0])                 # background has no base code
    assert torch.equal(all2[:, 1:, :BASE], e1[:, 1:, :BASE])  # foreground base layers stay with the first z
    assert torch.equal(all2[:, 1:, BASE:], e2[:, 1:, BASE:])


def test_ssg_mixing_wplus_then_expanding_equals_mixing_expanded_codes():
    G = tiny_generator("ssg")
    cfg = G.config
    nb = cfg.base_layers
    w1, w2 = G.broadcast(G.mapping(G.sample_z(5, seed=1))), G.broadcast(G.mapping(G.sample_z(5, seed=2)))
    choice = torch.randint(0, 3, (5, cfg.num_classes), generator=torch.Generator().manual_seed(0))
    choice[0] = torch.tensor([0, 1, 2, 1])  # make sure all choices occur, on background and foreground
    via_wplus = G.expand(mix_wplus(w1, w2, choice, nb))
    via_expanded = partwise_mix(G.expand(w1), G.expand(w2), choice, G.layer_roles)
    assert torch.equal(via_wplus, via_expanded)
    # and the generator renders the same image from either
    assert torch.allclose(G(latents=mix_wplus(w1, w2, choice, nb)).image, G(expanded=via_expanded).image,
                          atol=1e-6)


def test_mixed_expanded_codes_render(arch):
    G = tiny_generator(arch)
    e1, e2 = G(G.sample_z(2, seed=3)).expanded, G(G.sample_z(2, seed=4)).expanded
    mixed, choice = random_partwise_mix(e1, e2, G.layer_roles, torch.Generator().manual_seed(0), return_choice=True)
    assert torch.equal(mixed, partwise_mix(e1, e2, choice, G.layer_roles))
    with torch.no_grad():
        assert torch.isfinite(G(expanded=mixed).image).all()


def test_random_choices_are_uniform_and_reproducible():
    e1, e2 = _source_codes(4000)
    mixed, choice = random_partwise_mix(e1, e2, ROLES, torch.Generator().manual_seed(7), return_choice=True)
    assert torch.equal(mixed, random_partwise_mix(e1, e2, ROLES, torch.Generator().manual_seed(7)))
    for c in range(3):
        assert (choice == c).float().mean().item() == pytest.approx(1 / 3, abs=0.02)


def test_mixing_coin_is_one_draw_per_batch_with_the_given_probability():
    """The official `mixing_noise`: with probability p the whole batch gets a second z."""
    g = torch.Generator().manual_seed(0)
    coins = [mixing_coin(0.3, g) for _ in range(4000)]
    assert sum(coins) / len(coins) == pytest.approx(0.3, abs=0.025)
    assert not any(mixing_coin(0.0, g) for _ in range(100)) and all(mixing_coin(1.0, g) for _ in range(100))
    assert [mixing_coin(0.5, torch.Generator().manual_seed(3)) for _ in range(3)] == \
        [mixing_coin(0.5, torch.Generator().manual_seed(3))] * 3


def test_mixing_errors_name_the_argument():
    e1, e2 = _source_codes(2)
    with pytest.raises(ValueError, match="choice must be"):
        partwise_mix(e1, e2, torch.zeros(2, K + 1, dtype=torch.long), ROLES)
    with pytest.raises(ValueError, match="choice values"):
        partwise_mix(e1, e2, torch.full((2, K), 3), ROLES)
    with pytest.raises(ValueError, match="integer tensor"):
        partwise_mix(e1, e2, torch.zeros(2, K), ROLES)
    with pytest.raises(ValueError, match="e1 and e2"):
        partwise_mix(e1, e2[:1], torch.zeros(2, K, dtype=torch.long), ROLES)
    with pytest.raises(ValueError, match="roles must be"):
        partwise_mix(e1, e2, torch.zeros(2, K, dtype=torch.long), ROLES[:, :3])
    with pytest.raises(ValueError, match="mixing probability"):
        mixing_coin(1.5)
