"""Exponential moving average of the generator (DESIGN 3), batch-aware as in StyleGAN2-ADA (Karras et al. 2020,
`training_loop.py`: `ema_kimg`, `ema_rampup`).

The decay per step is set by a half-life in images rather than a fixed beta, so it does not depend on the batch
size: beta = 0.5 ** (batch / half_life_images). SemanticStyleGAN's fixed 0.5 ** (32 / 10000) at batch 32 is the
10-kimg half-life. The ramp-up caps the half-life at `rampup * images_seen`, so that early in a (short) run the EMA
follows the weights instead of staying at the initialisation.
"""
from __future__ import annotations

import copy

import torch
import torch.nn as nn


def ema_beta(batch_size: int, half_life_kimg: float = 10.0, rampup: float | None = 0.05,
             images_seen: int | None = None) -> float:
    """EMA decay for one step of `batch_size` images (StyleGAN2-ADA).

    half_life_images = half_life_kimg * 1000, capped at rampup * images_seen when `rampup` is not None
    (images_seen: images shown to the networks before this step, StyleGAN2-ADA's `cur_nimg`; required then).
    Returns beta = 0.5 ** (batch_size / max(half_life_images, 1e-8)) in [0, 1); beta = 0 (copy) at images_seen 0.
    """
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    if not half_life_kimg > 0:
        raise ValueError(f"half_life_kimg must be > 0, got {half_life_kimg!r}")
    half_life = half_life_kimg * 1000.0
    if rampup is not None:
        if not rampup > 0:
            raise ValueError(f"rampup must be > 0 or None (no ramp-up), got {rampup!r}")
        if images_seen is None:
            raise ValueError("images_seen is required when rampup is set (pass rampup=None for a fixed half-life)")
        if images_seen < 0:
            raise ValueError(f"images_seen must be >= 0, got {images_seen!r}")
        half_life = min(half_life, rampup * images_seen)
    return 0.5 ** (batch_size / max(half_life, 1e-8))


def ema_copy(model: nn.Module) -> nn.Module:
    """A frozen copy of `model` to hold its EMA: same weights, eval mode, no gradients."""
    return copy.deepcopy(model).eval().requires_grad_(False)


@torch.no_grad()
def update_ema(ema_model: nn.Module, model: nn.Module, beta: float) -> None:
    """ema <- beta * ema + (1 - beta) * param for every parameter; buffers copied (StyleGAN2-ADA).

    Parameters and buffers are matched by name; both models must have the same architecture.
    """
    if not 0 <= beta <= 1:
        raise ValueError(f"beta must be in [0, 1], got {beta!r}")
    params = dict(model.named_parameters())
    ema_params = dict(ema_model.named_parameters())
    buffers = dict(model.named_buffers())
    ema_buffers = dict(ema_model.named_buffers())
    for kind, ours, theirs in (("parameters", ema_params, params), ("buffers", ema_buffers, buffers)):
        if ours.keys() != theirs.keys():
            missing = sorted(set(theirs) - set(ours))[:5]
            extra = sorted(set(ours) - set(theirs))[:5]
            raise ValueError(f"ema_model and model differ in {kind}: missing from ema_model {missing}, "
                             f"not in model {extra}")
    for name, p in params.items():
        p_ema = ema_params[name]
        if p_ema.shape != p.shape:
            raise ValueError(f"parameter {name}: ema_model has shape {tuple(p_ema.shape)}, model {tuple(p.shape)}")
    # one multi-tensor op over all parameters (a kernel per parameter and two ops each before)
    names = list(params)
    torch._foreach_lerp_([ema_params[n] for n in names], [params[n] for n in names], 1.0 - beta)
    # one multi-tensor copy per dtype and device (a copy per buffer before: 23 per step for memorygan-small, 46 for
    # ssg-small; a foreach op's fast path on a GPU wants one dtype)
    groups: dict[tuple, list[str]] = {}
    for name, b in buffers.items():
        groups.setdefault((b.dtype, b.device, ema_buffers[name].dtype), []).append(name)
    for names in groups.values():
        torch._foreach_copy_([ema_buffers[n] for n in names], [buffers[n] for n in names])
