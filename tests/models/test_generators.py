"""Behaviour shared by both generators (run on tiny configs for each architecture)."""
import json

import pytest
import torch

import memorygan
from memorygan.errors import CheckpointError
from memorygan.analysis import sequential_composition
from memorygan.models import MemoryGAN

from helpers import tiny_config, tiny_generator


def test_output_shapes_and_ranges(arch):
    G = tiny_generator(arch)
    cfg = G.config
    out = G.sample(3, seed=0)
    assert out.image.shape == (3, 3, 32, 32)
    assert out.seg.shape == (3, 4, 32, 32)
    assert out.coarse_seg.shape == out.depths.shape == (3, 4, 8, 8)
    assert out.expanded.shape == (3, 4, cfg.local_layers, cfg.latent_dim)
    assert out.coarse_seg.min() >= -1 and out.coarse_seg.max() <= 1
    assert torch.allclose((out.coarse_seg + 1).sum(1) / 2, torch.ones(3, 8, 8), atol=1e-5)  # softmax sums to 1
    assert torch.all(out.depths[:, 0] == 0)  # background logit is the constant 0
    assert torch.isfinite(out.image).all() and torch.isfinite(out.seg).all()
    assert out.latents.shape == (3, G.num_latents, cfg.latent_dim)
    if arch == "memorygan":
        assert G.num_latents == 1 + cfg.num_classes
        assert out.queries.shape == out.latents.shape and out.kl.ndim == 0 and out.kl > 0
    else:
        assert G.num_latents == cfg.base_layers + 2 * cfg.num_classes and out.queries is None and out.kl is None


def test_deterministic_for_a_seed_and_batch_independent(arch):
    G = tiny_generator(arch)
    a, b, c = G.sample(4, seed=7), G.sample(4, seed=7), G.sample(4, seed=8)
    assert torch.equal(a.image, b.image) and torch.equal(a.seg, b.seg)
    assert not torch.allclose(a.image, c.image)
    single = G(a.z[1:2])
    assert torch.allclose(single.image, a.image[1:2], atol=1e-5)


def test_explicit_inputs_at_every_level_agree(arch):
    G = tiny_generator(arch)
    out = G.sample(2, seed=3)
    with torch.no_grad():         # the inference path G.sample takes (on the CPU it convolves by Winograd)
        via_latents = G(latents=out.latents)
        via_expanded = G(expanded=out.expanded)
        via_queries = G(queries=out.queries) if arch == "memorygan" else None
    for o in (via_latents, via_expanded):
        assert torch.allclose(o.image, out.image, atol=1e-6) and torch.allclose(o.seg, out.seg, atol=1e-6)
    if arch == "memorygan":
        assert torch.allclose(via_queries.image, out.image, atol=1e-6)
    with_grad = G(latents=out.latents)             # autograd: direct convolutions, within Winograd's fp32 error
    assert torch.allclose(with_grad.image, out.image, atol=1e-4)
    with pytest.raises(ValueError, match="exactly one"):
        G(out.z, latents=out.latents)
    with pytest.raises(ValueError, match="latents"):
        G(latents=out.latents[:, :-1])
    with pytest.raises(ValueError, match="composition_mask"):
        G(out.z, composition_mask=torch.ones(2, 3))
    with pytest.raises(ValueError, match=r"composition_mask keeps no part in sample\(s\) \[1\]"):
        G(out.z, composition_mask=torch.tensor([[1.0, 0, 0, 0], [0, 0, 0, 0]]))


def test_noise_modes(arch):
    G = tiny_generator(arch)
    z = G.sample_z(2, seed=0)
    const = G(z, noise_mode="const").image
    assert torch.equal(const, G(z, noise_mode="const").image)
    r1, r2 = G(z, noise_mode="random").image, G(z, noise_mode="random").image
    assert not torch.equal(r1, r2)
    assert not torch.allclose(G(z, noise_mode="none").image, const)
    with pytest.raises(ValueError, match="noise_mode"):
        G(z, noise_mode="bogus")


def test_truncation(arch):
    G = tiny_generator(arch)
    G.update_w_avg(256)
    z = G.sample_z(3, seed=1)
    full = G(z)
    zero = G(z, truncation=0.0)
    # psi = 0 -> every sample sits at the mean: identical images, latents equal w_avg
    assert torch.allclose(zero.image[0], zero.image[1], atol=1e-5)
    avg = G.w_avg if G.num_avg_codes > 1 else G.w_avg.expand(G.num_latents, -1)
    assert torch.allclose(zero.latents[0], avg, atol=1e-5)
    half = G(z, truncation=0.5)
    assert torch.allclose(half.latents, avg + 0.5 * (full.latents - avg), atol=1e-5)


def test_composition_mask(arch):
    G = tiny_generator(arch)
    z = G.sample_z(2, seed=0)
    c = torch.zeros(2, 4)
    c[:, 0] = 1
    out = G(z, composition_mask=c)
    assert torch.allclose(out.coarse_seg[:, 0], torch.ones(2, 8, 8), atol=1e-5)
    assert torch.allclose(out.coarse_seg[:, 1:], -torch.ones(2, 3, 8, 8), atol=1e-5)
    # all parts present == no mask
    full = G(z)
    assert torch.allclose(G(z, composition_mask=torch.ones(2, 4)).image, full.image, atol=1e-5)
    # removing a part changes the image only through that part
    c2 = torch.ones(2, 4)
    c2[:, 2] = 0
    assert not torch.allclose(G(z, composition_mask=c2).image, full.image, atol=1e-4)


def test_per_part_coordinates_move_a_part(arch):
    G = tiny_generator(arch)
    out = G.sample(1, seed=0)
    coords = G.coords.expand(1, 4, 2, 8, 8).clone()
    assert torch.allclose(G(expanded=out.expanded, coords=coords).image, out.image, atol=1e-5)
    coords[:, 1, 0] -= 0.5  # shift part 1 along x
    moved = G(expanded=out.expanded, coords=coords)
    assert torch.allclose(moved.depths[:, 2:], out.depths[:, 2:], atol=1e-5)  # other parts unchanged
    assert not torch.allclose(moved.depths[:, 1], out.depths[:, 1], atol=1e-3)


def test_default_grid_features_are_the_grids_fourier_features(arch):
    """The default grid's Fourier features are kept as a buffer: the same position features as computing them from
    `coords`, also after a dtype change, and the projection still learns."""
    G = tiny_generator(arch)
    torch.testing.assert_close(G.positions(None), G.positions(G.coords), atol=0, rtol=0)
    G.double()
    assert G.positions(None).dtype == torch.float64
    torch.testing.assert_close(G.positions(None), G.positions(G.coords), atol=0, rtol=0)
    G.positions(None).sum().backward()
    assert G.pos_embed.weight.grad.abs().sum() > 0


def test_gradients_reach_every_parameter(arch):
    G = tiny_generator(arch)
    G.train()
    out = G(G.sample_z(2, seed=0), noise_mode="const")
    g = torch.Generator().manual_seed(0)
    loss = (out.image * torch.randn(out.image.shape, generator=g)).sum() + \
           (out.seg * torch.randn(out.seg.shape, generator=g)).sum()
    if out.kl is not None:
        loss = loss + out.kl
    loss.backward()
    missing = [n for n, p in G.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert missing == []
    if arch == "memorygan":  # the controller learns through the reparameterised sampling (and the KL)
        assert G.controller.lstm.weight_ih.grad.abs().sum() > 0 and G.controller.v_base.grad.abs().sum() > 0


def test_memorygan_controller_gets_gradient_from_image_alone():
    G = tiny_generator("memorygan")
    out = G(G.sample_z(2, seed=0))
    out.image.sum().backward()
    assert G.controller.lstm.weight_hh.grad.abs().sum() > 0
    assert G.controller.head.net[0].weight.grad.abs().sum() > 0


def test_memorygan_runs_one_shared_local_generator_as_one_batch():
    G = tiny_generator("memorygan")
    calls, feat_calls = [], []
    layer_matrices = G.memory.layer_matrices

    def spy(codes, dtype):
        mats, bias = layer_matrices(codes, dtype)
        calls.append(tuple(mats.shape))
        return mats, bias
    G.memory.layer_matrices = spy
    G.memory.to_feat.register_forward_hook(lambda m, inp, out: feat_calls.append(inp[0].shape[0]))
    G.sample(3, seed=0)
    c = G.config.local_channels
    assert calls == [(G.config.local_layers, 3 * 4, c, c)]  # every layer's matrices for all B * K parts, once
    assert feat_calls == [3]  # the shared to_feat runs once per image, after mixing the parts
    assert sum(1 for m in G.modules() if type(m).__name__ == "LocalGenerator") == 1


def test_memorygan_parameters_do_not_depend_on_k():
    def counts(k):
        with torch.device("meta"):
            G = MemoryGAN(memorygan.generator_config("memorygan-256", num_classes=k, class_names=None,
                                                     transparent_classes=[]))
        n = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
        return n(G.memory), n(G.controller), n(G.mlp_latent), n(G)

    m2, c2, l2, t2 = counts(2)
    m1000, c1000, l1000, t1000 = counts(1000)
    assert (m2, c2, l2) == (m1000, c1000, l1000)
    # only the to_seg layers grow: (sum of their input widths + 1 bias) per part, 4 blocks at 256 px
    assert t1000 - t2 == 998 * (512 + 512 + 256 + 128 + 4)


def test_memorygan_kl_matches_closed_form():
    from memorygan.models.controller import gaussian_kl
    mu = torch.tensor([[[1.0, 0.0]]])
    logvar = torch.tensor([[[0.0, math_log(4.0)]]])
    # 0.5 * (1 + 1 - 1 - 0) + 0.5 * (0 + 4 - 1 - log 4)
    expect = 0.5 + 0.5 * (3 - math_log(4.0))
    assert torch.allclose(gaussian_kl(mu, logvar), torch.tensor(expect))


def math_log(x):
    import math
    return math.log(x)


def test_ssg_latent_layout():
    G = tiny_generator("ssg")
    w = torch.randn(1, G.num_latents, 16)
    e = G.expand(w)
    nb = G.config.base_layers
    assert torch.equal(e[0, 2, 0], w[0, 0])                # base code on layer 0
    assert torch.equal(e[0, 2, nb], w[0, nb + 2 * 2])      # part 2 shape code
    assert torch.equal(e[0, 2, -1], w[0, nb + 2 * 2 + 1])  # part 2 texture code


def test_save_load_round_trip_is_bit_exact(arch, tmp_path):
    G = tiny_generator(arch)
    G.update_w_avg(64)
    G.save_pretrained(tmp_path / "g")
    meta = json.loads((tmp_path / "g" / "config.json").read_text())
    assert meta["format"] == "memorygan-generator" and meta["generator"]["arch"] == arch
    G2, cfg = memorygan.load(tmp_path / "g")
    assert cfg == G.config
    for (k1, v1), (k2, v2) in zip(G.state_dict().items(), G2.state_dict().items()):
        assert k1 == k2 and torch.equal(v1, v2)
    a, b = G.sample(2, seed=5, truncation=0.7), G2.sample(2, seed=5, truncation=0.7)
    assert torch.equal(a.image, b.image) and torch.equal(a.seg, b.seg)
    G3, _ = memorygan.load(tmp_path / "g" / "generator.safetensors")  # the weights file works too
    assert torch.equal(G3.sample(1, seed=1).image, G2.sample(1, seed=1).image)


def test_load_errors_name_the_problem(tmp_path):
    with pytest.raises(CheckpointError, match="no such file"):
        memorygan.load(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="config.json"):
        memorygan.load(tmp_path / "empty")
    G = tiny_generator("ssg")
    G.save_pretrained(tmp_path / "g")
    (tmp_path / "g" / "generator.safetensors").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="safetensors"):
        memorygan.load(tmp_path / "g")
    # config says K=5 but the weights have K=4
    G.save_pretrained(tmp_path / "h")
    meta = json.loads((tmp_path / "h" / "config.json").read_text())
    meta["generator"]["num_classes"] = 5
    (tmp_path / "h" / "config.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="missing tensor|mis-shaped"):
        memorygan.load(tmp_path / "h")


def test_save_is_atomic_and_keeps_previous_on_failure(tmp_path, monkeypatch):
    G = tiny_generator("memorygan")
    G.save_pretrained(tmp_path / "g")
    before = (tmp_path / "g" / "generator.safetensors").read_bytes()
    import memorygan.checkpoint as ck

    def boom(*a, **k):
        raise OSError("disk full")
    monkeypatch.setattr(ck, "save_file", boom)
    with pytest.raises(OSError):
        tiny_generator("memorygan", seed=3).save_pretrained(tmp_path / "g")
    assert (tmp_path / "g" / "generator.safetensors").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g"]  # no temporary folder left


def test_tiny_config_fields_flow_to_model():
    cfg = tiny_config("ssg", num_classes=6)
    G = memorygan.models.build_generator(cfg)
    assert len(G.local_nets) == 6 and G.local_nets[0].to_depth is None and G.local_nets[1].to_depth is not None


def test_ssg_samples_one_z_per_image_as_the_official_code():
    """DESIGN 2.5: one z (B, D) per image, its w on every W+ code; a pair mixes part-wise; (B, N, D) per code."""
    G = tiny_generator("ssg").eval()
    d, n = G.config.latent_dim, G.num_latents
    z = G.sample_z(3, seed=0)
    assert z.shape == (3, d)
    out = G.sample(3, seed=0)
    assert torch.equal(out.z, z)
    assert torch.equal(out.latents, G.mapping(z)[:, None].expand(3, n, d))
    # the pair form: choice 0 everywhere is the first z, 2 everywhere all parts of the second (base from the first)
    z2 = G.sample_z(3, seed=1)
    k = G.config.num_classes
    with torch.no_grad():
        assert torch.equal(G((z, z2), mix_choice=torch.zeros(3, k, dtype=torch.long)).image, out.image)
    both = G((z, z2), mix_choice=torch.full((3, k), 2)).latents
    nb = G.config.base_layers
    assert torch.equal(both[:, :nb], out.latents[:, :nb]) and torch.equal(both[:, nb:], G(z2).latents[:, nb:])
    # explicit per-code z: every part independent
    per_code = G(torch.randn(2, n, d))
    assert not torch.allclose(per_code.latents[:, nb], per_code.latents[:, nb + 2])
    with pytest.raises(ValueError, match=r"z must be \(B, 16\) \(one z per image.*got \(2, 15\)"):
        G(torch.randn(2, 15))
    with pytest.raises(ValueError, match="z pair"):
        G((z, z2[:2]))
    with pytest.raises(ValueError, match="mix_choice needs a pair"):
        G(z, mix_choice=torch.zeros(3, k, dtype=torch.long))


def test_ssg_truncation_centre_is_the_mean_w():
    G = tiny_generator("ssg").eval()
    G.update_w_avg(2048, seed=0)
    w = G.mapping(torch.randn(20000, 16, generator=torch.Generator().manual_seed(1)))
    assert torch.allclose(G.w_avg[0], w.mean(0), atol=0.1 * float(w.std()))
    flat = G.sample(2, seed=3, truncation=0.0).latents
    assert torch.allclose(flat, G.w_avg[None].expand_as(flat), atol=1e-6)


def test_synthesis_stages_compose_to_the_forward_pass(arch):
    G = tiny_generator(arch).eval()
    out = G.sample(2, seed=5)
    hidden, depths = G.generate_parts(out.expanded)
    assert torch.equal(depths, out.depths)
    fusion = G.fuse(hidden, depths)
    assert torch.allclose(fusion.masks.sum(1), torch.ones(2, 8, 8), atol=1e-5)
    assert torch.allclose(fusion.coarse_seg, out.coarse_seg)
    # the fused map is the weighted sum of the per-part features (reference path)
    feats = G.to_features(hidden)
    assert torch.allclose(fusion.fused, (fusion.weights.unsqueeze(2) * feats).sum(1), atol=1e-5)
    with torch.no_grad():
        image, seg = G.render(fusion.fused, fusion.coarse_seg)
    assert torch.allclose(image, out.image, atol=1e-6) and torch.allclose(seg, out.seg, atol=1e-6)
    again = G(expanded=out.expanded, return_fused=True)
    assert torch.allclose(again.fused, fusion.fused, atol=1e-6)
    assert out.fused is None


def test_explicit_render_noise(arch):
    G = tiny_generator(arch).eval()
    shapes = G.noise_shapes()
    assert [s[2] for s in shapes] == [8, 8, 16, 16, 32, 32]
    z = G.sample_z(2, seed=0)
    const = [getattr(G.render_net, f"noise_{j}") for j in range(len(shapes))]
    assert torch.equal(G(z, noise=const).image, G(z, noise_mode="const").image)
    zero = [torch.zeros(s) for s in shapes]
    assert torch.equal(G(z, noise=zero).image, G(z, noise_mode="none").image)
    fresh = G.make_noise(2, torch.Generator().manual_seed(0))
    assert [tuple(n.shape) for n in fresh] == [(2, 1, s[2], s[3]) for s in shapes]
    assert not torch.allclose(G(z, noise=fresh).image, G(z).image)
    # gradients reach explicit noise (inversion optimises it)
    fresh = [n.requires_grad_(True) for n in fresh]
    G(z, noise=fresh).image.sum().backward()
    assert all(n.grad is not None and n.grad.abs().sum() > 0 for n in fresh)
    with pytest.raises(ValueError, match=r"noise must be a list of 6 maps"):
        G(z, noise=fresh[:2])
    with pytest.raises(ValueError, match=r"noise\[1\] must be \(1 or B=2, 1, 8, 8\), got \(2, 1, 4, 4\)"):
        G(z, noise=[fresh[0], torch.zeros(2, 1, 4, 4)] + fresh[2:])


def test_sequential_composition_from_expanded_codes(arch):
    G = tiny_generator(arch).eval()
    from_seed = sequential_composition(G, seed=4, order=[0, 2, 1])
    codes = G.sample(1, seed=4).expanded
    from_codes = sequential_composition(G, expanded=codes, order=[0, 2, 1])
    for a, b in zip(from_seed, from_codes):
        assert torch.equal(a.image, b.image)
    edited = codes.clone()
    edited[:, 2] = 0
    assert not torch.allclose(sequential_composition(G, expanded=edited, order=[0, 2])[1].image, from_seed[1].image)
    with pytest.raises(ValueError, match=r"one sample \(1, K, L, D\)"):
        sequential_composition(G, expanded=torch.cat([codes, codes]))


def test_memorygan_query_offsets_are_carried_through_the_working_memory():
    """An offset on one part's query changes that query by exactly the offset, leaves the parts drawn before it
    alone, and reaches the parts drawn after it through the LSTM (query-space editing)."""
    G = tiny_generator("memorygan").eval()
    z = G.sample_z(2, seed=0)
    off = torch.zeros(1, 5, 16)
    off[0, 2] = 0.5                                            # part 1 (index 0 is the base query)
    a, b = G(z), G(z, query_offsets=off)
    delta = (b.queries - a.queries).abs().amax(-1)             # (B, 1+K)
    assert torch.allclose(b.queries[:, 2], a.queries[:, 2] + 0.5, atol=1e-6)
    assert (delta[:, :2] == 0).all() and (delta[:, 3:] > 1e-4).all()
    with pytest.raises(ValueError, match="query offsets must be"):
        G(z, query_offsets=torch.zeros(1, 4, 16))
    with pytest.raises(ValueError, match="pass them with z"):
        G(queries=a.queries, query_offsets=off)


def test_render_net_channels_last_gives_the_same_output(arch):
    """NHWC activations (the default under autocast) change the memory layout only: the same image and seg in fp32,
    returned contiguous; the bf16 result stays within bf16 rounding of the fp32 one."""
    G = tiny_generator(arch).eval()
    z = G.sample_z(2, seed=0)
    with torch.no_grad():
        G.render_net.channels_last = False
        ref = G(z)
        G.render_net.channels_last = True
        nhwc = G(z)
        G.render_net.channels_last = None                        # auto: NHWC under autocast
        with torch.autocast("cpu", dtype=torch.bfloat16):
            auto = G(z)
    assert nhwc.image.is_contiguous() and nhwc.seg.is_contiguous() and auto.image.is_contiguous()
    assert torch.allclose(nhwc.image, ref.image, atol=1e-5) and torch.allclose(nhwc.seg, ref.seg, atol=1e-5)
    assert float((auto.image.float() - ref.image).abs().max()) < 0.1


def test_render_net_layout_auto_choice(arch, monkeypatch):
    """channels_last=None: NHWC under autocast and in CPU fp32 inference with the Winograd convolutions on, NCHW with
    autograd or with them switched off."""
    from memorygan.ops import FixedStyleConv

    G = tiny_generator(arch).eval()
    z = G.sample_z(1, seed=0)
    seen = []
    G.render_net.convs[0].register_forward_hook(
        lambda m, inp, out: seen.append(inp[0].is_contiguous(memory_format=torch.channels_last)
                                        and not inp[0].is_contiguous()))
    with torch.no_grad():
        G(z)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            G(z)
    G(z)
    monkeypatch.setattr(FixedStyleConv, "cpu_winograd", False)
    with torch.no_grad():
        G(z)
    assert seen == [True, True, False, False]


@pytest.mark.parametrize("arch", ["memorygan", "ssg"])
def test_fast_paths_compute_the_official_order_exactly_in_float64(arch):
    """Every layer's fast path (gain and bias folded into the convolution, noise added scaled, shared-style weight
    folding) is the same sum as the official order: in float64 the whole generator agrees to rounding (1e-12),
    with non-zero biases and noise strengths (sqrt(2) written as 1.4142 in one place already fails)."""
    from memorygan.ops import FixedStyleConv, ModulatedConv

    G = tiny_generator(arch).double().eval()
    with torch.no_grad():
        for name, p in G.named_parameters():
            if name.endswith("activate.bias") or name.endswith("noise.weight"):
                p.copy_(torch.randn_like(p) * 0.3)
    z = G.sample_z(2, seed=0).double()

    def run(reference: bool):
        for m in G.modules():
            if isinstance(m, (FixedStyleConv, ModulatedConv)):
                m.use_reference = reference
        with torch.no_grad():
            out = G(z, noise_mode="const")
        return out.image, out.seg
    (img, seg), (img_ref, seg_ref) = run(False), run(True)
    assert img.abs().max() > 0.1
    assert torch.allclose(img, img_ref, atol=1e-12, rtol=0) and torch.allclose(seg, seg_ref, atol=1e-12, rtol=0)
