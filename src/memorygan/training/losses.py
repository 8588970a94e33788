"""GAN losses and regularisers (DESIGN 3), as pure functions of tensors, after rosinality's stylegan2-pytorch.

The weights are applied by the caller (the training loop), except in the two small helpers `r1_loss` and
`path_length_loss`, which hold the lazy-regularisation scaling of StyleGAN2 (Karras et al. 2020, Sec. 3.1):
a regulariser evaluated every `interval` steps is multiplied by `interval` so that its expected contribution
per step is unchanged.

Paper values (DESIGN 3): R1 gamma 10 on the real image and 1000 on the real mask, every 16 D steps; path-length
weight 0.5 every 4 G steps on the expanded codes with half the batch; mask loss weight `lambda_mask = 100`.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import autograd

from memorygan.devices import to_device


def d_logistic_loss(real_pred: torch.Tensor, fake_pred: torch.Tensor) -> torch.Tensor:
    """Discriminator logistic loss (Goodfellow et al. 2014, Eq. 1; StyleGAN2's `d_logistic_loss`).

    real_pred: (B, 1) logits on real samples; fake_pred: (B', 1) logits on generated samples.
    Returns the scalar mean(softplus(-real_pred)) + mean(softplus(fake_pred)) = -log D(x) - log(1 - D(G(z))).
    """
    return F.softplus(-real_pred).mean() + F.softplus(fake_pred).mean()


def g_nonsaturating_loss(fake_pred: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss (Goodfellow et al. 2014, Sec. 3): mean(softplus(-fake_pred)) = -log D(G(z)).

    fake_pred: (B, 1) discriminator logits on generated samples -> scalar.
    """
    return F.softplus(-fake_pred).mean()


def d_hinge_loss(real_pred: torch.Tensor, fake_pred: torch.Tensor) -> torch.Tensor:
    """Discriminator hinge loss (Lim & Ye 2017; BigGAN, Projected GAN): mean(relu(1 - real)) + mean(relu(1 + fake)).
    Logits beyond the margin give no gradient, which keeps a strong discriminator (pretrained features) from
    running away from the generator."""
    return F.relu(1 - real_pred).mean() + F.relu(1 + fake_pred).mean()


def g_hinge_loss(fake_pred: torch.Tensor) -> torch.Tensor:
    """The generator's loss that goes with the hinge D loss: -mean(fake_pred)."""
    return -fake_pred.mean()



def d_r1_penalty(real_pred: torch.Tensor, real_input: torch.Tensor | Sequence[torch.Tensor]):
    """R1 gradient penalty (Mescheder et al. 2018, Eq. 9 without gamma/2): E_x ||grad_x D(x)||^2.

    real_pred: (B, 1) logits (or (B, N) patch logits, averaged per sample) computed from `real_input`, which must
      have `requires_grad=True`.
    real_input: one tensor (B, ...) -> a scalar, the batch mean of the per-sample sum of squared gradients of
    `real_pred.sum()`; or a sequence of tensors (the dual-branch D's image (B, 3, H, W) and mask (B, K, H, W))
    -> a tuple with one such scalar per tensor, from a single backward pass, so each input can get its own gamma
    (DESIGN 3: 10 for the image, 1000 for the mask, as SemanticStyleGAN's `d_r1_loss`).
    The gradients are taken with `create_graph=True` so the penalty can be minimised.
    """
    single = isinstance(real_input, torch.Tensor)
    inputs = [real_input] if single else list(real_input)
    for i, x in enumerate(inputs):
        name = "real_input" if single else f"real_input[{i}]"
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name} must be a tensor, got {type(x).__name__}")
        if not x.requires_grad:
            raise ValueError(f"{name} must have requires_grad=True before the discriminator is run on it")
        if x.shape[0] != real_pred.shape[0]:
            raise ValueError(f"{name} has batch {x.shape[0]} but real_pred has batch {real_pred.shape[0]}")
    # per sample the mean of its logits: one logit (B, 1) as StyleGAN2; a patch discriminator's (B, N) logits count
    # as one judgement per image, not N (a 5x5 patch map would otherwise weigh 25 times a single logit)
    grads = autograd.grad(outputs=real_pred.flatten(1).mean(1).sum(), inputs=inputs, create_graph=True)
    penalties = tuple(g.pow(2).reshape(g.shape[0], -1).sum(1).mean() for g in grads)
    return penalties[0] if single else penalties


def r1_loss(penalty: torch.Tensor, gamma: float, interval: int = 1) -> torch.Tensor:
    """Weighted lazy R1 term: gamma / 2 * penalty * interval (Mescheder et al. 2018, Eq. 9; StyleGAN2 Sec. 3.1).

    penalty: scalar from `d_r1_penalty`; gamma: R1 weight (DESIGN 3: 10 image, 1000 mask); interval: D steps
    between evaluations (16), 1 for a penalty computed every step.
    """
    if not gamma >= 0:
        raise ValueError(f"gamma must be >= 0, got {gamma!r}")
    _check_interval(interval)
    return gamma / 2 * penalty * interval


def g_path_length(images: torch.Tensor, latents: torch.Tensor, mean_path_length, decay: float = 0.01,
                  noise: torch.Tensor | None = None, generator: torch.Generator | None = None):
    """Path-length regularisation (StyleGAN2, Karras et al. 2020, Eq. 4; rosinality's `g_path_regularize`).

    images: (B, C, H, W) generated from `latents`, which must be part of the graph that produced them.
    latents: the codes the path length is measured against: expanded codes (B, K, L, D) (DESIGN 3) or, as in
      StyleGAN2, (B, n_latent, D). For (B, K, L, D) the K and L axes are flattened into one n_latent = K*L axis
      first, so every (part, layer) code counts as one StyleGAN2 W+ code.
    mean_path_length: running mean `a` (float or scalar tensor; 0 at the start of training).
    decay: update rate of the running mean.
    noise: (B, C, H, W) N(0, 1) draw `y` (drawn here from `generator` when None); it is scaled by 1/sqrt(H*W).

    With g = grad_w sum(images * y / sqrt(H*W)) of shape (B, n_latent, D):
      path_lengths = sqrt(mean_n sum_d g^2)                      (B,)
      new_mean     = a + decay * (mean_b path_lengths - a)       (returned detached)
      penalty      = mean_b (path_lengths - new_mean)^2          scalar, differentiable (create_graph=True)
    Returns (penalty, new_mean, path_lengths).
    """
    if images.ndim != 4:
        raise ValueError(f"images must be (B, C, H, W), got {tuple(images.shape)}")
    if latents.ndim not in (3, 4) or latents.shape[0] != images.shape[0]:
        raise ValueError(f"latents must be (B={images.shape[0]}, K, L, D) or (B={images.shape[0]}, n_latent, D), "
                         f"got {tuple(latents.shape)}")
    if not latents.requires_grad:
        raise ValueError("latents must require grad (be part of the graph that produced images)")
    if not 0 <= decay <= 1:
        raise ValueError(f"decay must be in [0, 1], got {decay!r}")
    h, w = images.shape[2:]
    if noise is None:
        device = generator.device if generator is not None else images.device
        noise = to_device(torch.randn(images.shape, generator=generator, device=device, dtype=images.dtype),
                          images.device)
    elif tuple(noise.shape) != tuple(images.shape):
        raise ValueError(f"noise must have the shape of images {tuple(images.shape)}, got {tuple(noise.shape)}")
    (grad,) = autograd.grad(outputs=(images * noise / math.sqrt(h * w)).sum(), inputs=latents, create_graph=True)
    grad = grad.flatten(1, -2)                            # (B, K, L, D) -> (B, K*L, D); (B, n, D) unchanged
    path_lengths = grad.pow(2).sum(2).mean(1).sqrt()      # (B,)
    path_mean = mean_path_length + decay * (path_lengths.mean() - mean_path_length)
    penalty = (path_lengths - path_mean).pow(2).mean()
    return penalty, path_mean.detach(), path_lengths


def path_length_loss(penalty: torch.Tensor, weight: float = 0.5, interval: int = 4) -> torch.Tensor:
    """Weighted lazy path-length term: weight * interval * penalty (StyleGAN2 Sec. 3.1; SemanticStyleGAN's
    `path_regularize = 0.5`, every `g_reg_every = 4` G steps). penalty: scalar from `g_path_length`."""
    if not weight >= 0:
        raise ValueError(f"weight must be >= 0, got {weight!r}")
    _check_interval(interval)
    return weight * interval * penalty


def mask_loss(coarse_seg: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
    """Mask loss L_mask of SemanticStyleGAN (Shi et al., CVPR 2022, training objective; MemoryGAN keeps it).

    Keeps the render net's fine segmentation close to the coarse mask that came out of the fusion, so the
    render net refines the layout instead of redrawing it.
    coarse_seg: (B, K, Hc, Wc) coarse mask in [-1, 1]; seg: (B, K, H, W) fine seg with H, W integer multiples
    of Hc, Wc. Returns the scalar mean((coarse_seg - area_downsample(seg))^2), area downsampling being the mean
    over each (H/Hc) x (W/Wc) block. The weight (`lambda_mask = 100`, DESIGN 3) is applied by the caller.
    """
    if coarse_seg.ndim != 4 or seg.ndim != 4:
        raise ValueError(f"coarse_seg and seg must be (B, K, H, W), got {tuple(coarse_seg.shape)} and "
                         f"{tuple(seg.shape)}")
    if coarse_seg.shape[:2] != seg.shape[:2]:
        raise ValueError(f"coarse_seg {tuple(coarse_seg.shape)} and seg {tuple(seg.shape)} differ in (B, K)")
    (hc, wc), (h, w) = coarse_seg.shape[2:], seg.shape[2:]
    if h < hc or w < wc or h % hc or w % wc:
        raise ValueError(f"seg size {h}x{w} must be an integer multiple of the coarse_seg size {hc}x{wc}")
    return F.mse_loss(coarse_seg, F.interpolate(seg, size=(hc, wc), mode="area"))


def _check_interval(interval) -> None:
    if not isinstance(interval, int) or isinstance(interval, bool) or interval < 1:
        raise ValueError(f"interval must be an integer >= 1, got {interval!r}")
