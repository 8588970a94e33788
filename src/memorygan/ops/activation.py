"""Biased leaky ReLU with gain: `lrelu(x + b, 0.2) * sqrt(2)` (StyleGAN2 `fused_leaky_relu`).

The leaky ReLU is positively homogeneous, so `lrelu(x + b) * g = lrelu(g x + g b)` for a gain g > 0: a layer whose
input comes from a linear op (conv, matmul) can fold the gain into that op's weight and the bias into its bias
(`BiasedLeakyReLU.folded_bias`), and then only apply `lrelu` (`folded_leaky_relu`): one pass over the activation
instead of three (bias add, leaky ReLU, gain), in training and inference alike, and two kernels fewer per layer on a
GPU. StyleGAN2's CUDA `fused_bias_act` does the same in one kernel; this gets it from the ops PyTorch has.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

SQRT2 = math.sqrt(2.0)


def bias_leaky_relu(x: torch.Tensor, bias: torch.Tensor | None = None, negative_slope: float = 0.2,
                    gain: float = SQRT2) -> torch.Tensor:
    """x: (N, C, ...) or (N, C); bias: (C,) added along dim 1 before the activation."""
    if bias is not None:
        x = x + bias.reshape(1, -1, *([1] * (x.ndim - 2))).to(x.dtype)
    return F.leaky_relu(x, negative_slope) * gain


def folded_leaky_relu(y: torch.Tensor, inplace: bool = False) -> torch.Tensor:
    """The activation of a layer whose linear op already applied the gain and the bias (see the module docstring).
    `inplace` only where `y` is the caller's own fresh tensor and autograd is off."""
    return F.leaky_relu_(y, 0.2) if inplace else F.leaky_relu(y, 0.2)


class BiasedLeakyReLU(nn.Module):
    """Leaky ReLU with a learned per-channel bias (init 0), times sqrt(2).

    `inplace_inference=True` (for layers that pass their own fresh convolution output): without autograd, work in
    place in that tensor: three passes over it and no new allocation instead of three new tensors. At K = 100 the
    local generators' activations are 200 x 64 x 64 x 64 floats (210 MB) per layer, where this is most of the cost."""

    def __init__(self, channels: int, inplace_inference: bool = False):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))
        self.inplace_inference = inplace_inference

    def folded_bias(self) -> torch.Tensor:
        """bias * sqrt(2) (C,): the bias to give the linear op before `folded_leaky_relu` (whose weight is scaled by
        sqrt(2) too); the op casts it to its input's dtype."""
        return self.bias * SQRT2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.inplace_inference and not torch.is_grad_enabled():
            x.add_(self.bias.reshape(1, -1, *([1] * (x.ndim - 2))).to(x.dtype))
            return F.leaky_relu_(x, 0.2).mul_(SQRT2)
        return bias_leaky_relu(x, self.bias)
