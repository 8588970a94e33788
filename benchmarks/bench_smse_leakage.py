"""SMSE and leakage speed (seconds per generated image) on a small-preset generator, batched path vs the
per-step reference path in the same process (DESIGN 9: ratios in one run).

Prints one JSON object. Each metric is timed end to end (`smse(...)`, `leakage(...)`) on `--n` samples; with the
reference path (`method="reference"`: one full generator pass per composition step / per resampled part, the
implementation before the batched one) timed on the same samples when the module has it, alternating, `--repeat`
times each; the minimum is reported (the machine may be shared). The values of both paths are compared (max abs
difference of the per-part results).

    python benchmarks/bench_smse_leakage.py                        # memorygan-small, 64 px, n 32, batch 16
    python benchmarks/bench_smse_leakage.py --preset ssg-small --n 64 --threads 2
"""
from __future__ import annotations

import argparse
import inspect
import json
import math
import os
import platform
import time

import torch

import memorygan
from memorygan.metrics import leakage as leakage_mod
from memorygan.metrics import smse as smse_mod


def _timed(fn, **kw):
    t0 = time.perf_counter()
    res = fn(**kw)
    return res, time.perf_counter() - t0


def _best(fns: list, repeat: int) -> list[tuple]:
    """(result, min seconds) of each zero-argument function, run alternately `repeat` times."""
    best = [(None, math.inf)] * len(fns)
    for _ in range(repeat):
        for i, f in enumerate(fns):
            res, sec = _timed(f)
            best[i] = (res, min(best[i][1], sec))
    return best


def _max_diff(a: dict, b: dict, key: str, field: str) -> float:
    worst = 0.0
    for part, v in a[key].items():
        x, y = v[field], b[key][part][field]
        if isinstance(x, float) and math.isfinite(x):
            worst = max(worst, abs(x - y))
    return worst


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="memorygan-small")
    ap.add_argument("--n", type=int, default=32)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    G = memorygan.build(args.preset).eval()
    G.update_w_avg()
    G.sample(2, seed=0)                                       # warm-up
    out = {"preset": args.preset, "arch": G.arch, "resolution": G.config.resolution, "K": G.config.num_classes,
           "n": args.n, "batch": args.batch, "threads": args.threads, "torch": torch.__version__,
           "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
           "load_1min": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None}
    out["load_1min_end"] = None
    for name, fn, key, field in (("smse", smse_mod.smse, "smse", "mean"),
                                 ("leakage", leakage_mod.leakage, "leakage", "ratio")):
        kw = dict(G=G, num_samples=args.n, seed=0, batch_size=args.batch)
        fns = [lambda: fn(**kw)]
        if "method" in inspect.signature(fn).parameters:
            fns.append(lambda: fn(method="reference", **kw))
        results = _best(fns, args.repeat)
        (res, sec) = results[0]
        row = {"seconds_per_image": round(sec / args.n, 4), "seconds": round(sec, 2)}
        if len(results) > 1:
            ref, ref_sec = results[1]
            row.update(reference_seconds_per_image=round(ref_sec / args.n, 4),
                       speedup=round(ref_sec / sec, 2),
                       max_abs_diff_vs_reference=_max_diff(res, ref, key, field))
        out[name] = row
    out["load_1min_end"] = round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
