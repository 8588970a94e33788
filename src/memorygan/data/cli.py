"""`memorygan data ...`: dataset subcommands. Each handler parses arguments and calls one library function."""
from __future__ import annotations

import argparse
import json
import sys
import time

from memorygan.argtypes import non_negative_int, positive_int
from memorygan.data.categories import CATEGORY_NAMES, DEFAULT_CATEGORIES


def _add_output(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, help="output dataset folder (written atomically)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing non-empty --out (the old folder is removed only after the new one is complete)")
    p.add_argument("--workers", type=positive_int, default=1, help="worker processes (default 1)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def register(subparsers) -> None:
    data = subparsers.add_parser(
        "data", help="datasets: procedural synthesis, import, check, preview, stats",
        description="Dataset tools. A dataset is a folder with images/, masks/ (single-channel PNG class ids, "
                    "same basenames) and dataset.json; image-level datasets have 'categories' and 'labels' in "
                    "dataset.json, and may have no masks/. See docs/datasets.md.")
    sub = data.add_subparsers(dest="data_command", metavar="DATA_COMMAND")
    sub.required = True

    synth = sub.add_parser("synth", help="generate a procedural dataset (portraits, scenes or categories)",
                           description="Generate a procedural dataset with ground-truth attributes. The same "
                                       "seed gives byte-identical files.")
    kinds = synth.add_subparsers(dest="kind", metavar="KIND")
    kinds.required = True
    for kind, text in (("portraits", "face-like images with the 13 CelebAMask-HQ classes"),
                       ("scenes", "K-class shape compositions (any K from 2 to 65536)"),
                       ("categories", "scene categories (beach, forest, city, ...) with image-level labels and "
                                      "masks; item i is category i mod C")):
        p = kinds.add_parser(kind, help=text, description=text)
        p.add_argument("--n", type=int, required=True, help="number of images")
        p.add_argument("--size", type=int, default=64, help="resolution in pixels (default 64)")
        p.add_argument("--seed", type=int, default=0, help="dataset seed (default 0)")
        if kind == "scenes":
            p.add_argument("--classes", type=int, required=True, help="number of classes K, background included")
            p.add_argument("--objects", type=int, nargs=2, default=(2, 5), metavar=("MIN", "MAX"),
                           help="objects per image (default 2 5)")
        if kind == "categories":
            p.add_argument("--categories", type=int, default=DEFAULT_CATEGORIES,
                           help=f"number of categories C, {DEFAULT_CATEGORIES} to {len(CATEGORY_NAMES)}: the first C "
                                f"of {', '.join(CATEGORY_NAMES)} (default {DEFAULT_CATEGORIES})")
        p.add_argument("--supersample", type=int, default=None,
                       help="anti-aliasing samples per pixel side (default 4 at <=32 px, 3 at <=128, else 2)")
        p.add_argument("--report", action="store_true", help="print class frequencies and attribute stats as JSON")
        _add_output(p)
        p.set_defaults(func=cmd_synth)

    c = sub.add_parser("celebamask-hq", help="import CelebAMask-HQ from its raw layout (13 classes)",
                       description="Convert RAW/CelebA-HQ-img and RAW/CelebAMask-HQ-mask-anno to the dataset "
                                   "format: ids < 28000 to --out, the rest to --test-out (default OUT-test).")
    c.add_argument("--root", required=True, help="folder holding CelebA-HQ-img/ and CelebAMask-HQ-mask-anno/")
    c.add_argument("--size", type=int, default=256, help="output resolution (default 256)")
    c.add_argument("--test-out", default=None, help="held-out output folder (default: OUT-test)")
    c.add_argument("--train-count", type=non_negative_int, default=28000, help="ids below this go to training (default 28000)")
    c.add_argument("--image-format", choices=("png", "jpg"), default="png", help="stored image format")
    c.add_argument("--limit", type=positive_int, default=None, help="convert only the first N images (for trials)")
    _add_output(c)
    c.set_defaults(func=cmd_celebamask)

    i = sub.add_parser("import", help="import any image folder + id-mask folder",
                       description="Resize (shorter side to --size, centre crop; images LANCZOS, masks NEAREST) "
                                   "and write a dataset folder. Masks must be single-channel PNGs of ids.")
    i.add_argument("--images", required=True, help="folder of images")
    i.add_argument("--masks", required=True, help="folder of id masks (PNG, same basenames)")
    i.add_argument("--classes", default=None, help="JSON list of class names in id order (or {\"classes\": [...]})")
    i.add_argument("--remap", default=None, help="JSON object mapping source ids to target ids, e.g. {\"255\": 0}")
    i.add_argument("--size", type=int, required=True, help="output resolution")
    i.add_argument("--image-format", choices=("png", "jpg"), default="png", help="stored image format")
    i.add_argument("--name", default="", help="dataset name recorded in dataset.json")
    _add_output(i)
    i.set_defaults(func=cmd_import)

    ic = sub.add_parser("import-classes", help="import images sorted into class folders (ROOT/CLASS/*.png)",
                        description="Every subfolder of --root is a category (sorted names); its images (searched "
                                    "recursively) are oriented by EXIF, made RGB (transparency over white), resized "
                                    "(shorter side to --size, LANCZOS) and centre-cropped. Writes an image-level "
                                    "dataset: images/, no masks/, categories and labels in dataset.json. Image "
                                    "files directly in --root are an error.")
    ic.add_argument("--root", required=True, help="folder holding one subfolder of images per class")
    ic.add_argument("--size", type=int, required=True, help="output resolution")
    ic.add_argument("--image-format", choices=("png", "jpg"), default="png", help="stored image format")
    ic.add_argument("--name", default="", help="dataset name recorded in dataset.json")
    _add_output(ic)
    ic.set_defaults(func=cmd_import_classes)

    ch = sub.add_parser("check", help="validate a dataset folder and report every problem",
                        description="Read every file; report all problems and per-class frequencies. "
                                    "Exit code 1 when there are errors.")
    ch.add_argument("path", help="dataset folder")
    ch.add_argument("--json", action="store_true", help="print the report as JSON")
    ch.add_argument("--quiet", action="store_true", help="no progress bar")
    ch.set_defaults(func=cmd_check)

    pv = sub.add_parser("preview", help="write a PNG grid of images and colour-coded masks")
    pv.add_argument("path", help="dataset folder")
    pv.add_argument("--out", required=True, help="output PNG")
    pv.add_argument("--n", type=positive_int, default=8, help="number of items (default 8, at most 1024)")
    pv.add_argument("--start", type=non_negative_int, default=0, help="first item (default 0)")
    pv.add_argument("--tile", type=positive_int, default=None,
                    help="tile size in pixels, 8..1024 (default: image size, 96..160)")
    pv.add_argument("--columns", type=positive_int, default=8, help="items per row (default 8)")
    pv.set_defaults(func=cmd_preview)

    st = sub.add_parser("stats", help="per-class frequencies and measured attribute dependencies (JSON)")
    st.add_argument("path", help="dataset folder")
    st.add_argument("--fast", action="store_true", help="use the counts stored in dataset.json instead of scanning")
    st.add_argument("--quiet", action="store_true", help="no progress bar")
    st.set_defaults(func=cmd_stats)


def cmd_synth(args) -> int:
    from memorygan.data.stats import attribute_stats, class_stats
    from memorygan.data.synth import synthesize
    t0 = time.perf_counter()
    res = synthesize(args.kind, args.out, n=args.n, size=args.size, seed=args.seed,
                     num_classes=getattr(args, "classes", None), workers=args.workers, overwrite=args.overwrite,
                     ss=args.supersample, objects=tuple(getattr(args, "objects", (2, 5))),
                     progress=not args.quiet, num_categories=getattr(args, "categories", None))
    dt = time.perf_counter() - t0
    print(f"wrote {res.info.num_images} {args.kind} images ({args.size} px) to {res.path} in {dt:.1f} s "
          f"({res.info.num_images / dt:.0f} images/s)", file=sys.stderr)
    if args.report:
        out = {"path": str(res.path), "num_images": res.info.num_images, "seconds": round(dt, 3)}
        out.update(class_stats(res.info, res.info.class_pixel_counts, res.info.class_image_counts,
                               res.info.num_images))
        out["attributes"] = attribute_stats(res.records, res.info.num_classes)
        print(json.dumps(out, indent=2))
    return 0


def cmd_celebamask(args) -> int:
    from memorygan.data.celebamask import import_celebamask_hq
    res = import_celebamask_hq(args.root, args.out, size=args.size, test_out=args.test_out,
                               train_count=args.train_count, overwrite=args.overwrite, workers=args.workers,
                               image_format=args.image_format, limit=args.limit, progress=not args.quiet)
    for split, path in res.outputs.items():
        print(f"{split}: {res.infos[split].num_images} images -> {path}")
    for w in res.warnings:
        print(f"warning: {w}", file=sys.stderr)
    return 0


def cmd_import(args) -> int:
    from memorygan.data.importer import import_dataset
    info = import_dataset(args.images, args.masks, args.out, args.size, classes=args.classes, remap=args.remap,
                          overwrite=args.overwrite, workers=args.workers, image_format=args.image_format,
                          name=args.name, progress=not args.quiet)
    print(f"imported {info.num_images} images with {info.num_classes} classes to {args.out}")
    return 0


def cmd_import_classes(args) -> int:
    from memorygan.data.classfolders import import_class_folders
    info = import_class_folders(args.root, args.out, args.size, image_format=args.image_format, name=args.name,
                                overwrite=args.overwrite, workers=args.workers, progress=not args.quiet)
    print(f"imported {info.num_images} images in {info.num_categories} categories to {args.out}")
    return 0


def cmd_check(args) -> int:
    from memorygan.data.check import check_dataset
    report = check_dataset(args.path, progress=not (args.quiet or args.json))
    print(json.dumps(report.to_json(), indent=2) if args.json else report.format())
    return 0 if report.ok else 1


def cmd_preview(args) -> int:
    from memorygan.data.preview import preview_dataset
    out = preview_dataset(args.path, args.out, n=args.n, start=args.start, tile=args.tile, columns=args.columns)
    print(f"wrote {out}")
    return 0


def cmd_stats(args) -> int:
    from memorygan.data.stats import dataset_stats
    print(json.dumps(dataset_stats(args.path, scan=not args.fast, progress=not args.quiet), indent=2))
    return 0
