"""MemoryGAN generator (Wang, Peng & Liu, Electronics 2023): working memory (LSTM controller) -> query codes ->
MLP_latent -> latent codes -> ONE shared local generator (the long-term memory) run on all parts as a batch of
B*K -> fusion -> render net."""
from __future__ import annotations

import torch
from einops import rearrange

from memorygan.config import GeneratorConfig
from memorygan.models.controller import WorkingMemory, gaussian_kl
from memorygan.models.codes import expand_codes
from memorygan.models.generator import CompositionalGenerator, GeneratorOutput, exactly_one
from memorygan.models.local_generator import LocalGenerator
from memorygan.models.mapping import MappingNetwork


class MemoryGAN(CompositionalGenerator):
    """Codes are (B, 1+K, D): index 0 the base code, index 1+k part k (k = 0 is the background), at every level
    (controller noise `z`, `queries`, `latents`). A part's shape and texture codes are the same vector w^k."""

    arch = "memorygan"

    def __init__(self, cfg: GeneratorConfig):
        self.num_latents = 1 + cfg.num_classes
        self.num_avg_codes = 1 + cfg.num_classes
        super().__init__(cfg)
        self.controller = WorkingMemory(cfg.latent_dim, cfg.controller_const_dim, cfg.controller_mlp_dim,
                                        cfg.controller_hidden_dim)
        self.mlp_latent = MappingNetwork(cfg.latent_dim, cfg.mapping_layers, cfg.mapping_lr_mul)  # Eq. 9
        self.memory = LocalGenerator(cfg, has_depth=True)  # long-term memory, shared by all parts

    def z_shape(self) -> tuple[int, ...]:
        return (1 + self.config.num_classes, self.config.latent_dim)

    def map_z(self, z: torch.Tensor) -> dict:
        queries, mu, logvar = self.controller(z)
        return {"latents": self.mlp_latent(queries), "queries": queries, "kl": gaussian_kl(mu, logvar)}

    def expand(self, latents: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        base = latents[:, :1].expand(-1, cfg.base_layers, -1)
        parts = latents[:, 1:]
        return expand_codes(base, parts, parts, cfg.local_layers, cfg.base_layers, cfg.depth_layers)

    def run_local(self, pos, expanded):
        b, k = expanded.shape[:2]
        codes = rearrange(expanded, "b k l d -> (b k) l d")
        if pos.ndim == 5:
            pos = rearrange(pos, "b k c h w -> (b k) c h w")
        elif pos.shape[0] != 1:
            pos = pos.repeat_interleave(k, dim=0)
        hidden, depths = self.memory.hidden(pos, codes)  # one batched run over all parts of all samples
        hidden = rearrange(hidden, "(b k) c h w -> b k c h w", b=b)
        depths = rearrange(depths, "(b k) 1 h w -> b k h w", b=b)
        depths = torch.cat([torch.zeros_like(depths[:, :1]), depths[:, 1:]], dim=1)  # background logit is 0
        return hidden, depths

    def to_features(self, hidden):
        b = hidden.shape[0]
        feats = self.memory.to_feat(rearrange(hidden, "b k c h w -> (b k) c h w"))
        return rearrange(feats, "(b k) c h w -> b k c h w", b=b)

    def fuse_parts(self, hidden, weights):
        # The shared to_feat is a 1x1 affine map, so it commutes with the per-pixel weighted sum over parts:
        # sum_k a_k (W h_k + b) = W (sum_k a_k h_k) + b sum_k a_k. Mixing the 64-channel activations first runs
        # to_feat once per image instead of once per part (K x fewer MACs and memory for this layer).
        weights = weights.to(hidden.dtype)
        mixed = (weights.unsqueeze(2) * hidden).sum(1)
        return self.memory.to_feat(mixed, bias_scale=weights.sum(1, keepdim=True))

    def latents_from_z(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Controller noise (B, 1+K, D) -> latent codes (B, 1+K, D) and the controller's KL term (scalar)."""
        self._check_codes("z (controller noise)", z, self.num_latents)
        queries, mu, logvar = self.controller(z)
        return self.mlp_latent(queries), gaussian_kl(mu, logvar)

    def forward(self, z: torch.Tensor | None = None, *, queries: torch.Tensor | None = None,
                latents: torch.Tensor | None = None, expanded: torch.Tensor | None = None,
                composition_mask: torch.Tensor | None = None, truncation: float = 1.0, noise_mode: str = "const",
                noise: list[torch.Tensor] | None = None, coords: torch.Tensor | None = None,
                return_fused: bool = False, query_offsets: torch.Tensor | None = None) -> GeneratorOutput:
        """Explicit input at one level: controller noise `z` (B, 1+K, D), `queries`, `latents` (B, 1+K, D) or
        `expanded` codes (B, K, L, D). Truncation acts on the latents, towards each part's mean.
        `query_offsets` (B|1, 1+K, D), with `z`: added to the queries inside the working memory, so the parts
        drawn after an edited part follow it (query-space editing)."""
        level = exactly_one(z=z, queries=queries, latents=latents, expanded=expanded)
        if query_offsets is not None and level != "z":
            raise ValueError("query_offsets act inside the working memory: pass them with z (controller noise)")
        kl = None
        if level == "z":
            self._check_codes("z (controller noise)", z, self.num_latents)
            queries, mu, logvar = self.controller(z, query_offsets)
            kl = gaussian_kl(mu, logvar)
        if level in ("z", "queries"):
            self._check_codes("queries", queries, self.num_latents)
            latents = self.mlp_latent(queries)
        if level in ("z", "queries", "latents"):
            self._check_codes("latents", latents, self.num_latents)
            latents = self.truncate(latents, truncation)
            expanded = self.expand(latents)
        out = self.synthesize(expanded, composition_mask, noise_mode, coords, noise, return_fused)
        return GeneratorOutput(**out, expanded=expanded, latents=latents, queries=queries, z=z, kl=kl,
                               composition_mask=composition_mask)
