"""CLI: `memorygan edit move|scale|rotate|remove|clone|drag|spatial-report` (spatial part edits, issue 29)."""
from __future__ import annotations

import argparse

from memorygan.argtypes import non_negative_int as _non_negative
from memorygan.argtypes import positive_int as _positive
from memorygan.argtypes import seed_list as _seeds
from memorygan.devices import add_device_argument


def _pair(text: str) -> tuple[float, float]:
    try:
        vals = [float(v) for v in text.replace(" ", "").split(",")]
    except ValueError:
        vals = []
    if len(vals) != 2:
        raise argparse.ArgumentTypeError(f"expected two numbers X,Y (image pixels), got {text!r}")
    return vals[0], vals[1]


def _factor(text: str) -> float | tuple[float, float]:
    try:
        vals = [float(v) for v in text.replace(" ", "").split(",")]
    except ValueError:
        vals = []
    if len(vals) not in (1, 2) or not all(v > 0 for v in vals):
        raise argparse.ArgumentTypeError(f"a scale factor is one positive number or two (SX,SY), got {text!r}")
    return vals[0] if len(vals) == 1 else (vals[0], vals[1])


def _points(text: str) -> list[tuple[float, float]]:
    pts = [p for p in text.replace(" ", "").split(";") if p]
    if not pts:
        raise argparse.ArgumentTypeError("give at least one point, e.g. 20,30 or 20,30;40,30")
    return [_pair(p) for p in pts]


def register(sub, common) -> None:
    from memorygan.editing.drag import LAYER_CHOICES, SPACES, SUPERVISE, TRACKING
    from memorygan.editing.spatial import DEPTH_MODES

    src = argparse.ArgumentParser(add_help=False)
    group = src.add_mutually_exclusive_group()
    group.add_argument("--seeds", type=_seeds, help="images to edit: generated seeds, e.g. 0-3 (default 0)")
    group.add_argument("--codes", help="images to edit: a codes file (e.g. from `memorygan invert`)")
    src.add_argument("--truncation", type=float, default=1.0, help="psi of --seeds samples (default 1)")
    src.add_argument("--out", required=True, help="output folder (before/after images and masks, strip.png, "
                                                  "metrics.json)")

    closed = argparse.ArgumentParser(add_help=False)
    closed.add_argument("--depth", choices=DEPTH_MODES, default="keep-mask",
                        help="keep-mask: the part's mask is exactly its old mask transformed (default); raw: the "
                             "pseudo-depth the part has at its new coordinates competes as it is")
    closed.add_argument("--no-warp", action="store_true",
                        help="move only the part's coordinates, not also its render activations (default: both; at "
                             "a coarse fusion grid small parts are drawn by the render net and barely move without)")
    closed.add_argument("--no-preserve", action="store_true",
                        help="let the render net change pixels outside the edited parts' old and new places "
                             "(default: they are kept as they were, bit for bit)")

    def part_arg(p):
        p.add_argument("--part", required=True, help="the part, by name or id (e.g. mouth)")

    def centre_arg(p):
        p.add_argument("--centre", type=_pair, help="X,Y centre in image pixels (default: the part's centroid)")

    desc = ("Closed-form spatial edit through the part's coordinate grid (the local generators are 1x1 convs on "
            "Fourier features of the coordinates, so new coordinates draw the part transformed, its pseudo-depth "
            "with it). Codes do not change. Writes before/after images and masks, difference.png, strip.png and "
            "metrics.json (the part's centroid and area before and after, from the generator's masks).")
    p = sub.add_parser("move", parents=[common, src, closed], help="move a part by DX,DY pixels", description=desc)
    part_arg(p)
    p.add_argument("--by", type=_pair, required=True, help="DX,DY in image pixels (x right, y down)")
    p.set_defaults(func=run_closed, kind="move")

    p = sub.add_parser("scale", parents=[common, src, closed], help="scale a part about its centroid",
                       description=desc)
    part_arg(p)
    p.add_argument("--factor", type=_factor, required=True, help="S or SX,SY (1.2 = 20%% larger)")
    centre_arg(p)
    p.set_defaults(func=run_closed, kind="scale")

    p = sub.add_parser("rotate", parents=[common, src, closed], help="turn a part about its centroid",
                       description=desc)
    part_arg(p)
    p.add_argument("--degrees", type=float, required=True, help="angle, counter-clockwise on screen")
    centre_arg(p)
    p.set_defaults(func=run_closed, kind="rotate")

    p = sub.add_parser("remove", parents=[common, src, closed], help="remove parts (the composition mask)",
                       description="Draw the image without the given parts: the parts under them fill their "
                                   "place. " + desc.split(". ", 3)[-1])
    p.add_argument("--parts", required=True, help="comma-separated part names or ids, e.g. eyeglasses,hat")
    p.set_defaults(func=run_closed, kind="remove")

    p = sub.add_parser("clone", parents=[common, src, closed], help="add a copy of a part at another place",
                       description="Add a copy of a part, generated from its codes at transformed coordinates and "
                                   "fused as one more part. " + desc.split(". ", 3)[-1])
    part_arg(p)
    p.add_argument("--by", type=_pair, required=True, help="DX,DY of the copy in image pixels")
    p.add_argument("--factor", type=_factor, default=1.0, help="scale of the copy (default 1)")
    p.set_defaults(func=run_closed, kind="clone")

    from memorygan.editing.drag import LAMBDA_MASK, R1, R2, STEPS, STOP_PX
    p = sub.add_parser("drag", parents=[common, src], help="drag handle points to targets (DragGAN)",
                       description="Move handle points to target points: motion supervision on a generator feature "
                                   "map and point tracking (DragGAN), over the part codes (space codes) or an "
                                   "affine transform of each part's coordinates (space coords); stops when every "
                                   "handle is within --stop-px of its target. Writes the before/after files, "
                                   "steps.png (every 10th step), metrics.json and, for space codes, "
                                   "edited-codes.safetensors.")
    p.add_argument("--handles", type=_points, required=True, help="handle points X,Y;X,Y... in image pixels")
    p.add_argument("--targets", type=_points, required=True, help="target points, one per handle")
    p.add_argument("--mask", help="PNG at the generator's resolution: white = may move, black = keep")
    p.add_argument("--space", choices=SPACES, default="codes",
                   help="codes: the parts' codes (DragGAN; default); coords: an affine map of each part's "
                        "coordinates")
    p.add_argument("--parts", help="parts whose codes / coordinates move: names or ids, or 'handles' for the "
                                   "parts under the handles (default: all parts for codes, handles for coords)")
    p.add_argument("--layers", choices=LAYER_CHOICES, default="shape",
                   help="space codes: the shape codes (default, like DragGAN's first W+ codes), texture or all")
    p.add_argument("--feature", default="render:-2+seg",
                   help="feature maps for motion supervision and tracking: fused, seg, render:B, or several joined "
                        "by + (default render:-2+seg)")
    p.add_argument("--supervise", choices=SUPERVISE, default="part",
                   help="motion supervision over the handle's part (default) or a disk of radius --r1 (DragGAN)")
    p.add_argument("--tracking", choices=TRACKING, default="mask",
                   help="handles follow their part's centroid in the generator's mask (default) or the nearest "
                        "feature patch within --r2 (DragGAN)")
    p.add_argument("--steps", type=_positive, default=STEPS, help=f"at most this many steps (default {STEPS})")
    p.add_argument("--lr", type=float, help="Adam learning rate (default 2e-3 for codes, 1e-2 for coords)")
    p.add_argument("--r1", type=_positive, default=R1, help=f"motion supervision radius in px (default {R1})")
    p.add_argument("--r2", type=_positive, default=R2, help=f"point tracking search radius in px (default {R2})")
    p.add_argument("--stop-px", type=float, default=STOP_PX, help=f"stop distance in px (default {STOP_PX})")
    p.add_argument("--lambda-mask", type=float, default=LAMBDA_MASK,
                   help=f"weight of the term that keeps the features outside --mask (default {LAMBDA_MASK})")
    p.set_defaults(func=run_drag)

    p = sub.add_parser("spatial-report", help="the spatial editing study of docs/spatial-edits.md",
                       description="Move, scale, remove and drag parts of generated portraits and judge every edit "
                                   "with the segmentation probe (centroid error, area ratio, leakage, non-target "
                                   "mIoU, time); writes report.json, report.md and strips.")
    p.add_argument("--generator", action="append", required=True,
                   help="generator (repeatable), e.g. portraits-memorygan --generator portraits-ssg")
    p.add_argument("--labels", type=lambda t: [x.strip() for x in t.split(",") if x.strip()],
                   help="comma-separated labels, one per --generator (default: their names)")
    p.add_argument("--probe", required=True, help="segmentation probe folder (`memorygan metrics probe`)")
    p.add_argument("--n", type=_positive, default=100, help="edits per kind and generator (default 100)")
    p.add_argument("--drag-n", type=_non_negative, help="drag edits per generator (default --n; 0: none)")
    p.add_argument("--seed", type=int, default=0, help="first seed of the images (default 0)")
    p.add_argument("--truth", type=_non_negative, default=0,
                   help="also edit this many inverted held-out portraits against the renderer's edited picture "
                        "(head shift, eye spacing; default 0)")
    p.add_argument("--truth-steps", type=_positive, default=300, help="inversion steps of --truth (default 300)")
    p.add_argument("--drag-steps", type=_positive, help="at most this many steps per drag (default: drag's)")
    p.add_argument("--out", required=True, help="output folder")
    add_device_argument(p)
    p.add_argument("--threads", type=_positive, help="torch CPU threads")
    p.set_defaults(func=run_report)


def _setup(args):
    from memorygan.editing.cli import _setup as setup

    return setup(args)


def _source(args, G):
    from memorygan.editing.cli import _source as source

    return source(args, G)


def build_edit(args, G):
    from memorygan.editing.spatial import PartTransform, SpatialEdit

    if args.kind == "remove":
        return SpatialEdit(remove=G.resolve_parts(args.parts, "--parts"))
    from memorygan.errors import ConfigError

    part = G.resolve_parts(args.part, "--part")
    if len(part) != 1:
        raise ConfigError(f"--part takes one part, got {args.part!r}")
    part = part[0]
    if args.kind == "move":
        return SpatialEdit(transforms=[PartTransform(part, shift=args.by)])
    if args.kind == "scale":
        return SpatialEdit(transforms=[PartTransform(part, scale=args.factor, centre=args.centre)])
    if args.kind == "rotate":
        return SpatialEdit(transforms=[PartTransform(part, rotate=args.degrees, centre=args.centre)])
    return SpatialEdit(clones=[PartTransform(part, shift=args.by, scale=args.factor)])


def run_closed(args) -> int:
    from types import SimpleNamespace

    from memorygan.editing.results import write_edit
    from memorygan.editing.spatial import measure_edit, spatial_edit

    G = _setup(args)
    edit = build_edit(args, G)
    source, names = _source(args, G)
    res = spatial_edit(G, source, edit, depth=args.depth, preserve=not args.no_preserve, warp=not args.no_warp)
    rows = measure_edit(G, res)
    record = {"edit": args.kind, "depth": args.depth, "preserve": not args.no_preserve, "warp": not args.no_warp,
              "spec": edit.to_dict(G.part_names),
              "seconds_per_image": res.seconds, "images": [dict(r, name=n) for r, n in zip(rows, names)]}
    view = (lambda d: SimpleNamespace(image=d["image"], seg=d["seg"], expanded=source.expanded))
    write_edit(args.out, G, view(res.before), view(res.after), record, names, codes=False, region=res.region)
    for n, r in zip(names, rows):
        for t in r["transforms"]:
            print(f"{n}: {t['part']} centroid {t['centroid_before']} -> {t['centroid_after']} (expected "
                  f"{t['centroid_expected']}, error {t['centroid_error_px']:.2f} px), area x{t['area_ratio']:.2f} "
                  f"(expected x{t['area_ratio_expected']:.2f})")
        for t in r["removed"]:
            print(f"{n}: {t['part']} area {t['area_before']:.2f} -> {t['area_after']:.2f} coarse px")
    print(f"wrote {args.out} ({1000 * res.seconds:.0f} ms per image)")
    return 0


def run_drag(args) -> int:
    from types import SimpleNamespace

    import numpy as np
    import torch

    from memorygan.analysis.figures import save_png
    from memorygan.editing.drag import drag
    from memorygan.editing.region import read_mask
    from memorygan.editing.results import write_edit
    from memorygan.visualize import grid, to_uint8

    from memorygan.errors import ConfigError

    if len(args.handles) != len(args.targets):
        raise ConfigError(f"--targets: give one target per handle: {len(args.handles)} handles, "
                          f"{len(args.targets)} targets")
    G = _setup(args)
    mask = read_mask(args.mask, G.config.resolution) if args.mask else None
    source, names = _source(args, G)
    parts = args.parts
    if parts is not None and parts != "handles":
        parts = G.resolve_parts(parts, "--parts")
    befores, afters, records, frames = [], [], [], []
    for i, name in enumerate(names):
        shots = []

        def keep(step, image, handles):
            if step % 10 == 0:
                shots.append(to_uint8(image)[0])
            return False

        res = drag(G, source.select(slice(i, i + 1)), args.handles, args.targets, mask=mask, space=args.space,
                   parts=parts, layers=args.layers, feature=args.feature, steps=args.steps, lr=args.lr,
                   r1=args.r1, r2=args.r2, lambda_mask=args.lambda_mask, stop_px=args.stop_px,
                   supervise=args.supervise, tracking=args.tracking, callback=keep)
        shots.append(to_uint8(res.after["image"])[0])
        frames.append(np.stack(shots))
        befores.append(res.before)
        afters.append(dict(res.after, expanded=res.expanded))
        records.append({"name": name, "steps": res.steps, "converged": res.converged, "seconds": res.seconds,
                        "distance_before": float(torch.linalg.norm(res.targets.cpu() - torch.tensor(args.handles),
                                                                   dim=1).mean()),
                        "distance_after_tracked": res.trace[-1], "trace": res.trace,
                        "handles_after": res.handles.tolist(), "parts": [G.part_names[p] for p in res.parts]})
        print(f"{name}: {res.steps} steps, {res.seconds:.1f} s, tracked handle-target distance "
              f"{records[-1]['distance_before']:.2f} -> {res.trace[-1]:.2f} px"
              f"{'' if res.converged else ' (not converged)'}")
    cat = (lambda key, rows: torch.cat([r[key] for r in rows]))
    before = SimpleNamespace(image=cat("image", befores), seg=cat("seg", befores), expanded=source.expanded)
    after = SimpleNamespace(image=cat("image", afters), seg=cat("seg", afters), expanded=cat("expanded", afters))
    record = {"edit": "drag", "space": args.space, "handles": args.handles, "targets": args.targets,
              "feature": args.feature, "layers": args.layers, "supervise": args.supervise,
              "tracking": args.tracking, "images": records}
    write_edit(args.out, G, before, after, record, names, codes=args.space == "codes",
               codes_extra={"edit": "drag"})
    width = max(f.shape[0] for f in frames)
    rows = [np.concatenate([f, np.repeat(f[-1:], width - f.shape[0], 0)]) for f in frames]
    save_png(grid(rows), f"{args.out}/steps.png")
    print(f"wrote {args.out}")
    return 0


def run_report(args) -> int:
    from memorygan.editing.spatial_report import write_spatial_report
    from memorygan.models import load_generators

    gens = load_generators(args.generator, args.labels, device=args.device)
    md = write_spatial_report(gens, args.probe, args.out, n=args.n,
                              drag_n=args.n if args.drag_n is None else args.drag_n, seed=args.seed,
                              truth_n=args.truth, truth_steps=args.truth_steps,
                              drag_kw={"steps": args.drag_steps} if args.drag_steps else None)
    print(f"wrote {md}")
    return 0
