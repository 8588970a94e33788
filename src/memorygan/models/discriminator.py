"""Dual-branch discriminator (DESIGN 2.7, SemanticStyleGAN Sec. 3.3): one residual branch on the image, one on
the segmentation, summed at 4x4, then minibatch stddev, conv and two linear layers."""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from memorygan.config import DiscriminatorConfig
from memorygan.ops import SQRT2, BiasedLeakyReLU, EqualConv2d, EqualLinear, blur, folded_leaky_relu, make_kernel


class ConvLayer(nn.Module):
    """Equalized conv, optionally preceded by a blur and stride 2 (downsample), optionally activated; the output
    times `gain` (> 0), folded into the conv's weight and bias (the leaky ReLU is positively homogeneous)."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, downsample: bool = False, activate: bool = True,
                 bias: bool = True, blur_kernel=(1, 3, 3, 1), gain: float = 1.0):
        super().__init__()
        if not gain > 0:
            raise ValueError(f"ConvLayer: gain must be positive, got {gain}")
        self.downsample = downsample
        self.gain = gain
        if downsample:
            p = (len(blur_kernel) - 2) + (kernel_size - 1)
            self.blur_pad = ((p + 1) // 2, p // 2)
            self.register_buffer("blur_kernel", make_kernel(blur_kernel), persistent=False)
        self.conv = EqualConv2d(in_ch, out_ch, kernel_size, stride=2 if downsample else 1,
                                padding=0 if downsample else kernel_size // 2, bias=bias and not activate)
        self.act = BiasedLeakyReLU(out_ch) if activate else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.downsample:
            x = blur(x, self.blur_kernel, self.blur_pad)
        c = self.conv
        if self.act is None:
            bias = c.bias * self.gain if c.bias is not None and self.gain != 1.0 else c.bias
            return F.conv2d(x, c.weight * (c.scale * self.gain), bias, stride=c.stride, padding=c.padding)
        # the activation's gain and bias folded into the conv (ops/activation.py): conv, then one leaky ReLU pass
        g = SQRT2 * self.gain
        y = F.conv2d(x, c.weight * (c.scale * g), self.act.bias * g, stride=c.stride, padding=c.padding)
        return folded_leaky_relu(y, inplace=not torch.is_grad_enabled())


class ResBlock(nn.Module):
    """(N, I, H, W) -> (N, O, H/2, W/2): (conv3x3 -> conv3x3 down + 1x1 down skip) / sqrt 2, the 1 / sqrt 2 folded
    into both paths' convolutions (one op fewer per block, forward and backward)."""

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.conv1 = ConvLayer(in_ch, in_ch, 3)
        self.conv2 = ConvLayer(in_ch, out_ch, 3, downsample=True, gain=1 / math.sqrt(2))
        self.skip = ConvLayer(in_ch, out_ch, 1, downsample=True, activate=False, bias=False, gain=1 / math.sqrt(2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.conv1(x)) + self.skip(x)


class Branch(nn.Module):
    """1x1 conv to the width at input resolution, then residual blocks down to 4x4."""

    def __init__(self, in_ch: int, cfg: DiscriminatorConfig):
        super().__init__()
        res = cfg.resolution
        self.from_input = ConvLayer(in_ch, cfg.channels(res), 1)
        blocks = []
        while res > 4:
            blocks.append(ResBlock(cfg.channels(res), cfg.channels(res // 2)))
            res //= 2
        self.blocks = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.from_input(x))


def minibatch_stddev(x: torch.Tensor, group_size: int, num_features: int = 1) -> torch.Tensor:
    """Append the std over groups of samples, averaged over channels and pixels. (N, C, H, W) -> (N, C+F, H, W).
    The group is the largest divisor of N not above `group_size`."""
    n, c, h, w = x.shape
    g = min(group_size, n)
    while n % g:
        g -= 1
    y = x.reshape(g, -1, num_features, c // num_features, h, w)
    y = torch.sqrt(y.var(0, unbiased=False) + 1e-8)
    y = y.mean(dim=[2, 3, 4]).reshape(-1, num_features, 1, 1)
    y = y.repeat(g, 1, h, w)
    return torch.cat([x, y], dim=1)


def check_inputs(cfg: DiscriminatorConfig, image: torch.Tensor, seg: torch.Tensor) -> None:
    """A discriminator's inputs: image (B, 3, R, R) and seg (B, K, R, R) at the config's resolution R and K."""
    want_img = (3, cfg.resolution, cfg.resolution)
    want_seg = (cfg.num_classes, cfg.resolution, cfg.resolution)
    if tuple(image.shape[1:]) != want_img or tuple(seg.shape[1:]) != want_seg:
        raise ValueError(f"discriminator expects image (B, {want_img}) and seg (B, {want_seg}), "
                         f"got {tuple(image.shape)} and {tuple(seg.shape)}")


class DualBranchDiscriminator(nn.Module):
    """forward(image (B, 3, H, W), seg (B, K, H, W)) -> logits (B, 1)."""

    def __init__(self, cfg: DiscriminatorConfig):
        super().__init__()
        self.config = cfg
        self.image_branch = Branch(3, cfg)
        self.seg_branch = Branch(cfg.num_classes, cfg)
        c4 = cfg.channels(4)
        self.final_conv = ConvLayer(c4 + cfg.mbstd_features, c4, 3)
        self.final_linear = nn.Sequential(EqualLinear(c4 * 16, c4, activation=True), EqualLinear(c4, 1))

    def forward(self, image: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        check_inputs(cfg, image, seg)
        x = self.image_branch(image) + self.seg_branch(seg)
        x = minibatch_stddev(x, cfg.mbstd_group, cfg.mbstd_features)
        x = self.final_conv(x)
        return self.final_linear(x.flatten(1))
