"""The spatial editing study (docs/spatial-edits.md): every edit judged by the segmentation probe, which takes no part
in the edit (the closed-form edits read the generator's own coarse masks for their centres; drag reads its
features).

Per generated image (seeds seed, seed+1, ...) one part is chosen among those the probe finds with at least
MIN_PIXELS pixels, in turn. Measures, with P the probe's labels of the source and of the edited image:
    move    centroid error |c(after) - c(E)| of the part in P (px) and area ratio |after| / |E| (want 1), where E
            is the part's mask in P before, moved by d (and cropped by the image border, like the part);
    scale   the same with E the old mask scaled by s about its centroid (area ratio: of the requested area);
    remove  the part's remaining area / its area before;
    drag    handle = the part's innermost pixel in P, target = handle + d; the part's centroid in P should move by
            d: distance |c_after - (c_before + d)| against |d| before the drag;
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
KINDS = ("move", "move-coords-only", "move-raw", "move-unpreserved", "scale", "scale-coords-only", "remove",
         "drag-codes", "drag-coords")


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


def inner_point(mask: torch.Tensor) -> torch.Tensor | None:
    """The pixel (x, y) of a mask deepest inside it (the last to go under repeated erosion; ties: nearest the
    centroid): where a user would put a handle on the part. A centroid can lie outside its part (a hair cap)."""
    if not bool(mask.any()):
        return None
    m = mask[None, None].float()
    while True:
        eroded = -F.max_pool2d(-m, 3, 1, 1)
        if not bool(eroded.any()):
            break
        m = eroded
    ys, xs = torch.nonzero(m[0, 0] > 0, as_tuple=True)
    pts = torch.stack([xs.float(), ys.float()], -1)
    c = centroid(mask)
    return pts[torch.linalg.norm(pts - c, dim=1).argmin()]


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
        scale = SpatialEdit(transforms=[PartTransform(part, scale=factor, centre=tuple(c0.tolist()))])
        edits = {"move": (move, "keep-mask", True, True), "move-coords-only": (move, "keep-mask", True, False),
                 "move-raw": (move, "raw", True, True), "move-unpreserved": (move, "keep-mask", False, True),
                 "scale": (scale, "keep-mask", True, True), "scale-coords-only": (scale, "keep-mask", True, False),
                 "remove": (SpatialEdit(remove=[part]), "keep-mask", True, True)}
        for kind, (edit, depth, preserve, warp) in edits.items():
            t0 = time.perf_counter()
            res = spatial_edit(G, src, edit, depth=depth, preserve=preserve, warp=warp)
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
            handle = inner_point(m0)
            target = handle + torch.tensor(d)
            if not bool(((target >= 0) & (target <= G.config.resolution - 1)).all()):
                continue
            region = m0 | shift_mask(m0, d)
            mask = dilate(region, DILATE).float()
            for space in ("codes", "coords"):
                res = drag(G, src, handle[None], target[None], mask=mask, space=space,
                           parts=[part] if space == "coords" else None, **(drag_kw or {}))
                l1 = judge.labels(res.after["image"])[0]
                c1 = centroid(l1 == part)
                dist = float(torch.linalg.norm(torch.tensor(d)))
                # the part's displacement in the probe's labels against the one asked for
                row = {"seed": s, "part": names[part], "seconds": res.seconds, "steps": res.steps,
                       "converged": res.converged, "distance_before": dist,
                       "distance_after": None if c1 is None else float(torch.linalg.norm(c1 - c0 - torch.tensor(d))),
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
            known = [e for e in errs if e is not None] or [float("nan")]
            s.update(centroid_error=_mean(errs), centroid_error_median=float(np.median(known)),
                     lost=sum(e is None for e in errs), area_ratio=_mean(r["area_ratio"] for r in rs))
        elif kind.startswith("scale"):
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


def write_spatial_report(gens: dict, probe, out, n: int = 100, drag_n: int = 50, seed: int = 0, truth_n: int = 0,
                         truth_steps: int = 300, drag_kw: dict | None = None) -> Path:
    from memorygan.analysis.figures import label_rows, save_png, write_json
    from memorygan.visualize import grid, to_uint8

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    report = {"n": n, "drag_n": drag_n, "seed": seed, "models": {}}
    for label, G in gens.items():
        judge = Judge(probe, G.device)
        strips = {}
        t0 = time.perf_counter()
        rows = study(G, judge, n, drag_n, seed, strips, drag_kw=drag_kw)
        if truth_n:
            report.setdefault("truth", {})[label] = truth_study(G, judge, truth_n, inversion_steps=truth_steps,
                                                               drag_kw=drag_kw)
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
    text = markdown(report)
    for label, t in report.get("truth", {}).items():
        text += "\n" + truth_markdown(label, t)
    md.write_text(text)
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
            elif kind.startswith("scale"):
                err = _f(s["centroid_error"])
                area = f"{_f(s['area_vs_requested'])} of asked ({100 * s['within_10pct']:.0f}% ±10%)"
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


# ------------------------------------------------------------------------------------- against the renderer's truth
HEAD_PARTS = ("skin", "eyes", "eyebrows", "mouth", "nose", "ears", "hair", "eyeglasses", "hat", "earrings")
BODY_PARTS = ("neck", "cloth")        # the renderer moves the body frame by 0.6 of the head's dx
TRUTH_KINDS = ("head", "eyes")


def _psnr(a: torch.Tensor, b: torch.Tensor, where: torch.Tensor | None = None) -> float:
    """PSNR in dB of images in [-1, 1] (peak-to-peak 2), over the pixels `where` (H, W) if given."""
    d = (a.float().clamp(-1, 1) - b.float().clamp(-1, 1)) ** 2
    d = d.mean(1)[0]
    mse = float(d[where].mean() if where is not None else d.mean())
    return float(10 * math.log10(4.0 / max(mse, 1e-10)))


def _eye_centroids(ids: torch.Tensor, eyes: int) -> torch.Tensor | None:
    """(2, 2): the left and right eye's centroids (x, y) of a label map (split at the eyes' mean x)."""
    m = ids == eyes
    c = centroid(m)
    if c is None:
        return None
    xs = torch.arange(m.shape[1])[None].expand_as(m)
    left, right = m & (xs < c[0]), m & (xs >= c[0])
    cl, cr = centroid(left), centroid(right)
    return None if cl is None or cr is None else torch.stack([cl, cr])


def truth_cases(n: int, seed: int, size: int, rng: np.random.Generator) -> list[dict]:
    """Held-out portraits (dataset seed `seed`) and an edited copy of each record, rendered: a head shift
    (pose dx, dy) or wider-set eyes (eyes spacing), in turn."""
    import copy

    from memorygan.data.portraits import render_portrait, sample_portrait

    cases = []
    for i in range(n):
        rec = sample_portrait(np.random.default_rng([seed, i]))
        kind = TRUTH_KINDS[i % len(TRUTH_KINDS)]
        new = copy.deepcopy(rec)
        if kind == "head":
            new["pose"]["dx"] = rec["pose"]["dx"] + float(rng.choice([-1, 1]) * rng.uniform(0.12, 0.2))
            new["pose"]["dy"] = rec["pose"]["dy"] + float(rng.uniform(-0.08, 0.08))
        else:
            new["eyes"]["spacing"] = rec["eyes"]["spacing"] + float(rng.uniform(0.04, 0.06))
        img0, ids0 = render_portrait(rec, size)
        img1, ids1 = render_portrait(new, size)
        to_t = (lambda im: torch.from_numpy(np.ascontiguousarray(im)).permute(2, 0, 1)[None].float() / 127.5 - 1)
        cases.append({"index": i, "kind": kind, "image0": to_t(img0), "ids0": torch.from_numpy(ids0.astype(np.int64)),
                      "image1": to_t(img1), "ids1": torch.from_numpy(ids1.astype(np.int64))})
    return cases


def truth_study(G, judge: Judge, n: int = 50, seed: int = 1000, inversion_steps: int = 300,
                drag_kw: dict | None = None) -> dict:
    """Edits of inverted held-out portraits against the renderer's edited picture (see `truth_cases`):
    head: every head part moved by the true displacement of the skin (the body by 0.6 of it, as the renderer does),
          and a drag of the face (handle: the skin's innermost pixel, target: + the displacement);
    eyes: the eyes scaled in x about their centre by the true ratio of the eye spacing, and a drag with the two eye
          centroids as handles and their new places as targets.
    PSNR against the true edited picture (whole image, and inside the moved parts' old and new place), beside the
    unedited inversion's (what no edit gives) and the inversion of the true picture itself (the best this generator
    can draw it); the probe's centroids of the moved parts against the truth's."""
    from memorygan.models.codes import Codes
    from memorygan.inversion import InversionOptions, load_perceptual, project

    names = G.part_names
    res = G.config.resolution
    rng = np.random.default_rng(seed)
    cases = truth_cases(n, seed, res, rng)
    images = torch.cat([c["image0"] for c in cases] + [c["image1"] for c in cases]).to(G.device)
    ids = torch.stack([c["ids0"] for c in cases] + [c["ids1"] for c in cases]).to(G.device)
    t0 = time.perf_counter()
    with torch.enable_grad():
        proj = project(G, images, InversionOptions(steps=inversion_steps, stats_samples=500),
                       load_perceptual("auto", device=G.device), ids=ids)
    invert_seconds = (time.perf_counter() - t0) / len(images)
    rows = []
    skin, eyes = names.index("skin"), names.index("eyes")
    head = [names.index(p) for p in HEAD_PARTS if p in names]
    body = [names.index(p) for p in BODY_PARTS if p in names]
    for j, c in enumerate(cases):
        noise = None if proj.noise is None else [m[j:j + 1] for m in proj.noise]
        src = Codes(proj.expanded[j:j + 1].detach(), noise=noise)
        ids0, ids1, truth = c["ids0"], c["ids1"], c["image1"].to(G.device)
        row = {"index": c["index"], "kind": c["kind"]}
        if c["kind"] == "head":
            d = centroid(ids1 == skin) - centroid(ids0 == skin)
            moved = head
            edit = SpatialEdit(transforms=[PartTransform(p, shift=tuple(d.tolist())) for p in head]
                               + [PartTransform(p, shift=tuple((0.6 * d).tolist())) for p in body])
            h0 = inner_point(ids0 == skin)
            handles, targets = h0[None], (h0 + d)[None]
            keys0, keys1 = centroid(ids0 == skin)[None], centroid(ids1 == skin)[None]
            drag_parts = {"coords": head + body, "codes": None}
            judge_keys = (lambda lab: None if centroid(lab == skin) is None else centroid(lab == skin)[None])
        else:
            e0, e1 = _eye_centroids(ids0, eyes), _eye_centroids(ids1, eyes)
            if e0 is None or e1 is None:
                continue
            ratio = float((e1[1, 0] - e1[0, 0]) / (e0[1, 0] - e0[0, 0]))
            moved = [eyes]
            edit = SpatialEdit(transforms=[PartTransform(eyes, scale=(ratio, 1.0),
                                                         centre=tuple(centroid(ids0 == eyes).tolist()))])
            handles, targets = e0, e1
            keys0, keys1 = e0, e1
            drag_parts = {"coords": [eyes], "codes": None}
            judge_keys = (lambda lab: _eye_centroids(lab, eyes))
        region = torch.zeros_like(ids0, dtype=torch.bool)
        for p in moved:
            region |= (ids0 == p) | (ids1 == p)
        region = dilate(region, DILATE)
        row["key_distance_before"] = float(torch.linalg.norm(keys1 - keys0, dim=1).mean())
        with torch.no_grad():
            base = G(expanded=src.expanded, noise=noise).image
        row["psnr_unedited"], row["psnr_unedited_region"] = _psnr(base, truth), _psnr(base, truth, region)
        oracle = proj.image[len(cases) + j:len(cases) + j + 1]
        row["psnr_oracle"], row["psnr_oracle_region"] = _psnr(oracle, truth), _psnr(oracle, truth, region)
        row["psnr_source_inversion"] = _psnr(proj.image[j:j + 1], c["image0"].to(G.device))
        outs = {"closed-form": spatial_edit(G, src, edit).after["image"]}
        for space in ("codes", "coords"):
            r = drag(G, src, handles, targets, space=space, parts=drag_parts[space], **(drag_kw or {}))
            outs[f"drag-{space}"] = r.after["image"]
            row[f"drag-{space}_seconds"] = r.seconds
        for name, image in outs.items():
            lab = judge.labels(image)[0]
            keys = judge_keys(lab)
            row[f"{name}_psnr"], row[f"{name}_psnr_region"] = _psnr(image, truth), _psnr(image, truth, region)
            row[f"{name}_key_distance"] = None if keys is None else float(torch.linalg.norm(keys - keys1, dim=1).mean())
        rows.append(row)
    return {"rows": rows, "invert_seconds_per_image": invert_seconds, "inversion_steps": inversion_steps,
            "seed": seed, "summary": summarise_truth(rows)}


def summarise_truth(rows: list[dict]) -> dict:
    out = {}
    for kind in TRUTH_KINDS:
        rs = [r for r in rows if r["kind"] == kind]
        if not rs:
            continue
        s = {"n": len(rs), "key_distance_before": _mean(r["key_distance_before"] for r in rs)}
        for key in ("unedited", "oracle"):
            s[f"psnr_{key}"] = _mean(r[f"psnr_{key}"] for r in rs)
            s[f"psnr_{key}_region"] = _mean(r[f"psnr_{key}_region"] for r in rs)
        for name in ("closed-form", "drag-codes", "drag-coords"):
            s[name] = {"psnr": _mean(r[f"{name}_psnr"] for r in rs),
                       "psnr_region": _mean(r[f"{name}_psnr_region"] for r in rs),
                       "key_distance": _mean(r[f"{name}_key_distance"] for r in rs),
                       "lost": sum(r[f"{name}_key_distance"] is None for r in rs)}
        out[kind] = s
    return out


def truth_markdown(label: str, t: dict) -> str:
    lines = [f"| {label}: edit | n | key distance to the truth (px) | PSNR whole / region (dB) |", "|---|---|---|---|"]
    for kind, s in t["summary"].items():
        lines.append(f"| {kind}: no edit (inverted source) | {s['n']} | {_f(s['key_distance_before'])} | "
                     f"{_f(s['psnr_unedited'], 1)} / {_f(s['psnr_unedited_region'], 1)} |")
        for name in ("closed-form", "drag-codes", "drag-coords"):
            v = s[name]
            lines.append(f"| {kind}: {name} | {s['n']} | {_f(v['key_distance'])} ({v['lost']} lost) | "
                         f"{_f(v['psnr'], 1)} / {_f(v['psnr_region'], 1)} |")
        lines.append(f"| {kind}: inversion of the truth (best possible) | {s['n']} | — | "
                     f"{_f(s['psnr_oracle'], 1)} / {_f(s['psnr_oracle_region'], 1)} |")
    return "\n".join(lines) + "\n"
