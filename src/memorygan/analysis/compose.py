"""Sequential composition (MemoryGAN Figs. 4/9; SemanticStyleGAN Fig. 5): render a sample with only the first k
parts present, k = 1..K, through the composition mask (DESIGN 2.3), so each column adds one part."""
from __future__ import annotations

import numpy as np
import torch

from memorygan.visualize import depth_to_gray, grid, seg_to_color, to_uint8


@torch.no_grad()
def sequential_composition(G, seed: int = 0, order: list[int] | None = None, truncation: float = 1.0,
                           z: torch.Tensor | None = None):
    """One sample (from `seed`, or the given z (1, N, D)) composed part by part.

    order: the part ids in the order they are added (default 0, 1, ..., K-1: background first). Returns a list of
    GeneratorOutput, entry j rendered with the parts order[:j+1] present; all share the same expanded codes.
    """
    k = G.config.num_classes
    order = list(range(k)) if order is None else [int(i) for i in order]
    if sorted(set(order)) != sorted(order) or not all(0 <= i < k for i in order) or not order:
        raise ValueError(f"order must list distinct part ids in [0, {k}), got {order}")
    if z is None:
        z = G.sample_z(1, seed)
    full = G(z, truncation=truncation, noise_mode="const")
    outs = []
    mask = torch.zeros(1, k, device=z.device)
    for part in order:
        mask[0, part] = 1
        outs.append(G(expanded=full.expanded, composition_mask=mask.clone(), noise_mode="const"))
    return outs


def composition_figure(G, seeds: list[int], order: list[int] | None = None, truncation: float = 1.0) -> np.ndarray:
    """Rows per seed: image, colour mask and the coarse depth of the part just added, one column per added part."""
    rows = []
    size = G.config.resolution
    for seed in seeds:
        outs = sequential_composition(G, seed, order, truncation)
        parts = order or list(range(G.config.num_classes))
        rows.append(np.concatenate([to_uint8(o.image) for o in outs]))
        rows.append(np.concatenate([seg_to_color(o.seg) for o in outs]))
        depth = depth_to_gray(outs[-1].depths, size)[0]                      # (K, H, W)
        rows.append(np.stack([np.repeat(depth[p][..., None], 3, -1) for p in parts]))
    return grid(rows)
