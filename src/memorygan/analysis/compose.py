"""Sequential composition (MemoryGAN Figs. 4/9; SemanticStyleGAN Fig. 5): render a sample with only the first k
parts present, k = 1..K, through the composition mask (DESIGN 2.3), so each column adds one part."""
from __future__ import annotations

import numpy as np
import torch

from memorygan.errors import ConfigError
from memorygan.visualize import depth_to_gray, grid, seg_to_color, to_uint8


@torch.no_grad()
def sequential_composition(G, seed: int = 0, order: list[int] | None = None, truncation: float = 1.0,
                           z: torch.Tensor | None = None, expanded: torch.Tensor | None = None):
    """One sample composed part by part: from `seed`, from a random source `z` (one sample), or from explicit
    `expanded` codes (1, K, L, D) (an edited or inverted image; `truncation` is then not applied).

    order: the part ids in the order they are added (default 0, 1, ..., K-1: background first). Returns a list of
    GeneratorOutput, entry j rendered with the parts order[:j+1] present; all share the same expanded codes.
    """
    k = G.config.num_classes
    order = list(range(k)) if order is None else [int(i) for i in order]
    if sorted(set(order)) != sorted(order) or not all(0 <= i < k for i in order) or not order:
        raise ValueError(f"order must list distinct part ids in [0, {k}), got {order}")
    if expanded is not None:
        if z is not None:
            raise ValueError("give z or expanded codes, not both")
        G.check_expanded(expanded)
        if expanded.shape[0] != 1:
            raise ValueError(f"expanded codes must hold one sample (1, K, L, D), got {tuple(expanded.shape)}")
        codes = expanded.to(G.device)
    else:
        if z is None:
            z = G.sample_z(1, seed)
        codes = G(z, truncation=truncation, noise_mode="const").expanded
    outs = []
    mask = torch.zeros(1, k, device=codes.device)
    for part in order:
        mask[0, part] = 1
        outs.append(G(expanded=codes, composition_mask=mask.clone(), noise_mode="const"))
    return outs


def composition_figure(G, seeds: list[int], order: list[int] | None = None, truncation: float = 1.0) -> np.ndarray:
    """Rows per seed in the paper's order (Fig. 9): image, coarse depth of the part just added, colour mask; one
    column per added part."""
    return _figure(G, [sequential_composition(G, seed, order, truncation) for seed in seeds], order)


def _figure(G, compositions: list, order: list[int] | None) -> np.ndarray:
    rows = []
    size = G.config.resolution
    parts = order or list(range(G.config.num_classes))
    for outs in compositions:
        rows.append(np.concatenate([to_uint8(o.image) for o in outs]))
        depth = depth_to_gray(outs[-1].depths, size)[0]                      # (K, H, W)
        rows.append(np.stack([np.repeat(depth[p][..., None], 3, -1) for p in parts]))
        rows.append(np.concatenate([seg_to_color(o.seg) for o in outs]))
    return grid(rows)


def labelled_figure(G, compositions: list, order: list[int], seeds: list[int]) -> np.ndarray:
    """The composition figure with its rows named (seed, depth, mask) and its columns by the part each one adds."""
    from memorygan.analysis.figures import LABEL_WIDTH, label_columns, label_rows

    size = G.config.resolution
    labels = [text for seed in seeds for text in (f"seed {seed}", "depth", "mask")]
    fig = label_rows(_figure(G, compositions, order), labels, size)
    names = G.part_names
    return label_columns(fig, [f"+{names[p]}" for p in order], size, left=LABEL_WIDTH,
                         title="parts added one at a time (left to right)")


def write_composition(G, out, seeds: list[int], order=None, truncation: float = 1.0) -> dict:
    """`compose.png` (rows per seed: image, depth, mask) and `compose.json` in `out`. `order` takes part ids or
    names. Per seed and column the JSON holds the fraction of pixels of each part in the mask and the mean squared
    change of the whole image from the previous column (the unmasked counterpart of SMSE, Eq. 15)."""
    from pathlib import Path

    from memorygan.analysis.figures import generator_info, save_png, write_json

    if not seeds:
        raise ConfigError("seeds: give at least one seed")
    ids = G.resolve_parts(order, "order")
    names = G.part_names
    compositions = [sequential_composition(G, seed, ids, truncation) for seed in seeds]
    out = Path(out)
    png = save_png(labelled_figure(G, compositions, ids, list(seeds)), out / "compose.png")
    per_seed = []
    k = G.config.num_classes
    for seed, outs in zip(seeds, compositions):
        columns, prev = [], None
        for o in outs:
            area = torch.bincount(o.seg.argmax(1).flatten().cpu(), minlength=k).double() / o.seg[0, 0].numel()
            columns.append({"area": {names[p]: float(area[p]) for p in range(k) if area[p] > 0},
                            "mse_from_previous": None if prev is None else float(((o.image - prev) ** 2).mean())})
            prev = o.image
        per_seed.append({"seed": seed, "columns": columns})
    record = {"analysis": "compose", "generator": generator_info(G), "seeds": list(seeds), "truncation": truncation,
              "order": [names[p] for p in ids], "order_ids": ids,
              "layout": "per seed three rows (image, coarse depth of the part just added, colour mask); column j has "
                        "the parts order[:j+1] present and is labelled with the part it adds",
              "png": str(png), "samples": per_seed}
    record["json"] = str(write_json(record, out / "compose.json"))
    return record
