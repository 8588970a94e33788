"""Checks of the independent official-SSG reference (tests/reference/official_ssg.py) itself."""
import argparse
import math
from pathlib import Path

import pytest
import torch

from .official_ssg import (
    Blur, FixedModConv, ModulatedConv2d, OfficialSSGGenerator, PositionEmbedding, Upsample, fuse,
    make_official_checkpoint, randomize_parameters_, upfirdn2d_native,
)

TSV_NAME = "ssg_official_g_ema_keys_512_K13.tsv"
TINY = dict(style_dim=32, local_channels=16, coarse_channels=32, coarse_size=16, min_feat_size=8, channel_max=32)
K = 4


def _tsv_path():
    for root in (Path(__file__).resolve().parents[2] / "shared", Path("/work/shared")):
        if (root / "reference" / TSV_NAME).exists():
            return root / "reference" / TSV_NAME
    pytest.skip(f"{TSV_NAME} not found")


def tiny(seed=0, **kw):
    return randomize_parameters_(OfficialSSGGenerator(64, kw.pop("num_classes", K), **{**TINY, **kw}), seed).eval()


# ------------------------------------------------------------------------------------------------------ layout
def test_state_dict_matches_official_512_k13_key_list():
    ref = {}
    for line in _tsv_path().read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, shape = line.split("\t")
            ref[key] = [int(s) for s in shape.strip("[]").split(",")]
    ours = {k: list(v.shape) for k, v in OfficialSSGGenerator(512, 13).state_dict().items()}
    assert sorted(set(ref) - set(ours)) == [] and sorted(set(ours) - set(ref)) == []
    assert {k: v for k, v in ours.items() if ref[k] != v} == {}


@pytest.mark.parametrize("k,millions", [(1, 15.35), (10, 18.99), (100, 55.43), (13, 20.21)])
def test_parameter_count_at_256_matches_official(k, millions):
    n = sum(p.numel() for p in OfficialSSGGenerator(256, k).parameters())
    assert abs(n / 1e6 - millions) / millions < 0.005


# ------------------------------------------------------------------------------------------------------ ops
def test_upfirdn2d_up2_of_impulse_gives_kernel():
    x = torch.zeros(1, 1, 5, 5)
    x[0, 0, 2, 2] = 1
    up = Upsample([1, 3, 3, 1])
    out = up(x)
    assert out.shape == (1, 1, 10, 10)
    assert torch.allclose(out[0, 0, 3:7, 3:7], up.kernel) and out.abs().sum() == pytest.approx(4.0)


def test_upfirdn2d_is_true_convolution_and_downsamples():
    k = torch.arange(12, dtype=torch.float32).reshape(3, 4)  # asymmetric: catches a missing flip
    out = upfirdn2d_native(torch.ones(1, 1, 1, 1), k, pad=(3, 3, 2, 2))  # (x0, x1, y0, y1)
    assert torch.equal(out[0, 0], k)
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    assert torch.equal(upfirdn2d_native(x, torch.ones(1, 1), down=2)[0, 0], x[0, 0, ::2, ::2])


def test_blur_and_upsample_keep_constants_in_interior():
    c = torch.full((1, 2, 8, 8), 3.0)
    blurred = Blur([1, 3, 3, 1], pad=(1, 1))(c)  # 8 + 2 - 3 = 7 px
    assert blurred.shape[-1] == 7 and torch.allclose(blurred[..., 1:-1, 1:-1], torch.full((1, 2, 5, 5), 3.0))
    assert torch.allclose(Upsample([1, 3, 3, 1])(c)[..., 2:-2, 2:-2], torch.full((1, 2, 12, 12), 3.0))


def test_demodulated_effective_weights_have_unit_norm_and_grouped_conv_is_per_sample():
    conv = ModulatedConv2d(6, 5, 1, style_dim=7)
    style = torch.randn(3, 7)
    w = conv.effective_weight(style)  # (B, out, in, 1, 1)
    assert torch.allclose(w.pow(2).sum(dim=(2, 3, 4)), torch.ones(3, 5), atol=1e-5)
    x = torch.randn(3, 6, 4, 4)
    assert torch.allclose(conv(x, style), torch.einsum("boi,bihw->bohw", w[..., 0, 0], x), atol=1e-5)
    fixed = FixedModConv(6, 5, 3, upsample=True)
    fixed.modulation.data.uniform_(0.5, 2)
    assert torch.allclose(fixed.effective_weight().pow(2).sum(dim=(1, 2, 3)), torch.ones(5), atol=1e-5)
    assert fixed(torch.randn(2, 6, 4, 4)).shape == (2, 5, 8, 8)


def test_fourier_features_order():
    pe = PositionEmbedding(64, 8)  # N = 6
    f = pe.features(3, 5)[0]
    lin5, lin3 = torch.linspace(-1, 1, 5), torch.linspace(-1, 1, 3)
    assert f.shape == (2 * (2 * 6 + 1), 3, 5)
    assert torch.allclose(f[0, 1], lin5) and torch.allclose(f[1, :, 2], lin3)  # x along width, y along height
    for k in range(6):
        x, y = 2.0 ** k * lin5[None].expand(3, 5), 2.0 ** k * lin3[:, None].expand(3, 5)
        for j, ref in enumerate([torch.sin(x), torch.sin(y), torch.cos(x), torch.cos(y)]):
            assert torch.allclose(f[2 + 4 * k + j], ref, atol=1e-6)


# ------------------------------------------------------------------------------------------------------ latents
def test_expand_latents_places_codes():
    gen = OfficialSSGGenerator(64, K, **TINY)
    n = gen.n_latent
    assert n == 2 + 2 * K
    expanded = gen.expand_latents(torch.eye(n, 32)[None])  # code i = one-hot e_i
    idx = expanded[0].argmax(-1)  # (K, L)
    for k in range(K):
        shape, tex = 2 + 2 * k, 3 + 2 * k
        base = [shape, shape] if k == 0 else [0, 1]
        assert idx[k].tolist() == base + [shape] * 4 + [tex] * 4


def test_mapping_is_applied_per_code_and_truncation():
    gen = tiny()
    z = torch.randn(2, gen.n_latent, 32)
    out = gen(z, randomize_noise=False)
    assert torch.allclose(out["w_plus"][:, 3], gen.style(z[:, 3]), atol=1e-6)
    mean = gen.mean_latent(64)
    assert mean.shape == (1, 32)
    trunc = gen(z, truncation=0.0, truncation_latent=mean, randomize_noise=False)["w_plus"]
    assert torch.allclose(trunc, mean.expand_as(trunc))


# ------------------------------------------------------------------------------------------------------ fusion
def test_fuse_composition_mask_and_transparency_by_hand():
    feats = torch.arange(1.0, 4.0)[None, :, None, None, None].expand(1, 3, 1, 2, 2)  # f_k = k + 1
    depths = torch.zeros(1, 3, 2, 2)  # m = 1/3 each
    fused, m = fuse(feats, depths)
    assert torch.allclose(fused, torch.full_like(fused, 2.0))
    fused, m = fuse(feats, depths, composition_mask=torch.tensor([[1.0, 0.0, 1.0]]))
    assert torch.allclose(m[0, :, 0, 0], torch.tensor([0.5, 0.0, 0.5]), atol=1e-6)
    assert torch.allclose(fused, torch.full_like(fused, 2.0), atol=1e-6)
    fused, m = fuse(feats, depths, transparent=(2,))  # opaque 1/2, 1/2; transparent keeps 1/3 on top
    assert torch.allclose(fused, torch.full_like(fused, 0.5 * 1 + 0.5 * 2 + 3 / 3), atol=1e-6)
    assert torch.allclose(m, torch.full_like(m, 1 / 3))


def test_background_only_composition_puts_all_weight_on_background():
    gen = tiny()
    z = torch.randn(2, gen.n_latent, 32)
    out = gen(z, randomize_noise=False, composition_mask=torch.tensor([[1.0] + [0.0] * (K - 1)] * 2))
    assert torch.allclose(out["coarse_seg"][:, 0], torch.ones(2, 16, 16), atol=1e-5)
    assert torch.allclose(out["coarse_seg"][:, 1:], -torch.ones(2, K - 1, 16, 16), atol=1e-5)
    full = gen(z, randomize_noise=False)
    assert not torch.allclose(out["image"], full["image"])


def test_transparent_class_changes_image_not_coarse_mask():
    opaque, transparent = tiny(), tiny(transparent_classes=(2,))
    z = torch.randn(1, opaque.n_latent, 32)
    a, b = opaque(z, randomize_noise=False), transparent(z, randomize_noise=False)
    assert torch.allclose(a["coarse_seg"], b["coarse_seg"]) and not torch.allclose(a["image"], b["image"])


def test_residual_refine_adds_upsampled_coarse_mask():
    refined, plain = tiny(), tiny(residual_refine=False)
    z = torch.randn(2, refined.n_latent, 32)
    a, b = refined(z, randomize_noise=False), plain(z, randomize_noise=False)
    up = refined.render_net.to_segs[1].upsample  # coarse 16 -> 32 -> 64 through the skip upsamplers
    assert torch.allclose(a["seg"] - b["seg"], up(up(a["coarse_seg"])), atol=1e-4)
    assert torch.allclose(a["image"], b["image"])


# ------------------------------------------------------------------------------------------------------ outputs
def test_output_shapes_ranges_and_determinism():
    gen = tiny()
    z = torch.randn(2, gen.n_latent, 32)
    out = gen(z, randomize_noise=False)
    assert out["image"].shape == (2, 3, 64, 64) and out["seg"].shape == (2, K, 64, 64)
    assert out["coarse_seg"].shape == out["depths"].shape == (2, K, 16, 16)
    assert out["w_plus"].shape == (2, gen.n_latent, 32)
    assert out["coarse_seg"].min() >= -1 and out["coarse_seg"].max() <= 1
    assert torch.allclose(out["coarse_seg"].sum(1), torch.full((2, 16, 16), 2.0 - K), atol=1e-5)
    assert torch.equal(out["depths"][:, 0], torch.zeros(2, 16, 16)) and out["depths"][:, 1:].std() > 0
    assert all(torch.isfinite(v).all() and v.std() > 0 for k, v in out.items() if k != "depths")
    again = gen(z, randomize_noise=False)
    assert all(torch.equal(out[k], again[k]) for k in out)
    single = gen(z[1:], randomize_noise=False)
    assert torch.allclose(single["image"], out["image"][1:], atol=1e-5)
    assert not torch.allclose(gen(z)["image"], out["image"])  # noise weights are non-zero after randomising


def test_randomize_parameters_touches_everything_but_kernels():
    gen = OfficialSSGGenerator(64, K, **TINY)
    before = {k: v.clone() for k, v in gen.state_dict().items()}
    randomize_parameters_(gen, seed=3)
    for k, v in gen.state_dict().items():
        assert torch.equal(v, before[k]) == k.endswith("kernel"), k


def test_make_official_checkpoint_round_trip(tmp_path):
    path = tmp_path / "ssg.pt"
    gen = make_official_checkpoint(path, 64, K, seed=1, **TINY)
    with torch.serialization.safe_globals([argparse.Namespace]):
        ckpt = torch.load(path, weights_only=True)
    assert set(ckpt) == {"g", "d", "g_ema", "g_optim", "d_optim", "args"}
    assert all(torch.equal(ckpt["g_ema"][k], v) for k, v in gen.state_dict().items())
    a = ckpt["args"]
    assert (a.size, a.seg_dim, a.latent, a.n_mlp, a.coarse_size, a.local_channel) == (64, K, 32, 8, 16, 16)
    rebuilt = OfficialSSGGenerator(64, K, **TINY)
    rebuilt.load_state_dict(ckpt["g_ema"])
    z = torch.randn(1, gen.n_latent, 32)
    assert torch.equal(rebuilt(z, randomize_noise=False)["image"], gen(z, randomize_noise=False)["image"])
    assert math.isclose(ckpt["g_optim"]["param_groups"][0]["lr"], 0.002)
