"""Sequential Mean Square Error, SMSE (MemoryGAN Eq. 15; Table 3 and Fig. 10).

Sequential composition adds the parts one at a time (background first, then the dataset's part order) by rendering
the same expanded codes with a growing composition mask. SMSE of step i measures how much adding part order[i]
changes the image over the pixels that the parts added before it cover:

    SMSE_i = sum_{h,w} [ (sum_{j<i} M^i_{j,h,w}) (I^i_{h,w} - I^{i-1}_{h,w}) ]^2 / sum_{h,w} sum_{j<i} M^i_{j,h,w}

I^i is the image with parts order[:i+1] present and M^i_j in {0, 1} the one-hot (argmax) mask of part j in the
segmentation of step i (Eq. 15), so the sum over j < i is the indicator of "pixel belongs to a previous part"
and SMSE_i is the mean squared change over those pixels. Lower is less entangled.

Conventions (the paper leaves them open):
- pixel values are in the generator's image scale, about [-1, 1] (not [0, 1] or [0, 255]);
- for RGB the squared change is averaged over the 3 channels at each pixel;
- the masks are the argmax of the fine segmentation `seg` at image resolution;
- SMSE_i is defined for i >= 1; where the previous parts cover no pixel of a sample the value is NaN and left out
  of the statistics (counted as `excluded`).
"""
from __future__ import annotations

import math
import time
from collections.abc import Sequence

import numpy as np
import torch

from memorygan.errors import ConfigError
from memorygan.metrics.samples import check_run_args, eval_mode, progress_bar


# ---------------------------------------------------------------------------------------------------- Eq. 15

def step_mse(prev_image: torch.Tensor, image: torch.Tensor, mask: torch.Tensor,
             prev_parts: Sequence[int]) -> torch.Tensor:
    """SMSE of one composition step (Eq. 15), per sample.

    prev_image, image: (B, 3, H, W) images of steps i-1 and i; mask: (B, H, W) integer part ids (seg argmax) of
    step i; prev_parts: the parts added before step i. Returns (B,) float64: the channel-averaged squared change
    averaged over the pixels of the previous parts, NaN where they cover no pixel.
    """
    if prev_image.shape != image.shape or image.ndim != 4:
        raise ValueError(f"images must both be (B, C, H, W), got {tuple(prev_image.shape)} and {tuple(image.shape)}")
    b, _, h, w = image.shape
    if tuple(mask.shape) != (b, h, w):
        raise ValueError(f"mask must be (B, H, W) = {(b, h, w)}, got {tuple(mask.shape)}")
    prev = torch.as_tensor(list(prev_parts), dtype=mask.dtype, device=mask.device)
    covered = torch.isin(mask, prev).double()                                  # sum_{j<i} M^i_j, (B, H, W)
    # [M dI]^2 = M dI^2 as M is 0/1; channels averaged
    sq = (image.double() - prev_image.double()).pow(2).mean(1)                  # (B, H, W)
    num = (covered * sq).sum((1, 2))
    den = covered.sum((1, 2))
    return torch.where(den > 0, num / den.clamp_min(1), torch.full_like(num, math.nan))


def sequential_mse(images: torch.Tensor, masks: torch.Tensor, order: Sequence[int] | None = None) -> torch.Tensor:
    """SMSE (Eq. 15) of composition sequences.

    images: (S, B, 3, H, W), step i rendered with the parts order[:i+1] present (pixel scale about [-1, 1]);
    masks: (S, B, H, W) integer part ids (argmax of each step's seg); order: the part id added at each step
    (default 0, 1, ..., S-1). Returns (S-1, B) float64: row i-1 is SMSE_i, the squared change from step i-1 to i
    (averaged over channels) averaged over the pixels whose step-i part is one of order[:i]; NaN where those
    parts cover no pixel.
    """
    if images.ndim != 5:
        raise ValueError(f"images must be (S, B, C, H, W), got {tuple(images.shape)}")
    s, b, _, h, w = images.shape
    if tuple(masks.shape) != (s, b, h, w):
        raise ValueError(f"masks must be (S, B, H, W) = {(s, b, h, w)}, got {tuple(masks.shape)}")
    if masks.is_floating_point():
        raise ValueError("masks must hold integer part ids (the argmax of seg), got a floating-point tensor")
    order = list(range(s)) if order is None else [int(p) for p in order]
    if len(order) != s:
        raise ValueError(f"order must give one part id per step ({s}), got {len(order)}: {order}")
    if len(set(order)) != s or min(order) < 0:
        raise ValueError(f"order must list distinct non-negative part ids, got {order}")
    if s < 2:
        return images.new_zeros(0, b, dtype=torch.float64)
    return torch.stack([step_mse(images[i - 1], images[i], masks[i], order[:i]) for i in range(1, s)])


# ---------------------------------------------------------------------------------------------------- generator

METHODS = ("batched", "reference")


@torch.no_grad()
def smse_values(G, num_samples: int = 1000, seed: int = 0, order: Sequence[int | str] | None = None,
                batch_size: int = 16, truncation: float = 1.0, progress: bool = False,
                method: str = "batched") -> torch.Tensor:
    """Per-sample SMSE of G (Eq. 15): (S-1, num_samples) float64 on the CPU, row i-1 for the part order[i].

    The z of the samples come from one torch.Generator seeded with `seed` (batch by batch), noise is constant, and
    each batch is composed with S = len(order) renders of the same expanded codes under growing composition masks
    (as `analysis.compose.sequential_composition`, batched). NaN where the previous parts cover no pixel.

    method "batched" (default) maps the codes without a synthesis pass and runs the local generators once per
    batch: the composition mask acts only in the fusion (DESIGN 2.3), so every step reuses the same part features
    and only fuses and renders again. "reference" runs a full generator pass per step (the plain definition; the
    two agree exactly, tested).
    """
    check_run_args(num_samples, batch_size)
    if method not in METHODS:
        raise ConfigError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    k = G.config.num_classes
    order = list(range(k)) if order is None else G.resolve_parts(order, "order")
    if len(order) < 2:
        raise ConfigError(f"order must list at least 2 parts (SMSE needs a part before the one added), got {order}")
    gen = torch.Generator().manual_seed(int(seed))
    rows = []
    bar = progress_bar(int(num_samples), progress, "smse")
    with eval_mode(G):
        for start in range(0, int(num_samples), int(batch_size)):
            m = min(int(batch_size), int(num_samples) - start)
            z = G.sample_z(m, generator=gen)
            if method == "batched":
                expanded = G.expanded_from_z(z, truncation)                             # (B, K, L, D)
                hidden, depths = G.generate_parts(expanded)                             # once per batch
            else:
                expanded = G(z, truncation=truncation, noise_mode="const").expanded
            mask = torch.zeros(m, k, device=expanded.device)
            prev_image, values = None, []
            for i, part in enumerate(order):
                mask[:, part] = 1
                if method == "batched":
                    fusion = G.fuse(hidden, depths, mask.clone())
                    image, seg = G.render(fusion.fused, fusion.coarse_seg, "const")
                else:
                    out = G(expanded=expanded, composition_mask=mask.clone(), noise_mode="const")
                    image, seg = out.image, out.seg
                if i > 0:   # streamed step by step: only the previous image is kept
                    values.append(step_mse(prev_image, image, seg.max(1).indices, order[:i]).cpu())  # argmax
                prev_image = image
            rows.append(torch.stack(values))
            if bar is not None:
                bar.update(m)
    if bar is not None:
        bar.close()
    return torch.cat(rows, dim=1)


def summarize(values) -> dict:
    """Statistics of one part's per-sample SMSE, NaN left out: mean, std (population, ddof=0), the quartiles
    q1 / median / q3 (linear interpolation, for the Fig. 10 box plot), count (values used) and excluded (NaN)."""
    v = np.asarray(values, dtype=np.float64).ravel()
    ok = v[np.isfinite(v)]
    stats = {"mean": math.nan, "std": math.nan, "q1": math.nan, "median": math.nan, "q3": math.nan}
    if ok.size:
        q1, med, q3 = np.percentile(ok, [25, 50, 75])
        stats = {"mean": float(ok.mean()), "std": float(ok.std()), "q1": float(q1), "median": float(med),
                 "q3": float(q3)}
    return {**stats, "count": int(ok.size), "excluded": int(v.size - ok.size)}


def smse(G, num_samples: int = 1000, seed: int = 0, order: Sequence[int | str] | None = None, batch_size: int = 16,
         truncation: float = 1.0, progress: bool = False, method: str = "batched") -> dict:
    """SMSE (MemoryGAN Eq. 15, Table 3, Fig. 10) of a generator over `num_samples` samples.

    order: the parts in the order they are added, ids or class names (default 0, 1, ..., K-1: background first,
    the dataset's part order); it may list a subset of at least 2 parts. Deterministic for a seed; G's train/eval
    mode is restored. Returns
        {"smse": {part_name: {"mean", "std", "q1", "median", "q3", "count", "excluded"}} for the parts order[1:],
         "smse_mean": the mean of the finite per-part means, "order": [part names], "num_samples", "seed",
         "truncation", "seconds"}.
    Values are in the image's [-1, 1] scale, squared change averaged over RGB channels (see the module docstring).
    """
    t0 = time.perf_counter()
    k = G.config.num_classes
    ids = list(range(k)) if order is None else G.resolve_parts(order, "order")
    values = smse_values(G, num_samples, seed, ids, batch_size, truncation, progress, method)
    names = G.part_names
    per_part = {names[p]: summarize(values[i]) for i, p in enumerate(ids[1:])}
    means = [s["mean"] for s in per_part.values() if math.isfinite(s["mean"])]
    return {
        "smse": per_part,
        "smse_mean": float(np.mean(means)) if means else math.nan,
        "order": [names[p] for p in ids],
        "num_samples": int(num_samples), "seed": int(seed), "truncation": float(truncation),
        "seconds": time.perf_counter() - t0,
    }
