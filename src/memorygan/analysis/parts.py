"""The codes the analyses work on (part names and their resolution are the generator's: `G.part_names`,
`G.resolve_parts`): samples per seed, rendering of explicit expanded codes,
and the per-part code of each sample in query or latent space (MemoryGAN Sec. 4.5)."""
from __future__ import annotations

import torch

from memorygan.errors import ConfigError

SPACES = ("query", "latent")


def check_spaces(G, spaces) -> list[str]:
    """The code spaces to analyse: None = every space the generator has (MemoryGAN: query and latent; SSG: latent)."""
    if spaces is None:
        return list(SPACES) if G.arch == "memorygan" else ["latent"]
    spaces = [spaces] if isinstance(spaces, str) else list(spaces)
    for s in spaces:
        if s not in SPACES:
            raise ConfigError(f"spaces: unknown code space {s!r}; choose from {', '.join(SPACES)}")
        if s == "query" and G.arch != "memorygan":
            raise ConfigError(f"spaces: query codes exist only in MemoryGAN (its controller's output); this "
                              f"generator is {G.arch!r}, use the latent space")
    if not spaces or len(set(spaces)) != len(spaces):
        raise ConfigError(f"spaces: give each of {', '.join(SPACES)} at most once, got {spaces}")
    return spaces


def seed_z(G, seeds: list[int]) -> torch.Tensor:
    """Random source of one sample per seed (B, N, D), so a seed always gives the same picture (as `generate`)."""
    return torch.cat([G.sample_z(1, int(s)) for s in seeds])


@torch.no_grad()
def samples(G, seeds: list[int], truncation: float = 1.0):
    """GeneratorOutput of one sample per seed (constant noise)."""
    return G(seed_z(G, seeds), truncation=truncation, noise_mode="const")


def rendered(out) -> dict:
    """GeneratorOutput -> the {"image", "seg", "depths"} dict that `render` returns."""
    return {key: getattr(out, key).cpu() for key in ("image", "seg", "depths")}


@torch.no_grad()
def render(G, expanded: torch.Tensor, batch: int = 16) -> dict:
    """Expanded codes (B, K, L, D) -> {"image": (B, 3, H, W), "seg": (B, K, H, W), "depths": (B, K, Hc, Wc)} on
    the CPU, rendered `batch` at a time with constant noise."""
    outs = [rendered(G(expanded=expanded[i:i + batch].to(G.device), noise_mode="const"))
            for i in range(0, len(expanded), batch)]
    return {key: torch.cat([o[key] for o in outs]) for key in outs[0]}


@torch.no_grad()
def part_codes(G, num: int, seed: int = 0, space: str = "latent", truncation: float = 1.0,
               batch: int = 1024) -> torch.Tensor:
    """Per-part codes of `num` random samples: (N, K, D') float32 on the CPU.

    query (MemoryGAN only): the controller's query q^k of each part, queries[:, 1:] (D' = D).
    latent: MemoryGAN the latent code w^k = MLP_latent(q^k), latents[:, 1:] (D' = D); SSG the concatenation of
    the part's shape and texture W+ codes (D' = 2D), everything that is specific to the part (the base codes are
    shared by all parts, so they are left out). Latent codes are truncated towards the mean by `truncation`; the
    queries never are (truncation acts in latent space). Only mapping/controller run: no image is rendered.
    """
    space = check_spaces(G, [space])[0]
    if num < 1:
        raise ConfigError(f"num must be >= 1, got {num}")
    z = G.sample_z(num, seed)  # drawn at once: the codes do not depend on `batch`
    codes = []
    for i in range(0, num, batch):
        mapped = G.map_z(z[i:i + batch])
        if space == "query":
            codes.append(mapped["queries"][:, 1:])
            continue
        latents = G.truncate(mapped["latents"], truncation)
        if G.arch == "memorygan":
            codes.append(latents[:, 1:])
        else:
            _, shape, texture = G.split_latents(latents)
            codes.append(torch.cat([shape, texture], dim=-1))
    return torch.cat(codes).float().cpu()
