"""Biased leaky ReLU with gain: `lrelu(x + b, 0.2) * sqrt(2)` (StyleGAN2 `fused_leaky_relu`)."""
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


class BiasedLeakyReLU(nn.Module):
    """Leaky ReLU with a learned per-channel bias (init 0), times sqrt(2)."""

    def __init__(self, channels: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return bias_leaky_relu(x, self.bias)
