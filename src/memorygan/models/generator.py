"""The interface both generators share: codes at every level in, image + segmentation + intermediates out.

Levels (DESIGN 1): random source `z` -> [MemoryGAN: query codes] -> latent codes -> expanded codes
(B, K, L, D) -> local generator(s) -> fusion -> render net. `forward` accepts explicit input at any level and
returns a `GeneratorOutput` holding every level it used.
"""
from __future__ import annotations

from abc import ABCMeta, abstractmethod
from dataclasses import dataclass, fields
from pathlib import Path

import torch
import torch.nn as nn

from memorygan.config import GeneratorConfig
from memorygan.models.fusion import fusion_weights, part_masks
from memorygan.models.render import RenderNet
from memorygan.ops import PositionEmbedding, coordinate_grid


@dataclass
class GeneratorOutput:
    image: torch.Tensor                      # (B, 3, H, W), about [-1, 1]
    seg: torch.Tensor                        # (B, K, H, W) fine segmentation (real masks are one-hot in {-1,1})
    coarse_seg: torch.Tensor                 # (B, K, Hc, Wc) = 2m - 1, in [-1, 1]
    depths: torch.Tensor                     # (B, K, Hc, Wc) pseudo-depth logits (background 0)
    expanded: torch.Tensor                   # (B, K, L, D)
    latents: torch.Tensor | None = None      # SSG: W+ (B, base+2K, D); MemoryGAN: (B, 1+K, D) [w_base, w^1..K]
    queries: torch.Tensor | None = None      # MemoryGAN: (B, 1+K, D) [q_base, q^1..K]
    z: torch.Tensor | None = None            # SSG: (B, base+2K, D); MemoryGAN: controller noise (B, 1+K, D)
    kl: torch.Tensor | None = None           # MemoryGAN: KL of the query distributions (Eq. 13, minimised)
    composition_mask: torch.Tensor | None = None

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def __getitem__(self, key: str):
        return getattr(self, key)


def expand_codes(base: torch.Tensor | None, shape: torch.Tensor, texture: torch.Tensor, num_layers: int,
                 base_layers: int, depth_layers: int) -> torch.Tensor:
    """Per-(part, layer) codes (DESIGN 2.2).

    base: (B, base_layers, D) or None; shape, texture: (B, K, D) -> (B, K, L, D). Foreground part k: base code i on
    layer i < base_layers, shape code on [base_layers, depth_layers), texture on [depth_layers, L). Background
    (k = 0): shape code on [0, depth_layers), texture code on the rest.
    """
    b, k, d = shape.shape
    n_shape = depth_layers - base_layers
    n_tex = num_layers - depth_layers
    fg_base = (base[:, None].expand(b, k - 1, base_layers, d) if base_layers else shape.new_zeros(b, k - 1, 0, d))
    fg = torch.cat([fg_base,
                    shape[:, 1:, None].expand(b, k - 1, n_shape, d),
                    texture[:, 1:, None].expand(b, k - 1, n_tex, d)], dim=2)
    bg = torch.cat([shape[:, :1, None].expand(b, 1, depth_layers, d),
                    texture[:, :1, None].expand(b, 1, n_tex, d)], dim=2)
    return torch.cat([bg, fg], dim=1)


class CompositionalGenerator(nn.Module, metaclass=ABCMeta):
    """Shared parts of both generators: position input, fusion, render net, truncation, sampling, save/load."""

    arch: str = ""

    def __init__(self, cfg: GeneratorConfig):
        super().__init__()
        self.config = cfg
        self.num_classes = cfg.num_classes
        self.pos_embed = PositionEmbedding(cfg.num_fourier_freqs, cfg.local_channels)
        self.render_net = RenderNet(cfg)
        self.register_buffer("coords", coordinate_grid(cfg.coarse_size), persistent=False)
        # truncation centre per latent code (SSG: one shared mean; MemoryGAN: one per part + base)
        self.register_buffer("w_avg", torch.zeros(self.num_avg_codes, cfg.latent_dim))
        self.register_buffer("w_avg_count", torch.zeros((), dtype=torch.long))

    # --- to be provided by the models
    num_latents: int      # codes in `latents` / `z`
    num_avg_codes: int

    @abstractmethod
    def map_z(self, z: torch.Tensor) -> dict:
        """Random source -> {"latents": (B, num_latents, D), plus model-specific intermediates}."""

    @abstractmethod
    def expand(self, latents: torch.Tensor) -> torch.Tensor:
        """Latent codes -> expanded codes (B, K, L, D)."""

    @abstractmethod
    def run_local(self, pos: torch.Tensor, expanded: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Position features + expanded codes -> last local-layer activations (B, K, C_local, Hc, Wc) and
        depths (B, K, Hc, Wc)."""

    @abstractmethod
    def to_features(self, hidden: torch.Tensor) -> torch.Tensor:
        """Per-part coarse features (B, K, C_coarse, Hc, Wc): the reference path of `fuse_parts`."""

    @abstractmethod
    def fuse_parts(self, hidden: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """sum_k weights_k * to_feat_k(hidden_k) -> (B, C_coarse, Hc, Wc), without materialising all K feature maps
        (equal to `fusion.fuse` on `to_features(hidden)`, tested)."""

    # --- shared
    @property
    def device(self) -> torch.device:
        return self.w_avg.device

    def sample_z(self, n: int, seed: int | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        """Random source (B, num_latents, D), deterministic for a seed (drawn on the CPU, then moved)."""
        if generator is None:
            generator = torch.Generator().manual_seed(int(seed)) if seed is not None else None
        z = torch.randn(n, self.num_latents, self.config.latent_dim, generator=generator)
        return z.to(self.device)

    def truncate(self, latents: torch.Tensor, psi: float) -> torch.Tensor:
        """w' = w_avg + psi (w - w_avg), per code."""
        if psi == 1.0:
            return latents
        if int(self.w_avg_count) == 0:
            self.update_w_avg()
        avg = self.w_avg if self.num_avg_codes > 1 else self.w_avg.expand(latents.shape[1], -1)
        return avg[None].to(latents.dtype) + psi * (latents - avg[None].to(latents.dtype))

    @torch.no_grad()
    def update_w_avg(self, n: int = 4096, seed: int = 123456789, batch: int = 512) -> torch.Tensor:
        """Estimate the truncation centre from `n` random samples (stored in the `w_avg` buffer, saved with the model)."""
        total = torch.zeros_like(self.w_avg, dtype=torch.float64)
        g = torch.Generator().manual_seed(seed)
        done = 0
        while done < n:
            m = min(batch, n - done)
            lat = self.map_z(self.sample_z(m, generator=g))["latents"].double()
            total += lat.sum(0) if self.num_avg_codes > 1 else lat.sum(dim=(0, 1))[None] / lat.shape[1]
            done += m
        self.w_avg.copy_((total / n).to(self.w_avg.dtype))
        self.w_avg_count.fill_(n)
        return self.w_avg

    def positions(self, coords: torch.Tensor | None) -> torch.Tensor:
        """Position features: (1, C, Hc, Wc) for the default grid; coords may be (1|B, 2, Hc, Wc) or
        (B, K, 2, Hc, Wc) (per-part coordinates: move or scale a part), giving (B, K, C, Hc, Wc)."""
        if coords is None:
            coords = self.coords
        if coords.ndim == 5:
            b, k = coords.shape[:2]
            pos = self.pos_embed(coords.flatten(0, 1))
            return pos.reshape(b, k, *pos.shape[1:])
        return self.pos_embed(coords)

    def synthesize(self, expanded: torch.Tensor, composition_mask: torch.Tensor | None = None,
                   noise_mode: str = "const", coords: torch.Tensor | None = None) -> dict:
        """Expanded codes (B, K, L, D) -> image, seg, coarse_seg, depths."""
        cfg = self.config
        b, k, num_layers, d = expanded.shape
        if (k, num_layers, d) != (cfg.num_classes, cfg.local_layers, cfg.latent_dim):
            raise ValueError(f"expanded codes must be (B, K={cfg.num_classes}, L={cfg.local_layers}, "
                             f"D={cfg.latent_dim}), got {tuple(expanded.shape)}")
        if composition_mask is not None and tuple(composition_mask.shape) != (b, k):
            raise ValueError(f"composition_mask must be (B={b}, K={k}), got {tuple(composition_mask.shape)}")
        hidden, depths = self.run_local(self.positions(coords), expanded)
        m = part_masks(depths, composition_mask)
        fused = self.fuse_parts(hidden, fusion_weights(m, cfg.transparent_classes))
        coarse_seg = 2.0 * m - 1.0
        image, seg = self.render_net(fused, coarse_seg, noise_mode)
        return {"image": image, "seg": seg, "coarse_seg": coarse_seg, "depths": depths}

    def _check_codes(self, name: str, x: torch.Tensor, n: int) -> None:
        want = (n, self.config.latent_dim)
        if x.ndim != 3 or tuple(x.shape[1:]) != want:
            raise ValueError(f"{name} must be (B, {want[0]}, {want[1]}) for {self.arch} with K={self.num_classes}, "
                             f"got {tuple(x.shape)}")

    @torch.no_grad()
    def sample(self, n: int, seed: int | None = None, truncation: float = 1.0, noise_mode: str = "const",
               noise_truncation: float = 1.0, composition_mask: torch.Tensor | None = None) -> GeneratorOutput:
        """n random samples; deterministic for a seed. `noise_truncation` scales the random source."""
        z = self.sample_z(n, seed) * noise_truncation
        return self(z, truncation=truncation, noise_mode=noise_mode, composition_mask=composition_mask)

    # --- parameters
    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    # --- persistence (safetensors + config.json; see memorygan.checkpoint)
    def save_pretrained(self, directory) -> Path:
        from memorygan.checkpoint import save_generator
        return save_generator(self, directory)

    @classmethod
    def from_pretrained(cls, directory) -> "CompositionalGenerator":
        from memorygan.checkpoint import load_generator
        return load_generator(directory)[0]
