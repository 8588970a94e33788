"""Equalized-learning-rate layers (StyleGAN2): weights stored N(0,1)/lr_mul, scaled at run time."""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from memorygan.ops.activation import SQRT2, folded_leaky_relu


class PixelNorm(nn.Module):
    """x * rsqrt(mean(x^2 over dim 1) + 1e-8)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(torch.mean(x * x, dim=1, keepdim=True) + 1e-8)


class EqualLinear(nn.Module):
    """y = x @ (W * lr_mul / sqrt(in))^T + b * lr_mul; with `activation=True`, biased leaky ReLU with gain.

    x: (N, in) -> (N, out).
    """

    def __init__(self, in_dim: int, out_dim: int, bias: bool = True, bias_init: float = 0.0, lr_mul: float = 1.0,
                 activation: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init))) if bias else None
        self.scale = lr_mul / math.sqrt(in_dim)
        self.lr_mul = lr_mul
        self.activation = activation
        self.in_dim, self.out_dim = in_dim, out_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.activation:                    # gain and bias folded into the linear map (ops/activation.py)
            b = self.bias * (self.lr_mul * SQRT2) if self.bias is not None else None
            return folded_leaky_relu(F.linear(x, self.weight * (self.scale * SQRT2), b))
        b = self.bias * self.lr_mul if self.bias is not None else None
        return F.linear(x, self.weight * self.scale, b)

    def extra_repr(self) -> str:
        return f"{self.in_dim}, {self.out_dim}, lr_mul={self.lr_mul}, activation={self.activation}"


class EqualConv2d(nn.Module):
    """Plain equalized conv (used by the discriminator). x: (N, in, H, W) -> (N, out, H', W')."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, stride: int = 1, padding: int = 0, bias: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_ch)) if bias else None
        self.scale = 1.0 / math.sqrt(in_ch * kernel_size * kernel_size)
        self.stride, self.padding = stride, padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, stride=self.stride, padding=self.padding)
