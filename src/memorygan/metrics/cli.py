"""CLI: `memorygan probe train|eval` and `memorygan metrics domain`."""
from __future__ import annotations

import argparse
import json


def _positive(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {v}")
    return v


def _add_threads(p) -> None:
    p.add_argument("--threads", type=_positive, help="torch CPU threads (default: torch's choice; 1 is much faster "
                                                      "than 2 when another process keeps a core busy)")


def _set_threads(args) -> None:
    if getattr(args, "threads", None):
        import torch
        torch.set_num_threads(args.threads)


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
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--holdout-every", type=_positive, default=10, help="hold out every Nth image (default 10)")
    p.add_argument("--device", default="cpu")
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

    metrics = subparsers.add_parser("metrics", help="evaluation metrics of a generator",
                                    description="Evaluation metrics of a generator against a real dataset.")
    sub = metrics.add_subparsers(dest="metrics_command", metavar="METRIC")
    sub.required = True
    p = sub.add_parser("domain", help="domain FID/KID and mask consistency through the dataset's probe",
                       description="Domain FID and KID (probe features of real vs generated images) and mask "
                                   "consistency (mIoU of the generator's seg vs the probe's segmentation of its "
                                   "image). Needs a trained probe: `memorygan probe train --data DIR`.")
    p.add_argument("--generator", required=True, help="generator folder")
    p.add_argument("--data", required=True, help="dataset folder (real images)")
    p.add_argument("--probe", help="probe folder (default: DATA/probe)")
    p.add_argument("--num", type=_positive, default=1000, help="generated samples (default 1000)")
    p.add_argument("--num-real", type=_positive, help="real images (default: all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--truncation", type=float, default=1.0)
    p.add_argument("--batch", type=_positive, default=32)
    p.add_argument("--no-cache", action="store_true", help="recompute the real statistics and write no cache")
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    _add_threads(p)
    p.set_defaults(func=run_metrics_domain)


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


def run_metrics_domain(args) -> int:
    _set_threads(args)
    from memorygan.metrics.domain import domain_metrics

    res = domain_metrics(args.generator, args.data, probe=args.probe, num_samples=args.num, seed=args.seed,
                         truncation=args.truncation, batch_size=args.batch, num_real=args.num_real,
                         cache=not args.no_cache, device=args.device)
    if args.json:
        print(json.dumps(res, indent=2))
        return 0
    for key in ("domain_fid", "domain_kid", "domain_kid_std", "mask_miou"):
        print(f"{key:<15} {res[key]:.6g}")
    print(f"({res['num_samples']} samples vs {res['num_real']} real images, seed {res['seed']}, "
          f"truncation {res['truncation']}, {res['seconds']:.1f} s)")
    return 0
