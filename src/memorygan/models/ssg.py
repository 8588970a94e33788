"""SemanticStyleGAN generator (Shi et al., CVPR 2022): mapping -> W+ -> K local generators -> fusion -> render."""
from __future__ import annotations

import torch
import torch.nn as nn

from memorygan.config import GeneratorConfig
from memorygan.models.generator import CompositionalGenerator, GeneratorOutput, expand_codes
from memorygan.models.local_generator import LocalGenerator
from memorygan.models.mapping import MappingNetwork


def _exactly_one(**kw) -> str:
    given = [k for k, v in kw.items() if v is not None]
    if len(given) != 1:
        raise ValueError(f"pass exactly one of {', '.join(kw)} (got {', '.join(given) or 'none'})")
    return given[0]


class SemanticStyleGAN(CompositionalGenerator):
    """W+ = (B, base_layers + 2K, D): base codes, then (shape, texture) for each part k = 0..K-1.

    `z` has the same layout: one N(0, I) vector per W+ code, each mapped by the mapping network.
    """

    arch = "ssg"

    def __init__(self, cfg: GeneratorConfig):
        self.num_latents = cfg.base_layers + 2 * cfg.num_classes
        self.num_avg_codes = 1
        super().__init__(cfg)
        self.mapping = MappingNetwork(cfg.latent_dim, cfg.mapping_layers, cfg.mapping_lr_mul)
        self.local_nets = nn.ModuleList([LocalGenerator(cfg, has_depth=k > 0) for k in range(cfg.num_classes)])

    def map_z(self, z: torch.Tensor) -> dict:
        return {"latents": self.mapping(z)}

    def split_latents(self, latents: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """W+ (B, base+2K, D) -> base (B, base, D), shape (B, K, D), texture (B, K, D)."""
        nb = self.config.base_layers
        return latents[:, :nb], latents[:, nb::2], latents[:, nb + 1::2]

    def expand(self, latents: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        base, shape, texture = self.split_latents(latents)
        return expand_codes(base, shape, texture, cfg.local_layers, cfg.base_layers, cfg.depth_layers)

    def run_local(self, pos, expanded):
        b = expanded.shape[0]
        hidden, depths = [], []
        for k, net in enumerate(self.local_nets):
            h, d = net.hidden(pos[:, k] if pos.ndim == 5 else pos, expanded[:, k])
            hidden.append(h)
            depths.append(d[:, 0] if d is not None else h.new_zeros(b, *h.shape[2:]))
        return torch.stack(hidden, 1), torch.stack(depths, 1)

    def to_features(self, hidden):
        return torch.stack([net.to_feat(hidden[:, k]) for k, net in enumerate(self.local_nets)], 1)

    def fuse_parts(self, hidden, weights):
        fused = None  # accumulate part by part: never holds K coarse feature maps at once
        for k, net in enumerate(self.local_nets):
            f = net.to_feat(hidden[:, k]) * weights[:, k:k + 1].to(hidden.dtype)
            fused = f if fused is None else fused + f
        return fused

    def latents_from_z(self, z: torch.Tensor) -> tuple[torch.Tensor, None]:
        """Random source (B, base+2K, D) -> W+ latents (B, base+2K, D); no KL term (training uses this path)."""
        self._check_codes("z", z, self.num_latents)
        return self.mapping(z), None

    def forward(self, z: torch.Tensor | None = None, *, latents: torch.Tensor | None = None,
                expanded: torch.Tensor | None = None, composition_mask: torch.Tensor | None = None,
                truncation: float = 1.0, noise_mode: str = "const",
                coords: torch.Tensor | None = None) -> GeneratorOutput:
        level = _exactly_one(z=z, latents=latents, expanded=expanded)
        if level == "z":
            self._check_codes("z", z, self.num_latents)
            latents = self.mapping(z)
        if level in ("z", "latents"):
            self._check_codes("latents (W+)", latents, self.num_latents)
            latents = self.truncate(latents, truncation)
            expanded = self.expand(latents)
        out = self.synthesize(expanded, composition_mask, noise_mode, coords)
        return GeneratorOutput(**out, expanded=expanded, latents=latents, z=z, composition_mask=composition_mask)
