"""Encoder speed (issue 28: the encoder alone <= 10 ms per image, an upload's first view in the demo <= 1 s, at 64 px
on the CPU) against the optimisation it replaces, measured in the same run.

Per generator: the median seconds of the encoder's forward pass (batch 1), the forward pass + the generator's
render (`encoder.encode`), the demo's upload with an encoder until its first view (a 256 px upload fitted, encoded,
rendered into the panel: `DemoState.invert_steps`), and one step of the optimisation of `memorygan invert`
(batch 1, EfficientNet-Lite0 distance when installed) times 300 steps, the baseline. Timing depends on the
architecture only, so untrained networks are used unless --generator / --encoder are given.

    python benchmarks/bench_encoder.py                                    # memorygan-small and ssg-small
    python benchmarks/bench_encoder.py --generator portraits-ssg --encoder enc-ssg/ --reps 50
"""
from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np
import torch
from bench_demo import median_time      # the benchmarks' one timing helper (this folder is on sys.path)

TARGETS = {"encoder_forward": 0.010, "demo_first_view": 1.0}
BASELINE_STEPS = 300


def bench(G, E, reps: int, opt_steps: int, perceptual: str) -> dict:
    from memorygan.demo.state import DemoState
    from memorygan.encoder import encode
    from memorygan.inversion import InversionOptions, load_perceptual, project
    from memorygan.inversion.projection import CodeSpace

    r = G.config.resolution
    x = torch.rand(1, 3, r, r, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        fwd = median_time(lambda: E(x), reps)
        enc = median_time(lambda: encode(E, G, x), reps)
    st = DemoState(G, encoder=E)
    up = (np.random.default_rng(0).random((256, 256, 3)) * 255).astype(np.uint8)

    def first_view():
        next(iter(st.invert_steps(up, steps=0))).panel(256)
    demo = median_time(first_view, reps)
    dist = load_perceptual(perceptual)
    space = CodeSpace(G, "expanded", 500)
    project(G, x, InversionOptions(steps=1, stats_samples=500), dist, space=space)       # warm-up
    opts = InversionOptions(steps=opt_steps, stats_samples=500)
    t0 = time.perf_counter()
    project(G, x, opts, dist, space=space)
    step = (time.perf_counter() - t0) / opt_steps
    res = {"encoder_forward": fwd, "encoder_and_render": enc, "demo_first_view": demo, "optimisation_step": step,
           "optimisation_300_steps": step * BASELINE_STEPS,
           "perceptual": None if dist is None else dist.name}
    out = {k: (round(v, 5) if isinstance(v, float) else v) for k, v in res.items()}
    out["speedup_vs_300_steps"] = round(res["optimisation_300_steps"] / res["encoder_and_render"], 1)
    out["meets_targets"] = {k: res[k] <= v for k, v in TARGETS.items()}
    return out


def main(argv=None) -> int:
    import memorygan
    from memorygan.config import generator_config
    from memorygan.encoder import build_encoder, load_encoder
    from memorygan.models import build_generator

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", default="memorygan-small,ssg-small")
    ap.add_argument("--generator", help="a generator (path or shipped name) instead of the presets")
    ap.add_argument("--encoder", help="its trained encoder (default: an untrained one; same speed)")
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--opt-steps", type=int, default=10, help="optimisation steps timed for the baseline")
    ap.add_argument("--perceptual", default="auto")
    ap.add_argument("--threads", type=int)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    runs = {}
    if args.generator:
        G, _ = memorygan.load(args.generator)
        G.eval().requires_grad_(False)
        E = load_encoder(args.encoder, G)[0] if args.encoder else build_encoder(G, stats_samples=500).eval()
        runs[str(args.generator)] = bench(G, E, args.reps, args.opt_steps, args.perceptual)
    else:
        for name in args.presets.split(","):
            torch.manual_seed(0)
            G = build_generator(generator_config(name)).eval().requires_grad_(False)
            E = build_encoder(G, stats_samples=500).eval()
            runs[name] = bench(G, E, args.reps, args.opt_steps, args.perceptual)
    print(json.dumps({"benchmark": "encoder", "threads": torch.get_num_threads(), "cpu": platform.processor() or
                      platform.machine(), "torch": torch.__version__, "targets_s": TARGETS,
                      "baseline": f"{BASELINE_STEPS} optimisation steps (memorygan invert)", "runs": runs}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
