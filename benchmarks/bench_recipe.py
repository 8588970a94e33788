"""CPU (or GPU) cost of a training step per recipe arm: the discriminator (dual-branch, projected, hybrid) and the
augmentation (none, diffaug, ada), for MemoryGAN and SemanticStyleGAN's small presets, measured in one process
against the baseline arm (dual-branch D, no augmentation). Prints JSON.

    python benchmarks/bench_recipe.py                          # every arm, 16 timed steps each, 2 rounds
    python benchmarks/bench_recipe.py --arms dual/none,hybrid/diffaug --steps 32

Each arm is timed over `--steps` full training steps (every regulariser at its interval) after `--warmup` untimed
ones; the arms are measured in turn for `--rounds` rounds (round-robin, so load from other work spreads over all of
them) and each arm reports its fastest round. `ratio` is the arm's s/step over the baseline's for the same model.
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
from memorygan.devices import resolve_device
from memorygan.training.loop import Trainer
from memorygan.training.options import TrainOptions

ARMS = ("dual/none", "dual/ada", "dual/diffaug", "projected/diffaug", "hybrid/diffaug", "hybrid/ada")
BASELINE = "dual/none"


def trainer(data: Path, preset: str, arm: str, out: Path, device: str, steps: int, threads: int | None) -> Trainer:
    d_arch, augment = arm.split("/")
    d = {} if d_arch == "dual" else {"arch": d_arch, "projected_width": 32}
    opts = TrainOptions(data=str(data), preset=preset, out=str(out), steps=steps, batch=8, device=device,
                        progress=False, sample_every=0, checkpoint_every=0, log_every=10 ** 9, augment=augment,
                        augment_p=0.3 if augment == "ada" else None, discriminator_overrides=d,
                        r1_gamma=0.0 if d_arch != "dual" else None, threads=threads)
    return Trainer(opts)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arms", default=",".join(ARMS), help=f"D/augment pairs (default {','.join(ARMS)})")
    ap.add_argument("--models", default="memorygan-small,ssg-small")
    ap.add_argument("--steps", type=int, default=16, help="timed steps per round (16: R1 once, path length 4x)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--out", default=None, help="also write the JSON here")
    args = ap.parse_args(argv)
    device = resolve_device(args.device)
    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    if BASELINE not in arms:
        arms.insert(0, BASELINE)
    models = args.models.split(",")
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    best: dict[tuple[str, str], float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        synthesize("portraits", tmp / "data", n=32, size=64, seed=0)
        total = args.warmup + args.steps * args.rounds
        trainers = {(m, a): trainer(tmp / "data", m, a, tmp / f"{m}-{a.replace('/', '-')}", device, total,
                                    args.threads) for m in models for a in arms}
        for tr in trainers.values():
            for _ in range(args.warmup):
                tr.train_step()
        for _ in range(args.rounds):
            for key, tr in trainers.items():
                sync()
                t0 = time.perf_counter()
                for _ in range(args.steps):
                    tr.train_step()
                tr._flush_nonfinite()
                sync()
                dt = (time.perf_counter() - t0) / args.steps
                best[key] = min(best.get(key, float("inf")), dt)
    rows = [{"model": m, "arm": a, "sec_per_step": best[(m, a)], "images_per_sec": 8 / best[(m, a)],
             "ratio": best[(m, a)] / best[(m, BASELINE)]} for m in models for a in arms]
    res = {"device": device, "torch": torch.__version__, "threads": torch.get_num_threads(),
           "machine": platform.machine(), "steps": args.steps, "rounds": args.rounds, "baseline": BASELINE,
           "rows": rows}
    text = json.dumps(res, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return res


if __name__ == "__main__":
    main()
