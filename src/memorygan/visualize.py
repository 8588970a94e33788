"""Turning generator outputs into pictures: images, colour-coded masks, per-part depth maps, grids."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from memorygan.data.palette import colorize


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """(B, 3, H, W) in [-1, 1] -> (B, H, W, 3) uint8."""
    x = ((image.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).cpu().numpy()


def seg_to_color(seg: torch.Tensor) -> np.ndarray:
    """(B, K, H, W) seg logits/values -> (B, H, W, 3) uint8 via argmax and the class palette."""
    ids = seg.detach().argmax(1).cpu().numpy()
    return colorize(ids, seg.shape[1])


def depth_to_gray(depths: torch.Tensor, size: int) -> np.ndarray:
    """(B, K, Hc, Wc) -> (B, K, size, size) uint8, each map min-max normalised."""
    d = F.interpolate(depths.detach().float(), size=(size, size), mode="nearest")
    lo = d.amin(dim=(2, 3), keepdim=True)
    hi = d.amax(dim=(2, 3), keepdim=True)
    return ((d - lo) / (hi - lo + 1e-8) * 255).round().to(torch.uint8).cpu().numpy()


def grid(rows: list[np.ndarray], pad: int = 2) -> np.ndarray:
    """rows: each (N, H, W, 3) uint8 with equal N, H, W -> one (R*(H+pad), N*(W+pad), 3) image."""
    r = len(rows)
    n, h, w, _ = rows[0].shape
    out = np.full((r * (h + pad) + pad, n * (w + pad) + pad, 3), 255, np.uint8)
    for i, row in enumerate(rows):
        for j in range(n):
            y, x = pad + i * (h + pad), pad + j * (w + pad)
            out[y:y + h, x:x + w] = row[j]
    return out


def sample_grid(out) -> np.ndarray:
    """GeneratorOutput -> two rows: images and colour-coded segmentations."""
    return grid([to_uint8(out.image), seg_to_color(out.seg)])
