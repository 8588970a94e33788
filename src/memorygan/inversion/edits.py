"""Edits on inverted codes: does a direction act on the codes an inversion found as it acts on the true codes, and
does it keep its slope on a PTI-tuned generator? (issue 14's evaluation; DESIGN 6.)

A *view* is a generator and the codes one or more images render from: the true codes of a sample, the codes
`memorygan invert` recovered for it, the recovered codes under the PTI-tuned copy of the generator. Every view holds
the same images in the same order. Each view is edited by the same direction at each alpha of a grid
(`editing.directions.edit_output`) and measured per image:

    slope             least-squares slope of (A(alpha) - A(0)) / s against alpha (s: the direction's scale, the
                      change it was asked for per unit alpha), the per-image form of `evaluate_direction`'s slope
                      (1 = the asked change; their mean over images is the pooled slope)
    pixel_diff        vs the reference view, per alpha: mean |edited view - edited reference| / 2 (0..1, the image
                      range [-1, 1] halved) and `psnr` (8-bit, `losses.psnr_uint8`) of the two edited images; at
                      alpha 0 it is the reconstruction error
    edit_diff         vs the reference view, per alpha != 0: mean |(view(a) - view(0)) - (ref(a) - ref(0))| /
                      mean |ref(a) - ref(0)|: how differently the edit moves the pixels (0: the same change; 1: as
                      large as the change itself), free of the reconstruction error

The assessor reads the image and the generator's own segmentation of it (e.g. `lightness:hair`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from memorygan.editing.directions import Direction, edit_output
from memorygan.models.codes import Codes
from memorygan.editing.evaluate import DEFAULT_ALPHAS
from memorygan.errors import ConfigError


@dataclass
class EditView:
    label: str
    G: object                      # the generator that renders this view
    source: Codes                 # its codes (B images)
    direction: Direction           # the direction, checked against G (a PTI copy: allow_other_generator)


def _alphas(alphas) -> list[float]:
    al = sorted(float(a) for a in alphas)
    if 0.0 not in al:
        al = sorted(al + [0.0])
    if len(al) < 3:
        raise ConfigError(f"alphas: need at least two non-zero values, got {al}")
    return al


@torch.no_grad()
def compare_edits(views: list[EditView], assessor, alphas=DEFAULT_ALPHAS, reference: str | None = None,
                  names: list[str] | None = None) -> dict:
    """Edit every view at every alpha and measure it (module docstring). `reference`: the label the others are
    compared with (default: the first view). Returns a JSON-able record: per view the per-image slopes and their
    mean, and (for views other than the reference) pixel_diff / psnr / edit_diff per alpha, per image and mean."""
    from memorygan.inversion.losses import psnr_uint8
    from memorygan.visualize import to_uint8

    if not views:
        raise ConfigError("compare_edits: give at least one view")
    labels = [v.label for v in views]
    if len(set(labels)) != len(labels):
        raise ConfigError(f"compare_edits: view labels must differ, got {labels}")
    ref_label = labels[0] if reference is None else reference
    if ref_label not in labels:
        raise ConfigError(f"compare_edits: reference {ref_label!r} is not one of the views {labels}")
    b = len(views[0].source)
    bad = [f"{v.label}: {len(v.source)}" for v in views if len(v.source) != b]
    if bad:
        raise ConfigError(f"compare_edits: every view must hold the same images ({b} in {labels[0]}; {', '.join(bad)})")
    al = _alphas(alphas)
    a0 = al.index(0.0)
    x = np.array(al)                                                                   # (A,)
    images, pixels, record = {}, {}, {"alphas": al, "reference": ref_label, "assessor": assessor.spec,
                          "names": list(names) if names else [f"image {i}" for i in range(b)], "views": {}}
    for v in views:
        outs = [edit_output(v.G, v.direction, v.source, a) for a in al]
        scores = np.stack([assessor(o.image, o.seg).double().cpu().numpy() for o in outs], 1)   # (B, A)
        rel = (scores - scores[:, a0:a0 + 1]) / v.direction.scale
        slopes = (rel * x).sum(1) / (x ** 2).sum()                                     # (B,)
        images[v.label] = torch.stack([o.image.detach().double().cpu() for o in outs], 1)     # (B, A, 3, H, W)
        pixels[v.label] = np.stack([to_uint8(o.image) for o in outs], 1)                        # (B, A, H, W, 3)
        record["views"][v.label] = {"direction": v.direction.describe(), "scale": v.direction.scale,
                                    "slope": [float(s) for s in slopes], "slope_mean": float(slopes.mean()),
                                    "score": scores.tolist()}
    ref = images[ref_label]
    ref_change = ref - ref[:, a0:a0 + 1]                                               # (B, A, 3, H, W)
    for label in labels:
        if label == ref_label:
            continue
        im = images[label]
        diff = (im - ref).abs().mean((2, 3, 4)) / 2                                    # (B, A) in [0, 1]
        psnr = [[psnr_uint8(pixels[label][i, j], pixels[ref_label][i, j]) for j in range(len(al))]
                for i in range(b)]
        change = im - im[:, a0:a0 + 1]
        num = (change - ref_change).abs().mean((2, 3, 4))                              # (B, A)
        den = ref_change.abs().mean((2, 3, 4))
        rec = record["views"][label]
        rec["pixel_diff"] = {f"{a:g}": [float(d) for d in diff[:, j]] for j, a in enumerate(al)}
        rec["pixel_diff_mean"] = {f"{a:g}": float(diff[:, j].mean()) for j, a in enumerate(al)}
        rec["psnr"] = {f"{a:g}": [float(p[j]) for p in psnr] for j, a in enumerate(al)}
        rec["psnr_mean"] = {f"{a:g}": float(np.mean([p[j] for p in psnr])) for j, a in enumerate(al)}
        ed = {}
        for j, a in enumerate(al):
            if j == a0:
                continue
            ed[f"{a:g}"] = [float(n / d) if d > 0 else math.nan for n, d in zip(num[:, j].tolist(),
                                                                                den[:, j].tolist())]
        rec["edit_diff"] = ed
        rec["edit_diff_mean"] = {a: float(np.nanmean(v)) if np.isfinite(v).any() else math.nan
                                 for a, v in ((a, np.array(v)) for a, v in ed.items())}
    return record
