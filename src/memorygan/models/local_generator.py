"""Local generator (DESIGN 2.2): the long-term memory of MemoryGAN (one, shared by all parts) and the
per-part generators of SemanticStyleGAN (K of them).

A local generator maps position features and one latent code per layer to a part's coarse feature map and
pseudo-depth. It holds no per-part parameter: which part it renders is decided only by the codes it is given.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from memorygan.config import GeneratorConfig
from memorygan.ops import StyledLayer, ToOutput


class LocalGenerator(nn.Module):
    """L modulated 1x1 convs (width `local_channels`), `to_depth` after layer depth_layers-1, `to_feat` at the end.

    forward(pos (N|1, C_local, H, W), codes (N, L, D)) -> feat (N, C_coarse, H, W), depth (N, 1, H, W) or None.
    """

    def __init__(self, cfg: GeneratorConfig, has_depth: bool = True):
        super().__init__()
        self.num_layers = cfg.local_layers
        self.depth_layers = cfg.depth_layers
        c = cfg.local_channels
        self.layers = nn.ModuleList([StyledLayer(c, c, cfg.latent_dim) for _ in range(cfg.local_layers)])
        self.to_depth = ToOutput(c, 1) if has_depth else None
        self.to_feat = ToOutput(c, cfg.coarse_channels)

    def forward(self, pos: torch.Tensor, codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        hidden, depth = self.hidden(pos, codes)
        return self.to_feat(hidden), depth

    def hidden(self, pos: torch.Tensor, codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Activations of the last layer (N, C_local, H, W) and the depth; `to_feat` is left to the fusion,
        which can apply it after mixing the parts (it is a 1x1 affine map)."""
        n, num_layers, _ = codes.shape
        assert num_layers == self.num_layers, f"expected {self.num_layers} layer codes, got {num_layers}"
        x = pos.to(codes.dtype)
        if x.shape[0] != n:
            x = x.expand(n, *x.shape[1:])
        depth = None
        for i, layer in enumerate(self.layers):
            x = layer(x, codes[:, i])
            if i == self.depth_layers - 1 and self.to_depth is not None:
                depth = self.to_depth(x)
        return x, depth
