"""Latent directions (GANalyze, Andonian thesis Ch. 3, Eq. 3.1-3.2): a direction theta such that moving a sample's
codes by alpha * theta changes an assessor by alpha (in units of the assessor's spread):

    L(theta) = E_{w, alpha} [ ((A(G(w + alpha theta)) - A(G(w))) / s - alpha)^2 ],  alpha ~ U[-0.5, 0.5]   (3.1)

with s = 2 x the standard deviation of A over random samples, so alpha = +-0.5 asks for a change of one standard
deviation. Three spaces:

    latent   the whole latent: SSG W+ (B, base+2K, D), MemoryGAN latents (B, 1+K, D); theta (M, D). The
             StyleGAN-like baseline: nothing keeps the edit inside a part.
    parts    named parts' own codes: one vector per part and role (shape and/or texture), added on every local
             layer of that role (`models.codes` layer roles); theta (P, R, D). Nothing outside those codes moves.
    query    MemoryGAN only: the parts' query codes, added inside the working memory (`G(z, query_offsets=...)`), so
             the parts drawn after an edited part follow it (eye colour following skin and hair, paper Sec. 4.5);
             theta (P, D).

A `Direction` is saved as DIR/direction.safetensors (theta) + DIR/direction.json (generator fingerprint, assessor,
space, parts, roles, scale, method, training curve). Learned (`learn_direction`), supervised (InterFaceGAN) and
closed-form (SeFa) directions (`editing.baselines`) share this format and `edit_output`.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from memorygan.errors import CheckpointError, ConfigError
from memorygan.models.codes import Codes

from memorygan.editing.space import (LAYERS, SPACES, check_space, parts_delta,  # noqa: F401  (re-exported)
                                     query_offsets, role_masks, theta_shape)
FORMAT = "memorygan-direction"
WEIGHTS, CONFIG = "direction.safetensors", "direction.json"
ALPHA_RANGE = 0.5                 # alpha ~ U[-0.5, 0.5] (GANalyze)
MAX_ALPHA = 2.0                   # applied within [-2, 2] (CLI, demo sliders, BigGAN too): beyond 4x the learned
#                                   range a direction extrapolates blindly


def check_alpha(alpha: float, where: str = "alpha") -> float:
    """alpha as a float within [-MAX_ALPHA, MAX_ALPHA]; ConfigError naming `where` otherwise."""
    a = float(alpha)
    if not abs(a) <= MAX_ALPHA:
        raise ConfigError(f"{where} {a:g} is out of range: directions are learned for alpha in [-{ALPHA_RANGE:g}, "
                          f"{ALPHA_RANGE:g}] and applied within [-{MAX_ALPHA:g}, {MAX_ALPHA:g}]")
    return a


@dataclass
class Direction:
    theta: torch.Tensor            # latent (M, D) | parts (P, R, D) | query (P, D)
    space: str
    parts: list[int]
    roles: list[str]
    assessor: str
    scale: float                   # assessor change asked for per unit alpha (2 std of A over random samples)
    method: str = "ganalyze"
    arch: str = ""
    generator: str = ""            # fingerprint of the generator it belongs to
    part_names: list[str] = field(default_factory=list)
    truncation: float = 1.0
    info: dict = field(default_factory=dict)

    def describe(self) -> str:
        where = "whole latent" if self.space == "latent" else \
            f"{self.space} of {'+'.join(self.part_names[p] for p in self.parts)}" + \
            (f" ({'+'.join(self.roles)})" if self.space == "parts" else "")
        return f"{self.method} direction for {self.assessor} in the {where}"


# ----------------------------------------------------------------------------------------------- spaces
# ----------------------------------------------------------------------------------------------- sources
@torch.no_grad()
def sample_source(G, n: int, seed: int | None = None, generator: torch.Generator | None = None,
                  truncation: float = 1.0) -> tuple[Codes, object]:
    """n samples of G's own distribution as an edit source, and their GeneratorOutput."""
    z = G.sample_z(n, seed, generator)
    out = G(z, truncation=truncation, noise_mode="const")
    return Codes(out.expanded, latents=out.latents, z=z), out


def seed_source(G, seeds: list[int], truncation: float = 1.0) -> Codes:
    """One sample per seed (the same picture as `memorygan generate --seed S`)."""
    with torch.no_grad():
        z = torch.cat([G.sample_z(1, int(s)) for s in seeds])
        out = G(z, truncation=truncation, noise_mode="const")
    return Codes(out.expanded, latents=out.latents, z=z)


def codes_source(codes) -> Codes:
    """An edit source from a codes file (`editing.codes.Codes`, e.g. written by `memorygan invert`)."""
    z = codes.z if codes.level == "z" else None
    return Codes(codes.expanded, latents=codes.latents, z=z, noise=codes.noise)


def edit_output(G, direction: Direction, source: Codes, alpha, truncation: float | None = None,
                return_fused: bool = False):
    """Render the source moved by alpha * theta. alpha: a float or (B,) tensor. Returns a GeneratorOutput."""
    b = len(source)
    alpha = torch.as_tensor(alpha, dtype=torch.float32, device=G.device)
    alpha = alpha.expand(b) if alpha.ndim == 0 else alpha
    theta = direction.theta.to(G.device)
    noise = None if source.noise is None else [n.to(G.device) for n in source.noise]
    psi = direction.truncation if truncation is None else truncation
    if direction.space == "latent":
        if source.latents is None:
            raise ConfigError("a whole-latent direction needs the latent codes of its images; these codes hold only "
                              "expanded codes (invert at --level latents/wplus, or use a parts direction)")
        latents = source.latents.to(G.device) + alpha[:, None, None] * theta[None]
        return G(latents=latents, noise=noise, noise_mode="const", return_fused=return_fused)
    if direction.space == "parts":
        delta = parts_delta(G, theta, direction.parts, direction.roles)
        expanded = source.expanded.to(G.device) + alpha[:, None, None, None] * delta[None]
        return G(expanded=expanded, noise=noise, noise_mode="const", return_fused=return_fused)
    if source.z is None:
        raise ConfigError("a query-space direction acts inside MemoryGAN's working memory and needs the controller "
                          "noise z of its images (sampled images have it; inverted expanded codes do not)")
    offsets = alpha[:, None, None] * query_offsets(G, theta, direction.parts)
    return G(source.z.to(G.device), query_offsets=offsets, truncation=psi, noise=noise, noise_mode="const",
             return_fused=return_fused)


# ----------------------------------------------------------------------------------------------- learning
@torch.no_grad()
def assessor_scale(G, assessor, n: int = 256, seed: int = 987, truncation: float = 1.0, batch: int = 32) -> float:
    """2 x the standard deviation of the assessor over n random samples (the change asked for per unit alpha)."""
    gen = torch.Generator().manual_seed(seed)
    scores = []
    for s in range(0, n, batch):
        _, out = sample_source(G, min(batch, n - s), generator=gen, truncation=truncation)
        scores.append(assessor(out.image, out.seg).float().cpu())
    std = float(torch.cat(scores).std())
    if not math.isfinite(std) or std < 1e-8:
        raise ConfigError(f"the assessor {assessor.spec!r} does not vary over samples of this generator (std "
                          f"{std:.3g}); no direction can be learned for it")
    return 2.0 * std


def learn_direction(G, assessor, space: str = "parts", parts=None, layers: str = "both", steps: int = 300,
                    batch: int = 8, lr: float = 0.005, seed: int = 0, truncation: float = 1.0,
                    scale: float | None = None, scale_n: int = 256, log_every: int = 10,
                    progress: bool = False) -> Direction:
    """GANalyze: learn theta with Adam on Eq. 3.1 (module docstring); G stays frozen."""
    from memorygan.checkpoint import generator_fingerprint

    part_ids, roles = check_space(G, space, parts, layers)
    if steps < 1 or batch < 1 or not lr > 0:
        raise ConfigError(f"--steps and --batch must be >= 1 and --lr > 0 (got {steps}, {batch}, {lr})")
    G.eval().requires_grad_(False)
    t0 = time.perf_counter()
    if scale is None:
        scale = assessor_scale(G, assessor, scale_n, truncation=truncation)
    theta = torch.zeros(theta_shape(G, space, part_ids, roles), device=G.device, requires_grad=True)
    opt = torch.optim.Adam([theta], lr=lr)
    direction = Direction(theta, space, part_ids, roles, assessor.spec, scale, "ganalyze", G.arch,
                          generator_fingerprint(G), G.part_names, truncation)
    gen = torch.Generator().manual_seed(seed)
    curve, acc = [], []
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=steps, desc="learn direction", unit="step")
    for step in range(1, steps + 1):
        source, out0 = sample_source(G, batch, generator=gen, truncation=truncation)
        with torch.no_grad():
            s0 = assessor(out0.image, out0.seg).float()
        alpha = ((torch.rand(batch, generator=gen) - 0.5) * 2 * ALPHA_RANGE).to(G.device)
        out1 = edit_output(G, direction, source, alpha)
        s1 = assessor(out1.image, out1.seg).float()
        loss = (((s1 - s0) / scale - alpha) ** 2).mean()                       # Eq. 3.1
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        acc.append(loss.item())
        if step % log_every == 0 or step == steps:
            curve.append({"step": step, "loss": sum(acc) / len(acc), "theta_norm": float(theta.detach().norm())})
            acc = []
        if bar is not None:
            bar.update(1)
            bar.set_postfix_str(f"loss {curve[-1]['loss'] if curve else float(loss):.4f}", refresh=False)
    if bar is not None:
        bar.close()
    direction.theta = theta.detach()
    direction.info = {"steps": steps, "batch": batch, "lr": lr, "seed": seed, "curve": curve,
                      "alpha_range": [-ALPHA_RANGE, ALPHA_RANGE], "seconds": time.perf_counter() - t0}
    return direction


# ----------------------------------------------------------------------------------------------- files
def check_direction_out(out) -> Path:
    """Refuse, before any work, an output that is a file or a folder holding something other than a direction
    (a direction folder is replaced; anything else is the user's and stays)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; give a folder for the direction")
    if out.is_dir() and any(out.iterdir()) and not (out / CONFIG).is_file():
        raise ConfigError(f"--out {out} exists and is not a direction folder (no {CONFIG}); refusing to replace it")
    return out


def save_direction(direction: Direction, out) -> Path:
    from safetensors.torch import save_file

    from memorygan.checkpoint import atomic_directory

    check_direction_out(out)

    meta = {"format": FORMAT, "version": 1, "space": direction.space, "parts": direction.parts,
            "part_names": [direction.part_names[p] for p in direction.parts] if direction.part_names else [],
            "roles": direction.roles, "assessor": direction.assessor, "scale": direction.scale,
            "method": direction.method, "arch": direction.arch, "generator": direction.generator,
            "all_part_names": direction.part_names, "truncation": direction.truncation,
            "theta_shape": list(direction.theta.shape), "info": direction.info}
    out = Path(out)
    with atomic_directory(out) as tmp:
        save_file({"theta": direction.theta.detach().to("cpu", torch.float32).contiguous()}, str(tmp / WEIGHTS))
        (tmp / CONFIG).write_text(json.dumps(meta, indent=2) + "\n")
    return out


def load_direction(path, G=None, allow_other_generator: bool = False) -> Direction:
    """Read a direction folder; with G, check it belongs to G (fingerprint, unless allowed) and fits its shapes."""
    from safetensors.torch import load_file

    path = Path(path)
    cfg = path / CONFIG
    if not cfg.is_file():
        raise CheckpointError(f"{path}: no {CONFIG} (not a direction folder written by `memorygan edit learn`, "
                              "`interfacegan` or `sefa`)")
    try:
        meta = json.loads(cfg.read_text())
        theta = load_file(str(path / WEIGHTS))["theta"]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError) as e:
        raise CheckpointError(f"{path}: unreadable direction ({type(e).__name__}: {e})") from None
    except Exception as e:  # noqa: BLE001 - safetensors raises its own types for a corrupt file
        raise CheckpointError(f"{path / WEIGHTS}: unreadable ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or meta.get("space") not in SPACES:
        raise CheckpointError(f"{cfg}: not a memorygan direction")
    d = Direction(theta, meta["space"], list(meta["parts"]), list(meta["roles"]), meta["assessor"],
                  float(meta["scale"]), meta.get("method", "ganalyze"), meta.get("arch", ""),
                  meta.get("generator", ""), list(meta.get("all_part_names", [])), float(meta.get("truncation", 1.0)),
                  meta.get("info", {}))
    if G is not None:
        check_direction(d, G, path, allow_other_generator)
    return d


def check_direction(d: Direction, G, where="direction", allow_other_generator: bool = False) -> None:
    from memorygan.checkpoint import generator_fingerprint

    if d.arch and d.arch != G.arch:
        raise CheckpointError(f"{where}: a direction of a {d.arch} generator cannot edit a {G.arch} generator")
    if not allow_other_generator and d.generator and d.generator != generator_fingerprint(G):
        raise CheckpointError(f"{where}: the direction was learned on another generator (fingerprint {d.generator}, "
                              f"this one is {generator_fingerprint(G)}); learn it again on this generator, or pass "
                              f"--allow-other-generator when this one derives from it (a PTI-tuned copy)")
    want = theta_shape(G, d.space, d.parts, d.roles)
    if tuple(d.theta.shape) != want or any(not 0 <= p < G.config.num_classes for p in d.parts):
        raise CheckpointError(f"{where}: theta is {tuple(d.theta.shape)} but this generator needs {want}")
