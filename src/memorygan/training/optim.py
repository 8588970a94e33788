"""Optimizers (DESIGN 3): Adam with betas (0, 0.99), lr 0.002, the MemoryGAN LSTM at 1e-4, and the
lazy-regularisation correction of StyleGAN2 (Karras et al. 2020, Sec. 3.1 / Appendix B).

With a regulariser evaluated every `interval` steps, the optimizer takes interval + 1 steps per interval
(`interval` main steps and one regularisation step), so lr and the betas are rescaled by c = interval/(interval+1):
lr' = lr * c, beta' = beta ** c (rosinality's `g_reg_ratio` / `d_reg_ratio`).
"""
from __future__ import annotations

import torch
import torch.nn as nn

#: Parameter-name prefix of the MemoryGAN working-memory LSTM (trained at its own lr: the paper reports
#: gradient spikes at 0.002).
LSTM_PREFIX = "controller.lstm."


def lazy_reg_adam_params(lr: float, betas: tuple[float, float],
                         interval: int | None) -> tuple[float, tuple[float, float]]:
    """(lr * c, (beta1 ** c, beta2 ** c)) with c = interval / (interval + 1); c = 1 when interval is None
    (no lazy regularisation)."""
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr!r}")
    if len(betas) != 2 or not all(0 <= b < 1 for b in betas):
        raise ValueError(f"betas must be two values in [0, 1), got {betas!r}")
    if interval is None:
        c = 1.0
    elif not isinstance(interval, int) or isinstance(interval, bool) or interval < 1:
        raise ValueError(f"interval must be an integer >= 1 or None, got {interval!r}")
    else:
        c = interval / (interval + 1)
    return lr * c, (betas[0] ** c, betas[1] ** c)


def is_lstm_param(name: str) -> bool:
    """True for parameters of the working-memory LSTM (`controller.lstm.*`, also under a wrapper such as
    DDP's `module.`)."""
    return ("." + name).find("." + LSTM_PREFIX) >= 0


def adam_implementation(params) -> dict:
    """Adam's keyword for the implementation: `fused=True` (one kernel over all parameters) where this torch has a
    fused Adam for their device (CUDA; also the CPU since torch 2.4), else `foreach=True` (a few multi-tensor ops).
    The default per-parameter loop would run about ten ops per parameter and step, each a kernel launch on a GPU (a
    third of a small preset's training step ops, docs/performance.md); the maths is the same."""
    params = list(params)
    types = {p.device.type for p in params}
    try:
        from torch.utils._foreach_utils import _get_fused_kernels_supported_devices
        fused_ok = set(_get_fused_kernels_supported_devices())
    except ImportError:                                # older torch: fused Adam is CUDA-only
        fused_ok = {"cuda"}
    if len(types) == 1 and types <= fused_ok and all(p.dtype in (torch.float32, torch.float64, torch.float16,
                                                                 torch.bfloat16) for p in params):
        return {"fused": True}
    return {"foreach": True}


def total_norm(tensors: list[torch.Tensor]) -> torch.Tensor:
    """The 2-norm of all `tensors` together (float32, on their device, no host read): one multi-tensor norm instead
    of one op per tensor."""
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(list(tensors))).float())


def make_generator_optimizer(G: nn.Module, lr: float = 0.002, lstm_lr: float = 1e-4,
                             betas: tuple[float, float] = (0.0, 0.99),
                             reg_interval: int | None = 4) -> torch.optim.Adam:
    """Adam for a generator with lazy path-length regularisation every `reg_interval` steps.

    Param groups (each carries a "name" key): "main" (everything but the LSTM) at lr, and for MemoryGAN "lstm"
    (`controller.lstm.*`) at lstm_lr; both lrs and the betas corrected by the same c (see module doc). A generator
    without an LSTM (SemanticStyleGAN) gets the single "main" group.
    """
    lstm_lr_c, _ = lazy_reg_adam_params(lstm_lr, betas, reg_interval)
    lr_c, betas_c = lazy_reg_adam_params(lr, betas, reg_interval)
    main, lstm = [], []
    for name, p in G.named_parameters():
        (lstm if is_lstm_param(name) else main).append(p)
    if not main:
        raise ValueError("G has no parameters outside the LSTM")
    groups = [{"params": main, "lr": lr_c, "name": "main"}]
    if lstm:
        groups.append({"params": lstm, "lr": lstm_lr_c, "name": "lstm"})
    return torch.optim.Adam(groups, lr=lr_c, betas=betas_c, **adam_implementation(G.parameters()))


def make_discriminator_optimizer(D: nn.Module, lr: float = 0.002, betas: tuple[float, float] = (0.0, 0.99),
                                 reg_interval: int | None = 16) -> torch.optim.Adam:
    """Adam for the discriminator with lazy R1 every `reg_interval` steps (one "main" group, corrected by c)."""
    lr_c, betas_c = lazy_reg_adam_params(lr, betas, reg_interval)
    params = list(D.parameters())
    if not params:
        raise ValueError("D has no parameters")
    return torch.optim.Adam([{"params": params, "lr": lr_c, "name": "main"}], lr=lr_c, betas=betas_c,
                            **adam_implementation(params))
