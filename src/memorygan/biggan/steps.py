"""One training iteration of a class-conditional BigGAN with gradient accumulation: thesis Algorithm 1.

    for s in 1..nDs:                       D steps per G step
        g_D = 0
        for a in 1..nDa:                   D accumulations
            L_D = (hinge_real + hinge_fake) / nDa;  g_D += grad L_D
        D <- Adam(g_D)
    g_G = 0
    for a in 1..nGa:                       G accumulations
        L_G = hinge_G / nGa;  g_G += grad L_G
    G <- Adam(g_G)

Algorithm 1 as printed divides the G loss by nDs; the accumulation count nGa is meant (and is used here), else
the G gradient would scale with the number of D steps.

What makes k accumulations of b equal to one batch of k·b (tested in tests/biggan/test_steps.py):
- the losses are means over a micro-batch, divided by the number of accumulations;
- spectral norm's power iteration runs on the first micro-batch of each step only (`layers.set_sn_update`), so
  every micro-batch sees the same normalised weights, as one big batch would;
- BatchNorm statistics are those of each micro-batch, as in the thesis (per device, per accumulation; Sec. 2.3.2
  found synchronised BatchNorm crippled training). The big batch matches when its BatchNorm uses groups of b
  (`layers.set_bn_group`); without groups it differs, by design, exactly there.
Real and fake images go through D in one forward (concatenated), as the authors' `G_D` does.

`ms_weight` > 0 adds the mode-seeking term of MSGAN (Mao et al., CVPR 2019, Eq. 3) to G's loss, against the
collapse of a conditional G onto one image per class (not in the thesis; docs/biggan.md measures it): the second
half of each G micro-batch takes the first half's classes, and with d = mean |G(z1, y) - G(z2, y)| / mean |z1 - z2|
over those pairs G minimises ms_weight / (d + 1e-5). The pairs are formed inside a micro-batch, so with this term k
accumulations of b no longer equal one batch of k·b.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from memorygan.biggan.layers import set_sn_update
from memorygan.biggan.models import BigGANDiscriminator, BigGANGenerator
from memorygan.training.losses import g_hinge_loss

# real(s, a) -> (x (b, 3, R, R) in [-1, 1], labels (b,)); latent(phase, s, a) -> (z (b, dim_z), labels (b,))
RealFn = Callable[[int, int], tuple[torch.Tensor, torch.Tensor]]
LatentFn = Callable[[str, int, int], tuple[torch.Tensor, torch.Tensor]]
SyncFn = Callable[[list[torch.nn.Parameter]], None]


def hinge_parts(d_real: torch.Tensor, d_fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """D's hinge loss in its two parts (Lim & Ye 2017): mean relu(1 - D(x)), mean relu(1 + D(G(z)))."""
    return F.relu(1 - d_real).mean(), F.relu(1 + d_fake).mean()


def _sn_first(nets, first: bool) -> None:
    for net in nets:
        set_sn_update(net, first)


def train_iteration(G: BigGANGenerator, D: BigGANDiscriminator, g_opt: torch.optim.Optimizer,
                    d_opt: torch.optim.Optimizer, real: RealFn, latent: LatentFn, d_steps: int = 1,
                    d_accum: int = 1, g_accum: int = 1, sync: SyncFn | None = None,
                    step_g: bool = True, ms_weight: float = 0.0) -> dict[str, torch.Tensor]:
    """Algorithm 1 once. Returns detached loss tensors (means over the iteration): d_real, d_fake (hinge parts),
    d_loss, g_loss, and D's mean logits on reals and fakes. `sync` averages gradients across processes before each
    optimizer step (torchrun); BatchNorm statistics stay per process. `step_g=False` skips G's update (not used by
    Algorithm 1; for tests and D warm-up). `ms_weight`: the mode-seeking term (module docstring); its ratio d is
    returned as "ms_ratio"."""
    G.train()
    D.train()
    stats: dict[str, list[torch.Tensor]] = {k: [] for k in ("d_real", "d_fake", "logit_real", "logit_fake")}
    d_params = [p for p in D.parameters()]
    g_params = [p for p in G.parameters()]
    try:
        D.requires_grad_(True)
        G.requires_grad_(False)
        for s in range(d_steps):
            d_opt.zero_grad(set_to_none=True)
            for a in range(d_accum):
                _sn_first((G, D), a == 0)
                x, y_real = real(s, a)
                z, y_fake = latent("D", s, a)
                with torch.no_grad():
                    fake = G.generate(z, y_fake)
                out = D(torch.cat([fake, x]), torch.cat([y_fake, y_real]))
                d_fake, d_real = out.split([fake.shape[0], x.shape[0]])
                l_real, l_fake = hinge_parts(d_real, d_fake)
                ((l_real + l_fake) / d_accum).backward()
                for k, v in (("d_real", l_real), ("d_fake", l_fake), ("logit_real", d_real.mean()),
                             ("logit_fake", d_fake.mean())):
                    stats[k].append(v.detach())
            if sync is not None:
                sync(d_params)
            d_opt.step()
        g_losses, ms_ratios = [], []
        if step_g:
            D.requires_grad_(False)
            G.requires_grad_(True)
            g_opt.zero_grad(set_to_none=True)
            for a in range(g_accum):
                _sn_first((G, D), a == 0)
                z, y = latent("G", 0, a)
                half = z.shape[0] // 2
                if ms_weight > 0 and half:
                    y = torch.cat([y[:half], y[:half], y[2 * half:]])          # pairs (i, i + half) share a class
                fake = G.generate(z, y)
                loss = g_hinge_loss(D(fake, y))
                total = loss
                if ms_weight > 0 and half:
                    a_, b_ = slice(0, half), slice(half, 2 * half)
                    ratio = (fake[a_] - fake[b_]).abs().mean() / (z[a_] - z[b_]).abs().mean()
                    total = loss + ms_weight / (ratio + 1e-5)
                    ms_ratios.append(ratio.detach())
                (total / g_accum).backward()                # / nGa (Algorithm 1 prints nDs)
                g_losses.append(loss.detach())
            if sync is not None:
                sync(g_params)
            g_opt.step()
    finally:
        _sn_first((G, D), True)
        D.requires_grad_(True)
        G.requires_grad_(True)
    out = {k: torch.stack(v).mean() for k, v in stats.items()}
    out["d_loss"] = out["d_real"] + out["d_fake"]
    if g_losses:
        out["g_loss"] = torch.stack(g_losses).mean()
    if ms_ratios:
        out["ms_ratio"] = torch.stack(ms_ratios).mean()
    return out


def adam(params, lr: float, beta1: float, beta2: float, eps: float) -> torch.optim.Adam:
    return torch.optim.Adam(params, lr=float(lr), betas=(float(beta1), float(beta2)), eps=float(eps), weight_decay=0)


@torch.no_grad()
def update_ema(ema: BigGANGenerator, G: BigGANGenerator, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * G for the parameters; buffers (spectral-norm vectors, BatchNorm running
    statistics) copied. decay 0 copies (the authors' EMA before `ema_start`)."""
    for pe, p in zip(ema.parameters(), G.parameters()):
        pe.lerp_(p, 1.0 - decay)
    for be, b in zip(ema.buffers(), G.buffers()):
        be.copy_(b)


@torch.no_grad()
def standing_stats(G: BigGANGenerator, batches: int, batch_size: int, truncation: float | None = None,
                   seed: int = 0) -> None:
    """Recompute every BatchNorm's running statistics as the plain average over `batches` batches of samples of
    random classes (BigGAN Appendix: "standing statistics"), so an EMA generator is evaluated with statistics of its
    own weights. Leaves G in eval mode."""
    from memorygan.biggan.layers import batch_norms
    from memorygan.biggan.models import truncated_z

    bns = batch_norms(G)
    for bn in bns:
        bn.stored_mean.zero_()
        bn.stored_var.fill_(1.0)
    G.train()
    gen = torch.Generator(device=G.device).manual_seed(seed)
    try:
        for i in range(batches):
            for bn in bns:
                bn.momentum = 1.0 / (i + 1)        # running average of the batch statistics
            z = truncated_z(batch_size, G.config.dim_z, truncation, gen, G.device)
            y = torch.randint(0, G.config.num_classes, (batch_size,), generator=gen, device=G.device)
            _sn_first((G,), False)
            G.generate(z, y)
    finally:
        _sn_first((G,), True)
        for bn in bns:
            bn.momentum = 0.1
        G.eval()
