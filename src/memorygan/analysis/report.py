"""The evaluation report (issue 5, MemoryGAN Sec. 4.3-4.5): trained runs compared side by side.

For each run (its newest checkpoint): domain FID/KID and mask consistency through the dataset's probe (the Table 2
analogue; Inception FID/KID/IS too when Inception weights are given), SMSE per part (Table 3, Fig. 10), leakage per
part, and the analysis figures (composition Fig. 9, part-level style mixing Fig. 11, interpolation Fig. 12, t-SNE
Fig. 13, cosine correlation Fig. 14). Everything goes to one folder: a markdown page, `evaluation.json` with every
number, and the PNGs, each produced by the same library functions as `memorygan metrics` / `memorygan analyze`.
"""
from __future__ import annotations

import json
import math
import os
import shlex
import time
from pathlib import Path

import numpy as np

from memorygan.errors import ConfigError

# parts shown in the mixing / interpolation figures (those of a portraits dataset that exist in the model);
# other datasets fall back to the first few parts
FIGURE_PARTS = ("background", "skin", "hair", "eyes", "eyebrows", "mouth", "nose")


def _figure_parts(G) -> list[str]:
    names = G.part_names
    chosen = [p for p in FIGURE_PARTS if p in names]
    return chosen if len(chosen) >= 2 else names[:min(len(names), 5)]


def _fmt(x, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    return f"{x:.{digits}g}"


def _run_data(run: Path, data) -> str:
    if data is not None:
        return str(data)
    from memorygan.runs import run_dataset

    return run_dataset(run)


def evaluate_one(run, out: Path, data=None, n: int = 1000, n_smse: int = 1000, n_leakage: int = 500,
                 n_embed: int = 300, n_correlate: int = 2000, seeds=(0, 1, 2, 3), inception_weights=None,
                 truncation: float = 1.0, progress: bool = False, device: str = "cpu", log=print) -> dict:
    """All numbers and figures of one run into `out`; returns the record stored in evaluation.json."""
    from memorygan import load
    from memorygan.analysis import (write_composition, write_correlation, write_embedding, write_interpolation,
                                    write_mixing)
    from memorygan.analysis.dependencies import generated_dependencies
    from memorygan.metrics import compute_metrics, run_snapshot
    from memorygan.metrics.leakage import leakage
    from memorygan.metrics.smse import smse_values, summarize

    run = Path(run)
    snapshot, step = run_snapshot(run)
    G, _ = load(snapshot, device=device)
    G.eval()
    data = _run_data(run, data)
    rec = {"run": str(run), "snapshot": str(snapshot), "step": step, "arch": G.arch, "data": data, "seconds": {}}

    t0 = time.perf_counter()
    names = ["dfid", "dkid", "consistency"] + (["fid", "kid", "is"] if inception_weights else [])
    log(f"  metrics {','.join(names)} over {n} samples")
    rec["metrics"] = compute_metrics(names, generator=G, data=data, n=n, seed=0, truncation=truncation,
                                     inception_weights=inception_weights, progress=progress, device=device)
    rec["seconds"]["metrics"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    log(f"  SMSE over {n_smse} samples")
    values = smse_values(G, n_smse, seed=1, truncation=truncation, progress=progress)   # (K-1, N)
    parts = G.part_names
    rec["smse"] = {parts[i + 1]: summarize(values[i]) for i in range(values.shape[0])}
    finite = [s["mean"] for s in rec["smse"].values() if math.isfinite(s["mean"])]
    rec["smse_mean"] = float(np.mean(finite)) if finite else math.nan
    np.save(out / "smse_values.npy", values.numpy().astype(np.float32))
    rec["seconds"]["smse"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    log(f"  leakage over {n_leakage} samples")
    rec["leakage"] = leakage(G, n_leakage, seed=2, truncation=truncation, progress=progress)
    rec["seconds"]["leakage"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    if has_dependency_parts(G.part_names):
        log(f"  part dependencies over {n} samples")
        rec["dependencies"] = generated_dependencies(G, n, seed=5, truncation=truncation)
        rec["seconds"]["dependencies"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    log("  figures: compose, mix, interpolate, embed, correlate")
    seeds = list(seeds)
    shown = _figure_parts(G)
    write_composition(G, out, seeds[:3], truncation=truncation)
    write_mixing(G, out, seeds[:4], [s + 100 for s in seeds[:4]], parts=shown, truncation=truncation)
    write_interpolation(G, out, seeds[0], seeds[1], steps=7, parts=shown, truncation=truncation)
    write_embedding(G, out, num=n_embed, seed=3, truncation=truncation)
    corr = write_correlation(G, out, num=n_correlate, seed=4, truncation=truncation)
    rec["correlation_summary"] = {space: _offdiag_summary(np.array(v["mean"])) for space, v in corr["spaces"].items()}
    rec["figure_parts"] = shown
    rec["seconds"]["figures"] = time.perf_counter() - t0
    return rec


def has_dependency_parts(names) -> bool:
    from memorygan.analysis.dependencies import NEEDED_PARTS
    return all(p in names for p in NEEDED_PARTS)


def _offdiag_summary(mean: np.ndarray) -> dict:
    """Mean and max |cosine| over the off-diagonal pairs of a K x K correlation matrix."""
    off = mean[~np.eye(mean.shape[0], dtype=bool)]
    return {"mean_offdiag": float(off.mean()), "mean_abs_offdiag": float(np.abs(off).mean()),
            "max_offdiag": float(off.max())}


def smse_boxplot(values: dict[str, np.ndarray], parts: list[str], path: Path) -> Path:
    """Fig. 10 analogue: per part, a box of the per-sample SMSE of each run (whiskers at 1.5 IQR, no fliers)."""
    import matplotlib
    from matplotlib.figure import Figure  # no pyplot: never switches the backend of a notebook or app

    labels = list(values)
    width = 0.8 / len(labels)
    fig = Figure(figsize=(max(6.0, 0.75 * len(parts) * len(labels)), 3.6), dpi=110)
    ax = fig.subplots()
    colors = matplotlib.colormaps["tab10"].colors
    for j, label in enumerate(labels):
        data = [v[np.isfinite(v)] for v in values[label]]
        pos = np.arange(len(parts)) + (j - (len(labels) - 1) / 2) * width
        ax.boxplot(data, positions=pos, widths=width * 0.9, showfliers=False, patch_artist=True,
                   boxprops=dict(facecolor=colors[j % 10], alpha=0.6), medianprops=dict(color="black"))
        ax.plot([], [], color=colors[j % 10], lw=6, alpha=0.6, label=label)
    ax.set_xticks(np.arange(len(parts)), parts, rotation=40, ha="right")
    ax.set_ylabel("SMSE (Eq. 15)")
    ax.set_title("SMSE per added part (parts in composition order)")
    ax.legend(frameon=False)
    fig.tight_layout()
    fig.savefig(path)
    return path


def leakage_barplot(records: dict[str, dict], parts: list[str], path: Path) -> Path:
    from matplotlib.figure import Figure  # no pyplot: never switches the backend of a notebook or app

    labels = list(records)
    width = 0.8 / len(labels)
    fig = Figure(figsize=(max(6.0, 0.6 * len(parts) * len(labels)), 3.4), dpi=110)
    ax = fig.subplots()
    for j, label in enumerate(labels):
        ratios = [records[label]["leakage"]["leakage"][p]["ratio"] for p in parts]
        ratios = [np.nan if r is None else r for r in ratios]
        ax.bar(np.arange(len(parts)) + (j - (len(labels) - 1) / 2) * width, ratios, width, label=label)
    ax.set_xticks(np.arange(len(parts)), parts, rotation=40, ha="right")
    ax.set_ylabel("|change| outside / inside")
    ax.set_title("Leakage: resampling one part's codes")
    ax.legend(frameon=False)
    fig.tight_layout()
    fig.savefig(path)
    return path


def _markdown(records: dict[str, dict], out: Path, md_path: Path, command: str, inception: bool,
              real_dependencies: dict | None = None) -> str:
    labels = list(records)
    rel = os.path.relpath(out, md_path.parent)
    first = records[labels[0]]
    lines = ["# Evaluation: MemoryGAN vs SemanticStyleGAN", "",
             "Regenerate (from the repository root, after training the runs of `docs/training.md`):", "",
             "```", command, "```", "",
             "Runs: " + "; ".join(f"**{lab}** `{r['snapshot']}` (step {r['step']})" for lab, r in records.items())
             + f". Dataset `{first['data']}`.", "",
             "## Fidelity and mask consistency (Table 2 analogue)", "",
             "Domain FID/KID use the dataset's probe features (DESIGN 5); mask consistency is the mIoU between the "
             "generator's own segmentation and the probe's segmentation of its image."
             + ("" if inception else " Inception FID/KID/IS need the FID Inception weights file "
                                     "(`--inception-weights`), which this machine does not have."), ""]
    cols = ["dfid", "dkid", "consistency"] + (["fid", "kid", "is"] if inception else [])
    head = {"dfid": "domain FID", "dkid": "domain KID", "consistency": "consistency mIoU", "fid": "FID",
            "kid": "KID", "is": "IS"}
    lines += ["| model | " + " | ".join(head[c] for c in cols) + " | samples |",
              "|---|" + "---|" * (len(cols) + 1)]
    for lab, r in records.items():
        m = r["metrics"]
        vals = []
        for c in cols:
            res = m[c]
            key = {"dfid": "domain_fid", "dkid": "domain_kid", "consistency": "mask_miou", "fid": "fid",
                   "kid": "kid", "is": "is"}[c]
            v = res.get(key, res.get("value"))
            std = res.get(key + "_std", res.get("std"))
            vals.append(_fmt(v) + (f" ± {_fmt(std, 2)}" if std is not None and c in ("dkid", "kid", "is") else ""))
        n = m[cols[0]].get("num_samples", "")
        lines.append(f"| {lab} | " + " | ".join(vals) + f" | {n} |")

    parts = list(first["smse"])
    lines += ["", "## SMSE per part (Table 3 analogue, Eq. 15)", "",
              f"Mean ± std over {first.get('n_smse')} samples, parts added in class-id order (background first); "
              "pixel values in [-1, 1], squared change averaged over RGB. Box plot (Fig. 10): "
              f"![SMSE]({rel}/smse.png)", "",
              "| part | " + " | ".join(labels) + " |", "|---|" + "---|" * len(labels)]
    for p in parts:
        cells = []
        for lab in labels:
            s = records[lab]["smse"][p]
            cells.append(f"{_fmt(s['mean'], 3)} ± {_fmt(s['std'], 2)}" + (f" ({s['excluded']} n/a)" if s["excluded"]
                                                                          else ""))
        lines.append(f"| {p} | " + " | ".join(cells) + " |")
    lines.append("| **mean over parts** | " + " | ".join(_fmt(records[lab]["smse_mean"], 3) for lab in labels) + " |")

    lparts = list(first["leakage"]["leakage"])
    lines += ["", "## Leakage per part", "",
              f"Resample one part's own codes (shape + texture layers; background: all) over "
              f"{first['leakage']['num_samples']} samples; ratio = mean |pixel change| outside the part's region "
              "(union of its masks before and after) / mean |change| inside; area = mean region fraction. "
              f"![leakage]({rel}/leakage.png)", "",
              "| part | " + " | ".join(f"{lab} ratio | {lab} area" for lab in labels) + " |",
              "|---|" + "---|---|" * len(labels)]
    for p in lparts:
        cells = []
        for lab in labels:
            e = records[lab]["leakage"]["leakage"][p]
            cells += [_fmt(e["ratio"], 3), _fmt(e["area"], 2)]
        lines.append(f"| {p} | " + " | ".join(cells) + " |")
    lines.append("| **mean ratio** | " + " | ".join(f"{_fmt(records[lab]['leakage']['leakage_mean'], 3)} | "
                                                    for lab in labels) + " |")

    if real_dependencies is not None and all("dependencies" in r for r in records.values()):
        from memorygan.analysis.dependencies import dependency_table

        n_dep = real_dependencies["num_images"]
        lines += ["", "## Part dependencies, real vs generated", "",
                  "Pearson correlation between measures of parts over images: the dataset's ground truth "
                  "(attributes.jsonl), the same measures taken from real images with their true masks, and from "
                  f"{n_dep} samples of each model with their own masks (Δ: distance to the real images). Lightness is "
                  "the mean luma of a part, eye blueness mean (blue - red) over the eyes, mouth width and eye height "
                  "relative to the face width (`memorygan analyze dependencies`). A model reproduces a dependency when "
                  "its correlation matches the real images'.", ""]
        lines += dependency_table(real_dependencies, {lab: r["dependencies"] for lab, r in records.items()})
        lines += ["", "Fraction of samples in which each part is present: " + "; ".join(
            f"{lab}: " + ", ".join(f"{k.split('_')[0]} {v:.2f}" for k, v in r["dependencies"]["present"].items()
                                   if k in ("skin_lightness", "hair_lightness", "eye_lightness", "mouth_width"))
            for lab, r in records.items()) + "."]

    lines += ["", "## Figures", ""]
    for title, stem in (("Sequential composition (Fig. 9): rows image, depth of the added part, mask", "compose.png"),
                        ("t-SNE of per-part codes (Fig. 13)", "embed.png"),
                        ("Cosine correlation between parts, mean (top) and std (bottom) (Fig. 14)", "correlate.png")):
        lines += [f"**{title}**", ""] + [f"{lab}: ![]({rel}/{_slug(lab)}/{stem})" for lab in labels] + [""]
    lines += ["**Part-level style mixing (Fig. 11)**: background swaps all layers, skin/hair (and the other large "
              "parts) shape + texture layers, small parts also the last base layer. Per part: "]
    for lab in labels:
        links = ", ".join(f"[{p}]({rel}/{_slug(lab)}/mix-both-{p}.png)" for p in records[lab]["figure_parts"])
        lines.append(f"- {lab}: {links}")
    lines += ["", "**Interpolation (Fig. 12)**, whole image then per part: "
              + ", ".join(f"[{lab}]({rel}/{_slug(lab)}/interpolate-0-1.png)" for lab in labels), ""]
    lines += ["Cosine correlation summary (mean over part pairs of the mean matrix):", ""]
    for lab in labels:
        s = records[lab]["correlation_summary"]
        lines.append(f"- {lab}: " + "; ".join(f"{space} space mean {_fmt(v['mean_offdiag'], 3)}, mean |.| "
                                                f"{_fmt(v['mean_abs_offdiag'], 3)}" for space, v in s.items()))
    return "\n".join(lines) + "\n"


def _slug(label: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in label.lower())


def write_evaluation_report(runs, labels=None, out="docs/evaluation", markdown=None, data=None, n: int = 1000,
                            n_smse: int = 1000, n_leakage: int = 500, n_embed: int = 300, n_correlate: int = 2000,
                            inception_weights=None, truncation: float = 1.0, progress: bool = False,
                            command: str | None = None, device: str = "cpu", log=print) -> Path:
    """Evaluate each run and write `out/<label>/` (figures), `out/smse.png`, `out/leakage.png`,
    `out/evaluation.json` and the markdown page (default `out/README.md`). Returns the markdown path."""
    runs = [Path(r) for r in runs]
    if not runs:
        raise ConfigError("runs: give at least one training run folder")
    labels = list(labels) if labels else [r.name for r in runs]
    if len(labels) != len(runs):
        raise ConfigError(f"labels: {len(labels)} label(s) for {len(runs)} run(s)")
    if len({_slug(lab) for lab in labels}) != len(labels):
        raise ConfigError(f"labels must be distinct, got {labels}")
    for r in runs:
        if not r.is_dir():
            raise ConfigError(f"runs: {r} is not a folder")
    out = Path(out)
    md_path = Path(markdown) if markdown else out / "README.md"
    records, smse_raw = {}, {}
    for run, lab in zip(runs, labels):
        log(f"[{lab}] {run}")
        sub = out / _slug(lab)
        sub.mkdir(parents=True, exist_ok=True)
        rec = evaluate_one(run, sub, data, n, n_smse, n_leakage, n_embed, n_correlate,
                           inception_weights=inception_weights, truncation=truncation, progress=progress, device=device, log=log)
        rec["n_smse"] = n_smse
        records[lab] = rec
        smse_raw[lab] = np.load(sub / "smse_values.npy")
    real_dep = None
    if all("dependencies" in r for r in records.values()):
        from memorygan.analysis.dependencies import real_dependencies

        real_dep = real_dependencies(records[labels[0]]["data"], n)
    parts = list(records[labels[0]]["smse"])
    if all(list(r["smse"]) == parts for r in records.values()):
        smse_boxplot(smse_raw, parts, out / "smse.png")
        leakage_barplot(records, list(records[labels[0]]["leakage"]["leakage"]), out / "leakage.png")
    if command is None:
        command = "memorygan analyze report " + " ".join(shlex.quote(str(r)) for r in runs)
    (out / "evaluation.json").write_text(json.dumps({"command": command, "runs": records,
                                                     "real_dependencies": real_dep}, indent=2,
                                                    default=_json_default) + "\n")
    md_path.parent.mkdir(parents=True, exist_ok=True)
    md_path.write_text(_markdown(records, out, md_path, command, bool(inception_weights), real_dep))
    log(f"wrote {md_path} and {out}/")
    return md_path


def _json_default(x):
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, Path):
        return str(x)
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")
