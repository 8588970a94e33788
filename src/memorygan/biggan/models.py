"""BigGAN and BigGAN-deep generator and projection discriminator (Brock et al. 2019, Figs. 15-16; Miyato & Koyama
2018 for the projection), with the module layout of the authors' PyTorch code so their weights load.

G(z, y): z (B, dim_z) normal (truncated for the truncation trick), y (B, shared_dim) = G.shared(class) — the class
embedding is passed in, not the class, so that classes can be interpolated in the shared space (thesis Fig. 2-7).
`G.generate(z, labels)` does both. D(x, labels) -> (B,) logits.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn import init

from memorygan.biggan.config import BigGANConfig
from memorygan.biggan.layers import (
    Attention, BatchNorm, DBlock, DBlockDeep, GBlock, GBlockDeep, SNConv2d, SNEmbedding, SNLinear,
)

BOTTOM = 4  # G starts at 4x4


def init_weights(module: nn.Module, style: str) -> None:
    """Initialise every conv, linear and embedding weight (thesis Sec. 2.3.1: orthogonal, Saxe et al. 2014)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear, nn.Embedding)):
            if style == "ortho":
                init.orthogonal_(m.weight)
            elif style == "N02":
                init.normal_(m.weight, 0, 0.02)
            else:
                init.xavier_uniform_(m.weight)


class BigGANGenerator(nn.Module):
    def __init__(self, cfg: BigGANConfig, skip_init: bool = False):
        super().__init__()
        self.config = cfg
        ch = cfg.g_channels()
        eps = dict(bn_eps=cfg.bn_eps, sn_eps=cfg.sn_eps)
        self.shared = nn.Embedding(cfg.num_classes, cfg.shared_dim)       # no SN: the authors found it cripples G
        lin_in = (cfg.dim_z + cfg.shared_dim if cfg.hier else cfg.dim_z) if cfg.deep else \
            (cfg.z_chunk if cfg.hier else cfg.dim_z)
        self.linear = SNLinear(lin_in, ch[0] * BOTTOM ** 2, eps=cfg.sn_eps)
        blocks: list[list[nn.Module]] = []
        res = BOTTOM
        for i in range(cfg.g_stages):
            res *= 2
            if cfg.deep:   # g_depth blocks per stage, each its own list; the last one upsamples (BigGANdeep.py)
                for d in range(cfg.g_depth):
                    last = d == cfg.g_depth - 1
                    blocks.append([GBlockDeep(ch[i], ch[i + 1] if last else ch[i], cfg.cond_dim, up=last, **eps)])
            else:
                blocks.append([GBlock(ch[i], ch[i + 1], cfg.cond_dim, up=True, **eps)])
            if res in cfg.g_attention:
                blocks[-1].append(Attention(ch[i + 1], cfg.sn_eps))
        self.blocks = nn.ModuleList([nn.ModuleList(b) for b in blocks])
        self.output_layer = nn.Sequential(BatchNorm(ch[-1], cfg.bn_eps), nn.ReLU(),
                                          SNConv2d(ch[-1], 3, eps=cfg.sn_eps))
        if not skip_init:
            init_weights(self, cfg.init)

    @property
    def device(self) -> torch.device:
        return self.linear.weight.device

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """z (B, dim_z), y (B, shared_dim) class embedding -> image (B, 3, R, R) in [-1, 1]."""
        cfg = self.config
        if z.ndim != 2 or z.shape[1] != cfg.dim_z:
            raise ValueError(f"z must be (B, {cfg.dim_z}), got {tuple(z.shape)}")
        if y.shape != (z.shape[0], cfg.shared_dim):
            raise ValueError(f"y must be (B, {cfg.shared_dim}) class embeddings, got {tuple(y.shape)}")
        if cfg.deep:
            if cfg.hier:
                z = y = torch.cat([y, z], 1)
            ys = [y] * len(self.blocks)
        elif cfg.hier:
            zs = z.split(cfg.z_chunk, 1)                                         # Eq. hierarchical latents
            z, ys = zs[0], [torch.cat([y, c], 1) for c in zs[1:]]
        else:
            ys = [y] * len(self.blocks)
        h = self.linear(z).view(z.shape[0], -1, BOTTOM, BOTTOM)
        for i, blocklist in enumerate(self.blocks):     # BigGAN: one list per stage, each with its own z chunk
            for block in blocklist:
                h = block(h, ys[i])
        return torch.tanh(self.output_layer(h))

    def generate(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Images of classes `labels` (B,) int64 from z (B, dim_z)."""
        return self(z, self.shared(labels))

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())


class BigGANDiscriminator(nn.Module):
    def __init__(self, cfg: BigGANConfig, skip_init: bool = False):
        super().__init__()
        self.config = cfg
        ch = cfg.d_channels()
        blocks: list[list[nn.Module]] = []
        res = cfg.resolution
        if cfg.deep:
            self.input_conv = SNConv2d(3, ch[0], eps=cfg.sn_eps)
            for i in range(len(ch) - 1):
                res //= 2
                stage = [DBlockDeep(ch[i] if d == 0 else ch[i + 1], ch[i + 1], down=d == 0, sn_eps=cfg.sn_eps)
                         for d in range(cfg.d_depth)]
                if res in cfg.d_attention:
                    stage.append(Attention(ch[i + 1], cfg.sn_eps))
                blocks.append(stage)
        else:
            cin = [3] + ch[:-1]
            for i, cout in enumerate(ch):
                down = i < len(ch) - 1                         # the last block keeps 4x4
                res = res // 2 if down else res
                stage = [DBlock(cin[i], cout, down=down, preactivation=i > 0, sn_eps=cfg.sn_eps)]
                if res in cfg.d_attention:
                    stage.append(Attention(cout, cfg.sn_eps))
                blocks.append(stage)
        self.blocks = nn.ModuleList([nn.ModuleList(b) for b in blocks])
        self.linear = SNLinear(ch[-1], 1, eps=cfg.sn_eps)
        self.embed = SNEmbedding(cfg.num_classes, ch[-1], eps=cfg.sn_eps)
        if not skip_init:
            init_weights(self, cfg.init)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, R, R) -> (B, C) globally sum-pooled ReLU features (SN-GAN)."""
        cfg = self.config
        if x.ndim != 4 or x.shape[1:] != (3, cfg.resolution, cfg.resolution):
            raise ValueError(f"D expects (B, 3, {cfg.resolution}, {cfg.resolution}) images, got {tuple(x.shape)}")
        h = self.input_conv(x) if cfg.deep else x
        for blocklist in self.blocks:
            for block in blocklist:
                h = block(h)
        return F.relu(h).sum([2, 3])

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Projection discriminator: linear(h) + <embed(y), h>  -> (B,) logits."""
        h = self.features(x)
        return self.linear(h)[:, 0] + (self.embed(labels) * h).sum(1)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())


def truncated_z(n: int, dim: int, truncation: float | None = None, generator: torch.Generator | None = None,
                device: torch.device | str = "cpu") -> torch.Tensor:
    """(n, dim) latents: standard normal, or with `truncation` t the truncation trick (BigGAN Sec. 3.1): values
    with |z| > t are resampled until every value lies in [-t, t]. t = None or t >= 10 means no truncation."""
    z = torch.randn(n, dim, generator=generator, device=device)
    if truncation is None or truncation >= 10:
        return z
    if not truncation > 0:
        raise ValueError(f"truncation must be > 0, got {truncation}")
    for _ in range(1000):
        out = z.abs() > truncation
        if not out.any():
            return z
        z = torch.where(out, torch.randn(n, dim, generator=generator, device=device), z)
    # a threshold this small (P(|z| <= t) tiny) needs too many draws: fall back to uniform on [-t, t]
    u = torch.rand(n, dim, generator=generator, device=device) * 2 - 1
    return torch.where(z.abs() > truncation, u * truncation, z)
