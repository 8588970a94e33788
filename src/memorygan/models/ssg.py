"""SemanticStyleGAN generator (Shi et al., CVPR 2022): mapping -> W+ -> K local generators -> fusion -> render."""
from __future__ import annotations

import torch
import torch.nn as nn

from memorygan.config import GeneratorConfig
from memorygan.models.codes import expand_codes, mix_wplus, random_mix_choice
from memorygan.models.generator import CompositionalGenerator, GeneratorOutput, exactly_one
from memorygan.models.local_generator import LocalGenerator
from memorygan.models.mapping import MappingNetwork


class SemanticStyleGAN(CompositionalGenerator):
    """W+ = (B, base_layers + 2K, D): base codes, then (shape, texture) for each part k = 0..K-1.

    The random source follows the official code (`SemanticGenerator.forward` / `mix_styles`):
    - `z` (B, D): one z per image, mapped once; its w is repeated over every W+ code. This is the distribution the
      model samples from (`sample_z`, `sample`, metrics) and is trained on.
    - a pair `(z1, z2)` of (B, D): two-style mixing, base codes from z1, and for each (sample, part) its
      (shape, texture) codes from (1, 1), (1, 2) or (2, 2) (`mix_choice` (B, K) in {0, 1, 2}, drawn uniformly
      when not given). Training mixes this way with probability 0.3.
    - `z` (B, base+2K, D): one z per W+ code, each mapped separately (every part independent; an explicit option
      for editing and analysis, not the model's distribution).
    """

    arch = "ssg"

    def __init__(self, cfg: GeneratorConfig):
        self.num_latents = cfg.base_layers + 2 * cfg.num_classes
        self.num_avg_codes = 1
        super().__init__(cfg)
        self.mapping = MappingNetwork(cfg.latent_dim, cfg.mapping_layers, cfg.mapping_lr_mul)
        self.local_nets = nn.ModuleList([LocalGenerator(cfg, has_depth=k > 0) for k in range(cfg.num_classes)])

    def z_shape(self) -> tuple[int, ...]:
        return (self.config.latent_dim,)

    def broadcast(self, w: torch.Tensor) -> torch.Tensor:
        """One w per image (B, D) -> W+ (B, base+2K, D) with w on every code (official `mix_styles`, one style)."""
        return w[:, None].expand(-1, self.num_latents, -1)

    def latents_from_z(self, z, mix_choice: torch.Tensor | None = None) -> tuple[torch.Tensor, None]:
        """Random source (any form in the class docstring) -> W+ latents (B, base+2K, D); no KL term."""
        d = self.config.latent_dim
        if isinstance(z, (tuple, list)):
            if len(z) != 2 or any(not torch.is_tensor(x) or x.ndim != 2 or x.shape[1] != d for x in z) \
                    or z[0].shape != z[1].shape:
                raise ValueError(f"a z pair for style mixing must be two (B, {d}) tensors of one shape, got "
                                 f"{[tuple(x.shape) if torch.is_tensor(x) else type(x).__name__ for x in z]}")
            b = z[0].shape[0]
            if mix_choice is None:
                mix_choice = random_mix_choice(b, self.num_classes, device=z[0].device)
            w1, w2 = self.broadcast(self.mapping(z[0])), self.broadcast(self.mapping(z[1]))
            return mix_wplus(w1, w2, mix_choice, self.config.base_layers), None
        if mix_choice is not None:
            raise ValueError("mix_choice needs a pair of z (z1, z2)")
        if torch.is_tensor(z) and z.ndim == 2 and z.shape[1] == d:
            return self.broadcast(self.mapping(z)), None
        if torch.is_tensor(z) and z.ndim == 3:
            self._check_codes("z", z, self.num_latents)
            return self.mapping(z), None
        shape = tuple(z.shape) if torch.is_tensor(z) else type(z).__name__
        raise ValueError(f"z must be (B, {d}) (one z per image, the official convention), a pair of (B, {d}) "
                         f"tensors (style mixing) or (B, {self.num_latents}, {d}) (one z per W+ code) for ssg "
                         f"with K={self.num_classes}, got {shape}")

    def map_z(self, z) -> dict:
        return {"latents": self.latents_from_z(z)[0]}

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

    def forward(self, z=None, *, latents: torch.Tensor | None = None, expanded: torch.Tensor | None = None,
                composition_mask: torch.Tensor | None = None, truncation: float = 1.0, noise_mode: str = "const",
                noise: list[torch.Tensor] | None = None, coords: torch.Tensor | None = None,
                mix_choice: torch.Tensor | None = None, return_fused: bool = False) -> GeneratorOutput:
        """Explicit input at one level: `z` (see the class docstring), `latents` (W+) or `expanded` codes.
        Truncation acts on W+ towards the mean w (the official `truncate_styles`, applied to both styles of a pair
        before mixing, which is the same thing)."""
        level = exactly_one(z=z, latents=latents, expanded=expanded)
        if level == "z":
            latents, _ = self.latents_from_z(z, mix_choice)
        if level in ("z", "latents"):
            self._check_codes("latents (W+)", latents, self.num_latents)
            latents = self.truncate(latents, truncation)
            expanded = self.expand(latents)
        out = self.synthesize(expanded, composition_mask, noise_mode, coords, noise, return_fused)
        return GeneratorOutput(**out, expanded=expanded, latents=latents, z=z, composition_mask=composition_mask)
