"""BigGAN / BigGAN-deep architectures: sizes of the published configurations, shapes, the truncation trick,
spectral norm, conditioning, config errors, save/load."""
import pytest
import torch

from memorygan.biggan.checkpoint import load_biggan, save_biggan
from memorygan.biggan.config import BigGANConfig, biggan_config, preset_names
from memorygan.biggan.layers import SNLinear, power_iteration, sn_layers
from memorygan.biggan.models import BigGANDiscriminator, BigGANGenerator, truncated_z
from memorygan.errors import CheckpointError, ConfigError

# Parameter counts and state-dict sizes of the authors' code (ajbrock/BigGAN-PyTorch BigGAN.py / BigGANdeep.py with
# the launch scripts' settings, 1000 classes), counted by instantiating that code. BigGAN paper: G 70.4 M, D 88.0 M
# at 128 px; BigGAN-deep 128: G 50.4 M, D 34.6 M (the paper rounds differently).
REFERENCE = {
    "biggan-128": (70_433_988, 87_982_370, 166, 88),
    "biggan-256": (82_097_604, 99_191_330, 194, 100),
    "biggan-deep-128": (50_244_484, 34_590_210, 506, 200),
    "biggan-deep-256": (55_736_708, 38_247_426, 602, 232),
}


@pytest.mark.parametrize("preset", sorted(REFERENCE))
def test_published_sizes(preset):
    cfg = biggan_config(preset)
    with torch.device("meta"):
        G, D = BigGANGenerator(cfg, skip_init=True), BigGANDiscriminator(cfg, skip_init=True)
    assert (G.num_params(), D.num_params(), len(G.state_dict()), len(D.state_dict())) == REFERENCE[preset]


def test_presets_cover_cpu_to_256():
    res = {biggan_config(p).resolution for p in preset_names()}
    assert res == {64, 128, 256}
    assert "biggan-small" in preset_names()


def small(arch="biggan", **kw):
    preset = "biggan-small" if arch == "biggan" else "biggan-deep-128"
    base = dict(resolution=64, g_ch=8, d_ch=8, num_classes=4, shared_dim=8, g_attention=[32], d_attention=[32],
                dim_z=20 if arch == "biggan" else 16)
    base.update(kw)
    return biggan_config(preset, **base)


@pytest.mark.parametrize("arch", ["biggan", "biggan-deep"])
def test_shapes_and_range(arch):
    cfg = small(arch)
    G, D = BigGANGenerator(cfg).eval(), BigGANDiscriminator(cfg)
    z = torch.randn(3, cfg.dim_z)
    y = torch.tensor([0, 1, 3])
    x = G.generate(z, y)
    assert x.shape == (3, 3, 64, 64) and x.abs().max() <= 1
    assert D(x, y).shape == (3,)
    with pytest.raises(ValueError, match=r"z must be \(B, %d\)" % cfg.dim_z):
        G.generate(torch.randn(3, cfg.dim_z + 1), y)
    with pytest.raises(ValueError, match="D expects"):
        D(torch.zeros(3, 3, 32, 32), y)


def test_class_changes_the_image_and_d_projection():
    cfg = small()
    G, D = BigGANGenerator(cfg).eval(), BigGANDiscriminator(cfg)
    z = torch.randn(1, cfg.dim_z).repeat(2, 1)
    x = G.generate(z, torch.tensor([0, 2]))
    assert (x[0] - x[1]).abs().max() > 1e-3
    # projection: D(x, y) - D(x, y') = <embed(y) - embed(y'), h(x)>
    img = x[:1].repeat(2, 1, 1, 1)
    D.eval()
    out = D(img, torch.tensor([0, 2]))
    h = D.features(img[:1])[0]
    e = D.embed.sn_weight()
    assert (out[0] - out[1]).item() == pytest.approx(((e[0] - e[2]) * h).sum().item(), rel=1e-4, abs=1e-4)


def test_hierarchical_latents_reach_every_stage():
    """BigGAN splits z into one chunk for the first linear layer and one per stage: changing only the last chunk
    changes the image, and leaves the first layer's output as it was."""
    cfg = small()
    G = BigGANGenerator(cfg).eval()
    assert cfg.z_chunk == 4 and cfg.cond_dim == cfg.shared_dim + 4
    z = torch.randn(1, cfg.dim_z)
    z2 = z.clone()
    z2[:, -4:] += 1.0
    y = G.shared(torch.tensor([1]))
    assert (G(z, y) - G(z2, y)).abs().max() > 1e-3
    assert torch.equal(G.linear(z[:, :4]), G.linear(z2[:, :4]))


def test_truncation_trick():
    g = torch.Generator().manual_seed(0)
    z = truncated_z(2000, 16, 0.5, g)
    assert z.abs().max() <= 0.5
    # a truncated normal on [-0.5, 0.5] has std 0.2863 (the normal restricted to the interval)
    assert z.std().item() == pytest.approx(0.2863, abs=0.01)
    full = truncated_z(2000, 16, None, torch.Generator().manual_seed(0))
    assert full.std().item() == pytest.approx(1.0, abs=0.02)
    tiny = truncated_z(10, 4, 0.04, torch.Generator().manual_seed(0))
    assert tiny.abs().max() <= 0.04
    with pytest.raises(ValueError, match="truncation must be > 0"):
        truncated_z(2, 2, 0.0)


def test_power_iteration_converges_to_the_first_singular_value():
    torch.manual_seed(0)
    W = torch.randn(12, 30)
    u = torch.randn(1, 12)
    for _ in range(100):
        sigma, u, _ = power_iteration(W, u)
    assert sigma.item() == pytest.approx(torch.linalg.svdvals(W)[0].item(), rel=1e-5)


def test_spectral_norm_records_sigma_and_normalises():
    torch.manual_seed(0)
    lin = SNLinear(30, 12).train()
    for _ in range(60):
        lin(torch.randn(2, 30))
    top = torch.linalg.svdvals(lin.weight.detach())[0].item()
    assert lin.sv0.item() == pytest.approx(top, rel=1e-4)           # what the monitors plot (thesis Fig. 2-2b)
    assert torch.linalg.svdvals(lin.sn_weight().detach())[0].item() == pytest.approx(1.0, rel=1e-4)
    u = lin.u0.clone()
    lin.eval()(torch.randn(2, 30))
    assert torch.equal(lin.u0, u)                                       # evaluation never moves u


def test_every_conv_and_linear_is_spectrally_normalised_except_the_shared_embedding():
    cfg = small()
    G, D = BigGANGenerator(cfg), BigGANDiscriminator(cfg)
    plain = [n for n, m in G.named_modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear, torch.nn.Embedding))
             and n not in sn_layers(G)]
    assert plain == ["shared"]
    plain_d = [n for n, m in D.named_modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear, torch.nn.Embedding))
               and n not in sn_layers(D)]
    assert plain_d == [] and "embed" in sn_layers(D)


def test_orthogonal_init():
    cfg = small()
    G = BigGANGenerator(cfg)
    W = G.linear.weight.detach()                              # (out, in) with out > in: orthonormal columns
    assert torch.allclose(W.t() @ W, torch.eye(W.shape[1]), atol=1e-5)


@pytest.mark.parametrize("field,value,message", [
    ("arch", "stylegan", "unknown architecture"),
    ("resolution", 96, "96 is not supported"),
    ("dim_z", 21, "does not split into 5 equal chunks"),
    ("g_attention", [48], "no stage at resolution 48"),
    ("g_ch", 12, "divisible by 8"),
    ("init", "kaiming", "unknown initialisation"),
])
def test_config_errors_name_the_field(field, value, message):
    d = small().to_dict()
    d[field] = value
    with pytest.raises(ConfigError, match=message) as e:
        BigGANConfig.from_dict(d)
    assert field in str(e.value)


def test_unknown_fields_and_presets():
    with pytest.raises(ConfigError, match=r"unknown BigGAN config fields \['bogus'\]"):
        BigGANConfig.from_dict({**small().to_dict(), "bogus": 1})
    with pytest.raises(ConfigError, match="unknown BigGAN preset 'biggan-1024'"):
        biggan_config("biggan-1024")


def test_save_load_round_trip(tmp_path):
    cfg = small("biggan-deep", class_names=["a", "b", "c", "d"])
    G = BigGANGenerator(cfg).eval()
    save_biggan(G, tmp_path / "g", extra={"training": {"step": 3}})
    G2, cfg2 = load_biggan(tmp_path / "g")
    assert cfg2 == cfg and not G2.training
    z, y = torch.randn(2, cfg.dim_z), torch.tensor([1, 2])
    assert torch.equal(G.generate(z, y), G2.generate(z, y))


def test_load_refuses_bad_files(tmp_path):
    cfg = small()
    save_biggan(BigGANGenerator(cfg), tmp_path / "g")
    with pytest.raises(CheckpointError, match="no such BigGAN"):
        load_biggan(tmp_path / "missing")
    import json
    meta = json.loads((tmp_path / "g" / "config.json").read_text())
    meta["generator"]["g_ch"] = 16                            # weights no longer fit
    (tmp_path / "g" / "config.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="generator.safetensors"):
        load_biggan(tmp_path / "g")
    meta["format"] = "memorygan-generator"
    (tmp_path / "g" / "config.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="expected 'memorygan-biggan'"):
        load_biggan(tmp_path / "g")
