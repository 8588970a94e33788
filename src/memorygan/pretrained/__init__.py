"""Generators shipped with the package, loadable by name (issue 26).

    G, cfg = memorygan.load("portraits-memorygan")       # or "portraits-ssg"; any --generator accepts the name

Each one is a generator folder in this package (config.json + fp16 generator.safetensors + MODEL_CARD.md), read
through the same checked loader as every other generator folder; a path that exists on disk always wins over a
name. `export` writes such a folder from any generator, checkpoint or run: the weights in half precision, the model
card written from the run's recorded options and the metrics you measured, and the fp16 rounding's effect on the
images measured on the spot (so the card states what storing in fp16 cost).
"""
from __future__ import annotations

import json
import math
from pathlib import Path

SHIPPED_DIR = Path(__file__).resolve().parent
CARD = "MODEL_CARD.md"
DEFAULT_DEMO = "portraits-memorygan"          # what `memorygan demo` serves without --generator

# metrics a card shows when the metrics file holds them, in this order: (key, label)
CARD_METRICS = [
    ("domain_fid", "domain FID (EfficientNet-Lite0 features)"),
    ("domain_kid", "domain KID"),
    ("mask_miou", "mask consistency: mIoU of the generated mask against the probe's"),
    ("presence_eyes_mouth", "samples with eyes and mouth (probe)"),
    ("presence_eyes", "eyes present (probe)"),
    ("presence_eyebrows", "eyebrows present (probe)"),
    ("presence_mouth", "mouth present (probe)"),
    ("presence_nose", "nose present (probe)"),
]


def names() -> list[str]:
    """The names of the shipped generators (folders of this package holding a generator)."""
    return sorted(p.name for p in SHIPPED_DIR.iterdir()
                  if p.is_dir() and (p / "config.json").is_file() and (p / "generator.safetensors").is_file())


def folder(name: str) -> Path | None:
    """The folder of the shipped generator `name`, or None when there is no such name."""
    return SHIPPED_DIR / name if name in names() else None


def card(name: str) -> str:
    """The model card (markdown) of a shipped generator."""
    from memorygan.errors import ConfigError

    path = folder(name)
    if path is None:
        raise ConfigError(f"no shipped generator named {name!r} (shipped: {', '.join(names()) or 'none'})")
    card_file = path / CARD
    return card_file.read_text() if card_file.is_file() else f"# {name}\n\n(no model card)\n"


def flatten_metrics(metrics: dict) -> dict[str, float]:
    """{key: number} from a metrics file: flat ({"domain_fid": ...}), or grouped as `memorygan metrics --out` writes
    it ({"dfid": {"domain_fid": ...}, ...}); a metrics.jsonl row works too. Non-numbers are dropped."""
    flat: dict[str, float] = {}
    for k, v in metrics.items():
        if isinstance(v, dict):
            for k2, v2 in v.items():
                if isinstance(v2, (int, float)) and not isinstance(v2, bool):
                    flat.setdefault(k2, float(v2))
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            flat[k] = float(v)
    return flat


def fp16_fidelity(G, num: int = 16, seed: int = 0) -> dict[str, float]:
    """What storing G's weights in fp16 does to its images: the same seeds (constant noise) rendered with the fp32
    weights and with the weights rounded to fp16 and back. Returns the max absolute pixel difference (images in
    [-1, 1]), the PSNR of the rounded model's images against the fp32 ones, and the share of mask pixels whose
    class changes."""
    import copy

    import torch

    G16 = copy.deepcopy(G)
    with torch.no_grad():
        for t in list(G16.parameters()) + list(G16.buffers()):
            if t.is_floating_point():
                t.copy_(t.to(torch.float16).to(t.dtype))
        a, b = G.sample(num, seed=seed), G16.sample(num, seed=seed)
    diff = (a.image - b.image).float()
    mse = float(diff.pow(2).mean())
    psnr = math.inf if mse == 0 else 10 * math.log10(4.0 / mse)           # peak-to-peak 2 for [-1, 1]
    changed = float((a.seg.argmax(1) != b.seg.argmax(1)).float().mean())
    return {"max_abs_diff": float(diff.abs().max()), "psnr_db": psnr, "mask_pixels_changed": changed,
            "num_samples": num, "seed": seed}


def _source_info(source) -> dict:
    """What the run behind `source` records about its training (empty when `source` is not a run/checkpoint)."""
    from memorygan.runs import checkpoint_step, is_run, latest_checkpoint, read_run_config

    src = Path(source)
    run, ckpt = None, None
    if is_run(src):
        run, ckpt = src, latest_checkpoint(src)
    elif checkpoint_step(src) is not None and is_run(src.parent.parent):
        run, ckpt = src.parent.parent, src
    if run is None or ckpt is None:
        return {}
    opts = read_run_config(run).get("options", {})
    step = checkpoint_step(ckpt)
    keep = ("preset", "batch", "lr", "r1_gamma", "r1_gamma_mask", "augment", "mirror", "mixing", "ema_kimg",
            "ema_rampup", "seed", "lambda_mask")
    info = {"step": step, "kimg": round(step * opts.get("batch", 0) / 1000, 2) if step is not None else None,
            "options": {k: opts[k] for k in keep if k in opts}}
    if opts.get("data"):
        info["data"] = Path(opts["data"]).name
    return info


def render_card(name: str, cfg, num_params: int, info: dict, metrics: dict[str, float], fidelity: dict,
                notes: str = "") -> str:
    """The model card's markdown: what the model is, how it was trained, what it scores, what fp16 cost."""
    lines = [f"# {name}", "",
             f"{'MemoryGAN' if cfg.arch == 'memorygan' else 'SemanticStyleGAN'} ({cfg.arch}), {cfg.resolution} px, "
             f"{cfg.num_classes} classes"
             f"{' (' + ', '.join(cfg.class_names) + ')' if cfg.class_names else ''}, {num_params / 1e6:.2f} M parameters, "
             f"weights stored in fp16.", "",
             f"Load: `memorygan.load(\"{name}\")`, or `--generator {name}` in any command.", ""]
    if info:
        lines += ["## Training", "",
                  f"- {info.get('step')} steps, {info.get('kimg')} kimg"
                  + (f", data: {info['data']}" if info.get("data") else ""),
                  "- options: " + ", ".join(f"{k} {v}" for k, v in info.get("options", {}).items()), ""]
    shown = [(label, key) for key, label in CARD_METRICS if key in metrics]
    if shown:
        lines += ["## Measured", "", "| measure | generated | real |", "|---|---|---|"]
        for label, key in shown:
            real = metrics.get(key.replace("presence_", "presence_real_")) if key.startswith("presence_") else None
            fmt = (lambda v: f"{100 * v:.0f} %") if key.startswith("presence_") else (lambda v: f"{v:.4g}")
            lines.append(f"| {label} | {fmt(metrics[key])} | {fmt(real) if real is not None else ''} |")
        extra = {k: metrics[k] for k in ("num_samples", "num_real", "seed") if k in metrics}
        if extra:
            lines += ["", "(" + ", ".join(f"{k} {int(v)}" for k, v in extra.items()) + ")"]
        lines.append("")
    lines += ["## fp16 storage", "",
              f"Rendering {fidelity['num_samples']} samples (seed {fidelity['seed']}, constant noise) with the fp16 "
              f"weights against the fp32 ones: PSNR {fidelity['psnr_db']:.1f} dB, max pixel difference "
              f"{fidelity['max_abs_diff']:.4f} (images in [-1, 1]), "
              f"{100 * fidelity['mask_pixels_changed']:.2f} % of mask pixels change class.", ""]
    if notes.strip():
        lines += ["## Notes", "", notes.strip(), ""]
    return "\n".join(lines)


def export(generator, out, name: str | None = None, metrics: dict | None = None, notes: str = "",
           overwrite: bool = False, storage_dtype: str = "float16") -> Path:
    """Write `generator` (any generator/checkpoint/run path or shipped name) to the folder `out` as a shippable
    generator: fp16 weights, config.json recording the card's facts under "model_card", and MODEL_CARD.md. The
    folder is written atomically; an existing one is refused unless `overwrite`."""
    from memorygan.checkpoint import save_generator
    from memorygan.errors import CheckpointError
    from memorygan.models import load_generator

    out = Path(out)
    if out.exists() and not overwrite:
        raise CheckpointError(f"--out {out} already exists (pass --overwrite to replace it)")
    name = name or out.name
    G, cfg = load_generator(generator)
    if storage_dtype == "float16":
        big = [k for k, t in G.state_dict().items() if t.is_floating_point() and bool((t.abs() > 65504).any())]
        if big:
            raise CheckpointError(f"{generator}: {len(big)} tensor(s) hold values beyond fp16's range (65504), so "
                                  f"they cannot be stored in fp16: {', '.join(big[:5])}")
    flat = flatten_metrics(metrics or {})
    fidelity = fp16_fidelity(G)
    info = _source_info(generator)
    num_params = sum(t.numel() for t in G.state_dict().values())
    text = render_card(name, cfg, num_params, info, flat, fidelity, notes)
    meta = {"model_card": {"name": name, "training": info, "metrics": {k: v for k, v in flat.items()
                                                                        if math.isfinite(v)},
                           "fp16": fidelity if math.isfinite(fidelity["psnr_db"]) else
                           {**fidelity, "psnr_db": None}}}
    return save_generator(G, out, extra=meta, overwrite=True, storage_dtype=storage_dtype,
                          extra_files={CARD: text})


def read_metrics_file(path) -> dict:
    """A metrics JSON file (`memorygan metrics --out`, or one row of metrics.jsonl saved as JSON)."""
    from memorygan.errors import ConfigError
    from memorygan.fileio import read_json

    return read_json(Path(path), ConfigError, "metrics file")


__all__ = ["names", "folder", "card", "export", "fp16_fidelity", "flatten_metrics", "render_card", "DEFAULT_DEMO",
           "SHIPPED_DIR"]
