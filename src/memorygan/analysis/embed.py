"""Low-dimensional embedding (MemoryGAN Sec. 4.5, Fig. 13): t-SNE of the per-part codes of N samples, coloured by
part, in query space (MemoryGAN only) and latent space. Codes: `memorygan.analysis.parts.part_codes`."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from memorygan.analysis.parts import check_spaces, part_codes
from memorygan.errors import ConfigError

DEFAULT_PERPLEXITY = 30.0


def tsne(codes: torch.Tensor | np.ndarray, random_state: int = 0,
         perplexity: float = DEFAULT_PERPLEXITY) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """t-SNE of per-part codes (N, K, D) -> xy (N*K, 2) float32, part id (N*K,), sample index (N*K,) and the
    perplexity used (clamped below the number of points, as t-SNE requires). Point n*K + k is part k of sample n.
    Deterministic for a `random_state` (PCA initialisation)."""
    try:
        from sklearn.manifold import TSNE
    except ImportError:
        raise ConfigError("t-SNE needs scikit-learn: pip install 'memorygan[analysis]'") from None

    codes = np.asarray(codes, dtype=np.float32)
    if codes.ndim != 3:
        raise ConfigError(f"codes must be (N, K, D), got shape {codes.shape}")
    n, k, d = codes.shape
    points = codes.reshape(n * k, d)
    if len(points) < 3:
        raise ConfigError(f"t-SNE needs at least 3 codes, got {len(points)} (N={n} samples x K={k} parts)")
    perplexity = float(min(perplexity, (len(points) - 1) / 3))
    xy = TSNE(n_components=2, perplexity=perplexity, init="pca", learning_rate="auto",
              random_state=random_state).fit_transform(points)
    return xy.astype(np.float32), np.tile(np.arange(k), n), np.repeat(np.arange(n), k), perplexity


def embedding(G, num: int = 1000, seed: int = 0, spaces=None, truncation: float = 1.0, random_state: int = 0,
              perplexity: float = DEFAULT_PERPLEXITY) -> dict:
    """{space: {"xy": (N*K, 2), "part": (N*K,), "sample": (N*K,), "perplexity": float}} for each code space
    (None = query and latent for MemoryGAN, latent for SSG; query for SSG is a ConfigError)."""
    result = {}
    for space in check_spaces(G, spaces):
        xy, part, sample, used = tsne(part_codes(G, num, seed, space, truncation), random_state, perplexity)
        result[space] = {"xy": xy, "part": part, "sample": sample, "perplexity": used}
    return result


def embedding_figure(result: dict, names: list[str], path, title: str = "") -> Path:
    """Scatter PNG, one panel per code space, points coloured by part (mask palette) with a legend."""
    from matplotlib.figure import Figure  # no pyplot: never switches the backend of a notebook or app

    from memorygan.data.palette import class_colors

    colors = class_colors(len(names)) / 255.0
    spaces = list(result)
    fig = Figure(figsize=(5.2 * len(spaces) + 1.6, 5.0))
    axes = fig.subplots(1, len(spaces), squeeze=False)
    for ax, space in zip(axes[0], spaces):
        r = result[space]
        size = max(2.0, min(20.0, 6000.0 / len(r["xy"])))
        for k, name in enumerate(names):
            sel = r["part"] == k
            ax.scatter(r["xy"][sel, 0], r["xy"][sel, 1], s=size, color=colors[k], label=name, alpha=0.8,
                       edgecolors="none")
        ax.set_title(f"{space} codes")
        ax.set_xticks([])
        ax.set_yticks([])
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center right", markerscale=max(1.0, 40.0 / size) ** 0.5, frameon=False)
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, 0, 1 - 1.5 / fig.get_figwidth(), 1))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    return path


def write_embedding(G, out, num: int = 1000, seed: int = 0, spaces=None, truncation: float = 1.0,
                    random_state: int = 0, perplexity: float = DEFAULT_PERPLEXITY) -> dict:
    """`embed.png` (scatter), `embed.npz` (per space `{space}_xy`, `{space}_part`, `{space}_sample`, and
    `part_names`) and `embed.json` (parameters) in `out`."""
    from memorygan.analysis.figures import generator_info, write_json

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    names = G.part_names
    result = embedding(G, num, seed, spaces, truncation, random_state, perplexity)
    png = embedding_figure(result, names, out / "embed.png",
                           f"t-SNE of per-part codes, {G.arch}, {num} samples")
    arrays = {"part_names": np.array(names)}
    for space, r in result.items():
        arrays.update({f"{space}_xy": r["xy"], f"{space}_part": r["part"], f"{space}_sample": r["sample"]})
    npz = out / "embed.npz"
    np.savez(npz, **arrays)
    record = {"analysis": "embed", "generator": generator_info(G), "num": num, "seed": seed,
              "truncation": truncation, "random_state": random_state, "spaces": list(result),
              "perplexity": {s: r["perplexity"] for s, r in result.items()},
              "codes": {"query": "MemoryGAN controller queries q^k (queries[:, 1:])",
                        "latent": ("latent codes w^k (latents[:, 1:])" if G.arch == "memorygan" else
                                   "concatenated shape and texture W+ codes of each part")},
              "png": str(png), "npz": str(npz)}
    record["json"] = str(write_json(record, out / "embed.json"))
    return record
