"""Correlation between parts (MemoryGAN Sec. 4.5, Fig. 14): per sample the K x K matrix of pairwise cosine
similarity between the parts' codes; its mean and standard deviation over N samples, in query space (MemoryGAN
only) and latent space. Codes: `memorygan.analysis.parts.part_codes`."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from memorygan.analysis.parts import check_spaces, part_codes
from memorygan.errors import ConfigError


def cosine_correlation(codes: torch.Tensor, batch: int = 4096) -> tuple[torch.Tensor, torch.Tensor]:
    """codes (N, K, D) -> mean (K, K) and std (K, K) over the N samples of cos(c_n^i, c_n^j).

    The std is the population std (ddof 0), so N = 1 gives zeros. Accumulated in float64, `batch` samples at a time.
    """
    codes = torch.as_tensor(codes)
    if codes.ndim != 3 or codes.shape[0] < 1:
        raise ConfigError(f"codes must be (N >= 1, K, D), got shape {tuple(codes.shape)}")
    n, k, _ = codes.shape
    total = torch.zeros(k, k, dtype=torch.float64, device=codes.device)
    total_sq = torch.zeros(k, k, dtype=torch.float64, device=codes.device)
    for i in range(0, n, batch):
        unit = F.normalize(codes[i:i + batch].double(), dim=-1)
        sim = unit @ unit.transpose(1, 2)                                  # (b, K, K)
        total += sim.sum(0)
        total_sq += (sim * sim).sum(0)
    mean = total / n
    std = (total_sq / n - mean * mean).clamp(min=0).sqrt()
    return mean, std


def correlation(G, num: int = 10000, seed: int = 0, spaces=None, truncation: float = 1.0) -> dict:
    """{space: {"mean": (K, K), "std": (K, K)}} for each code space (None = query and latent for MemoryGAN,
    latent for SSG)."""
    result = {}
    for space in check_spaces(G, spaces):
        mean, std = cosine_correlation(part_codes(G, num, seed, space, truncation))
        result[space] = {"mean": mean, "std": std}
    return result


def correlation_figure(result: dict, names: list[str], path, title: str = "") -> Path:
    """Heatmaps as in Fig. 14: top row the means, bottom row the stds; one column per code space (query left)."""
    from matplotlib.figure import Figure  # no pyplot: never switches the backend of a notebook or app

    spaces = list(result)
    k = len(names)
    cell = max(3.6, 0.32 * k + 1.8)
    fig = Figure(figsize=(cell * len(spaces) + 0.6, 2 * cell))
    axes = fig.subplots(2, len(spaces), squeeze=False)
    annotate = k <= 16
    for col, space in enumerate(spaces):
        panels = (("mean", -1.0, 1.0, "coolwarm"), ("std", 0.0, None, "viridis"))
        for row, (stat, vmin, vmax, cmap) in enumerate(panels):
            ax = axes[row][col]
            m = np.asarray(result[space][stat], dtype=np.float64)
            im = ax.imshow(m, vmin=vmin, vmax=vmax if vmax is not None else max(float(m.max()), 1e-6), cmap=cmap)
            ax.set_title(f"{space} codes: {stat}")
            ticks = range(k) if k <= 40 else []
            ax.set_xticks(ticks)
            ax.set_yticks(ticks)
            if k <= 40:
                ax.set_xticklabels(names, rotation=90, fontsize=7)
                ax.set_yticklabels(names, fontsize=7)
            if annotate:
                for i in range(k):
                    for j in range(k):
                        r, g, b, _ = im.cmap(im.norm(m[i, j]))
                        dark = 0.299 * r + 0.587 * g + 0.114 * b < 0.5  # white text on dark cells
                        ax.text(j, i, f"{m[i, j]:.2f}", ha="center", va="center", fontsize=5 if k > 8 else 7,
                                color="white" if dark else "black")
            fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, 0, 1, 0.97 if title else 1))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    return path


def write_correlation(G, out, num: int = 10000, seed: int = 0, spaces=None, truncation: float = 1.0) -> dict:
    """`correlate.png` (heatmaps) and `correlate.json` (per space the mean and std matrices, part-name order)."""
    from memorygan.analysis.figures import generator_info, write_json

    out = Path(out)
    names = G.part_names
    result = correlation(G, num, seed, spaces, truncation)
    png = correlation_figure(result, names, out / "correlate.png",
                             f"cosine similarity between parts, {G.arch}, {num} samples")
    record = {"analysis": "correlate", "generator": generator_info(G), "num": num, "seed": seed,
              "truncation": truncation, "parts": names, "png": str(png),
              "spaces": {s: {"mean": r["mean"].tolist(), "std": r["std"].tolist()} for s, r in result.items()}}
    record["json"] = str(write_json(record, out / "correlate.json"))
    return record
