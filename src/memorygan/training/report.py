"""Reports of training runs: metrics over time (PNG), samples with masks, sequential composition, markdown summary.
`memorygan report RUN [RUN ...] --out DIR`; the quickstart writes one for its run."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from memorygan.errors import CheckpointError
from memorygan.runs import STATE_FILE, latest_checkpoint, list_checkpoints
from memorygan.training.loop import read_run_options


def read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def run_logs(run) -> tuple[list[dict], list[dict]]:
    """(stats rows without events, metrics rows) of a run folder."""
    run = Path(run)
    stats = [r for r in read_jsonl(run / "stats.jsonl") if "event" not in r]
    return stats, read_jsonl(run / "metrics.jsonl")


def _smooth(y: np.ndarray, n: int) -> np.ndarray:
    if len(y) < n or n <= 1:
        return y
    k = np.ones(n) / n
    return np.convolve(y, k, mode="valid")


X_AXES = {"minutes": ("train_minutes", "training minutes"), "kimg": ("kimg", "thousands of real images seen")}


def plot_runs(runs: list, out_png, labels: list[str] | None = None, x: str = "minutes") -> Path:
    """Metrics over training time (x "minutes") or images seen (x "kimg": runs at equal steps, timed under different
    machine load) for one or several runs: domain FID, domain KID, mask consistency mIoU, and the adversarial losses
    (smoothed)."""
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
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=90)
    return out_png


def write_report(run, out=None, seeds: int = 16, composition_seeds: tuple[int, ...] = (0, 1, 2)) -> Path:
    """Report folder of one run (default RUN/report): samples.png, composition.png, metrics.png, summary.md."""
    from PIL import Image

    import memorygan
    from memorygan.analysis.compose import composition_figure
    from memorygan.visualize import sample_grid

    run = Path(run)
    opts = read_run_options(run)
    ckpt = latest_checkpoint(run, resumable=True)
    if ckpt is None:
        raise CheckpointError(f"{run}: no checkpoint yet")
    out = Path(out) if out else run / "report"
    out.mkdir(parents=True, exist_ok=True)
    G, gcfg = memorygan.load(ckpt / "generator")
    import torch
    with torch.no_grad():
        samples = G.sample(seeds, seed=0, noise_mode="const")
    Image.fromarray(sample_grid(samples)).save(out / "samples.png")
    Image.fromarray(composition_figure(G, list(composition_seeds))).save(out / "composition.png")
    plot_runs([run], out / "metrics.png", [gcfg.arch])
    stats, metrics = run_logs(run)
    state = torch.load(ckpt / STATE_FILE, weights_only=True)
    lines = [f"# Training report: {run.name}", "",
             f"- model: **{gcfg.arch}** (preset `{opts.preset}`), {G.num_params() / 1e6:.2f} M generator parameters, "
             f"{gcfg.num_classes} parts, {gcfg.resolution} px",
             f"- data: `{opts.data}`",
             f"- trained: {state['step']} steps, {state['images'] / 1000:.1f} kimg, "
             f"{state['train_seconds'] / 60:.1f} min of training, batch {opts.batch}",
             f"- checkpoint: `{ckpt}`", ""]
    if stats:
        last = stats[-1]
        lines.append(f"- speed: {last['images_per_sec']:.1f} images/s ({last['sec_per_kimg']:.0f} s/kimg) at the end")
    probe = Path(opts.probe) if opts.probe else Path(opts.data) / "probe"
    if (probe / "probe.json").is_file():
        meta = json.loads((probe / "probe.json").read_text())
        miou = meta.get("heldout_miou")
        if miou is not None:
            lines.append(f"- probe held-out mIoU (real images): {miou:.3f}")
    if metrics:
        keys = [k for k in ("domain_fid", "domain_kid", "mask_miou") if k in metrics[0]]
        lines += ["", "| step | kimg | train min | " + " | ".join(keys) + " |",
                  "|---|---|---|" + "---|" * len(keys)]
        for m in metrics:
            lines.append(f"| {m['step']} | {m['kimg']:.2f} | {m['train_minutes']:.1f} | "
                         + " | ".join(f"{m[k]:.4g}" for k in keys) + " |")
        if "domain_fid" in metrics[0] and len(metrics) > 1:
            ratio = metrics[-1]["domain_fid"] / max(metrics[0]["domain_fid"], 1e-12)
            lines += ["", f"Domain FID went from {metrics[0]['domain_fid']:.4g} at initialisation to "
                      f"{metrics[-1]['domain_fid']:.4g} ({100 * ratio:.1f}% of the initial value); mask consistency "
                      f"{metrics[-1].get('mask_miou', float('nan')):.3f} mIoU."]
    lines += ["", "Files: `samples.png` (EMA samples, seeds 0..15: images over colour-coded masks), "
              "`composition.png` (parts added one at a time: image, depth of the added part, mask), "
              "`metrics.png` (metrics and losses over training time).", ""]
    (out / "summary.md").write_text("\n".join(lines))
    return out


def evaluate_checkpoints(run, probe=None, num_samples: int = 1000, seed: int = 123, out_name: str = "metrics.jsonl",
                         progress: bool = True) -> list[dict]:
    """Domain metrics of every checkpoint of a run (for runs trained without a probe, or with other settings),
    written to RUN/`out_name` (replacing it) with each checkpoint's step, kimg and training minutes."""
    import torch

    import memorygan
    from memorygan.metrics.domain import DomainMetrics

    run = Path(run)
    opts = read_run_options(run)
    ckpts = list_checkpoints(run, resumable=True)
    if not ckpts:
        raise CheckpointError(f"{run}: no checkpoints to evaluate")
    probe = probe or opts.probe or Path(opts.data) / "probe"
    dm = DomainMetrics(probe, opts.data)
    rows = []
    for ckpt in ckpts:
        state = torch.load(ckpt / STATE_FILE, weights_only=True)
        G, _ = memorygan.load(ckpt / "generator")
        m = dm.evaluate(G, num_samples=num_samples, seed=seed)
        row = {"step": int(state["step"]), "kimg": state["images"] / 1000,
               "train_minutes": state["train_seconds"] / 60}
        row.update({k: v for k, v in m.items() if isinstance(v, (int, float))})
        rows.append(row)
        if progress:
            print(json.dumps(row), flush=True)
    tmp = run / f".{out_name}.tmp"
    tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    tmp.replace(run / out_name)
    return rows
