"""Fourier position features (DESIGN 2.1): the coordinate input of every local generator."""
from __future__ import annotations

import math

import torch
import torch.nn as nn


def coordinate_grid(size: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """(1, 2, size, size): channel 0 is x = linspace(-1, 1) along width, channel 1 is y along height."""
    lin = torch.linspace(-1.0, 1.0, size, device=device, dtype=dtype)
    y, x = torch.meshgrid(lin, lin, indexing="ij")
    return torch.stack([x, y])[None]


def fourier_features(coords: torch.Tensor, num_freqs: int) -> torch.Tensor:
    """coords: (N, 2, H, W) -> (N, 2(2F+1), H, W): [x, y, sin(fx), sin(fy), cos(fx), cos(fy) for f = 1..2^(F-1)]."""
    feats = [coords]
    for k in range(num_freqs):
        f = 2.0 ** k
        feats += [torch.sin(f * coords), torch.cos(f * coords)]
    return torch.cat(feats, dim=1)


def num_fourier_channels(num_freqs: int) -> int:
    return 2 * (2 * num_freqs + 1)


class PositionEmbedding(nn.Module):
    """Fourier features of the coordinate grid, projected by a bias-free equalized 1x1 conv. -> (N, out, H, W)."""

    def __init__(self, num_freqs: int, out_channels: int):
        super().__init__()
        self.num_freqs = num_freqs
        in_ch = num_fourier_channels(num_freqs)
        self.weight = nn.Parameter(torch.randn(out_channels, in_ch, 1, 1))
        self.scale = 1.0 / math.sqrt(in_ch)

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        return self.project(fourier_features(coords, self.num_freqs))

    def project(self, feats: torch.Tensor) -> torch.Tensor:
        """The 1x1 projection of precomputed `fourier_features` (a generator keeps those of its default grid)."""
        return torch.nn.functional.conv2d(feats, self.weight.to(feats.dtype) * self.scale)
