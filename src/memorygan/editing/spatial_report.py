"""The spatial editing study (docs/spatial-edits.md): every edit judged by the segmentation probe, which takes no part
in the edit (the closed-form edits read the generator's own coarse masks for their centres; drag reads its
features).

Per generated image (seeds seed, seed+1, ...) one part is chosen among those the probe finds with at least
MIN_PIXELS pixels, in turn. Measures, with P the probe's labels of the source and of the edited image:
    move    centroid error |c(after) - c(E)| of the part in P (px) and area ratio |after| / |E| (want 1), where E
            is the part's mask in P before, moved by d (and cropped by the image border, like the part);
    scale   the same with E the old mask scaled by s about its centroid (area ratio: of the requested area);
    remove  the part's remaining area / its area before;
    drag    handle = the part's centroid in P, target = handle + d; distance |c_after - target| / |d|;
and for all: the non-target mIoU of P after vs P before outside the edited region (the part's old and new place,
dilated by DILATE px), the mean absolute image change there (leakage, in [0, 2] units), and the time per edit.
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from memorygan.editing.directions import seed_source
from memorygan.editing.drag import drag
from memorygan.editing.spatial import PartTransform, SpatialEdit, spatial_edit

MIN_PIXELS = 12
BORDER = 2
DILATE = 2
PARTS = ("skin", "hair", "mouth", "nose", "eyes", "eyebrows", "ears", "neck", "cloth")
#: parts that span several coarse pixels in a 64-px portrait (the others are about one coarse pixel or less)
LARGE = ("skin", "hair", "neck", "cloth")
KINDS = ("move", "move-raw", "move-unpreserved", "scale", "remove", "drag-codes", "drag-coords")


def dilate(mask: torch.Tensor, px: int) -> torch.Tensor:
    """(H, W) bool -> dilated by a (2px+1)^2 square."""
    return F.max_pool2d(mask[None, None].float(), 2 * px + 1, 1, px)[0, 0] > 0


def shift_mask(mask: torch.Tensor, d) -> torch.Tensor:
    """(H, W) bool moved by d = (dx, dy) (rounded), zero filled."""
    dx, dy = int(round(d[0])), int(round(d[1]))
    out = torch.zeros_like(mask)
    h, w = mask.shape
    ys, xs = torch.nonzero(mask, as_tuple=True)
    ys, xs = ys + dy, xs + dx
    ok = (ys >= 0) & (ys < h) & (xs >= 0) & (xs < w)
    out[ys[ok], xs[ok]] = True
    return out


def scale_mask(mask: torch.Tensor, s: float, centre) -> torch.Tensor:
    """(H, W) bool scaled by s about centre (x, y): nearest-neighbour inverse mapping."""
    h, w = mask.shape
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    sx = ((xs - centre[0]) / s + centre[0]).round().long()
    sy = ((ys - centre[1]) / s + centre[1]).round().long()
    ok = (sx >= 0) & (sx < w) & (sy >= 0) & (sy < h)
    out = torch.zeros_like(mask)
    out[ok] = mask[sy[ok], sx[ok]]
    return out


def centroid(mask: torch.Tensor) -> torch.Tensor | None:
    ys, xs = torch.nonzero(mask, as_tuple=True)
    if len(xs) == 0:
        return None
    return torch.stack([xs.float().mean(), ys.float().mean()])


def miou_outside(a: torch.Tensor, b: torch.Tensor, outside: torch.Tensor, skip: int) -> float:
    """mIoU of label maps a vs b over the pixels `outside`, classes present in either there, without `skip`."""
    a, b = a[outside], b[outside]
    ious = []
    for c in torch.unique(torch.cat([a, b])).tolist():
        if c == skip:
            continue
        inter = ((a == c) & (b == c)).sum().item()
        union = ((a == c) | (b == c)).sum().item()
        ious.append(inter / union)
    return float(np.mean(ious)) if ious else 1.0


class Judge:
    def __init__(self, probe_dir, device):
        from memorygan.metrics.probe import load_probe

        self.net, _ = load_probe(probe_dir, device)
        self.net.eval().requires_grad_(False)

    @torch.no_grad()
    def labels(self, image: torch.Tensor) -> torch.Tensor:
        return self.net(image.float()).argmax(1).cpu()


def _usable(mask: torch.Tensor) -> bool:
    """At least MIN_PIXELS pixels, none within BORDER px of the image border (a part cut by the border has no
    known shape beyond it: moving it inwards must invent the rest, and its centroid says nothing)."""
    inner = mask[BORDER:-BORDER, BORDER:-BORDER]
    return int(mask.sum()) >= MIN_PIXELS and int(inner.sum()) == int(mask.sum())


def _pick(labels: torch.Tensor, own: torch.Tensor, names: list[str], i: int):
    """The i-th (cyclically) of the parts that both the probe (`labels`) and the generator's own segmentation
    (`own`) find (`_usable`): a part the generator does not draw as that part cannot be moved."""
    present = [names.index(p) for p in PARTS if p in names and _usable(labels == names.index(p))
               and _usable(own == names.index(p))]
    if not present:
        return None
    return present[i % len(present)]


def _offset(rng: np.random.Generator, lo: float = 3.0, hi: float = 6.0) -> tuple[float, float]:
    a = rng.uniform(0, 2 * math.pi)
    r = rng.uniform(lo, hi)
    return float(round(r * math.cos(a))), float(round(r * math.sin(a)))


def _common(before_img, after_img, l0, l1, region, part) -> dict:
    outside = ~dilate(region, DILATE)
    diff = (after_img[0] - before_img[0]).abs().mean(0).cpu()
    return {"nontarget_miou": miou_outside(l0, l1, outside, part),
            "labels_kept": float((l0[outside] == l1[outside]).float().mean()) if bool(outside.any()) else 1.0,
            "leakage": float(diff[outside].mean()) if bool(outside.any()) else 0.0}


def study(G, judge: Judge, n: int, drag_n: int, seed: int = 0, strips: dict | None = None,
          drag_kw: dict | None = None) -> dict:
    names = G.part_names
    rng = np.random.default_rng(seed)
    rows = {k: [] for k in KINDS}
    for i in range(n):
        s = seed + i
        src = seed_source(G, [s])
        with torch.no_grad():
            before = G(expanded=src.expanded)
        l0 = judge.labels(before.image)[0]
        part = _pick(l0, before.seg[0].argmax(0).cpu(), names, i)
        if part is None:
            continue
        m0 = l0 == part
        c0 = centroid(m0)
        d = _offset(rng)
        factor = 1.25 if i % 2 else 0.8
        move = SpatialEdit(transforms=[PartTransform(part, shift=d)])
        edits = {"move": (move, "keep-mask", True), "move-raw": (move, "raw", True),
                 "move-unpreserved": (move, "keep-mask", False),
                 "scale": (SpatialEdit(transforms=[PartTransform(part, scale=factor, centre=tuple(c0.tolist()))]),
                           "keep-mask", True),
                 "remove": (SpatialEdit(remove=[part]), "keep-mask", True)}
        for kind, (edit, depth, preserve) in edits.items():
            t0 = time.perf_counter()
            res = spatial_edit(G, src, edit, depth=depth, preserve=preserve)
            secs = time.perf_counter() - t0
            l1 = judge.labels(res.after["image"])[0]
            m1 = l1 == part
            row = {"seed": s, "part": names[part], "seconds": secs, "area_before": int(m0.sum())}
            if kind != "remove":
                want = shift_mask(m0, d) if kind.startswith("move") else scale_mask(m0, factor, c0.tolist())
                region = m0 | want
                c1, cw = centroid(m1), centroid(want)
                row.update(area_ratio=float(m1.sum()) / max(float(want.sum()), 1.0),
                           centroid_error=None if c1 is None or cw is None else float(torch.linalg.norm(c1 - cw)))
                if kind.startswith("move"):
                    row["shift"] = list(d)
                else:
                    row["factor"] = factor
            else:
                region = m0
                row.update(remaining=float(m1.sum()) / float(m0.sum()))
            row.update(_common(before.image, res.after["image"], l0, l1, region, part))
            rows[kind].append(row)
            if strips is not None and len(strips.setdefault(kind, [])) < 6:
                strips[kind].append((before.image, res.after["image"], names[part]))
        if i < drag_n:
            target = c0 + torch.tensor(d)
            if not bool(((target >= 0) & (target <= G.config.resolution - 1)).all()):
                continue
            region = m0 | shift_mask(m0, d)
            mask = dilate(region, DILATE).float()
            for space in ("codes", "coords"):
                res = drag(G, src, c0[None], target[None], mask=mask, space=space,
                           parts=[part] if space == "coords" else None, **(drag_kw or {}))
                l1 = judge.labels(res.after["image"])[0]
                c1 = centroid(l1 == part)
                dist = float(torch.linalg.norm(torch.tensor(d)))
                row = {"seed": s, "part": names[part], "seconds": res.seconds, "steps": res.steps,
                       "converged": res.converged, "distance_before": dist,
                       "distance_after": None if c1 is None else float(torch.linalg.norm(c1 - target)),
                       "tracked_after": res.trace[-1]}
                row.update(_common(before.image, res.after["image"], l0, l1, region, part))
                rows[f"drag-{space}"].append(row)
                if strips is not None and len(strips.setdefault(f"drag-{space}", [])) < 6:
                    strips[f"drag-{space}"].append((before.image, res.after["image"], names[part]))
    return rows


def _mean(values) -> float | None:
    v = [x for x in values if x is not None and not (isinstance(x, float) and math.isnan(x))]
    return float(np.mean(v)) if v else None


def summarise(rows: dict) -> dict:
    out = {}
    for kind, rs in rows.items():
        if not rs:
            continue
        s = {"n": len(rs), "nontarget_miou": _mean(r["nontarget_miou"] for r in rs),
             "leakage": _mean(r["leakage"] for r in rs), "labels_kept": _mean(r["labels_kept"] for r in rs),
             "seconds": _mean(r["seconds"] for r in rs)}
        if kind.startswith("move"):
            errs = [r["centroid_error"] for r in rs]
            s.update(centroid_error=_mean(errs), centroid_error_median=float(np.median([e for e in errs if e is not None]
                                                                                        or [float("nan")])),
                     lost=sum(e is None for e in errs), area_ratio=_mean(r["area_ratio"] for r in rs))
        elif kind == "scale":
            s.update(area_vs_requested=_mean(r["area_ratio"] for r in rs),
                     within_10pct=_mean(float(abs(r["area_ratio"] - 1) <= 0.1) for r in rs),
                     centroid_error=_mean(r["centroid_error"] for r in rs))
        elif kind == "remove":
            s.update(remaining=_mean(r["remaining"] for r in rs))
        else:
            after = [r["distance_after"] for r in rs]
            s.update(distance_before=_mean(r["distance_before"] for r in rs), distance_after=_mean(after),
                     ratio=(_mean(after) or float("nan")) / _mean(r["distance_before"] for r in rs),
                     lost=sum(a is None for a in after), converged=_mean(float(r["converged"]) for r in rs),
                     steps=_mean(r["steps"] for r in rs))
        out[kind] = s
    return out


def by_part(rows: dict, kind: str, key: str) -> dict:
    """{part: {n, mean of key}} over one kind's rows, plus "large parts" and "small parts" groups."""
    parts = {}
    for r in rows.get(kind, []):
        parts.setdefault(r["part"], []).append(r[key])
        parts.setdefault("large parts" if r["part"] in LARGE else "small parts", []).append(r[key])
    return {p: {"n": len(v), key: _mean(v)} for p, v in sorted(parts.items())}


def write_spatial_report(gens: dict, probe, out, n: int = 100, drag_n: int = 50, seed: int = 0) -> Path:
    from memorygan.analysis.figures import label_rows, save_png, write_json
    from memorygan.visualize import grid, to_uint8

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    report = {"n": n, "drag_n": drag_n, "seed": seed, "models": {}}
    for label, G in gens.items():
        judge = Judge(probe, G.device)
        strips = {}
        t0 = time.perf_counter()
        rows = study(G, judge, n, drag_n, seed, strips)
        report["models"][label] = {"summary": summarise(rows), "rows": rows,
                                   "move_by_part": by_part(rows, "move", "centroid_error"),
                                   "drag_by_part": by_part(rows, "drag-codes", "distance_after"),
                                   "seconds": time.perf_counter() - t0}
        for kind, items in strips.items():
            pics = [np.concatenate([to_uint8(b)[0], to_uint8(a)[0]], 1) for b, a, _ in items]
            save_png(label_rows(grid([np.stack(pics)]), [kind], G.config.resolution * 2),
                     out / f"{_slug(label)}-{kind}.png")
        write_json(report, out / "report.json")
    md = out / "report.md"
    md.write_text(markdown(report))
    return md


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in str(text)).strip("-")


def _f(x, nd=2):
    return "—" if x is None else f"{x:.{nd}f}"


def markdown(report: dict) -> str:
    lines = ["| model | edit | n | centroid error (px) | area | non-target mIoU | labels kept | leakage | time (s) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for label, m in report["models"].items():
        for kind, s in m["summary"].items():
            if kind.startswith("drag"):
                err = f"{_f(s['distance_before'])} → {_f(s['distance_after'])} (x{_f(s['ratio'])})"
                area = f"{s['lost']} lost, {100 * s['converged']:.0f}% conv."
            elif kind == "scale":
                err, area = _f(s["centroid_error"]), f"{_f(s['area_vs_requested'])} of asked ({100 * s['within_10pct']:.0f}% ±10%)"
            elif kind == "remove":
                err, area = "—", f"{100 * s['remaining']:.0f}% left"
            else:
                err = f"{_f(s['centroid_error'])} (median {_f(s['centroid_error_median'])})"
                area = f"x{_f(s['area_ratio'])}"
            lines.append(f"| {label} | {kind} | {s['n']} | {err} | {area} | {_f(s['nontarget_miou'], 3)} | "
                         f"{100 * s['labels_kept']:.1f}% | {_f(s['leakage'], 3)} | {_f(s['seconds'], 3)} |")
    for label, m in report["models"].items():
        for table, key in (("move_by_part", "centroid_error"), ("drag_by_part", "distance_after")):
            cells = ", ".join(f"{p} {_f(v[key])} (n={v['n']})" for p, v in m[table].items())
            lines.append(f"\n{label}, {table.replace('_', ' ')} ({key.replace('_', ' ')}): {cells}")
    return "\n".join(lines) + "\n\n```json\n" + json.dumps({k: v["summary"] for k, v in report["models"].items()},
                                                          indent=1) + "\n```\n"
