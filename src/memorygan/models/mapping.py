"""StyleGAN2 mapping network (SemanticStyleGAN's mapping; MemoryGAN's MLP_latent, Eq. 9)."""
from __future__ import annotations

import torch
import torch.nn as nn

from memorygan.ops import EqualLinear, PixelNorm


class MappingNetwork(nn.Module):
    """PixelNorm then `num_layers` equalized linear D->D layers (lr_mul 0.01) with leaky ReLU. (N, D) -> (N, D)."""

    def __init__(self, latent_dim: int, num_layers: int = 8, lr_mul: float = 0.01):
        super().__init__()
        layers = [PixelNorm()]
        layers += [EqualLinear(latent_dim, latent_dim, lr_mul=lr_mul, activation=True) for _ in range(num_layers)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        return self.net(x.reshape(-1, shape[-1])).reshape(shape)
