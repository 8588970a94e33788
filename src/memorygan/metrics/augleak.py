"""Leaked augmentations (issue 26): does the generator draw what the discriminator's augmentation does to images?

StyleGAN2-ADA shows that an augmentation applied too often "leaks": the generator learns to produce augmented-looking
images (rotated, recoloured, shifted with a grey border, with grey squares cut out), because D sees only augmented
images. Each statistic here is computed on generated images and on the real ones, and a leak shows as a gap:

- `luma_mean`, `luma_std`: mean and spread over images of the mean luma (colour ops: brightness, contrast);
- `saturation_mean`, `saturation_std`: the same for the mean saturation (max - min channel; saturation, hue);
- `lr_balance_std`: spread of (mean luma of the left half - right half) (flips and rotations make it wider);
- `grey_border`: share of border pixels (outer 1/8 strip) within 3 of 255 levels of mid grey (translation fill);
- `grey_square`: share of images holding a square of side 1/4 of the size, entirely mid grey (cutout's fill);
- `centroid_y` / `centroid_x` per class, and their spread over images, from the generator's segmentation and the
  real masks (rotations and flips move parts: a leak shows as an upside-down or spread layout); `centroid_gap` is
  the largest difference of a class's mean centroid between generated and real, as a fraction of the size.

`leak_statistics(images, labels)` computes them for one set; `compare` puts two sets side by side with the gaps.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

GREY_LEVELS = 3.0 / 127.5          # within 3 of 255 levels of mid grey (0 in [-1, 1])
_LUMA = (0.299, 0.587, 0.114)


def leak_statistics(images: torch.Tensor, labels: torch.Tensor | None = None, num_classes: int | None = None,
                    class_names: list[str] | None = None) -> dict:
    """images (N, 3, H, W) in [-1, 1]; labels (N, H, W) class ids or None -> the statistics of the module doc."""
    n, _, h, w = images.shape
    x = images.float()
    luma = sum(c * x[:, i] for i, c in enumerate(_LUMA))                           # (N, H, W)
    per_luma = luma.mean((1, 2))
    sat = (x.amax(1) - x.amin(1)).mean((1, 2))
    half = w // 2
    balance = luma[:, :, :half].mean((1, 2)) - luma[:, :, w - half:].mean((1, 2))
    grey = (x.abs() <= GREY_LEVELS).all(1).float()                                 # (N, H, W)
    b = max(1, h // 8)
    border = torch.ones(h, w, dtype=torch.bool, device=x.device)
    border[b:h - b, b:w - b] = False
    side = max(1, h // 4)
    squares = F.avg_pool2d(grey[:, None], side, stride=1)                          # share of grey in each window
    out = {"num_images": int(n), "luma_mean": float(per_luma.mean()), "luma_std": float(per_luma.std()),
           "saturation_mean": float(sat.mean()), "saturation_std": float(sat.std()),
           "lr_balance_std": float(balance.std()), "grey_border": float(grey[:, border].mean()),
           "grey_square": float((squares.flatten(1).amax(1) >= 1.0 - 1e-6).float().mean())}
    if labels is not None:
        k = num_classes if num_classes is not None else int(labels.max()) + 1
        names = class_names or [str(i) for i in range(k)]
        onehot = F.one_hot(labels.long(), k).permute(0, 3, 1, 2).float()            # (N, K, H, W)
        area = onehot.sum((2, 3))                                                  # (N, K)
        ys = (torch.arange(h, device=x.device, dtype=torch.float32) + 0.5) / h
        xs = (torch.arange(w, device=x.device, dtype=torch.float32) + 0.5) / w
        cy = (onehot.sum(3) * ys).sum(2) / area.clamp(min=1)
        cx = (onehot.sum(2) * xs).sum(2) / area.clamp(min=1)
        cents = {}
        for i, name in enumerate(names):
            have = area[:, i] > 0
            if have.sum() >= 2:
                cents[name] = {"y": float(cy[have, i].mean()), "x": float(cx[have, i].mean()),
                               "y_std": float(cy[have, i].std()), "x_std": float(cx[have, i].std()),
                               "share": float(have.float().mean())}
        out["centroids"] = cents
    return out


SCALARS = ("luma_mean", "luma_std", "saturation_mean", "saturation_std", "lr_balance_std", "grey_border",
           "grey_square")


def compare(generated: dict, real: dict) -> dict:
    """Both sets' statistics and the gaps (generated - real) of every scalar; `centroid_gap` the largest
    |difference| of a class's mean centroid (y or x, fraction of the size) over the classes both sets hold."""
    out = {"generated": generated, "real": real}
    out["gaps"] = {k: generated[k] - real[k] for k in SCALARS}
    gc, rc = generated.get("centroids"), real.get("centroids")
    if gc is not None and rc is not None:
        common = sorted(set(gc) & set(rc))
        gaps = {c: max(abs(gc[c]["y"] - rc[c]["y"]), abs(gc[c]["x"] - rc[c]["x"])) for c in common}
        out["gaps"]["centroid_gap"] = max(gaps.values()) if gaps else 0.0
        out["gaps"]["centroid_gap_class"] = max(gaps, key=gaps.get) if gaps else None
    return out
