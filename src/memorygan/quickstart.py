"""`memorygan quickstart`: the project's main job on the built-in procedural data, end to end in about 13 minutes
on a quiet 2-core CPU: procedural portraits dataset -> segmentation probe -> small MemoryGAN trained for a fixed
number of steps (1,100 by default, so the result does not depend on how busy the machine is; only the time does)
with domain metrics logged -> report folder (samples with masks, sequential composition, metrics over time,
summary.md)."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

from memorygan.argtypes import positive_float, positive_int
from memorygan.cpu import (auto_threads, available_cores, busy_cores,  # noqa: F401 - auto_threads is part of this API
                           use_threads)
from memorygan.devices import add_device_argument, resolve_device
from memorygan.errors import ConfigError

DEFAULT_STEPS = 1100            # 10 training minutes on 2 quiet cores (README); the step budget, not the time, is fixed
QUIET_SECONDS_PER_STEP = 0.5    # measured there (0.50 s, 2026-12-05): for the time estimate printed before training


@dataclass
class QuickstartResult:
    out: Path
    data: Path
    run: Path
    report: Path
    probe_miou: float
    metrics: list
    seconds: float
    steps: int = 0
    trained: bool = True          # False when the run had already reached its budget


def check_quickstart_args(out, steps, minutes, more_steps, n, size, preset, probe_steps, metrics_every,
                          metrics_samples, seed, workers, threads) -> None:
    """Every argument, checked before any work (a bad --preset used to surface only after the dataset and the
    probe were built, minutes later)."""
    from memorygan.config import generator_config
    from memorygan.data.portraits import CLASSES
    from memorygan.models import check_model_size
    from memorygan.runs import RunLock

    def need(cond, msg):
        if not cond:
            raise ConfigError(msg)

    def is_int(v):
        return isinstance(v, int) and not isinstance(v, bool)
    need(steps is None or (is_int(steps) and steps >= 1), f"--steps must be an integer >= 1, got {steps!r}")
    need(minutes is None or (isinstance(minutes, (int, float)) and math.isfinite(minutes) and minutes > 0),
         f"--minutes must be > 0, got {minutes!r}")
    need(more_steps is None or (is_int(more_steps) and more_steps >= 1),
         f"--more-steps must be an integer >= 1, got {more_steps!r}")
    need(is_int(n) and n >= 20, f"--n must be an integer >= 20 (the probe holds out every 10th image), got {n!r}")
    need(is_int(size) and 8 <= size <= 4096 and size % 8 == 0,
         f"--size must be a multiple of 8 between 8 and 4096 (the probe halves it 3 times), got {size!r}")
    for name, v in (("--probe-steps", probe_steps), ("--metrics-every", metrics_every),
                    ("--metrics-samples", metrics_samples), ("--workers", workers)):
        need(is_int(v) and v >= 1, f"{name} must be an integer >= 1, got {v!r}")
    need(metrics_samples >= 2, f"--metrics-samples must be at least 2, got {metrics_samples}")
    need(is_int(seed), f"--seed must be an integer, got {seed!r}")
    need(threads is None or (is_int(threads) and threads >= 1), f"--threads must be an integer >= 1, got {threads!r}")
    gcfg = generator_config(preset, num_classes=len(CLASSES), class_names=list(CLASSES), transparent_classes=[])
    check_model_size(gcfg, where=f"preset {preset}")
    out = Path(out)
    need(not out.exists() or out.is_dir(), f"--out {out} exists and is not a folder")
    if out.is_dir():
        known = {"data", "run", "report"}
        other = sorted(p.name for p in out.iterdir() if p.name not in known and not p.name.startswith("."))
        need(not other, f"--out {out} holds other things ({', '.join(other[:5])}): the quickstart writes "
                        f"data/, run/ and report/ there; choose an empty or new folder")
        RunLock(out / "run").check_free()


def run_quickstart(out="runs/quickstart", steps: int | None = None, n: int = 2000, size: int = 64,
                   preset: str = "memorygan-small", probe_steps: int = 800, metrics_every: int = 250,
                   metrics_samples: int = 500, seed: int = 0, workers: int = 2, progress: bool = True,
                   threads: int | None = None, minutes: float | None = None, more_steps: int | None = None,
                   device: str = "auto", log=print) -> QuickstartResult:
    """Run the quickstart into `out` (data/, run/, report/). Each stage is skipped when its output exists, so a
    second call (or one after Ctrl-C) continues where the first stopped; a finished run is not trained again
    (`more_steps` continues it). Training stops after `steps` (default 1,100), or after `minutes` of training
    when only that is given (then the result depends on the machine's load). `threads` defaults to
    `auto_threads()` (the cores not busy now, measured over a quarter second)."""
    from memorygan.data.synth import synthesize
    from memorygan.fileio import read_json
    from memorygan.metrics.probe import train_probe
    from memorygan.runs import latest_checkpoint, read_training_state
    from memorygan.training.loop import resume, train
    from memorygan.training.options import TrainOptions
    from memorygan.training.report import write_report

    if steps is None and minutes is None:
        steps = DEFAULT_STEPS
    check_quickstart_args(out, steps, minutes, more_steps, n, size, preset, probe_steps, metrics_every,
                          metrics_samples, seed, workers, threads)
    busy = busy_cores() if threads is None else None      # measured now, not the lagging load average
    chosen = use_threads(threads, load=busy)
    if threads is None:
        log(f"      using {chosen} torch thread(s) for {available_cores()} cores, {busy:.1f} of them busy now "
            f"(--threads to choose)")
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
        from memorygan.errors import CheckpointError
        probe_miou = read_json(probe_dir / "probe.json", CheckpointError, "probe description").get("heldout_miou")
        log(f"[2/4] probe {probe_dir} exists, reusing it")
    if isinstance(probe_miou, (int, float)):
        log(f"      probe held-out mIoU {probe_miou:.3f}")
    budget = f"{steps} steps" if steps is not None else f"{minutes:g} training minutes"
    ckpt = latest_checkpoint(run, resumable=True)
    trained = True
    if ckpt is not None:
        state = read_training_state(ckpt)
        done = (steps is not None and state["step"] >= steps) or \
            (steps is None and state["train_seconds"] >= minutes * 60)
        given = {"threads": threads} if threads is not None else {}
        given["device"] = device
        if more_steps is not None:
            log(f"[3/4] continuing {run} from step {state['step']} for {more_steps} more steps")
            result = resume(run, more_steps=more_steps, progress=progress, **given)
        elif done:
            log(f"[3/4] {run} is finished: {state['step']} steps ({state['train_seconds'] / 60:.1f} training "
                f"minutes) meet the budget of {budget}; nothing to train (`memorygan quickstart --more-steps N` "
                f"continues it)")
            result, trained = None, False
        else:
            log(f"[3/4] continuing {run} from step {state['step']} up to {budget}")
            result = resume(run, steps=steps, minutes=minutes if steps is None else None, progress=progress,
                            **given)
    else:
        if more_steps is not None:
            raise ConfigError(f"--more-steps continues a finished quickstart, but {run} has no checkpoint yet")
        eta = f" (about {steps * QUIET_SECONDS_PER_STEP / 60:.0f} minutes on 2 quiet cores; the progress bar " \
              f"shows the estimate for this machine)" if steps is not None else \
              " (the number of steps, hence the result, depends on how busy the machine is)"
        log(f"[3/4] training {preset} for {budget}{eta} -> {run}")
        opts = TrainOptions(data=str(data), preset=preset, out=str(run), steps=steps, minutes=minutes, batch=8,
                            mirror=True, seed=seed, metrics_every=metrics_every, metrics_samples=metrics_samples,
                            sample_every=metrics_every, checkpoint_every=2 * metrics_every, log_every=10,
                            progress=progress, threads=chosen, device=device)
        result = train(opts)
    log("[4/4] writing the report")
    report = write_report(run, out / "report")
    seconds = time.perf_counter() - t0
    from memorygan.runs import METRICS_LOG, read_log
    metrics = result.metrics if result is not None else read_log(run, METRICS_LOG)
    step = result.step if result is not None else state["step"]
    if metrics and "domain_fid" in metrics[0]:
        first, last = metrics[0], metrics[-1]
        log(f"domain FID {first['domain_fid']:.3g} -> {last['domain_fid']:.3g}, mask consistency "
            f"{last.get('mask_miou', float('nan')):.3f} mIoU after {step} steps")
    else:
        log(f"{step} steps")
    log(f"done in {seconds / 60:.1f} min; report: {report}/summary.md")
    return QuickstartResult(out, data, run, report, probe_miou, metrics, seconds, step, trained)


def register(subparsers) -> None:
    p = subparsers.add_parser("quickstart", help="end-to-end demo: procedural data, probe, train, report",
                              description=__doc__)
    p.add_argument("--out", default="runs/quickstart", help="output folder (default runs/quickstart)")
    p.add_argument("--steps", type=positive_int, default=None,
                   help=f"training steps (default {DEFAULT_STEPS}; the same result on any machine)")
    p.add_argument("--minutes", type=positive_float, default=None,
                   help="train for this many training minutes instead of a step budget (the result then depends on "
                        "how busy the machine is)")
    p.add_argument("--more-steps", type=positive_int, default=None, metavar="N",
                   help="continue a finished quickstart for N more steps")
    p.add_argument("--n", type=positive_int, default=2000, help="dataset size (default 2000)")
    p.add_argument("--preset", default="memorygan-small", help="model preset (default memorygan-small)")
    p.add_argument("--probe-steps", type=positive_int, default=800, help="probe training steps (default 800)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default %(default)s)")
    p.add_argument("--threads", type=positive_int, default=None,
                   help="torch CPU threads (default: the cores not busy with other work)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_device_argument(p)
    p.set_defaults(func=lambda a: (run_quickstart(a.out, a.steps, a.n, preset=a.preset, probe_steps=a.probe_steps,
                                                  seed=a.seed, progress=not a.no_progress, threads=a.threads,
                                                  minutes=a.minutes, more_steps=a.more_steps, device=a.device), 0)[1])
