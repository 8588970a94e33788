"""Class colours for displaying masks, shared by the data tools and the model's sample grids."""
from __future__ import annotations

import colorsys

import numpy as np

# CelebAMask-HQ-like colours for the 13 portrait classes (DESIGN.md section 4 ids). The main colours follow the
# CelebAMask-HQ colour coding (background black, skin red, hair blue, neck orange, cloth green, hat pink); the small
# parts get distinct colours because the original gives three of them near-identical greens.
CELEBAMASK_COLORS = np.array([
    [0, 0, 0],        # 0 background
    [204, 0, 0],      # 1 skin
    [51, 51, 255],    # 2 eyes
    [0, 255, 255],    # 3 eyebrows
    [255, 255, 0],    # 4 mouth
    [76, 153, 0],     # 5 nose
    [102, 51, 0],     # 6 ears
    [0, 0, 153],      # 7 hair
    [255, 153, 51],   # 8 neck
    [0, 204, 0],      # 9 cloth
    [204, 0, 204],    # 10 eyeglasses
    [255, 51, 153],   # 11 hat
    [0, 204, 204],    # 12 earrings
], dtype=np.uint8)

_GOLDEN = 0.6180339887498949


def class_colors(num_classes: int) -> np.ndarray:
    """(K, 3) uint8 RGB colour per class id; class 0 (background) is black.

    K = 13 gives the fixed CelebAMask-HQ-like palette. Other K get hues spaced by the golden ratio with cycling
    saturation/value, so neighbouring ids differ strongly and the colour of id k does not depend on K.
    """
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    if num_classes == len(CELEBAMASK_COLORS):
        return CELEBAMASK_COLORS.copy()
    out = np.zeros((num_classes, 3), np.uint8)
    for k in range(1, num_classes):
        h = (k * _GOLDEN) % 1.0
        s = (0.95, 0.65, 0.8)[k % 3]
        v = (1.0, 0.85, 0.65)[(k // 3) % 3]
        out[k] = np.round(np.array(colorsys.hsv_to_rgb(h, s, v)) * 255)
    return out


def colorize(ids: np.ndarray, num_classes: int | None = None, colors: np.ndarray | None = None) -> np.ndarray:
    """Id mask (..., H, W) -> RGB (..., H, W, 3) uint8. Ids outside the palette are drawn white."""
    ids = np.asarray(ids)
    if colors is None:
        colors = class_colors(num_classes if num_classes is not None else int(ids.max(initial=0)) + 1)
    lut = np.concatenate([colors, np.full((1, 3), 255, np.uint8)])
    idx = np.where((ids >= 0) & (ids < len(colors)), ids, len(colors))
    return lut[idx]
