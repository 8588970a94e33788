"""`data preview`: a PNG grid of images above their colour-coded masks, with a legend of class names/colours."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from memorygan.data.files import pair_files, read_image, read_info, read_mask
from memorygan.data.palette import class_colors, colorize
from memorygan.errors import DatasetError

MAX_LEGEND = 40


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has only the fixed bitmap font
        return ImageFont.load_default()


def preview_grid(images: list[np.ndarray], masks: list[np.ndarray], classes: list[str], tile: int = 128,
                 columns: int = 8, colors: np.ndarray | None = None) -> Image.Image:
    """Compose images (H, W, 3) uint8 and id masks (H, W) into one picture with a legend.

    Rows alternate: a row of images, then the same items' masks. The legend lists the classes present in the
    shown masks (all classes if there are few)."""
    if not images:
        raise DatasetError("nothing to preview")
    k = len(classes)
    colors = class_colors(k) if colors is None else colors
    cols = min(columns, len(images))
    nrows = -(-len(images) // cols)
    gap = 2
    W = cols * tile + (cols + 1) * gap
    grid_h = nrows * 2 * tile + (nrows * 2 + 1) * gap + nrows * gap * 2
    present = sorted(set(int(i) for m in masks for i in np.unique(m)))
    shown = list(range(k)) if k <= 24 else present
    shown = shown[:MAX_LEGEND]
    font = _font(12)
    cell_w = max(110, min(200, 14 + 7 * max(len(classes[i]) for i in shown) + 30))
    per_row = max(1, (W - 8) // cell_w)
    leg_rows = -(-len(shown) // per_row)
    H = grid_h + leg_rows * 18 + 10 + (16 if len(present) > len(shown) and k > 24 else 0)
    canvas = Image.new("RGB", (W, H), (255, 255, 255))
    resample_img = Image.NEAREST if images[0].shape[0] < tile else Image.LANCZOS
    y = gap
    for r in range(nrows):
        row = list(range(r * cols, min((r + 1) * cols, len(images))))
        for kind in ("image", "mask"):
            for j, i in enumerate(row):
                x = gap + j * (tile + gap)
                if kind == "image":
                    im = Image.fromarray(images[i]).resize((tile, tile), resample_img)
                else:
                    im = Image.fromarray(colorize(masks[i], colors=colors)).resize((tile, tile), Image.NEAREST)
                canvas.paste(im, (x, y))
            y += tile + gap
        y += gap * 2
    draw = ImageDraw.Draw(canvas)
    y = grid_h + 4
    for n, cid in enumerate(shown):
        cx = 6 + (n % per_row) * cell_w
        cy = y + (n // per_row) * 18
        draw.rectangle([cx, cy + 2, cx + 12, cy + 14], fill=tuple(int(c) for c in colors[cid]), outline=(90, 90, 90))
        draw.text((cx + 17, cy + 1), f"{cid} {classes[cid]}", fill=(0, 0, 0), font=font)
    if k > 24 and len(present) > len(shown):
        draw.text((6, y + leg_rows * 18), f"... {len(present) - len(shown)} more classes present",
                  fill=(0, 0, 0), font=font)
    return canvas


def preview_dataset(path: str | os.PathLike, out: str | os.PathLike, n: int = 8, start: int = 0,
                    tile: int | None = None, columns: int = 8) -> Path:
    """Write a preview grid of items [start, start + n) of a dataset folder to `out` (PNG)."""
    for name, value, low in (("--n", n, 1), ("--start", start, 0), ("--columns", columns, 1)):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise DatasetError(f"{name} must be an integer >= {low}, got {value!r}")
    if tile is not None and not (isinstance(tile, int) and 8 <= tile <= 1024):
        raise DatasetError(f"--tile must be an integer between 8 and 1024 pixels, got {tile!r}")
    if n > 1024:
        raise DatasetError(f"--n {n}: at most 1024 items fit in one preview")
    root = Path(path)
    info = read_info(root)
    pairing = pair_files(root)
    names = pairing.names[start:start + n]
    if not names:
        raise DatasetError(f"dataset {root} has no image/mask pairs from index {start}")
    images = [read_image(pairing.images[nm]) for nm in names]
    masks = []
    for nm in names:
        m = read_mask(pairing.masks[nm])
        if m.max(initial=0) >= info.num_classes:
            raise DatasetError(f"mask {nm}.png has class id {int(m.max())} but dataset.json declares "
                               f"{info.num_classes} classes")
        masks.append(m)
    if tile is None:
        tile = int(min(max(images[0].shape[0], 96), 160))
    grid = preview_grid(images, masks, info.classes, tile=tile, columns=columns)
    out = Path(out)
    if out.parent and not out.parent.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
    grid.save(out, format="PNG", optimize=True)
    return out
