"""Latent interpolation (MemoryGAN Sec. 4.5, Fig. 12): between two samples, of the whole image (every expanded code)
or of one part (only that part's swap layers, the style-mixing rules of `memorygan.analysis.mix`: background all
layers, large parts shape + texture, small parts also the last base layer)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from memorygan.analysis.mix import swap_layers, swap_mask
from memorygan.analysis.parts import render, samples
from memorygan.errors import ConfigError
from memorygan.visualize import grid, seg_to_color, to_uint8


def interpolate_codes(G, expanded_a: torch.Tensor, expanded_b: torch.Tensor, steps: int, parts=None,
                      mode: str = "both", large_parts=None) -> torch.Tensor:
    """Expanded codes (1, K, L, D) of two samples -> (steps, K, L, D), t = 0..1 evenly spaced.

    parts None: every code moves from a to b (whole image); otherwise only the swap layers of `parts` move, the
    rest stays at a, so the last step equals `mix_parts(G, a, b, parts, mode)`. torch.lerp is exact at t = 0 and 1.
    """
    if steps < 2:
        raise ConfigError(f"steps must be >= 2 (the two end points), got {steps}")
    for name, e in (("expanded_a", expanded_a), ("expanded_b", expanded_b)):
        if e.ndim != 4 or e.shape[0] != 1:
            raise ConfigError(f"{name} must be (1, K, L, D), got {tuple(e.shape)}")
    t = torch.linspace(0, 1, steps, device=expanded_a.device)[:, None, None, None]
    moved = torch.lerp(expanded_a.expand(steps, -1, -1, -1), expanded_b.expand(steps, -1, -1, -1), t)
    if parts is None:
        return moved
    mask = swap_mask(G, parts, mode, large_parts).to(expanded_a.device)
    return torch.where(mask[None, :, :, None], moved, expanded_a)


@dataclass
class InterpolationResult:
    """Rows of renders: the whole-image interpolation (when asked for) and one per part."""
    seeds: tuple[int, int]
    steps: int
    labels: list[str]              # "whole" or the part name, per row
    layers: list[list[int]]        # interpolated local layers per row (all layers for "whole")
    renders: list[dict]            # {"image": (steps, 3, H, W), "seg", "depths"} per row

    def figure(self) -> np.ndarray:
        """Per row an image row and a mask row, one column per step (t = 0 left, t = 1 right)."""
        rows = []
        for r in self.renders:
            rows += [to_uint8(r["image"]), seg_to_color(r["seg"])]
        return grid(rows)

    def row_labels(self) -> list[str]:
        return [text for label in self.labels for text in (label, "mask")]

    def stats(self) -> list[dict]:
        """Per row: mean |change| of the image from each step to the next (smoothness) and from t = 0 to t = 1."""
        out = []
        for label, layers, r in zip(self.labels, self.layers, self.renders):
            img = r["image"]
            out.append({"row": label, "layers": layers,
                        "step_change": [float(x) for x in (img[1:] - img[:-1]).abs().mean(dim=(1, 2, 3))],
                        "total_change": float((img[-1] - img[0]).abs().mean())})
        return out


@torch.no_grad()
def interpolation(G, seed_a: int, seed_b: int, steps: int = 7, parts=None, whole: bool = True, mode: str = "both",
                  truncation: float = 1.0, large_parts=None) -> InterpolationResult:
    """Interpolations from the sample of `seed_a` to that of `seed_b`: the whole image (if `whole`) and each of
    `parts` on its own (None = every part; [] = none)."""
    ids = [] if parts is not None and len(parts) == 0 else G.resolve_parts(parts)
    if not whole and not ids:
        raise ConfigError("nothing to interpolate: give parts or keep the whole-image row")
    ends = samples(G, [seed_a, seed_b], truncation).expanded
    a, b = ends[:1], ends[1:]
    names = G.part_names
    labels, layers, renders = [], [], []
    if whole:
        labels.append("whole")
        layers.append(list(range(G.config.local_layers)))
        renders.append(render(G, interpolate_codes(G, a, b, steps)))
    for k in ids:
        labels.append(names[k])
        layers.append(swap_layers(G, k, mode, large_parts))
        renders.append(render(G, interpolate_codes(G, a, b, steps, [k], mode, large_parts)))
    return InterpolationResult((int(seed_a), int(seed_b)), steps, labels, layers, renders)


def interpolation_figure(G, seed_a: int, seed_b: int, steps: int = 7, parts=None, whole: bool = True,
                         mode: str = "both", truncation: float = 1.0, large_parts=None) -> np.ndarray:
    """uint8 figure: an image row and a mask row per interpolation, `steps` columns."""
    return interpolation(G, seed_a, seed_b, steps, parts, whole, mode, truncation, large_parts).figure()


def write_interpolation(G, out, seed_a: int, seed_b: int, steps: int = 7, parts=None, whole: bool = True,
                        mode: str = "both", truncation: float = 1.0, large_parts=None) -> dict:
    """`interpolate-{a}-{b}.png` and `.json` (layers and per-step image changes per row) in `out`."""
    from pathlib import Path

    from memorygan.analysis.figures import generator_info, label_rows, save_png, write_json
    from memorygan.analysis.mix import large_part_ids

    res = interpolation(G, seed_a, seed_b, steps, parts, whole, mode, truncation, large_parts)
    out = Path(out)
    stem = f"interpolate-{res.seeds[0]}-{res.seeds[1]}"
    png = save_png(label_rows(res.figure(), res.row_labels(), G.config.resolution), out / f"{stem}.png")
    names = G.part_names
    record = {"analysis": "interpolate", "generator": generator_info(G), "seeds": list(res.seeds), "steps": steps,
              "t": torch.linspace(0, 1, steps, device="cpu").tolist(), "mode": mode, "truncation": truncation,
              "large_parts": [names[k] for k in sorted(large_part_ids(G, large_parts))],
              "layout": "per interpolation an image row and a mask row; columns t = 0 (seed a) .. 1 (seed b)",
              "png": str(png), "rows": res.stats()}
    record["json"] = str(write_json(record, out / f"{stem}.json"))
    return record
