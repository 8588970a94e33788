"""The monitors of a BigGAN run as thesis Fig. 2-2: (a) G and D losses, (b) the first singular value of every
layer of G and (c) of D, (d) domain IS and FID over training, (e) per-class accuracy of samples; plus the run's
collapse warnings. `memorygan biggan report RUN --out FIG.png`."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from memorygan.fileio import read_lines
from memorygan.runs import METRICS_LOG, STATS_LOG

SV_LOG = "sv.jsonl"


def summarize(run) -> dict:
    """The numbers behind the figure: last losses, sigma_0 ranges, best and last IS / FID, and the warnings."""
    run = Path(run)
    stats, metrics = read_lines(run / STATS_LOG), read_lines(run / METRICS_LOG)
    sv = read_lines(run / SV_LOG)
    out: dict = {"steps": stats[-1]["step"] if stats else 0, "kimg": stats[-1]["kimg"] if stats else 0.0,
                 "warnings": [w for r in stats for w in r.get("warnings", [])]}
    if stats:
        out["last"] = {k: stats[-1].get(k) for k in ("d_loss", "g_loss", "d_real", "d_fake", "sv_g_max", "sv_d_max")}
    if sv:
        g = {k: [r[k] for r in sv if k in r] for k in sv[-1] if k.startswith("G/")}
        out["sv_g_final_max_layer"] = max(g, key=lambda k: g[k][-1]) if g else None
    if metrics:
        best = min(metrics, key=lambda r: r["fid"])
        out["metrics_last"] = {k: metrics[-1][k] for k in ("step", "kimg", "accuracy", "inception_score", "fid",
                                                            "fid_per_class_mean", "precision", "recall")}
        out["metrics_best_fid"] = {k: best[k] for k in ("step", "kimg", "fid", "accuracy", "inception_score")}
    return out


def plot_monitors(run, path, title: str | None = None) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run = Path(run)
    stats, metrics, sv = read_lines(run / STATS_LOG), read_lines(run / METRICS_LOG), read_lines(run / SV_LOG)
    if not stats:
        from memorygan.errors import CheckpointError
        raise CheckpointError(f"{run}: no {STATS_LOG} to plot")
    fig, ax = plt.subplots(1, 5 if metrics else 3, figsize=(18 if metrics else 11, 3.3))
    k = [r["kimg"] for r in stats]
    for key, label in (("d_real", "D real (hinge)"), ("d_fake", "D fake (hinge)"), ("g_loss", "G")):
        ax[0].plot(k, [r.get(key, np.nan) for r in stats], label=label, lw=1)
    ax[0].set_title("(a) losses")
    ax[0].legend(fontsize=7)
    sk = [r["step"] for r in sv]
    kimg_of = {r["step"]: r["kimg"] for r in stats}
    xs = [kimg_of.get(s, np.nan) for s in sk]
    for i, net in enumerate(("G", "D")):
        names = [n for n in (sv[-1] if sv else {}) if n.startswith(net + "/")]
        for n in names:
            ax[1 + i].plot(xs, [r.get(n, np.nan) for r in sv], lw=0.6)
        ax[1 + i].set_title(f"({'b' if net == 'G' else 'c'}) first singular value, {net} ({len(names)} layers)")
        ax[1 + i].set_yscale("log")
    warn_steps = [r["kimg"] for r in stats if r.get("warnings")]
    for a in ax[:3]:
        for w in warn_steps:
            a.axvline(w, color="red", lw=0.8, alpha=0.6)
        a.set_xlabel("kimg")
        a.grid(alpha=0.3)
    if metrics:
        mk = [r["kimg"] for r in metrics]
        ax[3].plot(mk, [r["fid"] for r in metrics], "o-", label="domain FID", ms=3)
        ax[3].plot(mk, [r["fid_per_class_mean"] for r in metrics], "s--", label="per-class FID (mean)", ms=3)
        ax3b = ax[3].twinx()
        ax3b.plot(mk, [r["inception_score"] for r in metrics], "^-", color="C2", label="domain IS", ms=3)
        ax[3].set_title("(d) domain FID and IS")
        ax[3].legend(fontsize=7, loc="upper center")
        ax3b.legend(fontsize=7, loc="upper right")
        ax[4].plot(mk, [r["accuracy"] for r in metrics], "o-", label="accuracy (own class)", ms=3)
        ax[4].plot(mk, [r["precision"] for r in metrics], "--", label="precision", lw=1)
        ax[4].plot(mk, [r["recall"] for r in metrics], ":", label="recall", lw=1)
        ax[4].set_ylim(0, 1.02)
        ax[4].set_title("(e) samples in their class")
        ax[4].legend(fontsize=7)
        for a in ax[3:]:
            a.set_xlabel("kimg")
            a.grid(alpha=0.3)
    fig.suptitle(title or str(run), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)
