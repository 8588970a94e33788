"""Demo latency (issue: a new sample under 100 ms per image and a slider change under 0.5 s at 64 px on the CPU):
the time of the demo's own actions (`DemoState`), including turning the result into the image|mask|depth panel.

Prints one JSON object: per preset the median seconds of generate (a new sample), a direction slider move
(apply_direction), an interpolation slider move and a part resample, and the panel rendering alone; the targets are
checked in the same output (`meets_targets`).

    python benchmarks/bench_demo.py                          # memorygan-small and ssg-small (64 px), memorygan-256
    python benchmarks/bench_demo.py --presets memorygan-small --reps 20
    python benchmarks/bench_demo.py --generator runs/x       # a trained generator instead of a fresh one
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch

from memorygan.config import generator_config
from memorygan.demo.state import DemoState
from memorygan.editing.directions import Direction
from memorygan.models import build_generator

TARGETS = {64: {"generate": 0.100, "apply_direction": 0.5, "interpolate": 0.5}}


def median_time(fn, reps: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench(G, reps: int) -> dict:
    k, d = G.config.num_classes, G.config.latent_dim
    theta = torch.randn(1, 2, d, generator=torch.Generator().manual_seed(0)) * 0.5
    hair = min(7, k - 1)
    state = DemoState(G, {"dir": Direction(theta, "parts", [hair], ["shape", "texture"], "none", 1.0, arch=G.arch)})
    state.generate(0)
    seeds = iter(range(1, 10 ** 6))
    alphas = iter([0.1 * (i % 20 - 10) for i in range(10 ** 6)])
    ts = iter([(i % 20) / 19 for i in range(10 ** 6)])
    res = {
        "generate": median_time(lambda: state.generate(next(seeds)).panel(256), reps),
        "apply_direction": median_time(lambda: state.apply_direction("dir", next(alphas)).panel(256), reps),
        "interpolate": median_time(lambda: state.interpolate(hair, 5, next(ts)).panel(256), reps),
        "resample_part": median_time(lambda: state.resample_part(hair, "both", next(seeds)).panel(256), reps),
        "panel_only": median_time(lambda: state.view().panel(256), reps),
    }
    return {k: round(v, 4) for k, v in res.items()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--presets", default="memorygan-small,ssg-small,memorygan-256")
    ap.add_argument("--generator", help="a trained generator folder instead of fresh presets")
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    results = {}
    if args.generator:
        from memorygan import load
        G = load(args.generator)[0]
        results[args.generator] = {"resolution": G.config.resolution, "arch": G.arch, **bench(G, args.reps)}
    else:
        for preset in args.presets.split(","):
            torch.manual_seed(0)
            G = build_generator(generator_config(preset)).eval()
            results[preset] = {"resolution": G.config.resolution, "arch": G.arch, **bench(G, args.reps)}
    for name, r in results.items():
        target = TARGETS.get(r["resolution"])
        if target:
            r["meets_targets"] = {k: r[k] <= v for k, v in target.items()}
    print(json.dumps({"benchmark": "demo latency (seconds, median)", "torch_threads": torch.get_num_threads(),
                      "machine": platform.machine(), "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
