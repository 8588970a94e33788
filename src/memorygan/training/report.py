"""Reports of training runs: metrics over time (PNG), samples with masks, sequential composition, markdown summary.
`memorygan report RUN [RUN ...] --out DIR`; the quickstart writes one for its run."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from memorygan.errors import CheckpointError
from memorygan.fileio import read_json, write_text_atomic
from memorygan.runs import (METRICS_LOG, STATS_LOG, RunLock, latest_checkpoint, list_checkpoints, read_log,
                            read_training_state, run_dataset)
from memorygan.training.loop import read_run_options


def run_logs(run) -> tuple[list[dict], list[dict]]:
    """(stats rows without events, metrics rows) of a run folder; a torn last line is skipped with a warning."""
    stats = [r for r in read_log(run, STATS_LOG) if "event" not in r]
    return stats, read_log(run, METRICS_LOG)


def _smooth(y: np.ndarray, n: int) -> np.ndarray:
    if len(y) < n or n <= 1:
        return y
    k = np.ones(n) / n
    return np.convolve(y, k, mode="valid")


X_AXES = {"minutes": ("train_minutes", "training minutes"), "kimg": ("kimg", "thousands of real images seen"),
          "step": ("step", "training steps (optimizer updates)")}


def plot_runs(runs: list, out_png, labels: list[str] | None = None, x: str = "minutes") -> Path:
    """Metrics over training time (x "minutes"), images seen (x "kimg": runs at equal batch, timed under different
    machine load) or optimizer steps (x "step": runs at different batch sizes) for one or several runs: domain FID,
    domain KID, mask consistency mIoU, and the adversarial losses (smoothed). Writes `out_png`."""
    fig = metrics_figure(runs, labels, x)
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=90)
    return out_png


def metrics_figure(runs: list, labels: list[str] | None = None, x: str = "minutes"):
    """The matplotlib Figure of `plot_runs` (four panels, one line per run and metric)."""
    from matplotlib.figure import Figure  # no pyplot: never switches the backend of a notebook or app

    if x not in X_AXES:
        raise ValueError(f"x must be one of {list(X_AXES)}, got {x!r}")
    xkey, xlabel = X_AXES[x]
    labels = labels or [Path(r).name for r in runs]
    fig = Figure(figsize=(17, 3.8))
    axes = fig.subplots(1, 4)
    for run, label in zip(runs, labels):
        stats, metrics = run_logs(run)
        if metrics:
            t = [m[xkey] for m in metrics]
            for ax, key in zip(axes[:3], ("domain_fid", "domain_kid", "mask_miou")):
                if key in metrics[0]:
                    ax.plot(t, [m[key] for m in metrics], "o-", ms=3, label=label)
        if stats:
            t = np.array([s[xkey] for s in stats])
            n = max(1, len(stats) // 50)
            for key, style in (("loss_d", "-"), ("loss_g", "--")):
                y = np.array([s.get(key, np.nan) for s in stats])
                ys = _smooth(y, n)
                axes[3].plot(t[len(t) - len(ys):], ys, style, label=f"{label} {key}")
    titles = ("domain FID (probe features)", "domain KID", "mask consistency mIoU", "losses (smoothed)")
    for ax, title in zip(axes, titles):
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=7)
    axes[0].set_yscale("log")
    fig.tight_layout()
    return fig


def write_report(run, out=None, seeds: int = 16, composition_seeds: tuple[int, ...] = (0, 1, 2)) -> Path:
    """Report folder of one run (default RUN/report): samples.png (one sample per seed 0..seeds-1, as `memorygan
    generate RUN --seeds 0-15`), composition.png (labelled rows and parts), metrics.png, summary.md. Everything it
    reads is checked before anything is written."""
    from PIL import Image

    import memorygan
    from memorygan.analysis.compose import labelled_figure, sequential_composition
    from memorygan.visualize import grid, seg_to_color, to_uint8

    run = Path(run)
    opts = read_run_options(run)
    ckpt = latest_checkpoint(run, resumable=True)
    if ckpt is None:
        raise CheckpointError(f"{run}: no checkpoint yet")
    state = read_training_state(ckpt)
    G, gcfg = memorygan.load(ckpt / "generator")
    stats, metrics = run_logs(run)
    data = run_dataset(run)
    probe = Path(opts.probe) if opts.probe else Path(data) / "probe"
    probe_meta = read_json(probe / "probe.json", CheckpointError, "probe description") \
        if (probe / "probe.json").is_file() else None
    import torch
    with torch.no_grad():           # one sample per seed, so the picture and the caption agree with `generate`
        outs = [G.sample(1, seed=s, noise_mode="const") for s in range(seeds)]
        compositions = [sequential_composition(G, s) for s in composition_seeds]
    samples_png = grid([np.concatenate([to_uint8(o.image) for o in outs]),
                        np.concatenate([seg_to_color(o.seg) for o in outs])])
    order = list(range(gcfg.num_classes))
    composition_png = labelled_figure(G, compositions, order, list(composition_seeds))

    out = Path(out) if out else run / "report"
    out.mkdir(parents=True, exist_ok=True)
    Image.fromarray(samples_png).save(out / "samples.png")
    Image.fromarray(composition_png).save(out / "composition.png")
    plot_runs([run], out / "metrics.png", [gcfg.arch])
    lines = [f"# Training report: {run.name}", "",
             f"- model: **{gcfg.arch}** (preset `{opts.preset}`), {G.num_params() / 1e6:.2f} M generator parameters, "
             f"{gcfg.num_classes} parts, {gcfg.resolution} px",
             f"- data: `{data}`",
             f"- trained: {state['step']} steps, {state['images'] / 1000:.1f} kimg, "
             f"{state['train_seconds'] / 60:.1f} min of training, batch {opts.batch}",
             f"- checkpoint: `{ckpt}`", ""]
    if stats:
        last = stats[-1]
        if isinstance(last.get("images_per_sec"), (int, float)) and isinstance(last.get("sec_per_kimg"), (int, float)):
            lines.append(f"- speed: {last['images_per_sec']:.1f} images/s ({last['sec_per_kimg']:.0f} s/kimg) at "
                         f"the end")
    if probe_meta is not None and isinstance(probe_meta.get("heldout_miou"), (int, float)):
        lines.append(f"- probe held-out mIoU (real images): {probe_meta['heldout_miou']:.3f}")
    if metrics:
        keys = [k for k in ("domain_fid", "domain_kid", "mask_miou") if k in metrics[0]]
        lines += ["", "| step | kimg | train min | " + " | ".join(keys) + " |",
                  "|---|---|---|" + "---|" * len(keys)]
        for m in metrics:
            lines.append(f"| {m.get('step')} | {m.get('kimg', float('nan')):.2f} | "
                         f"{m.get('train_minutes', float('nan')):.1f} | "
                         + " | ".join(f"{m.get(k, float('nan')):.4g}" for k in keys) + " |")
        if "domain_fid" in metrics[0] and len(metrics) > 1:
            ratio = metrics[-1]["domain_fid"] / max(metrics[0]["domain_fid"], 1e-12)
            lines += ["", f"Domain FID went from {metrics[0]['domain_fid']:.4g} at initialisation to "
                      f"{metrics[-1]['domain_fid']:.4g} ({100 * ratio:.1f}% of the initial value) after "
                      f"{metrics[-1].get('step')} steps; mask consistency "
                      f"{metrics[-1].get('mask_miou', float('nan')):.3f} mIoU."]
    lines += ["", f"Files: `samples.png` (EMA samples, one per seed {0}..{seeds - 1}, as `memorygan generate RUN "
              f"--seeds 0-{seeds - 1}`: images over colour-coded masks), `composition.png` (seeds "
              f"{', '.join(map(str, composition_seeds))}: parts added one at a time, columns labelled with the part "
              f"each adds; rows image, depth of the added part, mask), `metrics.png` (metrics and losses over "
              f"training time).", ""]
    (out / "summary.md").write_text("\n".join(lines))
    return out


def evaluate_checkpoints(run, probe=None, num_samples: int = 1000, seed: int = 123, out_name: str = METRICS_LOG,
                         progress: bool = True, device: str = "cpu") -> list[dict]:
    """Domain metrics of every complete checkpoint of a run (for runs trained without a probe, or with other
    settings), written to RUN/`out_name` (replacing it, atomically, holding the run's lock) with each checkpoint's
    step, kimg and training minutes."""
    import memorygan
    from memorygan.metrics.domain import DomainMetrics

    run = Path(run)
    opts = read_run_options(run)
    with RunLock(run, "report --evaluate"):
        ckpts = list_checkpoints(run, resumable=True)
        if not ckpts:
            raise CheckpointError(f"{run}: no checkpoints to evaluate")
        data = run_dataset(run)
        probe = probe or opts.probe or Path(data) / "probe"
        dm = DomainMetrics(probe, data, device=device)
        rows = []
        for ckpt in ckpts:
            state = read_training_state(ckpt)
            G, _ = memorygan.load(ckpt / "generator", device=device)
            m = dm.evaluate(G, num_samples=num_samples, seed=seed)
            row = {"step": int(state["step"]), "kimg": state["images"] / 1000,
                   "train_minutes": state["train_seconds"] / 60}
            row.update({k: v for k, v in m.items() if isinstance(v, (int, float))})
            rows.append(row)
            if progress:
                print(json.dumps(row), flush=True)
        write_text_atomic(run / out_name, "".join(json.dumps(r) + "\n" for r in rows))
    return rows
