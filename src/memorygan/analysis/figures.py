"""Writing analysis results: PNG grids with row labels, JSON with the numbers behind them."""
from __future__ import annotations

from pathlib import Path

import numpy as np

LABEL_WIDTH = 72  # pixels of the left margin that holds the row labels
HEADER_HEIGHT = 14  # pixels of a line of column labels (or of the title) above a grid


def label_rows(figure: np.ndarray, labels: list[str], cell: int, pad: int = 2, width: int = LABEL_WIDTH) -> np.ndarray:
    """A `visualize.grid` figure (rows of `cell`-pixel tiles) with a white left margin naming each row."""
    from PIL import Image, ImageDraw, ImageFont

    h = figure.shape[0]
    canvas = Image.new("RGB", (width + figure.shape[1], h), (255, 255, 255))
    canvas.paste(Image.fromarray(figure), (width, 0))
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    for i, text in enumerate(labels):
        if not text:
            continue
        box = draw.textbbox((0, 0), text, font=font)
        while box[2] - box[0] > width - 4 and len(text) > 2:  # shorten labels that do not fit
            text = text[:-2] + "~"
            box = draw.textbbox((0, 0), text, font=font)
        y = pad + i * (cell + pad) + (cell - (box[3] - box[1])) // 2 - box[1]
        draw.text((2, y), text, fill=(0, 0, 0), font=font)
    return np.asarray(canvas)


def _fit(draw, text: str, font, width: int) -> str:
    box = draw.textbbox((0, 0), text, font=font)
    while box[2] - box[0] > width and len(text) > 2:  # shorten labels that do not fit
        text = text[:-2] + "~"
        box = draw.textbbox((0, 0), text, font=font)
    return text


def label_columns(figure: np.ndarray, labels: list[str], cell: int, pad: int = 2, left: int = 0,
                  title: str | None = None) -> np.ndarray:
    """A grid figure (columns of `cell`-pixel tiles starting `left` pixels from its left edge, e.g. after
    `label_rows`) with a white top margin naming each column, and an optional title line above it."""
    from PIL import Image, ImageDraw, ImageFont

    top = HEADER_HEIGHT * (2 if title else 1)
    canvas = Image.new("RGB", (figure.shape[1], figure.shape[0] + top), (255, 255, 255))
    canvas.paste(Image.fromarray(figure), (0, top))
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    if title:
        draw.text((2, 1), _fit(draw, title, font, figure.shape[1] - 4), fill=(0, 0, 0), font=font)
    for j, text in enumerate(labels):
        if not text:
            continue
        text = _fit(draw, text, font, cell + pad)
        box = draw.textbbox((0, 0), text, font=font)
        x = left + pad + j * (cell + pad) + (cell - (box[2] - box[0])) // 2
        draw.text((max(0, x), top - HEADER_HEIGHT + 1), text, fill=(0, 0, 0), font=font)
    return np.asarray(canvas)


def save_png(figure: np.ndarray, path) -> Path:
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(figure).save(path)
    return path


def write_json(data: dict, path) -> Path:
    """`fileio.write_json` (atomic, non-finite floats as null) with the figures' argument order."""
    from memorygan.fileio import write_json as _write
    return _write(path, data)


def generator_info(G) -> dict:
    """What identifies the analysed generator in a result file."""
    cfg = G.config
    return {"arch": G.arch, "num_classes": cfg.num_classes, "part_names": G.part_names, "resolution": cfg.resolution,
            "local_layers": cfg.local_layers, "base_layers": cfg.base_layers, "depth_layers": cfg.depth_layers,
            "latent_dim": cfg.latent_dim}
