"""The loss of each phase of a training step (DESIGN 3), assembled from the pure losses in `losses.py` with the
weights of a `TrainOptions`. The training loop only feeds them batches and steps the optimizers; tests call them
directly with hand-computed values, so every weight (R1 image vs mask, mask loss, KL, path length) is checked where
it is applied.

    d_main   logistic (or hinge) loss on real (image, one-hot mask) vs generated (image, seg)
    d_reg    lazy R1: gamma_img/2 * ||grad_img D||^2 + gamma_mask/2 * ||grad_mask D||^2, times d_reg_every
    g_main   non-saturating (or hinge) loss + lambda_mask * mask loss + kl_weight * KL (MemoryGAN)
    g_reg    lazy path length on the expanded codes: pl_weight * g_reg_every * penalty

Each returns a `PhaseLoss`: the scalar to back-propagate and the detached values to log. Autocast, when used, is
the caller's context; predictions are taken to float32 before any loss.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from memorygan.training.losses import (d_hinge_loss, d_logistic_loss, d_r1_penalty, g_hinge_loss,
                                       g_nonsaturating_loss, g_path_length, mask_loss, path_length_loss, r1_loss)


@dataclass
class PhaseLoss:
    loss: torch.Tensor                                       # scalar, differentiable
    stats: dict[str, torch.Tensor] = field(default_factory=dict)   # detached scalars to log
    path_lengths: torch.Tensor | None = None                 # g_reg: (B,) per-sample path lengths
    real_logits: torch.Tensor | None = None                  # d_main: D's logits on the reals (ADA's r_t)


def _seen(D, augment):
    """D as the phases call it: on the augmented (image, seg) when an augmentation is given (training/augment.py:
    real and generated alike, in every phase, so the generator is not rewarded for drawing it)."""
    if augment is None:
        return D
    return lambda image, seg: D(*augment(image, seg))


def d_main(D, real_img: torch.Tensor, real_mask: torch.Tensor, fake_img: torch.Tensor,
           fake_seg: torch.Tensor, augment=None, loss: str = "logistic") -> PhaseLoss:
    """D's logistic loss (`loss="hinge"`: the hinge loss). real_img (B, 3, H, W), real_mask (B, K, H, W) one-hot in {-1, 1}; fake_img, fake_seg the
    generator's outputs (detached here: this phase trains D only). `augment(image, seg) -> (image, seg)` is applied
    to both before D. D may return (B, 1) logits or (B, N) patch logits (projected D): the losses average them."""
    if loss not in ("logistic", "hinge"):
        raise ValueError(f"loss must be 'logistic' or 'hinge', got {loss!r}")
    D = _seen(D, augment)
    fake_pred = D(fake_img.detach(), fake_seg.detach()).float()
    real_pred = D(real_img, real_mask).float()
    loss = (d_hinge_loss if loss == "hinge" else d_logistic_loss)(real_pred, fake_pred)
    return PhaseLoss(loss, {"loss_d": loss.detach(), "score_real": real_pred.mean().detach(),
                            "score_fake": fake_pred.mean().detach()}, real_logits=real_pred.detach())


def d_reg(D, real_img: torch.Tensor, real_mask: torch.Tensor, opts, augment=None) -> PhaseLoss:
    """Lazy R1 on the real image (gamma `opts.r1_gamma`) and, separately, on the real mask (`opts.r1_gamma_mask`),
    scaled by the interval `opts.d_reg_every` (SemanticStyleGAN's `d_r1_loss` and its weighting). The gradient is
    taken w.r.t. the un-augmented reals, through the augmentation (StyleGAN2-ADA's R1). An input whose gamma is 0 is
    not differentiated (the projected D's image R1 would back-propagate twice through its feature network)."""
    inputs = {"img": real_img.detach().requires_grad_(opts.r1_gamma > 0),
              "mask": real_mask.detach().requires_grad_(opts.r1_gamma_mask > 0)}
    real_pred = _seen(D, augment)(inputs["img"], inputs["mask"])
    used = [k for k, v in inputs.items() if v.requires_grad]
    pens = dict(zip(used, d_r1_penalty(real_pred, [inputs[k] for k in used]))) if used else {}
    zero = real_pred.sum() * 0
    p_img, p_mask = pens.get("img", zero.detach()), pens.get("mask", zero.detach())
    loss = (r1_loss(pens.get("img", zero), opts.r1_gamma, opts.d_reg_every)
            + r1_loss(pens.get("mask", zero), opts.r1_gamma_mask, opts.d_reg_every)
            + 0 * real_pred.sum())                                  # keeps every D parameter in the graph (DDP)
    return PhaseLoss(loss, {"r1_img": p_img.detach(), "r1_mask": p_mask.detach()})


def g_main(D, fake, kl: torch.Tensor | None, opts, augment=None) -> PhaseLoss:
    """G's loss on generated samples `fake` (a GeneratorOutput: image, seg, coarse_seg): the non-saturating loss
    (with `opts.loss` "hinge": -mean of D's logits),
    `opts.lambda_mask` times the mask loss between the coarse mask and the fine seg, and for MemoryGAN
    `opts.kl_weight` times the controller's KL term `kl` (Eq. 13, minimised)."""
    fake_pred = _seen(D, augment)(fake.image, fake.seg).float()
    loss_adv = (g_hinge_loss if opts.loss == "hinge" else g_nonsaturating_loss)(fake_pred)
    loss_mask = mask_loss(fake.coarse_seg.float(), fake.seg.float())
    loss = loss_adv + opts.lambda_mask * loss_mask
    stats = {"loss_g": loss_adv.detach(), "loss_mask": loss_mask.detach()}
    if kl is not None:
        stats["kl"] = kl.detach().float()
        if opts.kl_weight > 0:
            loss = loss + opts.kl_weight * kl.float()
    return PhaseLoss(loss, stats)


def g_reg(fake, pl_mean: float, opts, generator: torch.Generator | None = None,
          noise: torch.Tensor | None = None) -> PhaseLoss:
    """Lazy path-length regularisation of `fake.image` against `fake.expanded` (which must be in the graph):
    `opts.pl_weight * opts.g_reg_every * mean_b (length_b - pl_mean)^2`. The running mean is updated by the caller
    from the returned `path_lengths` of the whole global batch."""
    penalty, _, lengths = g_path_length(fake.image, fake.expanded, pl_mean, decay=0.0, noise=noise,
                                        generator=generator)
    loss = path_length_loss(penalty, opts.pl_weight, opts.g_reg_every) + 0 * fake.image[0, 0, 0, 0]
    return PhaseLoss(loss, {"pl_penalty": penalty.detach()}, lengths.detach())
