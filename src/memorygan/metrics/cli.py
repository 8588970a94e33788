"""CLI: `memorygan probe train|eval` and `memorygan metrics` (registry.compute_metrics / evaluate_run)."""
from __future__ import annotations

import argparse
import json

from memorygan.argtypes import positive_int as _positive
from memorygan.devices import add_device_argument


def _add_threads(p) -> None:
    p.add_argument("--threads", type=_positive, help="torch CPU threads (default: the cores not busy with other "
                                                      "work; 1 is much faster than 2 when another process keeps a "
                                                      "core busy)")


def _set_threads(args) -> None:
    from memorygan.cpu import use_threads
    use_threads(getattr(args, "threads", None))


def register(subparsers) -> None:
    from memorygan.metrics.probe import DEFAULT_BATCH, DEFAULT_CHANNELS, DEFAULT_LR, DEFAULT_STEPS

    probe = subparsers.add_parser("probe", help="the domain probe: a small U-Net segmenting real images",
                                  description="Train or evaluate the domain probe of a dataset (features for "
                                              "domain FID/KID, predictions for mask consistency).")
    sub = probe.add_subparsers(dest="probe_command", metavar="ACTION")
    sub.required = True

    p = sub.add_parser("train", help="train the probe on a dataset",
                       description="Train the probe on the images with index % N != 0 (N = --holdout-every), "
                                   "report the mIoU on the others, and save it to DATA/probe/ (or --out).")
    p.add_argument("--data", required=True, help="dataset folder")
    p.add_argument("--out", help="probe folder (default: DATA/probe)")
    p.add_argument("--steps", type=_positive, default=DEFAULT_STEPS, help=f"optimizer steps (default {DEFAULT_STEPS})")
    p.add_argument("--batch", type=_positive, default=DEFAULT_BATCH, help=f"batch size (default {DEFAULT_BATCH})")
    p.add_argument("--lr", type=float, default=DEFAULT_LR, help=f"Adam learning rate (default {DEFAULT_LR})")
    p.add_argument("--channels", type=_positive, default=DEFAULT_CHANNELS,
                   help=f"base channels of the U-Net (default {DEFAULT_CHANNELS})")
    p.add_argument("--seed", type=int, default=0, help="random seed (default %(default)s)")
    p.add_argument("--holdout-every", type=_positive, default=10, help="hold out every Nth image (default 10)")
    add_device_argument(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_threads(p)
    p.set_defaults(func=run_probe_train)

    p = sub.add_parser("eval", help="held-out mIoU of a trained probe",
                       description="mIoU and per-class IoU of a probe on the held-out images of a dataset.")
    p.add_argument("--data", required=True, help="dataset folder")
    p.add_argument("--probe", help="probe folder (default: DATA/probe)")
    p.add_argument("--holdout-every", type=_positive, default=10, help="evaluate on every Nth image (default 10)")
    p.add_argument("--json", action="store_true", help="print JSON")
    _add_threads(p)
    p.set_defaults(func=run_probe_eval)

    from memorygan.metrics.inception import ENV_VAR
    from memorygan.metrics.registry import registered_metrics

    import textwrap

    table = "\n".join(f"  {m.name:<12} {m.summary}" for m in registered_metrics())
    paragraphs = [
        "Metrics of the newest checkpoint of a training run (--run; results appended to RUN/metric-<name>.jsonl), "
        "of a generator folder (--generator) or of a folder of PNG/JPEG images (--images), against the real "
        "dataset --data (with --run, the run's own dataset by default).",
        f"metrics (--metrics, comma-separated):\n{table}",
        "fid, kid and is share one Inception pass over the N images; dfid, dkid and consistency share one pass of "
        "the dataset's probe (domain FID/KID and mask consistency; train the probe with `memorygan probe train "
        "--data DATA`). The Inception weights (pt_inception-2015-12-05-6726825d.pth) are read only from "
        f"--inception-weights or ${ENV_VAR}, never downloaded. Real statistics are cached in "
        "DATA/.memorygan-cache/ (Inception) and in the probe folder (probe).",
        "`memorygan metrics domain --generator G --data DATA [--num N]` (deprecated) is "
        "`--metrics dfid,dkid,consistency` printed in the old flat form.",
    ]
    description = "\n\n".join(par if par.startswith("metrics (") else textwrap.fill(par, 100)
                              for par in paragraphs)
    p = subparsers.add_parser(
        "metrics", help="evaluation metrics of a generator, a training run or a folder of images",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        usage="memorygan metrics (--run RUN | --generator PATH | --images DIR) [--data DATA] --metrics LIST "
              "[--n N] [options]",
        description=description)
    p.add_argument("legacy", nargs="?", choices=["domain"], metavar="domain",
                   help="deprecated alias of --metrics dfid,dkid,consistency (old output format)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--run", help="training run folder: its newest checkpoint, dataset and probe")
    src.add_argument("--generator", help="generator, checkpoint or run folder, or a shipped name")
    src.add_argument("--images", help="folder of PNG/JPEG images (no metric that needs a generator)")
    p.add_argument("--data", help="real dataset folder (default with --run: the run's dataset)")
    p.add_argument("--metrics", help=f"comma-separated metric names: {','.join(m.name for m in registered_metrics())}")
    p.add_argument("--n", "--num", dest="n", type=_positive,
                   help="images measured: generated samples (default 1000; smse / leakage: 1000 / 500) or the "
                        "first N of --images (default all)")
    p.add_argument("--inception-weights", help=f"FID Inception weights file (default ${ENV_VAR})")
    p.add_argument("--probe", help="probe folder (default: the run's probe, or DATA/probe)")
    p.add_argument("--seed", type=int, default=0, help="seed of the generated samples (default 0)")
    p.add_argument("--truncation", type=float, default=1.0, help="truncation psi (default %(default)s: none)")
    p.add_argument("--batch", type=_positive, default=32, help="generator batch size (default 32)")
    p.add_argument("--num-real", type=_positive, help="real images (default: all of --data)")
    p.add_argument("--kid-subset", type=_positive, help="rows per KID subset (default min(1000, N, real))")
    p.add_argument("--cache-dir", help="cache of the real Inception statistics (default DATA/.memorygan-cache)")
    p.add_argument("--no-cache", action="store_true", help="recompute the real statistics and write no cache")
    add_device_argument(p)
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    _add_threads(p)
    p.set_defaults(func=run_metrics)


def run_probe_train(args) -> int:
    _set_threads(args)
    from memorygan.metrics.probe import train_probe

    report = train_probe(args.data, out=args.out, steps=args.steps, batch_size=args.batch, lr=args.lr,
                         seed=args.seed, holdout_every=args.holdout_every, progress=not args.quiet,
                         device=args.device, base_channels=args.channels)
    print(report.format())
    print(f"wrote {report.path}")
    return 0


def run_probe_eval(args) -> int:
    _set_threads(args)
    from memorygan.metrics.probe import evaluate_probe, load_probe

    probe, meta = load_probe(args.probe if args.probe else args.data)
    miou, per_class = evaluate_probe(probe, args.data, holdout_every=args.holdout_every)
    if args.json:
        print(json.dumps({"miou": miou, "iou": dict(zip(meta["classes"], per_class))}, indent=2))
        return 0
    print(f"held-out mIoU {miou:.4f} (probe {meta['path']})")
    width = max(len(c) for c in meta["classes"])
    for name, iou in zip(meta["classes"], per_class):
        print(f"  {name:<{width}}  {'-' if iou is None else f'{iou:.4f}'}")
    return 0


def run_metrics(args) -> int:
    import sys

    from memorygan.errors import ConfigError
    from memorygan.metrics import compute_metrics, evaluate_run, format_results, metric_names
    from memorygan.metrics.jsonl import jsonable

    _set_threads(args)
    names = args.metrics
    if args.legacy == "domain":
        print("memorygan metrics: `metrics domain` is deprecated; use `memorygan metrics --metrics "
              "dfid,dkid,consistency`", file=sys.stderr)
        if args.generator is None:
            raise ConfigError("`metrics domain` takes --generator")
        names = names or "dfid,dkid,consistency"
    if not names:
        raise ConfigError(f"--metrics is required: a comma-separated list of {', '.join(metric_names())}")
    kw = dict(n=args.n, seed=args.seed, truncation=args.truncation, batch_size=args.batch, num_real=args.num_real,
              inception_weights=args.inception_weights, kid_subset_size=args.kid_subset, cache=not args.no_cache,
              cache_dir=args.cache_dir, device=args.device, progress=not args.no_progress)
    header = None
    if args.run:
        ev = evaluate_run(args.run, names, data=args.data, probe=args.probe, **kw)
        results = ev.results
        header = (f"run {args.run}: checkpoint {ev.snapshot.name}" + (f" (step {ev.step})" if ev.step is not None
                                                                        else "")
                  + f"; appended to {', '.join(f.name for f in ev.files)}")
    else:
        results = compute_metrics(names, generator=args.generator, images=args.images, data=args.data,
                                  probe=args.probe, **kw)
    if args.legacy == "domain":  # the old flat form
        flat = {}
        for r in results.values():
            flat.update({k: v for k, v in r.items() if k != "seconds"})
        flat.update(seed=args.seed, truncation=args.truncation,
                    seconds=max(r["seconds"] for r in results.values()))
        if args.json:
            print(json.dumps(jsonable(flat), indent=2))
            return 0
        for key in ("domain_fid", "domain_kid", "domain_kid_std", "mask_miou"):
            if key in flat:
                print(f"{key:<15} {flat[key]:.6g}")
        print(f"({flat['num_samples']} samples vs {flat['num_real']} real images, seed {args.seed}, "
              f"truncation {args.truncation}, {flat['seconds']:.1f} s)")
        return 0
    if args.json:
        print(json.dumps(jsonable(results), indent=2))
        return 0
    if header:
        print(header)
    source = args.images or args.generator or args.run
    print(f"{source}: seed {args.seed}, truncation {args.truncation}" + (f", data {args.data}" if args.data else ""))
    print(format_results(results))
    return 0
