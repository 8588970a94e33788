"""The terms of the inversion objective, each a pure function returning one value per image (B,), and the
learning-rate schedule. Images are (B, 3, H, W) in [-1, 1]; masks are class ids (B, H, W)."""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F


def pixel_mse(image: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error per image (B,), on the [-1, 1] scale."""
    return (image - target).pow(2).flatten(1).mean(1)


def _per_class_mean(per_pixel: torch.Tensor, ids: torch.Tensor, k: int) -> torch.Tensor:
    """(B, H, W) per-pixel values -> (B,): the mean over each class present in `ids`, then over those classes."""
    onehot = F.one_hot(ids.long(), k).permute(0, 3, 1, 2).to(per_pixel.dtype)      # (B, K, H, W)
    count = onehot.sum(dim=(2, 3))                                                  # (B, K)
    per_class = (per_pixel[:, None] * onehot).sum(dim=(2, 3)) / count.clamp_min(1)  # (B, K)
    present = (count > 0).to(per_pixel.dtype)
    return (per_class * present).sum(1) / present.sum(1)


def label_margin(seg: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """(B, H, W): the logit of the label `ids` (B, H, W) minus the largest other logit of `seg` (B, K, H, W)
    (positive where the segmentation agrees with the label). The mask hinge below and the text edit's seg term
    (`editing.text.seg_term`) read it."""
    k = seg.shape[1]
    own = seg.gather(1, ids.long()[:, None])[:, 0]
    others = seg.masked_fill(F.one_hot(ids.long(), k).permute(0, 3, 1, 2).bool(), float("-inf")).amax(1)
    return own - others


def seg_margin(seg: torch.Tensor, ids: torch.Tensor, margin: float = 0.5) -> torch.Tensor:
    """Mask loss per image (B,): hinge on the margin of the mask's class over the best other class,
    relu(margin - (seg_y - max_{c != y} seg_c)), averaged per class present in the mask, then over those classes.

    Zero wherever the segmentation already agrees with the mask by `margin`, so it never pulls codes that already
    explain the mask away from the image. Cross-entropy (minimum at ever larger logits, away from any code the
    generator produces) and an MSE to the {-1, 1} one-hot were tried first on a trained 64 px MemoryGAN: on its own
    samples they cost 14 dB of PSNR (CE, weight 0.1) or gained no mIoU; this loss kept 41-43 dB and raised the
    mIoU from 0.56 to 0.87 (docs/inversion.md). The per-class average makes every part count alike, as in mIoU
    (a pixel average lets the background outvote the eyes)."""
    return _per_class_mean(F.relu(margin - label_margin(seg, ids)), ids, seg.shape[1])


def code_prior(u: torch.Tensor) -> torch.Tensor:
    """Distance to the mean codes per image (B,): mean of u^2, with u the codes in units of their per-dimension
    standard deviation around the mean (SemanticStyleGAN's invert.py pulls W+ towards the mean latent the same
    way, in raw units)."""
    return u.pow(2).flatten(1).mean(1)


def noise_regularizer(noise: list[torch.Tensor]) -> torch.Tensor:
    """StyleGAN2's projector noise regulariser (Karras et al. 2020, Appendix D) per image (B,): the squared
    autocorrelation of each noise map with its one-pixel shifts, summed over a pyramid of 2x downsamplings down
    to 8x8, so the optimised maps cannot smuggle image content in. noise: maps (B, 1, H, W)."""
    total = None
    for n in noise:
        x = n
        while True:
            term = (x * x.roll(1, dims=3)).flatten(1).mean(1).pow(2) + (x * x.roll(1, dims=2)).flatten(1).mean(1).pow(2)
            total = term if total is None else total + term
            if x.shape[-1] <= 8:
                break
            x = F.avg_pool2d(x, 2)
    return total


@torch.no_grad()
def normalize_noise_(noise: list[torch.Tensor]) -> None:
    """Each map to zero mean and unit variance per image, in place (StyleGAN2's projector does this after every
    step: the maps stay N(0, 1)-like, the scale of what the render net was trained on)."""
    for n in noise:
        mean = n.mean(dim=(1, 2, 3), keepdim=True)
        std = n.std(dim=(1, 2, 3), keepdim=True).clamp_min(1e-8)
        n.sub_(mean).div_(std)


def ramped_lr(t: float, lr: float, rampdown: float = 0.25, rampup: float = 0.05) -> float:
    """Learning rate at progress t in [0, 1]: linear warm-up over the first `rampup`, cosine decay to 0 over the
    last `rampdown` (the StyleGAN2 projector's schedule, also SemanticStyleGAN's invert.py)."""
    ramp = min(1.0, (1.0 - t) / rampdown) if rampdown > 0 else 1.0
    ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
    if rampup > 0:
        ramp *= min(1.0, t / rampup)
    return lr * ramp


def psnr_uint8(a, b) -> float:
    """PSNR in dB between two uint8 arrays/tensors of one shape (peak 255); inf for identical images."""
    a = np.asarray(a.detach().cpu() if torch.is_tensor(a) else a, dtype=np.float64)
    b = np.asarray(b.detach().cpu() if torch.is_tensor(b) else b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"PSNR of arrays of different shapes {a.shape} and {b.shape}")
    mse = float(((a - b) ** 2).mean())
    return float("inf") if mse == 0 else 10.0 * math.log10(255.0 ** 2 / mse)
