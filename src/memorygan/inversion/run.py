"""Batch inversion of a folder into an output folder, resumable (`memorygan invert`).

    OUT/inversion.json          generator, its fingerprint, options, perceptual distance, source of the images
    OUT/NAME/codes.safetensors  the codes (`memorygan.editing.codes`; level, generator fingerprint; with PTI they
                                belong to the tuned generator beside them)
    OUT/NAME/NAME-reconstruction.png, NAME-seg.png (the generator's segmentation), NAME-compare.png (target,
                                reconstruction, segmentation, and the mask when given)
    OUT/NAME/metrics.json       psnr (8-bit), perceptual (+ perceptual_name), miou against the mask (when given),
                                before/after PTI, code distances to the true codes (known answers)
    OUT/NAME/generator/         with PTI: the tuned copy of the generator (`save_pretrained`)
    OUT/summary.json            means over the finished images

Each image's folder is written to a temporary sibling and renamed into place when complete, so an interrupted
run leaves only finished images; running the same command again continues with the rest. A folder holding an
inversion made with other settings is refused rather than mixed.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from memorygan.errors import ConfigError
from memorygan.fileio import jsonable
from memorygan.inversion import losses
from memorygan.inversion.projection import CodeSpace, InversionOptions, project
from memorygan.inversion.targets import Targets, load_target

RECORD = "inversion.json"
SUMMARY = "summary.json"
METRICS = "metrics.json"
CODES = "codes.safetensors"
TARGETS = "targets"                          # --seeds: the generator's samples with their true codes
DRIFT_SEEDS = tuple(range(10_000, 10_008))   # unrelated seeds on which PTI's side effects are measured


@dataclass
class InversionResult:
    out: Path
    perceptual_name: str
    done: list[str]                 # inverted by this call
    skipped: list[str]              # already finished before this call
    summary: dict = field(default_factory=dict)


def _write_json(path: Path, data) -> None:
    from memorygan.fileio import write_json
    write_json(path, data)


def _miou(seg: torch.Tensor, ids: torch.Tensor | None) -> float | None:
    if ids is None:
        return None
    from memorygan.metrics.stats import IoUCounts
    return IoUCounts(seg.shape[1]).update(seg.argmax(1).cpu(), ids.cpu()).miou


@torch.no_grad()
def image_metrics(image, seg, target, ids, perceptual) -> dict:
    """psnr (8-bit), mse ([-1, 1]), perceptual distance, mIoU of argmax(seg) against the mask (None without)."""
    from memorygan.visualize import to_uint8

    return {"psnr": losses.psnr_uint8(to_uint8(image), to_uint8(target)),
            "mse": float(losses.pixel_mse(image, target)),
            "perceptual": None if perceptual is None else float(perceptual(image, target)),
            "miou": _miou(seg, ids)}


@torch.no_grad()
def code_distances(G, recovered: torch.Tensor, true: torch.Tensor, space: CodeSpace) -> dict:
    """Per part, expanded codes (1, K, L, D): `relative` = ||rec - true|| / ||true - mean|| (0: exact; 1: as far
    off as the mean codes are) and `rms_std` = RMS of (rec - true) in units of the codes' spread."""
    mean = space.mean if space.level == "expanded" else G.expand(space.mean[None])[0]
    std = space.std if space.level == "expanded" else G.expand(space.std[None])[0]
    rec, tru = recovered[0].to(mean.device), true[0].to(mean.device)
    out = {}
    for k, name in enumerate(G.part_names):
        rel = float((rec[k] - tru[k]).norm() / (tru[k] - mean[k]).norm().clamp_min(1e-12))
        rms = float(((rec[k] - tru[k]) / std[k]).pow(2).mean().sqrt())
        out[name] = {"relative": rel, "rms_std": rms}
    out["mean_relative"] = float(np.mean([v["relative"] for v in out.values()]))
    return out


def _settings(G, generator_path, opts: InversionOptions, perceptual, targets: Targets, init_from) -> dict:
    from memorygan.checkpoint import generator_fingerprint

    return {"format": "memorygan-inversion", "version": 1, "generator": str(generator_path),
            "generator_fingerprint": generator_fingerprint(G), "arch": G.arch,
            "options": opts.to_dict(),
            "perceptual": None if perceptual is None else perceptual.describe(),
            "source": targets.source, "init_from": None if init_from is None else str(init_from)}


def _initial_codes(init_from: Path, names: list[str], G, space: CodeSpace, opts: InversionOptions):
    """(u (B, *space.shape), noise maps or None) of the codes a previous inversion folder holds for `names`.
    They must belong to G (its fingerprint) and hold the level being optimised."""
    from memorygan.editing.codes import load_codes

    us, noises = [], []
    for name in names:
        path = Path(init_from) / name / CODES
        if not path.is_file():
            raise ConfigError(f"--init-from {init_from}: no codes for image {name} ({path} is missing)")
        codes = load_codes(path, G)
        if opts.code_level == "latents":
            if codes.latents is None:
                raise ConfigError(f"{path}: holds no latents; --level {opts.level} needs codes found at that level")
            c = codes.latents
        else:
            c = codes.expanded
        us.append(space.units(c.to(space.mean.device)))
        noises.append(codes.noise)
    if all(n is None for n in noises):
        return torch.cat(us), None
    if any(n is None for n in noises):
        raise ConfigError(f"--init-from {init_from}: some images have optimised noise maps and some do not")
    return torch.cat(us), [torch.cat([n[j] for n in noises]) for j in range(len(noises[0]))]


def _check_resumable(out: Path, settings: dict) -> None:
    path = out / RECORD
    if not path.is_file():
        if out.exists() and any(p for p in out.iterdir() if not p.name.startswith(".") and p.name != TARGETS):
            raise ConfigError(f"--out {out} exists and is not an inversion folder (no {RECORD}); choose another")
        return
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise ConfigError(f"{path}: unreadable ({e}); choose another --out") from None
    keys = ("generator_fingerprint", "options", "perceptual", "source", "init_from", "encoder_checksum")
    diff = [k for k in keys if old.get(k) != jsonable(settings.get(k))]
    if diff:
        raise ConfigError(f"--out {out} holds an inversion with other settings ({', '.join(diff)} differ); "
                          "choose another --out to start afresh")


def _save_pictures(folder: Path, name: str, image, seg, target, ids) -> None:
    from memorygan.data.files import write_png
    from memorygan.data.palette import colorize
    from memorygan.visualize import grid, seg_to_color, to_uint8

    rec = to_uint8(image)
    segc = seg_to_color(seg)
    write_png(folder / f"{name}-reconstruction.png", rec[0])
    write_png(folder / f"{name}-seg.png", segc[0])
    row = [to_uint8(target), rec, segc]
    if ids is not None:
        row.append(colorize(ids[None].cpu().numpy(), seg.shape[1]))
    write_png(folder / f"{name}-compare.png", grid([np.concatenate(row)], pad=1))


def invert(G, targets: Targets, out, opts: InversionOptions, perceptual=None, generator_path: str = "",
           batch: int = 1, progress: bool = True, drift_seeds=DRIFT_SEEDS, init_from=None,
           encoder=None) -> InversionResult:
    """Invert every target into `out` (layout in the module docstring), skipping the ones already finished.
    G is never modified; with opts.pti_steps each image gets its own tuned copy of G, saved beside its codes.
    init_from: a previous inversion folder of the same generator whose codes (and noise maps) are the starting
    point instead of the mean codes (e.g. `steps=0` and `pti_steps` > 0: pivotal tuning around codes found
    before)."""
    from memorygan.checkpoint import atomic_directory, generator_fingerprint
    from memorygan.editing.codes import Codes, load_codes, save_codes
    from memorygan.inversion.pti import pivotal_tuning, sample_drift

    opts.check()
    if batch < 1:
        raise ConfigError(f"--batch must be >= 1, got {batch}")
    if (encoder is None) != (opts.encoder is None):
        raise ConfigError("invert: pass the loaded encoder together with opts.encoder (its folder)")
    if encoder is not None and init_from is not None:
        raise ConfigError("--encoder and --init-from both choose where to start: pass one")
    out = Path(out)
    settings = _settings(G, generator_path, opts, perceptual, targets, init_from)
    if encoder is not None:
        settings["encoder_checksum"] = getattr(encoder, "checksum", None)
    _check_resumable(out, settings)
    out.mkdir(parents=True, exist_ok=True)
    _write_json(out / RECORD, settings)
    name = "none" if perceptual is None else perceptual.name
    fingerprint = settings["generator_fingerprint"]
    true_codes = load_codes(targets.true_codes, G) if targets.true_codes is not None else None
    todo = [t for t in targets.items if not (out / t.name / METRICS).is_file()]
    skipped = [t.name for t in targets.items if (out / t.name / METRICS).is_file()]
    space = CodeSpace(G, opts.level, opts.stats_samples) if todo else None
    expanded_space = (space if space is None or space.level == "expanded"
                      else CodeSpace(G, "expanded", opts.stats_samples))
    done = []
    bar = None
    if progress and todo:
        from tqdm import tqdm
        bar = tqdm(total=len(todo) * (opts.steps + opts.pti_steps), desc="invert", unit="step")
    try:
        for start in range(0, len(todo), batch):
            chunk = todo[start:start + batch]
            if bar is not None:
                bar.set_description(f"invert {start + 1}-{start + len(chunk)}/{len(todo)}")
            t0 = time.perf_counter()
            loaded = [load_target(t, G.config.resolution) for t in chunk]
            target = torch.stack([x for x, _ in loaded]).to(G.device)
            has = torch.tensor([ids is not None for _, ids in loaded], dtype=torch.float32)
            ids = None
            if bool(has.any()):
                ids = torch.stack([i if i is not None else torch.zeros(target.shape[-2:], dtype=torch.long)
                                   for _, i in loaded])
            init_u, init_noise = (None, None) if init_from is None else \
                _initial_codes(Path(init_from), [t.name for t in chunk], G, space, opts)
            enc, enc_seconds = None, None
            if encoder is not None:
                from memorygan.encoder.model import encode
                t_enc = time.perf_counter()
                with torch.no_grad():
                    enc = encode(encoder, G, target, opts.encoder_passes)
                enc_seconds = (time.perf_counter() - t_enc) / len(chunk)
                init_u = space.units(enc.latents if space.level == "latents" else enc.expanded)
            # (steps 0: PTI around the initial codes: the mean codes, or those of init_from)
            proj = project(G, target, opts, perceptual, ids, has, space, progress=bar, init_units=init_u,
                           init_noise=init_noise)
            for i, t in enumerate(chunk):
                tgt, mask = target[i:i + 1], (None if ids is None or not has[i] else ids[i:i + 1].to(G.device))
                noise = None if proj.noise is None else [n[i:i + 1] for n in proj.noise]
                exp_i = proj.expanded[i:i + 1]
                metrics = image_metrics(proj.image[i:i + 1], proj.seg[i:i + 1], tgt, mask, perceptual)
                record = {"name": t.name, "image": str(t.image), "mask": None if t.mask is None else str(t.mask),
                          "generator": str(generator_path), "level": opts.level, "steps": opts.steps,
                          "init_from": settings["init_from"],
                          "perceptual_name": name, **metrics}
                if enc is not None:
                    record["encoder"] = {"path": opts.encoder, "passes": enc.passes, "level": enc.level,
                                         "seconds": round(enc_seconds, 4),
                                         **image_metrics(enc.image[i:i + 1], enc.seg[i:i + 1], tgt, mask,
                                                         perceptual)}
                G_i, fp = G, fingerprint
                if opts.pti_steps > 0:
                    tuned, hist = pivotal_tuning(G, exp_i, tgt, opts, perceptual, noise, progress=bar,
                                                 center=space.latent_mean)
                    with torch.no_grad():
                        o = tuned.synthesize(exp_i, noise=noise, noise_mode="const")
                    after = image_metrics(o["image"], o["seg"], tgt, mask, perceptual)
                    record["projection"] = metrics
                    record.update(after)
                    record["pti"] = {"steps": opts.pti_steps, "stopped_at": hist[-1]["stopped_at"],
                                     "gain_db": after["psnr"] - metrics["psnr"],
                                     "unrelated_samples": sample_drift(G, tuned, drift_seeds),
                                     "source_generator_fingerprint": fingerprint}
                    G_i, fp = tuned, generator_fingerprint(tuned)
                    image_i, seg_i = o["image"], o["seg"]
                    if bar is not None and hist[-1]["stopped_at"] < opts.pti_steps:
                        bar.update(opts.pti_steps - hist[-1]["stopped_at"])
                else:
                    image_i, seg_i = proj.image[i:i + 1], proj.seg[i:i + 1]
                record["generator_fingerprint"] = fp
                if true_codes is not None:
                    j = true_codes.names.index(t.name)
                    record["code_distance"] = code_distances(G, exp_i, true_codes.expanded[j:j + 1],
                                                             expanded_space)
                level, latents, queries = opts.code_level, None, None
                if opts.code_level == "latents":
                    latents = proj.codes[i:i + 1].detach().cpu()
                if enc is not None and opts.steps == 0:      # the encoder's own codes: keep every level they have
                    level = enc.level
                    latents = enc.latents[i:i + 1].detach().cpu()
                    queries = None if enc.queries is None else enc.queries[i:i + 1].detach().cpu()
                codes = Codes(exp_i.detach().cpu(), level, [t.name], latents=latents, queries=queries,
                              noise=None if noise is None else [n.detach().cpu() for n in noise],
                              arch=G.arch, generator=fp,
                              extra={"inverted_from": str(t.image), "requested_level": opts.level,
                                     "perceptual": name, "pti_steps": opts.pti_steps,
                                     "source_generator": fingerprint})
                record["seconds"] = round((time.perf_counter() - t0) / len(chunk), 2)
                with atomic_directory(out / t.name) as tmp:
                    save_codes(tmp / CODES, codes)
                    _save_pictures(tmp, t.name, image_i, seg_i, tgt, mask[0] if mask is not None else None)
                    if opts.pti_steps > 0:
                        G_i.save_pretrained(tmp / "generator")
                    _write_json(tmp / METRICS, record)   # written last: its presence marks the image finished
                done.append(t.name)
    finally:
        if bar is not None:
            bar.close()
    summary = summarize(out, [t.name for t in targets.items])
    summary["perceptual_name"] = name
    _write_json(out / SUMMARY, summary)
    return InversionResult(out, name, done, skipped, summary)


def summarize(out: Path, names: list[str]) -> dict:
    """Means (and counts) of the finished images' metrics."""
    records = [json.loads((out / n / METRICS).read_text()) for n in names if (out / n / METRICS).is_file()]
    summary = {"images": len(records), "of": len(names)}

    def mean(values):
        vals = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
        return float(np.mean(vals)) if vals else None

    for key in ("psnr", "perceptual", "miou", "mse"):
        summary[key] = mean(r.get(key) for r in records)
    if any("encoder" in r for r in records):
        summary["encoder"] = {k: mean(r["encoder"].get(k) for r in records if "encoder" in r)
                              for k in ("psnr", "perceptual", "miou", "seconds")}
    if any("projection" in r for r in records):
        summary["projection"] = {k: mean(r["projection"].get(k) for r in records if "projection" in r)
                                 for k in ("psnr", "perceptual", "miou")}
        summary["pti_gain_db"] = mean(r["pti"]["gain_db"] for r in records if "pti" in r)
        summary["unrelated_samples_psnr"] = mean(r["pti"]["unrelated_samples"]["psnr"] for r in records if "pti" in r)
    if any("code_distance" in r for r in records):
        parts = [k for k in records[0]["code_distance"] if k != "mean_relative"]
        summary["code_distance_relative"] = {p: mean(r["code_distance"][p]["relative"] for r in records
                                                     if "code_distance" in r) for p in parts}
        summary["code_distance_mean_relative"] = mean(r["code_distance"]["mean_relative"] for r in records
                                                      if "code_distance" in r)
    return summary


def format_summary(summary: dict) -> str:
    def f(v, fmt):
        return "-" if v is None else format(v, fmt)
    lines = [f"{summary['images']}/{summary['of']} images; perceptual distance: {summary.get('perceptual_name')}",
             f"  psnr {f(summary['psnr'], '.2f')} dB  perceptual {f(summary['perceptual'], '.4f')}  "
             f"miou {f(summary['miou'], '.4f')}"]
    if "encoder" in summary:
        e = summary["encoder"]
        lines.append(f"  encoder alone: psnr {f(e['psnr'], '.2f')} dB  perceptual {f(e['perceptual'], '.4f')}  "
                     f"miou {f(e['miou'], '.4f')}  {f(e['seconds'] * 1000, '.1f')} ms per image")
    if "projection" in summary:
        p = summary["projection"]
        lines.append(f"  before PTI: psnr {f(p['psnr'], '.2f')} dB  perceptual {f(p['perceptual'], '.4f')}  "
                     f"miou {f(p['miou'], '.4f')}; PTI gain {f(summary['pti_gain_db'], '.2f')} dB; unrelated "
                     f"samples vs the source generator: {f(summary['unrelated_samples_psnr'], '.2f')} dB")
    if "code_distance_mean_relative" in summary:
        lines.append(f"  recovered vs true codes (relative distance, mean over parts): "
                     f"{f(summary['code_distance_mean_relative'], '.4f')}")
    return "\n".join(lines)
