"""The render net's stride-1 3x3 convolutions by Winograd F(4x4, 3x3) against oneDNN's direct convolution, on the CPU
(ops/winograd.py; docs/performance.md).

Two parts, one JSON object:
- per layer: each stride-1 conv of the preset's render net, with its folded weight, timed direct
  (`F.conv2d`, NCHW and NHWC) and by Winograd (the filter transform included, as every call does it), with the max
  abs error of each against a float64 convolution;
- whole forward: the generator (no autograd) with `FixedStyleConv.cpu_winograd` off and on, alternating in one
  process so that both see the same machine, seconds per image and minor page faults per forward, for each K, and
  the K_max / K_min cost of each.

    python benchmarks/bench_winograd.py                               # memorygan-256, batch 2, K = 13 and 100
    python benchmarks/bench_winograd.py --threads 2 --parts 13
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch
import torch.nn.functional as F

from memorygan.allocator import minor_faults, tune_allocator
from memorygan.config import generator_config
from memorygan.models import build_generator
from memorygan.ops import FixedStyleConv
from memorygan.ops.activation import SQRT2
from memorygan.ops.modulated import fixed_style_weight
from memorygan.ops.winograd import conv3x3_winograd, winograd_weight


def _best(fn, reps: int) -> float:
    fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def layer_rows(G, batch: int, reps: int) -> list[dict]:
    rows = []
    render = G.render_net
    shapes = render.noise_shapes()
    for j, conv in enumerate(render.convs):
        if conv.upsample:
            continue
        o, i = conv.weight.shape[:2]
        size = shapes[j][2]
        x = torch.randn(batch, i, size, size, generator=torch.Generator().manual_seed(j))
        x_nhwc = x.contiguous(memory_format=torch.channels_last)
        with torch.no_grad():
            w = fixed_style_weight(conv.weight, conv.modulation, demodulate=True, gain=SQRT2)
            ref = F.conv2d(x.double(), w.double(), padding=1)
            direct = _best(lambda: F.conv2d(x, w, padding=1), reps)
            direct_nhwc = _best(lambda: F.conv2d(x_nhwc, w, padding=1), reps)
            wino = _best(lambda: conv3x3_winograd(x_nhwc, winograd_weight(w)), reps)
            err_direct = float((F.conv2d(x, w, padding=1).double() - ref).abs().max())
            err_wino = float((conv3x3_winograd(x_nhwc, winograd_weight(w)).double() - ref).abs().max())
        macs = batch * 9 * i * o * size * size
        rows.append({"layer": j, "in": i, "out": o, "size": size, "direct_gmac": round(macs / 1e9, 3),
                     "winograd_gemm_gmac": round(macs * 36 / 144 / 1e9, 3),
                     "direct_ms": round(direct * 1e3, 1), "direct_nhwc_ms": round(direct_nhwc * 1e3, 1),
                     "winograd_ms": round(wino * 1e3, 1), "speedup": round(min(direct, direct_nhwc) / wino, 3),
                     "direct_gmac_per_s": round(macs / min(direct, direct_nhwc) / 1e9, 1),
                     "max_abs_err_direct": err_direct, "max_abs_err_winograd": err_wino,
                     "output_std": round(float(ref.std()), 3)})
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="memorygan-256")
    ap.add_argument("--parts", default="13,100", help="comma-separated K values")
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-layers", action="store_true", help="skip the per-layer table")
    a = ap.parse_args(argv)
    tune_allocator()
    torch.set_num_threads(a.threads)
    ks = [int(k) for k in a.parts.split(",")]
    models = {}
    for k in ks:
        torch.manual_seed(0)
        G = build_generator(generator_config(a.preset, num_classes=k, class_names=None, transparent_classes=[]))
        models[k] = (G.eval(), G.sample_z(a.batch, seed=0))
    layers = [] if a.no_layers else layer_rows(models[ks[0]][0], a.batch, a.reps)
    default = FixedStyleConv.cpu_winograd
    samples: dict = {}
    max_diff = {}
    try:
        with torch.no_grad():
            for rep in range(a.reps + 1):                     # the first round warms up and is not kept
                for k, (G, z) in models.items():
                    outs = {}
                    for mode in ("direct", "winograd"):
                        FixedStyleConv.cpu_winograd = mode == "winograd"
                        f0 = minor_faults()
                        t0 = time.perf_counter()
                        outs[mode] = G(z).image
                        t1 = time.perf_counter()
                        if rep:
                            samples.setdefault((k, mode), []).append(((t1 - t0) / a.batch, minor_faults() - f0))
                    max_diff[f"K{k}"] = float((outs["winograd"] - outs["direct"]).abs().max())
    finally:
        FixedStyleConv.cpu_winograd = default
    results = [{"parts": k, "mode": mode, "forward_s_per_image": statistics.median(r[0] for r in rows),
                "faults_per_forward": statistics.median(r[1] for r in rows)} for (k, mode), rows in samples.items()]
    by = {(r["parts"], r["mode"]): r["forward_s_per_image"] for r in results}
    kmin, kmax = min(ks), max(ks)
    print(json.dumps({
        "benchmark": "winograd_render_convs", "preset": a.preset, "batch": a.batch, "threads": a.threads,
        "torch": torch.__version__, "machine": platform.machine(), "layers": layers, "forward": results,
        "forward_speedup": {f"K{k}": round(by[(k, "direct")] / by[(k, "winograd")], 3) for k in ks},
        f"forward_cost_K{kmax}_over_K{kmin}": {m: round(by[(kmax, m)] / by[(kmin, m)], 3)
                                               for m in ("direct", "winograd")},
        "image_max_abs_diff": max_diff}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
