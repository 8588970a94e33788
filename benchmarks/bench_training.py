"""Training throughput (images/s) of MemoryGAN vs SemanticStyleGAN, fp32 and bf16 autocast, at the small preset
(64 px) and at paper scale (256 px, K = 13), measured in one process. Prints JSON.

    python benchmarks/bench_training.py                       # small: 16 steps (batch 8), paper: 3 steps (batch 2)
    python benchmarks/bench_training.py --scales small --steps 32

Each measured step is a full training step (D main, G main, and the lazy regularisers at their intervals, so
over `steps` steps R1 and path length run as often as in training when steps is a multiple of 16); the first
`--warmup` steps are not timed.
"""
from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import torch

from memorygan.data.synth import synthesize
from memorygan.training.loop import Trainer
from memorygan.training.options import TrainOptions

SCALES = {"small": ("memorygan-small", "ssg-small", 64, 8), "paper": ("memorygan-256", "ssg-256", 256, 2)}


def measure(data: Path, preset: str, batch: int, steps: int, warmup: int, bf16: bool, device: str, tmp: Path) -> dict:
    out = tmp / f"{preset}-{'bf16' if bf16 else 'fp32'}"
    opts = TrainOptions(data=str(data), preset=preset, out=str(out), steps=warmup + steps, batch=batch, bf16=bf16,
                        device=device, progress=False, sample_every=0, checkpoint_every=0, log_every=10 ** 9,
                        d_reg_every=16, g_reg_every=4)
    tr = Trainer(opts)
    for _ in range(warmup):
        tr.train_step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        tr.train_step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    return {"preset": preset, "precision": "bf16" if bf16 else "fp32", "batch": batch, "steps": steps,
            "sec_per_step": dt / steps, "images_per_sec": batch * steps / dt}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scales", default="small,paper")
    ap.add_argument("--steps", type=int, default=None, help="timed steps (default 16 small, 3 paper)")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--precisions", default="fp32,bf16")
    ap.add_argument("--out", default=None, help="also write the JSON here")
    args = ap.parse_args(argv)
    results = {"device": args.device, "torch": torch.__version__, "threads": torch.get_num_threads(),
               "machine": platform.machine(), "runs": [], "ratios": {}}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for scale in args.scales.split(","):
            mg, ssg, size, batch = SCALES[scale]
            data = tmp / f"data{size}"
            synthesize("portraits", data, n=16, size=size, seed=0)
            steps = args.steps or (16 if scale == "small" else 3)
            by = {}
            precisions = args.precisions.split(",")
            for precision in precisions:
                for preset in (mg, ssg):
                    r = measure(data, preset, batch, steps, args.warmup, precision == "bf16", args.device, tmp)
                    r["scale"] = scale
                    results["runs"].append(r)
                    by[(preset, precision)] = r["images_per_sec"]
                    print(json.dumps(r), flush=True)
            for precision in precisions:
                results["ratios"][f"{scale}_{precision}_memorygan_over_ssg"] = by[(mg, precision)] / by[(ssg, precision)]
            if "bf16" in precisions and "fp32" in precisions:
                for preset in (mg, ssg):
                    results["ratios"][f"{preset}_bf16_over_fp32"] = by[(preset, "bf16")] / by[(preset, "fp32")]
    print(json.dumps(results, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
