"""Training throughput (images/s) of MemoryGAN vs SemanticStyleGAN, fp32 and bf16 autocast, at the small preset
(64 px) and at paper scale (256 px, K = 13), measured in one process. Prints JSON.

    python benchmarks/bench_training.py                       # small: 16 steps (batch 8), paper: 3 steps (batch 2)
    python benchmarks/bench_training.py --scales small --steps 32

Each measured step is a full training step (D main, G main, and the lazy regularisers at their intervals, so
over `steps` steps R1 and path length run as often as in training when steps is a multiple of 16); the first
`--warmup` steps are not timed. Each run also gives the minor page faults per step and, counted over as many
further steps (not timed), the ATen operations dispatched per step, forward and backward (`aten_ops_per_step`): each
is at least one kernel launch on a GPU, where a small model's step is bound by them rather than by arithmetic, so
this is the CPU-side measure of that overhead (`--no-count-ops` skips it).

`--device` defaults to the GPU when torch sees one. On the CPU, `--allocator both` runs everything twice in fresh
processes, with glibc's default allocator settings and with those the CLI applies (memorygan.allocator), and
prints both with the speed-up; the default `tuned` measures what the CLI does.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from memorygan.allocator import minor_faults, tune_allocator
from memorygan.data.synth import synthesize
from memorygan.devices import configure_backends, resolve_device
from memorygan.training.loop import Trainer
from memorygan.training.options import TrainOptions

SCALES = {"small": ("memorygan-small", "ssg-small", 64, 8), "paper": ("memorygan-256", "ssg-256", 256, 2)}


class OpCounter(TorchDispatchMode):
    """Counts the ATen operations dispatched while active (views included: they cost a dispatch, not a kernel)."""

    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.count += 1
        return func(*args, **(kwargs or {}))


def measure(data: Path, preset: str, batch: int, steps: int, warmup: int, bf16: bool, device: str, tmp: Path,
            count_ops: bool = True) -> dict:
    out = tmp / f"{preset}-{'bf16' if bf16 else 'fp32'}"
    opts = TrainOptions(data=str(data), preset=preset, out=str(out), steps=warmup + steps, batch=batch, bf16=bf16,
                        device=device, progress=False, sample_every=0, checkpoint_every=0, log_every=10 ** 9,
                        d_reg_every=16, g_reg_every=4)
    tr = Trainer(opts)
    for _ in range(warmup):
        tr.train_step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    f0, t0 = minor_faults(), time.perf_counter()
    for _ in range(steps):
        tr.train_step()
    tr._flush_nonfinite()               # what the training loop does every --log-every steps (a host read)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    faults = (minor_faults() - f0) / steps
    ops = None
    if count_ops:                       # the next `steps` steps (the same regulariser pattern for steps % 16 == 0)
        tr.opts.steps += steps
        with OpCounter() as counter:
            for _ in range(steps):
                tr.train_step()
        ops = counter.count / steps
    return {"preset": preset, "precision": "bf16" if bf16 else "fp32", "batch": batch, "steps": steps,
            "sec_per_step": dt / steps, "images_per_sec": batch * steps / dt, "faults_per_step": faults,
            "aten_ops_per_step": ops}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scales", default="small,paper")
    ap.add_argument("--steps", type=int, default=None, help="timed steps (default 16 small, 3 paper)")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--batch", type=int, default=None, help="batch size (default 8 small, 2 paper)")
    ap.add_argument("--device", default="auto", help="cpu, cuda, cuda:N, auto (default: the GPU when there is one)")
    ap.add_argument("--allocator", choices=["both", "tuned", "default"], default="tuned",
                    help="CPU: glibc settings as the CLI sets them (tuned, default), glibc's own, or both in fresh "
                         "processes with the speed-up")
    ap.add_argument("--precisions", default="fp32,bf16")
    ap.add_argument("--out", default=None, help="also write the JSON here")
    ap.add_argument("--no-count-ops", dest="count_ops", action="store_false",
                    help="skip counting the ATen ops per step (an untimed second pass of --steps steps)")
    args = ap.parse_args(argv)
    args.device = resolve_device(args.device)
    if args.device == "cpu" and args.allocator == "both":
        return _both_allocators(argv if argv is not None else sys.argv[1:], args.out)
    if args.device == "cpu" and args.allocator == "tuned":
        tune_allocator()
    cudnn_benchmark = configure_backends() if args.device.startswith("cuda") else None   # as the CLI and trainer do
    results = {"device": args.device, "allocator": args.allocator if args.device == "cpu" else None,
               "cudnn_benchmark": cudnn_benchmark, "torch": torch.__version__, "threads": torch.get_num_threads(),
               "machine": platform.machine(), "runs": [], "ratios": {}}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for scale in args.scales.split(","):
            mg, ssg, size, batch = SCALES[scale]
            batch = args.batch or batch
            data = tmp / f"data{size}"
            synthesize("portraits", data, n=max(16, batch), size=size, seed=0)
            steps = args.steps or (16 if scale == "small" else 3)
            by, ops = {}, {}
            precisions = args.precisions.split(",")
            for precision in precisions:
                for preset in (mg, ssg):
                    r = measure(data, preset, batch, steps, args.warmup, precision == "bf16", args.device, tmp,
                                args.count_ops)
                    r["scale"] = scale
                    results["runs"].append(r)
                    by[(preset, precision)] = r["images_per_sec"]
                    ops[(preset, precision)] = r["aten_ops_per_step"]
                    print(json.dumps(r), flush=True)
            for precision in precisions:
                results["ratios"][f"{scale}_{precision}_memorygan_over_ssg"] = by[(mg, precision)] / by[(ssg, precision)]
                if args.count_ops:
                    results["ratios"][f"{scale}_{precision}_ops_memorygan_over_ssg"] = \
                        ops[(mg, precision)] / ops[(ssg, precision)]
            if "bf16" in precisions and "fp32" in precisions:
                for preset in (mg, ssg):
                    results["ratios"][f"{preset}_bf16_over_fp32"] = by[(preset, "bf16")] / by[(preset, "fp32")]
    print(json.dumps(results, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2))
    return results


def _both_allocators(argv: list[str], out: str | None) -> dict:
    """glibc's defaults, then the CLI's settings, each in a fresh process; images/s of both and the speed-up."""
    argv = [a for i, a in enumerate(argv) if a != "--out" and (i == 0 or argv[i - 1] != "--out")]
    runs = {}
    for mode in ("default", "tuned"):
        env = dict(os.environ, MEMORYGAN_DEFAULT_MALLOC="1" if mode == "default" else "0")
        text = subprocess.run([sys.executable, __file__, *argv, "--allocator", mode], env=env, check=True,
                              stdout=subprocess.PIPE, text=True).stdout
        runs[mode] = json.loads(text[text.index("{\n"):])      # the final indented object (after the JSON lines)
    rows = []
    for before, after in zip(runs["default"]["runs"], runs["tuned"]["runs"]):
        rows.append({key: before[key] for key in ("scale", "preset", "precision", "batch", "steps")} | {
            "images_per_sec": {"default": before["images_per_sec"], "tuned": after["images_per_sec"]},
            "faults_per_step": {"default": before["faults_per_step"], "tuned": after["faults_per_step"]},
            "speedup": after["images_per_sec"] / before["images_per_sec"]})
    results = {"device": "cpu", "allocator": "default vs tuned (fresh processes)", "torch": torch.__version__,
               "threads": runs["tuned"]["threads"], "machine": platform.machine(), "runs": rows,
               "ratios_tuned": runs["tuned"]["ratios"]}
    print(json.dumps(results, indent=2))
    if out:
        Path(out).write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
