"""Noise injection: x + weight * noise, with a learned scalar weight (init 0)."""
from __future__ import annotations

import torch
import torch.nn as nn

NOISE_MODES = ("const", "random", "none")


class NoiseInjection(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor, noise: torch.Tensor | None) -> torch.Tensor:
        """x: (N, C, H, W); noise: (N or 1, 1, H, W) or None (no noise)."""
        if noise is None:
            return x
        return x + self.weight.to(x.dtype) * noise.to(x.dtype)
