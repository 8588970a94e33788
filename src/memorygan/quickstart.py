"""`memorygan quickstart`: the project's main job on the built-in procedural data, end to end in about 14 minutes
on a 2-core CPU: procedural portraits dataset -> segmentation probe -> small MemoryGAN trained for a bounded
time with domain metrics logged -> report folder (samples with masks, sequential composition, metrics over time,
summary.md)."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from memorygan.devices import add_device_argument, resolve_device
from memorygan.errors import ConfigError


@dataclass
class QuickstartResult:
    out: Path
    data: Path
    run: Path
    report: Path
    probe_miou: float
    metrics: list
    seconds: float


def run_quickstart(out="runs/quickstart", minutes: float = 11.0, n: int = 2000, size: int = 64,
                   preset: str = "memorygan-small", probe_steps: int = 800, metrics_every: int = 250,
                   metrics_samples: int = 500, seed: int = 0, workers: int = 2, progress: bool = True,
                   threads: int | None = None, device: str = "auto", log=print) -> QuickstartResult:
    """Run the quickstart into `out` (data/, run/, report/). Each stage is skipped when its output exists, so a
    second call (or one after Ctrl-C) continues where the first stopped."""
    from memorygan.data.synth import synthesize
    from memorygan.metrics.probe import train_probe
    from memorygan.runs import latest_checkpoint
    from memorygan.training.loop import resume, train
    from memorygan.training.options import TrainOptions
    from memorygan.training.report import write_report

    if minutes <= 0:
        raise ConfigError(f"--minutes must be > 0, got {minutes}")
    if threads:
        import torch
        torch.set_num_threads(threads)       # 1 is much faster than 2 when another process keeps a core busy
    t0 = time.perf_counter()
    out = Path(out)
    data, run, probe_dir = out / "data", out / "run", out / "data" / "probe"
    if not (data / "dataset.json").is_file():
        log(f"[1/4] procedural portraits: {n} images at {size} px -> {data}")
        synthesize("portraits", data, n=n, size=size, seed=seed, workers=workers, progress=progress)
    else:
        log(f"[1/4] dataset {data} exists, reusing it")
    if not (probe_dir / "probe.json").is_file():
        log("[2/4] training the segmentation probe on the real images (for domain FID/KID and mask consistency)")
        rep = train_probe(data, steps=probe_steps, seed=seed, progress=progress, device=resolve_device(device))
        probe_miou = rep.miou
    else:
        import json
        probe_miou = json.loads((probe_dir / "probe.json").read_text())["heldout_miou"]
        log(f"[2/4] probe {probe_dir} exists, reusing it")
    log(f"      probe held-out mIoU {probe_miou:.3f}")
    log(f"[3/4] training {preset} for {minutes:g} min -> {run}")
    if latest_checkpoint(run, resumable=True) is not None:
        result = resume(run, minutes=minutes, progress=progress, device=device)
    else:
        opts = TrainOptions(data=str(data), preset=preset, out=str(run), minutes=minutes, batch=8, mirror=True,
                            seed=seed, metrics_every=metrics_every, metrics_samples=metrics_samples,
                            sample_every=metrics_every, checkpoint_every=2 * metrics_every, log_every=10,
                            progress=progress, threads=threads, device=device)
        result = train(opts)
    log("[4/4] writing the report")
    report = write_report(run, out / "report")
    seconds = time.perf_counter() - t0
    if result.metrics:
        first, last = result.metrics[0], result.metrics[-1]
        log(f"domain FID {first['domain_fid']:.3g} -> {last['domain_fid']:.3g}, mask consistency "
            f"{last['mask_miou']:.3f} mIoU after {result.step} steps")
    log(f"done in {seconds / 60:.1f} min; report: {report}/summary.md")
    return QuickstartResult(out, data, run, report, probe_miou, result.metrics, seconds)


def register(subparsers) -> None:
    p = subparsers.add_parser("quickstart", help="end-to-end demo: procedural data, probe, train, report",
                              description=__doc__)
    p.add_argument("--out", default="runs/quickstart", help="output folder (default runs/quickstart)")
    p.add_argument("--minutes", type=float, default=11.0, help="training time (default 11)")
    p.add_argument("--n", type=int, default=2000, help="dataset size (default 2000)")
    p.add_argument("--preset", default="memorygan-small", help="model preset (default memorygan-small)")
    p.add_argument("--probe-steps", type=int, default=800, help="probe training steps (default 800)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--no-progress", action="store_true")
    add_device_argument(p)
    p.set_defaults(func=lambda a: (run_quickstart(a.out, a.minutes, a.n, preset=a.preset, probe_steps=a.probe_steps,
                                                  seed=a.seed, progress=not a.no_progress,
                                                  threads=a.threads, device=a.device), 0)[1])
