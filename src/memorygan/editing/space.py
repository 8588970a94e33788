"""The edit space: what an edit of a part-based generator may move, in one place (issue 30).

    latent   the whole latent (SSG W+ / MemoryGAN per-part latents): theta (M, D)
    parts    the named parts' own codes, per role (shape and/or texture layers, `models.codes`): theta (P, R, D);
             `role_masks` / `parts_delta` put it on the expanded codes (K, L, D)
    query    MemoryGAN's working-memory queries of the named parts: theta (P, D); `query_index` / `query_offsets`
             put it on the 1+K queries (index 0 is the base query, 1 + k part k)

Directions (GANalyze, InterFaceGAN, SeFa), text and region edits all take their spaces, shapes, part layers and
offsets from here; a batched theta (B, ...) works wherever one theta does.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from memorygan.errors import ConfigError

SPACES = ("latent", "parts", "query")
LAYERS = {"shape": ["shape"], "texture": ["texture"], "both": ["shape", "texture"]}
TEXT_SPACES = ("parts", "query")          # text and region edits: per image, never the whole latent


def check_space(G, space: str, parts, layers: str = "both") -> tuple[list[int], list[str]]:
    """Validate a space for G; returns (part ids, roles)."""
    if space not in SPACES:
        raise ConfigError(f"--space must be one of {', '.join(SPACES)}, got {space!r}")
    if layers not in LAYERS:
        raise ConfigError(f"--layers must be one of {', '.join(LAYERS)}, got {layers!r}")
    if space == "query" and G.arch != "memorygan":
        raise ConfigError(f"--space query: query codes exist only in MemoryGAN (its working memory); this generator "
                          f"is {G.arch!r}: use --space parts or latent")
    if space == "latent":
        if parts:
            raise ConfigError("--space latent edits the whole latent; --parts needs --space parts or query")
        return [], []
    if not parts:
        raise ConfigError(f"--space {space} needs --parts (e.g. --parts hair or --parts skin,hair; parts: "
                          f"{', '.join(G.part_names)})")
    return G.resolve_parts(parts, "--parts"), (LAYERS[layers] if space == "parts" else [])


def theta_shape(G, space: str, parts: list[int], roles: list[str], batch: int | None = None) -> tuple[int, ...]:
    """The shape of theta in `space` (with a leading batch axis when `batch` is given)."""
    d = G.config.latent_dim
    if space == "latent":
        shape = (G.num_latents, d)
    elif space == "parts":
        shape = (len(parts), len(roles), d)
    else:
        shape = (len(parts), d)
    return shape if batch is None else (batch, *shape)


def role_masks(G, parts: list[int], roles: list[str]) -> torch.Tensor:
    """(P, R, K, L) float: 1 where layer l of part k is part p's layer of role r."""
    from memorygan.models.codes import ROLE_NAMES

    k, layers = G.layer_roles.shape
    m = torch.zeros(len(parts), len(roles), k, layers, device=G.device)
    for i, p in enumerate(parts):
        for j, r in enumerate(roles):
            m[i, j, p] = (G.layer_roles[p] == ROLE_NAMES.index(r)).float()
    return m


def parts_delta(G, theta: torch.Tensor, parts: list[int], roles: list[str]) -> torch.Tensor:
    """theta (P, R, D) -> offset of the expanded codes (K, L, D); batched theta (B, P, R, D) -> (B, K, L, D)."""
    masks = role_masks(G, parts, roles).to(device=theta.device, dtype=theta.dtype)
    if theta.ndim == 4:
        return torch.einsum("prkl,bprd->bkld", masks, theta)
    return torch.einsum("prkl,prd->kld", masks, theta)


def query_index(parts: list[int]) -> list[int]:
    """The indices of the parts' queries among MemoryGAN's 1+K (0 is the base query)."""
    return [1 + int(p) for p in parts]


def query_offsets(G, theta: torch.Tensor, parts: list[int]) -> torch.Tensor:
    """theta (P, D) -> query offsets (1, 1+K, D); batched theta (B, P, D) -> (B, 1+K, D)."""
    t = theta if theta.ndim == 3 else theta[None]
    off = torch.zeros(t.shape[0], G.num_latents, t.shape[-1], device=t.device, dtype=t.dtype)
    return off.index_add(1, torch.tensor(query_index(parts), device=t.device), t)


@dataclass
class EditSpace:
    """The variables of an edit: the selected parts' codes (per role) or MemoryGAN query codes."""
    space: str
    parts: list[int]
    roles: list[str]
    truncation: float = 1.0

    def theta_shape(self, G, batch: int) -> tuple[int, ...]:
        return theta_shape(G, self.space, self.parts, self.roles, batch)

    def render(self, G, source: Codes, theta: torch.Tensor, return_fused: bool = False):
        """The source moved by theta (B, ...) -> GeneratorOutput."""
        noise = None if source.noise is None else [n.to(G.device) for n in source.noise]
        if self.space == "parts":
            delta = parts_delta(G, theta, self.parts, self.roles)
            return G(expanded=source.expanded.to(G.device) + delta, noise=noise, noise_mode="const",
                     return_fused=return_fused)
        return G(source.z.to(G.device), query_offsets=query_offsets(G, theta, self.parts), truncation=self.truncation,
                 noise=noise, noise_mode="const", return_fused=return_fused)


def edit_space(G, space: str, parts, layers: str = "both", source: Codes | None = None,
               truncation: float = 1.0) -> EditSpace:
    """Validate the space and parts for G (and that the source has what the space needs)."""
    if space not in TEXT_SPACES:
        raise ConfigError(f"--space must be one of {', '.join(TEXT_SPACES)} for text and region edits, got {space!r}")
    if not parts:
        raise ConfigError(f"--parts: name the parts whose codes may change (parts: {', '.join(G.part_names)})")
    part_ids, roles = check_space(G, space, parts, layers)
    if space == "query" and source is not None and source.z is None:
        raise ConfigError("--space query edits inside MemoryGAN's working memory and needs the controller noise z of "
                          "the images: use --seeds (codes files from an inversion hold only expanded codes)")
    return EditSpace(space, part_ids, roles, truncation)
