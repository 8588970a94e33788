"""Generator inference speed: MemoryGAN vs SemanticStyleGAN in the same process (DESIGN 9).

Prints one JSON object: per (scale, K, arch) seconds per image (median over repeats), and the MemoryGAN/SSG
ratio for each (scale, K). Also times the modulated-conv fast path against the per-sample-weight reference.

    python benchmarks/bench_generator.py                      # paper scale (256 px) and small preset, K = 13, 100
    python benchmarks/bench_generator.py --scales small --reps 5
    python benchmarks/bench_generator.py --bf16               # also under bf16 autocast
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch

from memorygan.config import generator_config
from memorygan.models import build_generator

SCALES = {"paper": ("memorygan-256", "ssg-256"), "small": ("memorygan-small", "ssg-small")}


def time_call(fn, reps: int, warmup: int) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench_generator(preset: str, k: int, batch: int, reps: int, warmup: int, bf16: bool) -> float:
    torch.manual_seed(0)
    G = build_generator(generator_config(preset, num_classes=k, class_names=None, transparent_classes=[])).eval()
    z = G.sample_z(batch, seed=0)

    def run():
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            G(z)
    return time_call(run, reps, warmup) / batch


def bench_modconv(reps: int) -> dict:
    """Fast path vs reference: a local-generator layer at paper width over B*K = 26 parts at 64x64, and a
    512-channel 3x3 render conv at 32x32."""
    from memorygan.ops import modulated_conv2d, modulated_conv2d_fast
    x = torch.randn(26, 64, 64, 64)
    w = torch.randn(64, 64, 1, 1)
    s = torch.randn(26, 64)
    ref = time_call(lambda: modulated_conv2d(x, w, s), reps, 1)
    fast = time_call(lambda: modulated_conv2d_fast(x, w, s), reps, 1)
    out = {"1x1_reference_s": ref, "1x1_fast_s": fast, "1x1_speedup": ref / fast}
    x3, w3, s3 = torch.randn(2, 512, 32, 32), torch.randn(512, 512, 3, 3), torch.rand(1, 512) + 0.5
    ref = time_call(lambda: modulated_conv2d(x3, w3, s3), reps, 1)
    fast = time_call(lambda: modulated_conv2d_fast(x3, w3, s3), reps, 1)
    out.update({"3x3_fixed_reference_s": ref, "3x3_fixed_fast_s": fast, "3x3_fixed_speedup": ref / fast})
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scales", default="paper,small")
    ap.add_argument("--parts", default="13,100")
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--bf16", action="store_true", help="also time under bf16 autocast")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    results = []
    for scale in args.scales.split(","):
        for k in [int(v) for v in args.parts.split(",")]:
            for dtype in (["fp32", "bf16"] if args.bf16 else ["fp32"]):
                row = {"scale": scale, "parts": k, "dtype": dtype, "batch": args.batch}
                for preset in SCALES[scale]:
                    arch = preset.split("-")[0]
                    row[f"{arch}_s_per_image"] = bench_generator(preset, k, args.batch, args.reps, args.warmup,
                                                                 dtype == "bf16")
                row["memorygan_over_ssg"] = row["memorygan_s_per_image"] / row["ssg_s_per_image"]
                results.append(row)
    report = {"benchmark": "generator_inference", "torch": torch.__version__, "threads": torch.get_num_threads(),
              "machine": platform.machine(), "results": results, "modulated_conv": bench_modconv(args.reps)}
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
