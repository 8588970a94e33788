"""Generator inference speed: MemoryGAN vs SemanticStyleGAN in the same process (DESIGN 9).

Prints one JSON object: per (scale, K, arch) seconds per image (median over repeats), and the MemoryGAN/SSG
ratio for each (scale, K). Also times the modulated-conv fast path against the per-sample-weight reference.

    python benchmarks/bench_generator.py                      # paper scale (256 px) and small preset, K = 13, 100
    python benchmarks/bench_generator.py --scales small --reps 5
    python benchmarks/bench_generator.py --bf16               # also under bf16 autocast
    python benchmarks/bench_generator.py --device cuda        # on a GPU (default: the GPU when torch sees one)

Each row also gives the minor page faults per forward pass. On the CPU the default `--allocator both` runs the whole
benchmark twice in fresh processes, with glibc's default allocator settings (MEMORYGAN_DEFAULT_MALLOC=1) and with
the settings the CLI applies (memorygan.allocator), and prints both with the speed-up: the before/after of the
page-fault fix in one run.
"""
from __future__ import annotations

import argparse
import json
import platform
import os
import statistics
import subprocess
import sys
import time

import torch

from memorygan.allocator import minor_faults, tune_allocator
from memorygan.config import generator_config
from memorygan.devices import configure_backends, resolve_device
from memorygan.models import build_generator

SCALES = {"paper": ("memorygan-256", "ssg-256"), "small": ("memorygan-small", "ssg-small")}


def time_call(fn, reps: int, warmup: int, device: str = "cpu") -> float:
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench_generator(preset: str, k: int, batch: int, reps: int, warmup: int, bf16: bool,
                    device: str = "cpu") -> tuple[float, float]:
    """(seconds per image, minor page faults per forward) of one generator."""
    torch.manual_seed(0)
    G = build_generator(generator_config(preset, num_classes=k, class_names=None, transparent_classes=[]))
    G = G.eval().to(device)
    z = G.sample_z(batch, seed=0).to(device)

    def run():
        with torch.no_grad(), torch.autocast(device.split(":")[0], dtype=torch.bfloat16, enabled=bf16):
            G(z)
    for _ in range(warmup):                           # first calls allocate; count the steady state
        run()
    f0 = minor_faults()
    seconds = time_call(run, reps, 0, device)
    return seconds / batch, (minor_faults() - f0) / reps


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
    ap.add_argument("--device", default="auto", help="cpu, cuda, cuda:N, auto (default: the GPU when there is one)")
    ap.add_argument("--allocator", choices=["both", "tuned", "default"], default="both",
                    help="CPU only: glibc settings as the CLI sets them (tuned), glibc's defaults, or both in fresh "
                         "processes (default)")
    args = ap.parse_args(argv)
    args.device = resolve_device(args.device)
    if args.device == "cpu" and args.allocator == "both":
        return _both_allocators(argv if argv is not None else sys.argv[1:])
    if args.device == "cpu" and args.allocator == "tuned":
        tune_allocator()
    if args.threads:
        torch.set_num_threads(args.threads)
    cudnn_benchmark = configure_backends() if args.device.startswith("cuda") else None   # as the CLI does
    results = []
    for scale in args.scales.split(","):
        for k in [int(v) for v in args.parts.split(",")]:
            for dtype in (["fp32", "bf16"] if args.bf16 else ["fp32"]):
                row = {"scale": scale, "parts": k, "dtype": dtype, "batch": args.batch}
                for preset in SCALES[scale]:
                    arch = preset.split("-")[0]
                    sec, faults = bench_generator(preset, k, args.batch, args.reps, args.warmup, dtype == "bf16",
                                                  args.device)
                    row[f"{arch}_s_per_image"], row[f"{arch}_faults_per_forward"] = sec, faults
                row["memorygan_over_ssg"] = row["memorygan_s_per_image"] / row["ssg_s_per_image"]
                results.append(row)
    report = {"benchmark": "generator_inference", "torch": torch.__version__, "threads": torch.get_num_threads(),
              "device": args.device, "allocator": args.allocator if args.device == "cpu" else None,
              "cudnn_benchmark": cudnn_benchmark,
              "machine": platform.machine(), "results": results}
    if args.device == "cpu":
        report["modulated_conv"] = bench_modconv(args.reps)
    print(json.dumps(report, indent=2))
    return report


def _both_allocators(argv: list[str]) -> dict:
    """Run the benchmark with glibc's defaults and with the CLI's settings, each in a fresh process, one after
    the other (the same machine state), and report the speed-up per row."""
    runs = {}
    for mode in ("default", "tuned"):
        env = dict(os.environ, MEMORYGAN_DEFAULT_MALLOC="1" if mode == "default" else "0")
        out = subprocess.run([sys.executable, __file__, *argv, "--allocator", mode], env=env, check=True,
                             stdout=subprocess.PIPE, text=True).stdout
        runs[mode] = json.loads(out)
    rows = []
    for before, after in zip(runs["default"]["results"], runs["tuned"]["results"]):
        row = {key: before[key] for key in ("scale", "parts", "dtype", "batch")}
        for arch in ("memorygan", "ssg"):
            row[f"{arch}_s_per_image"] = {"default": before[f"{arch}_s_per_image"], "tuned": after[f"{arch}_s_per_image"]}
            row[f"{arch}_faults_per_forward"] = {"default": before[f"{arch}_faults_per_forward"],
                                                 "tuned": after[f"{arch}_faults_per_forward"]}
            row[f"{arch}_speedup"] = before[f"{arch}_s_per_image"] / after[f"{arch}_s_per_image"]
        row["memorygan_over_ssg_tuned"] = after["memorygan_over_ssg"]
        rows.append(row)
    report = {"benchmark": "generator_inference", "torch": torch.__version__, "device": "cpu",
              "allocator": "default vs tuned (fresh processes)", "threads": runs["tuned"]["threads"],
              "machine": platform.machine(), "results": rows, "modulated_conv": runs["tuned"]["modulated_conv"]}
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
