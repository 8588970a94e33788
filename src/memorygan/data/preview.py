"""`data preview`: a PNG grid of images above their colour-coded masks, with a legend of class names/colours (and
each image's category when the dataset has image-level labels)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from memorygan.data.files import list_images, pair_files, read_image, read_info, read_mask
from memorygan.data.palette import class_colors, colorize
from memorygan.errors import DatasetError

MAX_LEGEND = 40


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has only the fixed bitmap font
        return ImageFont.load_default()


def preview_grid(images: list[np.ndarray], masks: list[np.ndarray] | None, classes: list[str], tile: int = 128,
                 columns: int = 8, colors: np.ndarray | None = None,
                 captions: list[str] | None = None) -> Image.Image:
    """Compose images (H, W, 3) uint8 and id masks (H, W) into one picture with a legend.

    Rows alternate: a row of images, then the same items' masks. The legend lists the classes present in the
    shown masks (all classes if there are few). `masks=None` (image-level datasets) draws the images only;
    `captions` (one per image, e.g. its category) are written under the images."""
    if not images:
        raise DatasetError("nothing to preview")
    k = len(classes)
    colors = class_colors(k) if colors is None and k else colors
    cols = min(columns, len(images))
    nrows = -(-len(images) // cols)
    gap = 2
    cap_h = 14 if captions is not None else 0
    kinds = ("image", "mask") if masks is not None else ("image",)
    W = cols * tile + (cols + 1) * gap
    grid_h = nrows * (len(kinds) * tile + cap_h) + (nrows * len(kinds) + 1) * gap + nrows * gap * 2
    present = sorted(set(int(i) for m in masks for i in np.unique(m))) if masks is not None else []
    shown = (list(range(k)) if k <= 24 else present)[:MAX_LEGEND] if masks is not None else []
    font = _font(12)
    cell_w = max(110, min(200, 14 + 7 * max((len(classes[i]) for i in shown), default=0) + 30))
    per_row = max(1, (W - 8) // cell_w)
    leg_rows = -(-len(shown) // per_row)
    H = grid_h + leg_rows * 18 + 10 + (16 if len(present) > len(shown) and k > 24 else 0)
    canvas = Image.new("RGB", (W, H), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    resample_img = Image.NEAREST if images[0].shape[0] < tile else Image.LANCZOS
    y = gap
    for r in range(nrows):
        row = list(range(r * cols, min((r + 1) * cols, len(images))))
        for kind in kinds:
            for j, i in enumerate(row):
                x = gap + j * (tile + gap)
                if kind == "image":
                    im = Image.fromarray(images[i]).resize((tile, tile), resample_img)
                else:
                    im = Image.fromarray(colorize(masks[i], colors=colors)).resize((tile, tile), Image.NEAREST)
                canvas.paste(im, (x, y))
                if kind == "image" and captions is not None:
                    draw.text((x + 1, y + tile), _fit(draw, captions[i], tile, font), fill=(0, 0, 0), font=font)
            y += tile + gap + (cap_h if kind == "image" else 0)
        y += gap * 2
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


def _fit(draw: ImageDraw.ImageDraw, text: str, width: int, font) -> str:
    """`text` shortened with an ellipsis to fit `width` pixels."""
    if draw.textlength(text, font=font) <= width - 2:
        return text
    while text and draw.textlength(text + "...", font=font) > width - 2:
        text = text[:-1]
    return text + "..."


def preview_dataset(path: str | os.PathLike, out: str | os.PathLike, n: int = 8, start: int = 0,
                    tile: int | None = None, columns: int = 8) -> Path:
    """Write a preview grid of items [start, start + n) of a dataset folder to `out` (PNG). Datasets with
    image-level labels get each image's category under it; image-level-only datasets show images only."""
    for name, value, low in (("--n", n, 1), ("--start", start, 0), ("--columns", columns, 1)):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise DatasetError(f"{name} must be an integer >= {low}, got {value!r}")
    if tile is not None and not (isinstance(tile, int) and 8 <= tile <= 1024):
        raise DatasetError(f"--tile must be an integer between 8 and 1024 pixels, got {tile!r}")
    if n > 1024:
        raise DatasetError(f"--n {n}: at most 1024 items fit in one preview")
    root = Path(path)
    info = read_info(root)
    if info.has_masks:
        pairing = pair_files(root)
        names, paths = pairing.names[start:start + n], pairing.images
        if not names:
            raise DatasetError(f"dataset {root} has no image/mask pairs from index {start}")
    else:
        listing = list_images(root)
        names, paths = listing.names[start:start + n], listing.images
        if not names:
            raise DatasetError(f"dataset {root} has no images from index {start}")
    images = [read_image(paths[nm]) for nm in names]
    masks = None
    if info.has_masks:
        masks = []
        for nm in names:
            m = read_mask(pairing.masks[nm])
            if m.max(initial=0) >= info.num_classes:
                raise DatasetError(f"mask {nm}.png has class id {int(m.max())} but dataset.json declares "
                                   f"{info.num_classes} classes")
            masks.append(m)
    captions = None
    if info.categories is not None:
        labels = info.labels or {}
        captions = [info.categories[labels[nm]] if nm in labels else "(no label)" for nm in names]
    if tile is None:
        tile = int(min(max(images[0].shape[0], 96), 160))
    grid = preview_grid(images, masks, info.classes, tile=tile, columns=columns, captions=captions)
    out = Path(out)
    if out.parent and not out.parent.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
    grid.save(out, format="PNG", optimize=True)
    return out
