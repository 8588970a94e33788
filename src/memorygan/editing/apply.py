"""Applying a direction: image and mask strips over a range of alpha (GANalyze Fig. 3-3), and the edited codes."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from memorygan.editing.directions import Direction, edit_output
from memorygan.models.codes import Codes
from memorygan.errors import ConfigError


@torch.no_grad()
def apply_direction(G, direction: Direction, source: Codes, alphas, names: list[str] | None = None) -> dict:
    """Render every source image at every alpha: {"alphas", "names", "outputs": [GeneratorOutput per alpha]}."""
    alphas = [float(a) for a in alphas]
    if not alphas:
        raise ConfigError("--alphas: give at least one value")
    outs = [edit_output(G, direction, source, a) for a in alphas]
    return {"alphas": alphas, "names": names or [f"image {i}" for i in range(len(source))], "outputs": outs}


def strip_figure(result: dict) -> np.ndarray:
    """Per source image an image row and a mask row, one column per alpha."""
    from memorygan.visualize import grid, seg_to_color, to_uint8

    outs = result["outputs"]
    imgs = [to_uint8(o.image) for o in outs]                 # per alpha (B, H, W, 3)
    segs = [seg_to_color(o.seg) for o in outs]
    rows = []
    for i in range(imgs[0].shape[0]):
        rows.append(np.stack([im[i] for im in imgs]))
        rows.append(np.stack([sg[i] for sg in segs]))
    return grid(rows)


def write_apply(G, direction: Direction, source: Codes, alphas, out, names=None) -> dict:
    """`strip.png` (rows: image, mask per source; columns: alphas), `edited-codes.safetensors` (the expanded codes
    of every (image, alpha), names "NAME alpha=A") and `apply.json` in `out`."""
    from memorygan.analysis.figures import label_rows, save_png, write_json
    from memorygan.checkpoint import generator_fingerprint
    from memorygan.editing.codes import Codes, save_codes

    res = apply_direction(G, direction, source, alphas, names)
    out = Path(out)
    labels = [t for name in res["names"] for t in (name, "mask")]
    png = save_png(label_rows(strip_figure(res), labels, G.config.resolution), out / "strip.png")
    expanded = torch.stack([o.expanded.cpu() for o in res["outputs"]], 1).flatten(0, 1)   # (B * A, K, L, D)
    code_names = [f"{n} alpha={a:g}" for n in res["names"] for a in res["alphas"]]
    codes = save_codes(out / "edited-codes.safetensors",
                       Codes(expanded, "expanded", code_names, arch=G.arch, generator=generator_fingerprint(G),
                             extra={"direction": direction.describe()}))
    record = {"direction": direction.describe(), "alphas": res["alphas"], "names": res["names"],
              "layout": "per image an image row and a mask row; one column per alpha", "png": str(png),
              "codes": str(codes)}
    record["json"] = str(write_json(record, out / "apply.json"))
    return record
