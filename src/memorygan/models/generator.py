"""The interface both generators share: codes at every level in, image + segmentation + intermediates out.

Levels (DESIGN 1): random source `z` -> [MemoryGAN: query codes] -> latent codes -> expanded codes
(B, K, L, D) -> synthesis. Synthesis runs in three stages, each callable on its own (Paint-by-Word blends between
them, inversion optimises their inputs):

    generate_parts  expanded codes (+ coordinates) -> last local-layer activations and pseudo-depths per part
    fuse            depths (+ composition mask) -> part masks, fusion weights, the fused coarse feature map
    render          fused map + coarse mask (+ noise) -> image and fine segmentation

`forward` accepts explicit input at any level and returns a `GeneratorOutput` holding every level it used.
"""
from __future__ import annotations

from abc import ABCMeta, abstractmethod
from dataclasses import dataclass, fields
from pathlib import Path

import torch
import torch.nn as nn

from memorygan.checkpoint import save_generator
from memorygan.config import GeneratorConfig
from memorygan.devices import to_device
from memorygan.models import codes
from memorygan.models.fusion import check_composition_mask, fusion_weights, part_masks
from memorygan.models.render import RenderNet
from memorygan.ops import PositionEmbedding, coordinate_grid
from memorygan.ops.fourier import fourier_features


@dataclass
class GeneratorOutput:
    image: torch.Tensor                      # (B, 3, H, W), about [-1, 1]
    seg: torch.Tensor                        # (B, K, H, W) fine segmentation (real masks are one-hot in {-1,1})
    coarse_seg: torch.Tensor                 # (B, K, Hc, Wc) = 2m - 1, in [-1, 1]
    depths: torch.Tensor                     # (B, K, Hc, Wc) pseudo-depth logits (background 0)
    expanded: torch.Tensor                   # (B, K, L, D)
    latents: torch.Tensor | None = None      # SSG: W+ (B, base+2K, D); MemoryGAN: (B, 1+K, D) [w_base, w^1..K]
    queries: torch.Tensor | None = None      # MemoryGAN: (B, 1+K, D) [q_base, q^1..K]
    z: torch.Tensor | tuple | None = None    # the random source as given (SSG: (B, D), a pair, or (B, base+2K, D))
    kl: torch.Tensor | None = None           # MemoryGAN: KL of the query distributions (Eq. 13, minimised)
    composition_mask: torch.Tensor | None = None
    fused: torch.Tensor | None = None        # (B, C_coarse, Hc, Wc) fused feature map, with return_fused=True

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def __getitem__(self, key: str):
        return getattr(self, key)


@dataclass
class Fusion:
    """Output of the fusion stage."""
    masks: torch.Tensor      # (B, K, Hc, Wc) m = softmax of the depths (with the composition mask applied)
    weights: torch.Tensor    # (B, K, Hc, Wc) fusion weights (transparent classes added on top)
    fused: torch.Tensor      # (B, C_coarse, Hc, Wc)

    @property
    def coarse_seg(self) -> torch.Tensor:
        """The coarse mask in [-1, 1] (2m - 1), the render net's residual-refine input."""
        return 2.0 * self.masks - 1.0


def exactly_one(**kw) -> str:
    """The name of the one keyword that is not None; ValueError otherwise."""
    given = [k for k, v in kw.items() if v is not None]
    if len(given) != 1:
        raise ValueError(f"pass exactly one of {', '.join(kw)} (got {', '.join(given) or 'none'})")
    return given[0]


class CompositionalGenerator(nn.Module, metaclass=ABCMeta):
    """Shared parts of both generators: position input, fusion, render net, truncation, sampling, parts, saving."""

    arch: str = ""

    def __init__(self, cfg: GeneratorConfig):
        super().__init__()
        self.config = cfg
        self.num_classes = cfg.num_classes
        self.pos_embed = PositionEmbedding(cfg.num_fourier_freqs, cfg.local_channels)
        self.render_net = RenderNet(cfg)
        self.register_buffer("coords", coordinate_grid(cfg.coarse_size), persistent=False)
        # the default grid's Fourier features: constants, computed once instead of ~25 small ops per forward pass
        self.register_buffer("coord_features", fourier_features(self.coords, cfg.num_fourier_freqs), persistent=False)
        self.register_buffer("layer_roles", codes.roles_of(cfg), persistent=False)   # (K, L), see models.codes
        self.register_buffer("transparent_index", torch.tensor(cfg.transparent_classes, dtype=torch.long),
                             persistent=False)                                     # for the fusion, on the device
        # truncation centre per latent code (SSG: one shared mean; MemoryGAN: one per part + base)
        self.register_buffer("w_avg", torch.zeros(self.num_avg_codes, cfg.latent_dim))
        self.register_buffer("w_avg_count", torch.zeros((), dtype=torch.long))
        # whether w_avg is known to be estimated, kept on the host so that truncation does not read the count back
        # from the device on every call (a host sync on a GPU); loading a state dict makes it unknown again
        self._w_avg_ready = False
        self.register_load_state_dict_post_hook(lambda module, keys: setattr(module, "_w_avg_ready", False))

    # --- to be provided by the models
    num_latents: int      # codes in `latents`
    num_avg_codes: int

    @abstractmethod
    def z_shape(self) -> tuple[int, ...]:
        """Shape of one sample's random source (without the batch axis)."""

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

    @property
    def part_names(self) -> list[str]:
        """The K part names in id order (class names, or part0, part1, ...)."""
        return codes.part_names(self.config)

    def resolve_parts(self, parts, arg: str = "parts") -> list[int]:
        """Part ids from ids or names (a list or "hair,skin"; None = all); ConfigError naming `arg` otherwise."""
        return codes.resolve_parts(self.config, parts, arg)

    def sample_z(self, n: int, seed: int | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        """Random source (n, *z_shape()), deterministic for a seed (drawn on the CPU, then moved)."""
        if generator is None:
            generator = torch.Generator().manual_seed(int(seed)) if seed is not None else None
        z = torch.randn(n, *self.z_shape(), generator=generator)
        return to_device(z, self.device)

    def expanded_from_z(self, z, truncation: float = 1.0) -> torch.Tensor:
        """Expanded codes (B, K, L, D) of a random source, truncated as `forward` does, without synthesis: what
        `G(z, truncation=...).expanded` holds, for code-level procedures (metrics, mixing) that render later."""
        latents, _ = self.latents_from_z(z)
        return self.expand(self.truncate(latents, truncation))

    def truncate(self, latents: torch.Tensor, psi: float) -> torch.Tensor:
        """w' = w_avg + psi (w - w_avg), per code."""
        if psi == 1.0:
            return latents
        if not self._w_avg_ready:
            if int(self.w_avg_count) == 0:
                self.update_w_avg()
            self._w_avg_ready = True
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
            if self.coords.dtype != torch.float64:     # (the buffer holds float32 values: a float64 model recomputes)
                return self.pos_embed.project(self.coord_features)
            coords = self.coords
        if coords.ndim == 5:
            b, k = coords.shape[:2]
            pos = self.pos_embed(coords.flatten(0, 1))
            return pos.reshape(b, k, *pos.shape[1:])
        return self.pos_embed(coords)

    def check_expanded(self, expanded: torch.Tensor, name: str = "expanded codes") -> None:
        cfg = self.config
        if expanded.ndim != 4 or tuple(expanded.shape[1:]) != (cfg.num_classes, cfg.local_layers, cfg.latent_dim):
            raise ValueError(f"{name} must be (B, K={cfg.num_classes}, L={cfg.local_layers}, D={cfg.latent_dim}), "
                             f"got {tuple(expanded.shape)}")

    # --- synthesis, in stages
    def generate_parts(self, expanded: torch.Tensor, coords: torch.Tensor | None = None):
        """Stage 1, local generation: expanded codes (B, K, L, D) -> (hidden (B, K, C_local, Hc, Wc) activations of
        the last local layer, depths (B, K, Hc, Wc) pseudo-depth logits, background 0). Per-part coarse features
        are `to_features(hidden)`."""
        self.check_expanded(expanded)
        return self.run_local(self.positions(coords), expanded)

    def fuse(self, hidden: torch.Tensor, depths: torch.Tensor,
             composition_mask: torch.Tensor | None = None) -> Fusion:
        """Stage 2, fusion (DESIGN 2.3): part masks m = softmax(depths) (renormalised over the parts the composition
        mask (B, K) keeps), fusion weights (transparent classes on top) and the fused map sum_k weight_k f_k."""
        if composition_mask is not None:
            check_composition_mask(composition_mask, depths.shape[0], depths.shape[1])
        m = part_masks(depths, composition_mask)
        weights = fusion_weights(m, self.transparent_index)
        return Fusion(m, weights, self.fuse_parts(hidden, weights))

    def render(self, fused: torch.Tensor, coarse_seg: torch.Tensor, noise_mode: str = "const",
               noise: list[torch.Tensor] | None = None, mix=None) -> tuple[torch.Tensor, torch.Tensor]:
        """Stage 3, rendering: fused (B, C_coarse, Hc, Wc), coarse_seg (B, K, Hc, Wc) in [-1, 1] -> image
        (B, 3, H, W), seg (B, K, H, W). `noise` (explicit maps, see `noise_shapes`) overrides `noise_mode`.
        `mix(i, t) -> t` sees every render activation in order (`RenderNet.forward`; region edits)."""
        return self.render_net(fused, coarse_seg, noise_mode, noise, mix)

    def noise_shapes(self) -> list[tuple[int, int, int, int]]:
        """Shapes (1, 1, H, W) of the render net's noise maps, in the order `render(noise=...)` takes them."""
        return self.render_net.noise_shapes()

    def make_noise(self, batch: int = 1, generator: torch.Generator | None = None) -> list[torch.Tensor]:
        """Fresh N(0, 1) noise maps (batch, 1, H, W) on the model's device (drawn on the generator's device)."""
        draw_on = generator.device if generator is not None else self.device
        return [to_device(torch.randn(batch, *s[1:], generator=generator, device=draw_on), self.device)
                for s in self.noise_shapes()]

    def synthesize(self, expanded: torch.Tensor, composition_mask: torch.Tensor | None = None,
                   noise_mode: str = "const", coords: torch.Tensor | None = None,
                   noise: list[torch.Tensor] | None = None, return_fused: bool = False) -> dict:
        """Expanded codes (B, K, L, D) -> {image, seg, coarse_seg, depths (, fused)}: the three stages in a row."""
        hidden, depths = self.generate_parts(expanded, coords)
        fusion = self.fuse(hidden, depths, composition_mask)
        coarse_seg = fusion.coarse_seg
        image, seg = self.render(fusion.fused, coarse_seg, noise_mode, noise)
        out = {"image": image, "seg": seg, "coarse_seg": coarse_seg, "depths": depths}
        if return_fused:
            out["fused"] = fusion.fused
        return out

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

    # --- persistence (safetensors + config.json; see memorygan.checkpoint; load with memorygan.load)
    def save_pretrained(self, directory, storage_dtype: str | None = None) -> Path:
        """config.json + generator.safetensors in `directory`; `storage_dtype="float16"` halves the file."""
        return save_generator(self, directory, storage_dtype=storage_dtype)
