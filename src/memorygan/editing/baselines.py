"""Directions without learning through the generator, on the same assessors and spaces as GANalyze:

- InterFaceGAN (Shen et al., CVPR 2020): score random samples with the assessor, fit a linear SVM separating the
  codes of the top from the bottom `fraction` of the scores; the unit normal of the boundary is the direction.
  Conditional editing: with a second assessor, its boundary normal n_c is projected out, n <- n - (n . n_c) n_c,
  so moving along n leaves the second attribute (to first order) unchanged.
- SeFa (Shen & Zhou, CVPR 2021): closed form from the generator's weights. The codes of a part's role enter its
  local layers through the modulation linears A_l (in_l x D); the directions that change those styles most are the
  top eigenvectors of sum_l A_l^T A_l. Per part and role (SSG: that part's own local generator; MemoryGAN: the
  shared one, the same for every part). SeFa is unsupervised: of the top `num` eigenvectors the one that moves the
  assessor most is kept, with the sign that increases it.

Both are then calibrated to the same scale as a learned direction: theta is rescaled so that the mean assessor change
between alpha = -0.5 and +0.5 over a calibration batch equals the assessor's spread (`calibrate`), so slopes,
Spearman and preservation compare at equal requested change.
"""
from __future__ import annotations

import time

import numpy as np
import torch

from memorygan.editing.directions import ALPHA_RANGE, Direction, assessor_scale, edit_output, sample_source
from memorygan.editing.space import check_space, query_index, theta_shape
from memorygan.errors import ConfigError


def _space_codes(G, source, space: str, parts: list[int], roles: list[str]) -> torch.Tensor:
    """The codes a direction of `space` moves, one row per sample: (N, *theta_shape)."""
    from memorygan.models.codes import role_layers

    if space == "latent":
        return source.latents
    if space == "parts":
        rows = []
        for p in parts:
            layer = {r: role_layers(G.config, p, [r])[0] for r in roles}           # the role's first layer
            rows.append(torch.stack([source.expanded[:, p, layer[r]] for r in roles], 1))      # (N, R, D)
        return torch.stack(rows, 1)                                                             # (N, P, R, D)
    with torch.no_grad():
        queries = G.map_z(source.z)["queries"]
    return queries[:, query_index(parts)]                                                       # (N, P, D)


@torch.no_grad()
def _scored_codes(G, assessor, space, parts, roles, n, seed, truncation, batch=64):
    gen = torch.Generator().manual_seed(seed)
    codes, scores = [], []
    for s in range(0, n, batch):
        source, out = sample_source(G, min(batch, n - s), generator=gen, truncation=truncation)
        codes.append(_space_codes(G, source, space, parts, roles).flatten(1).float().cpu())
        scores.append(assessor(out.image, out.seg).float().cpu())
    return torch.cat(codes).numpy(), torch.cat(scores).numpy()


def _boundary(codes: np.ndarray, scores: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    from sklearn.svm import LinearSVC

    order = np.argsort(scores)
    m = max(1, int(round(fraction * len(scores))))
    x = np.concatenate([codes[order[:m]], codes[order[-m:]]])
    y = np.concatenate([np.zeros(m), np.ones(m)])
    svm = LinearSVC(C=1.0, dual="auto", max_iter=20000, random_state=seed).fit(x, y)
    normal = svm.coef_[0].astype(np.float64)
    return normal / max(np.linalg.norm(normal), 1e-12)


def interfacegan(G, assessor, space: str = "parts", parts=None, layers: str = "both", n: int = 2000,
                 fraction: float = 0.3, condition=None, seed: int = 0, truncation: float = 1.0,
                 calibrate_n: int = 64, scale_n: int = 256, scale: float | None = None) -> Direction:
    """InterFaceGAN direction (module docstring); `condition`: a second resolved assessor kept fixed; `scale`: the
    assessor's spread when already known (else measured on `scale_n` samples)."""
    from memorygan.checkpoint import generator_fingerprint

    try:
        import sklearn  # noqa: F401
    except ImportError:
        raise ConfigError("InterFaceGAN needs scikit-learn (pip install 'memorygan[analysis]')") from None
    if not 0 < fraction <= 0.5:
        raise ConfigError(f"--fraction must be in (0, 0.5], got {fraction}")
    if n < 10:
        raise ConfigError(f"--n must be at least 10 samples, got {n}")
    part_ids, roles = check_space(G, space, parts, layers)
    t0 = time.perf_counter()
    codes, scores = _scored_codes(G, assessor, space, part_ids, roles, n, seed, truncation)
    normal = _boundary(codes, scores, fraction, seed)
    info = {"n": n, "fraction": fraction, "seed": seed}
    if condition is not None:
        _, cond_scores = _scored_codes(G, condition, space, part_ids, roles, n, seed, truncation)
        nc = _boundary(codes, cond_scores, fraction, seed)
        info["condition"] = condition.spec
        info["cosine_to_condition"] = float(normal @ nc)
        normal = normal - (normal @ nc) * nc
        normal /= max(np.linalg.norm(normal), 1e-12)
    theta = torch.from_numpy(normal).float().reshape(theta_shape(G, space, part_ids, roles)).to(G.device)
    d = Direction(theta, space, part_ids, roles, assessor.spec, 0.0, "interfacegan", G.arch,
                  generator_fingerprint(G), G.part_names, truncation, info)
    d.scale = scale if scale is not None else assessor_scale(G, assessor, scale_n, truncation=truncation)
    d.info["calibration_slope"] = calibrate(G, d, assessor, calibrate_n, seed + 1)
    d.info["seconds"] = time.perf_counter() - t0
    return d


def sefa_eigenvectors(G, part: int, role: str, num: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    """Top `num` eigenvectors (num, D) and eigenvalues of sum_l A_l^T A_l over the local layers of `part` with
    `role` (A_l: the modulation weight of layer l of the part's local generator, in_l x D, as applied)."""
    from memorygan.models.codes import role_layers

    net = G.local_nets[part] if G.arch == "ssg" else G.memory
    layers = role_layers(G.config, part, [role])
    gram = 0
    for l in layers:
        mod = net.layers[l].conv.modulation
        a = (mod.weight * mod.scale).detach().double()                           # (in, D) as applied
        gram = gram + a.T @ a
    vals, vecs = torch.linalg.eigh(gram)
    order = torch.argsort(vals, descending=True)[:num]
    return vecs[:, order].T.float(), vals[order].float()


@torch.no_grad()
def _mean_change(G, direction, assessor, source, half: float = ALPHA_RANGE) -> float:
    """Mean (A(alpha = +half) - A(alpha = -half)) / (2 half scale): the slope per unit alpha in spread units."""
    up = edit_output(G, direction, source, half)
    down = edit_output(G, direction, source, -half)
    delta = assessor(up.image, up.seg).float() - assessor(down.image, down.seg).float()
    return float(delta.mean()) / (2 * half * direction.scale)


def calibrate(G, direction: Direction, assessor, n: int = 64, seed: int = 1, rounds: int = 2) -> float:
    """Rescale theta so that the mean slope per unit alpha is 1 on n calibration samples; returns the slope of
    the unscaled direction. A direction that does not move the assessor is an error."""
    source, _ = sample_source(G, n, seed=seed, truncation=direction.truncation)
    first = None
    for _ in range(rounds):
        slope = _mean_change(G, direction, assessor, source)
        first = slope if first is None else first
        if not abs(slope) > 1e-9:
            raise ConfigError(f"the {direction.method} direction does not move the assessor {assessor.spec!r}")
        direction.theta = direction.theta / slope
    return first


def sefa(G, assessor, parts, layers: str = "both", num: int = 5, seed: int = 0, truncation: float = 1.0,
         select_n: int = 32, calibrate_n: int = 64, scale_n: int = 256, scale: float | None = None) -> Direction:
    """SeFa direction (module docstring) in parts space: per part and role the chosen eigenvector."""
    from memorygan.checkpoint import generator_fingerprint

    part_ids, roles = check_space(G, "parts", parts, layers)
    if num < 1:
        raise ConfigError(f"--num must be >= 1, got {num}")
    t0 = time.perf_counter()
    eig = {(p, r): sefa_eigenvectors(G, p, r, num) for p in part_ids for r in roles}
    if scale is None:
        scale = assessor_scale(G, assessor, scale_n, truncation=truncation)
    source, _ = sample_source(G, select_n, seed=seed, truncation=truncation)
    best, slopes = None, []
    for i in range(min(num, min(v[0].shape[0] for v in eig.values()))):
        theta = torch.stack([torch.stack([eig[(p, r)][0][i] for r in roles]) for p in part_ids]).to(G.device)
        cand = Direction(theta, "parts", part_ids, roles, assessor.spec, scale, "sefa", G.arch, "", G.part_names,
                         truncation)
        slope = _mean_change(G, cand, assessor, source)
        slopes.append(slope)
        if best is None or abs(slope) > abs(slopes[best]):
            best = i
    theta = torch.stack([torch.stack([eig[(p, r)][0][best] for r in roles]) for p in part_ids]).to(G.device)
    d = Direction(theta * (1.0 if slopes[best] >= 0 else -1.0), "parts", part_ids, roles, assessor.spec, scale,
                  "sefa", G.arch, generator_fingerprint(G), G.part_names, truncation,
                  {"eigenvector": best, "candidate_slopes": slopes, "num": num, "seed": seed,
                   "eigenvalues": {f"{G.part_names[p]}/{r}": v[1].tolist() for (p, r), v in eig.items()}})
    d.info["calibration_slope"] = calibrate(G, d, assessor, calibrate_n, seed + 1)
    d.info["seconds"] = time.perf_counter() - t0
    return d
