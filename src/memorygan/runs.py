"""The layout of a training run folder, in one place (DESIGN 3). Readers of runs (metrics, analysis, reports,
`memorygan.load`) use this module and never import the training code.

    RUN/config.json                      {"format": "memorygan-run", "options": {...}, "generator": {...}, ...}
    RUN/stats.jsonl, RUN/metrics.jsonl   training logs, one JSON object per line
    RUN/metric-<name>.jsonl              results of `memorygan metrics --run`
    RUN/samples/, RUN/tensorboard/
    RUN/checkpoints/step-<8 digits>/     generator/ (EMA: config.json + generator.safetensors), G.safetensors,
                                         D.safetensors, state.pt (optimizers, counters, RNG; weights_only)

A checkpoint folder is written under a temporary dot-name and renamed into place, so a name `step-N` that is not
complete can only be a leftover of a crash during a prune; `list_checkpoints` skips every incomplete folder.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from memorygan.errors import CheckpointError

RUN_FORMAT = "memorygan-run"
RUN_CONFIG = "config.json"
CKPT_DIR = "checkpoints"
STATE_FILE = "state.pt"
GENERATOR_DIR = "generator"
GENERATOR_FILES = (f"{GENERATOR_DIR}/config.json", f"{GENERATOR_DIR}/generator.safetensors")
CHECKPOINT_FILES = ("G.safetensors", "D.safetensors", STATE_FILE) + GENERATOR_FILES
_STEP = re.compile(r"step-(\d+)")


def checkpoint_name(step: int) -> str:
    return f"step-{int(step):08d}"


def checkpoint_step(path) -> int | None:
    """The step in a checkpoint folder's name, or None when the name is not `step-N`."""
    m = _STEP.fullmatch(Path(path).name)
    return int(m.group(1)) if m else None


def is_complete_checkpoint(path, resumable: bool = False) -> bool:
    """A checkpoint folder holding its EMA generator (what readers need), and with `resumable` every file a resume
    needs."""
    path = Path(path)
    return path.is_dir() and all((path / f).is_file() for f in (CHECKPOINT_FILES if resumable else GENERATOR_FILES))


def list_checkpoints(run, resumable: bool = False) -> list[Path]:
    """Complete checkpoint folders of a run, oldest first (temporary and half-deleted folders are skipped)."""
    root = Path(run) / CKPT_DIR
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if checkpoint_step(p) is not None and is_complete_checkpoint(p, resumable)]
    return sorted(found, key=checkpoint_step)


def latest_checkpoint(run, resumable: bool = False) -> Path | None:
    ckpts = list_checkpoints(run, resumable)
    return ckpts[-1] if ckpts else None


def is_run(path) -> bool:
    return (Path(path) / RUN_CONFIG).is_file() and (Path(path) / CKPT_DIR).is_dir()


def read_run_config(run) -> dict:
    """The run's config.json, checked to be a memorygan run config with an `options` object."""
    run = Path(run)
    path = run / RUN_CONFIG
    if not path.is_file():
        raise CheckpointError(f"{run} is not a training run (no {RUN_CONFIG})")
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise CheckpointError(f"{path}: unreadable ({type(e).__name__}: {e})") from None
    if not isinstance(cfg, dict) or cfg.get("format") != RUN_FORMAT:
        got = cfg.get("format") if isinstance(cfg, dict) else type(cfg).__name__
        raise CheckpointError(f"{path}: not a memorygan run config (format {got!r})")
    if not isinstance(cfg.get("options"), dict):
        raise CheckpointError(f"{path}: has no 'options' object")
    return cfg


def run_dataset(run) -> str | None:
    """The dataset folder a run was trained on (as recorded in its config)."""
    cfg = read_run_config(run)
    data = cfg["options"].get("data")
    recorded = (cfg.get("dataset") or {}).get("path") if isinstance(cfg.get("dataset"), dict) else None
    for cand in (recorded, data):
        if isinstance(cand, str) and cand and Path(cand).is_dir():
            return cand
    return recorded if isinstance(recorded, str) else data


def run_probe(run) -> str | None:
    """The probe folder a run's metrics used (None: the dataset's default, DATA/probe)."""
    probe = read_run_config(run)["options"].get("probe")
    return probe if isinstance(probe, str) and probe else None


def generator_folder(path: Path) -> Path:
    """A generator folder from a generator, checkpoint or run folder: a run resolves to its newest checkpoint,
    a checkpoint to its EMA generator."""
    path = Path(path)
    if (path / "generator.safetensors").is_file():
        return path
    ckpt = latest_checkpoint(path)
    if ckpt is not None:
        path = ckpt
    if (path / GENERATOR_DIR / "config.json").is_file():
        return path / GENERATOR_DIR
    return path
