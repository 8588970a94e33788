"""Fusion of part features by pseudo-depth (DESIGN 2.3, SemanticStyleGAN Eq. 2; MemoryGAN Eq. 7)."""
from __future__ import annotations

import torch


def check_composition_mask(composition_mask: torch.Tensor, batch: int, num_classes: int) -> None:
    """A composition mask must be (B, K) and keep at least one part of every sample: an all-zero row would render
    the fused map of no part at all (a blank image) without any sign of the mistake."""
    if tuple(composition_mask.shape) != (batch, num_classes):
        raise ValueError(f"composition_mask must be (B={batch}, K={num_classes}), got "
                         f"{tuple(composition_mask.shape)}")
    empty = (composition_mask.detach() != 0).sum(1) == 0
    if bool(empty.any()):
        rows = empty.nonzero().flatten().tolist()
        raise ValueError(f"composition_mask keeps no part in sample(s) {rows[:8]}: each row needs at least one "
                         "non-zero entry (which parts to draw)")


def part_masks(depths: torch.Tensor, composition_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Coarse masks m = softmax_k(depth_k); with a composition mask c (B, K) in {0,1}: m*c / (sum(m*c) + 1e-8).

    depths: (B, K, H, W) (background logit is the constant 0) -> (B, K, H, W), sums to 1 over present parts.
    """
    m = torch.softmax(depths, dim=1)
    if composition_mask is not None:
        c = composition_mask.to(m.dtype)[:, :, None, None]
        m = m * c
        m = m / (m.sum(dim=1, keepdim=True) + 1e-8)
    return m


def fusion_weights(m: torch.Tensor, transparent_classes: list[int] | tuple[int, ...] | torch.Tensor = ()
                   ) -> torch.Tensor:
    """Per-part fusion weights: opaque parts renormalised without the transparent ones, which are added on top
    with their raw weight. m: (B, K, H, W) -> (B, K, H, W). `transparent_classes`: class ids, or their int64 index
    tensor on m's device (what the generators pass: a list is copied to the device on every call, a host sync on a
    GPU)."""
    if torch.is_tensor(transparent_classes):
        idx = transparent_classes
        if idx.numel() == 0:
            return m
    elif not transparent_classes:
        return m
    else:
        idx = torch.tensor(list(transparent_classes), device=m.device)
    opaque = m.index_fill(1, idx, 0.0)
    opaque = opaque / (opaque.sum(dim=1, keepdim=True) + 1e-8)
    return opaque + (m - m.index_fill(1, idx, 0.0))


def fuse(features: torch.Tensor, depths: torch.Tensor, composition_mask: torch.Tensor | None = None,
         transparent_classes: list[int] | tuple[int, ...] = ()) -> tuple[torch.Tensor, torch.Tensor]:
    """features: (B, K, C, H, W); depths: (B, K, H, W) -> fused (B, C, H, W), masks m (B, K, H, W)."""
    m = part_masks(depths, composition_mask)
    weights = fusion_weights(m, transparent_classes)
    fused = torch.einsum("bkhw,bkchw->bchw", weights.to(features.dtype), features)
    return fused, m
