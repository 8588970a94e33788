"""Part-wise style mixing on expanded codes (DESIGN 2.5, 3)."""
import pytest
import torch

from memorygan.training import MIX_CHOICES, partwise_mix, partwise_mix_selector, random_partwise_mix

from helpers import tiny_generator

K, L, BASE, DEPTH = 4, 7, 2, 5


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
    mixed = partwise_mix(e1, e2, choice, BASE, DEPTH)
    for b in range(3):
        for k in range(K):
            for layer in range(L):
                src = _expected_source(k, layer, int(choice[b, k]))
                want = torch.zeros(L)
                want[layer] = 1.0 if src == 1 else -1.0
                assert torch.equal(mixed[b, k, layer], want), (b, k, layer)


def test_choice_zero_is_the_first_codes_and_all_two_is_the_second_except_base():
    e1, e2 = _source_codes(2)
    assert torch.equal(partwise_mix(e1, e2, torch.zeros(2, K, dtype=torch.long), BASE, DEPTH), e1)
    all2 = partwise_mix(e1, e2, torch.full((2, K), 2), BASE, DEPTH)
    assert torch.equal(all2[:, 0], e2[:, 0])                 # background has no base code
    assert torch.equal(all2[:, 1:, :BASE], e1[:, 1:, :BASE])  # foreground base layers stay with the first z
    assert torch.equal(all2[:, 1:, BASE:], e2[:, 1:, BASE:])


def test_selector_counts():
    sel = partwise_mix_selector(torch.tensor([[1, 1, 2, 0]]), L, BASE, DEPTH)
    assert sel.shape == (1, K, L)
    assert sel[0].sum(1).tolist() == [L - DEPTH, L - DEPTH, L - BASE, 0]


def _mix_wplus(w1, w2, choice, nb):
    """SemanticStyleGAN's training mixing on W+ (B, nb + 2K, D): base codes from the first z, then per part
    (shape, texture) from (1,1), (1,2) or (2,2)."""
    out = w1.clone()
    for b in range(w1.shape[0]):
        for k in range(choice.shape[1]):
            shape_src, tex_src = MIX_CHOICES[int(choice[b, k])]
            out[b, nb + 2 * k] = (w1 if shape_src == 1 else w2)[b, nb + 2 * k]
            out[b, nb + 2 * k + 1] = (w1 if tex_src == 1 else w2)[b, nb + 2 * k + 1]
    return out


def test_ssg_mixing_wplus_then_expanding_equals_mixing_expanded_codes():
    G = tiny_generator("ssg")
    cfg = G.config
    nb = cfg.base_layers
    w1, w2 = G.mapping(G.sample_z(5, seed=1)), G.mapping(G.sample_z(5, seed=2))
    choice = torch.randint(0, 3, (5, cfg.num_classes), generator=torch.Generator().manual_seed(0))
    choice[0] = torch.tensor([0, 1, 2, 1])  # make sure all choices occur, on background and foreground
    via_wplus = G.expand(_mix_wplus(w1, w2, choice, nb))
    via_expanded = partwise_mix(G.expand(w1), G.expand(w2), choice, nb, cfg.depth_layers)
    assert torch.equal(via_wplus, via_expanded)
    # and the generator renders the same image from either
    assert torch.allclose(G(latents=_mix_wplus(w1, w2, choice, nb)).image, G(expanded=via_expanded).image,
                          atol=1e-6)


def test_mixed_expanded_codes_render(arch):
    G = tiny_generator(arch)
    cfg = G.config
    e1, e2 = G(G.sample_z(2, seed=3)).expanded, G(G.sample_z(2, seed=4)).expanded
    mixed, choice = random_partwise_mix(e1, e2, 1.0, torch.Generator().manual_seed(0), base_layers=cfg.base_layers,
                                        depth_layers=cfg.depth_layers, return_choice=True)
    assert torch.equal(mixed, partwise_mix(e1, e2, choice, cfg.base_layers, cfg.depth_layers))
    with torch.no_grad():
        out = G(expanded=mixed)
        assert torch.isfinite(out.image).all()
        unmixed = random_partwise_mix(e1, e2, 0.0, base_layers=cfg.base_layers, depth_layers=cfg.depth_layers)
        assert torch.equal(G(expanded=unmixed).image, G(expanded=e1).image)


def test_random_mix_probability_and_reproducibility():
    e1, e2 = _source_codes(4000)
    mixed, choice = random_partwise_mix(e1, e2, 0.3, torch.Generator().manual_seed(7), base_layers=BASE,
                                        depth_layers=DEPTH, return_choice=True)
    again = random_partwise_mix(e1, e2, 0.3, torch.Generator().manual_seed(7), base_layers=BASE, depth_layers=DEPTH)
    assert torch.equal(mixed, again)
    unmixed = (mixed == e1).flatten(1).all(1)
    assert torch.equal(unmixed, (choice == 0).all(1))
    # P(sample untouched) = 0.7 + 0.3 * (1/3)^K; mixed samples draw each choice uniformly
    p_untouched = 0.7 + 0.3 * (1 / 3) ** K
    assert unmixed.float().mean().item() == pytest.approx(p_untouched, abs=0.03)
    drawn = choice[~unmixed]
    for c in range(3):
        assert (drawn == c).float().mean().item() == pytest.approx(1 / 3, abs=0.03)
    assert torch.equal(random_partwise_mix(e1, e2, 0.0, base_layers=BASE, depth_layers=DEPTH), e1)


def test_mixing_errors_name_the_argument():
    e1, e2 = _source_codes(2)
    with pytest.raises(ValueError, match="choice must be"):
        partwise_mix(e1, e2, torch.zeros(2, K + 1, dtype=torch.long), BASE, DEPTH)
    with pytest.raises(ValueError, match="choice values"):
        partwise_mix(e1, e2, torch.full((2, K), 3), BASE, DEPTH)
    with pytest.raises(ValueError, match="integer tensor"):
        partwise_mix(e1, e2, torch.zeros(2, K), BASE, DEPTH)
    with pytest.raises(ValueError, match="e1 and e2"):
        partwise_mix(e1, e2[:1], torch.zeros(2, K, dtype=torch.long), BASE, DEPTH)
    with pytest.raises(ValueError, match="depth_layers"):
        partwise_mix(e1, e2, torch.zeros(2, K, dtype=torch.long), 5, 5)
    with pytest.raises(ValueError, match="prob"):
        random_partwise_mix(e1, e2, 1.5, base_layers=BASE, depth_layers=DEPTH)
