"""Model complexity vs number of parts (MemoryGAN Table 1 / Fig. 7): parameters and true multiply-accumulates.

MACs are counted with `torch.utils.flop_counter.FlopCounterMode` on one image (MACs = FLOPs / 2), on the `meta`
device so paper-scale models with K = 1000 cost no memory or compute. The MemoryGAN paper's MAC column
(103.4 G at K = 1) used another convention; FlopCounterMode counts every conv/linear/matmul exactly once,
including the transposed upsampling convs at their input resolution.
"""
from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from memorygan.config import generator_config


def count_macs(G, batch: int = 1) -> int:
    """True MACs per image of one generator forward from the random source (no grad)."""
    G.requires_grad_(False)  # FlopCounterMode's module tracker trips over no-grad views of leaf parameters
    z = torch.zeros(batch, G.num_latents, G.config.latent_dim, device=G.device)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        G(z, noise_mode="const")
    return counter.get_total_flops() // 2 // batch


def measure(preset: str, parts: int, device: str = "meta") -> dict:
    from memorygan.models import build_generator

    cfg = generator_config(preset, num_classes=parts, class_names=None, transparent_classes=[])
    with torch.device(device):
        G = build_generator(cfg)
    return {"arch": cfg.arch, "preset": preset, "parts": parts, "params": G.num_params(), "macs": count_macs(G)}


def complexity_table(presets: list[str], parts: list[int], device: str = "meta") -> list[dict]:
    return [measure(p, k, device) for p in presets for k in parts]


def format_markdown(rows: list[dict]) -> str:
    lines = ["| arch | preset | K | params (M) | MACs (G) |", "|---|---|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['arch']} | {r['preset']} | {r['parts']} | {r['params'] / 1e6:.2f} | {r['macs'] / 1e9:.2f} |")
    return "\n".join(lines)


def plot_complexity(rows: list[dict], path) -> None:
    from matplotlib.figure import Figure  # no pyplot: never switches the backend of a notebook or app

    fig = Figure(figsize=(10, 4))
    axes = fig.subplots(1, 2)
    for preset in dict.fromkeys(r["preset"] for r in rows):
        sub = sorted((r for r in rows if r["preset"] == preset), key=lambda r: r["parts"])
        ks = [r["parts"] for r in sub]
        axes[0].plot(ks, [r["params"] / 1e6 for r in sub], "o-", label=preset)
        axes[1].plot(ks, [r["macs"] / 1e9 for r in sub], "o-", label=preset)
    for ax, title in zip(axes, ["generator parameters (M)", "generator MACs per image (G)"]):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("number of parts K")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
