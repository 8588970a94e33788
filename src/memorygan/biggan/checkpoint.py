"""BigGAN generator folders: `config.json` (format "memorygan-biggan") + `generator.safetensors`, written atomically
like the part-based generators' (`memorygan.checkpoint`), loaded safely (sizes checked before allocating, names,
shapes, dtypes and finiteness checked before use). A run folder or checkpoint folder resolves to its newest EMA
generator, as everywhere else (`runs.generator_folder`)."""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from memorygan.biggan.config import BigGANConfig
from memorygan.biggan.models import BigGANGenerator
from memorygan.checkpoint import (
    CONFIG, WEIGHTS, atomic_directory, check_finite, check_state_dict, read_weights, state_dict_for_saving,
)
from memorygan.errors import CheckpointError
from memorygan.fileio import read_json
from memorygan.runs import generator_folder

FORMAT = "memorygan-biggan"
FORMAT_VERSION = 1
MAX_PARAMS = 2_000_000_000          # an untrusted config.json may not make us allocate more than this


def save_biggan(G: BigGANGenerator, directory, extra: dict | None = None, overwrite: bool = True) -> Path:
    directory = Path(directory)
    meta = {"format": FORMAT, "version": FORMAT_VERSION, "generator": G.config.to_dict(), **(extra or {})}
    with atomic_directory(directory, overwrite) as tmp:
        save_file(state_dict_for_saving(G), str(tmp / WEIGHTS), metadata={"format": FORMAT})
        (tmp / CONFIG).write_text(json.dumps(meta, indent=2))
    return directory


def is_biggan_folder(path) -> bool:
    try:
        folder = generator_folder(Path(path))
        meta = json.loads((folder / CONFIG).read_text())
    except (OSError, ValueError, CheckpointError):
        return False
    return isinstance(meta, dict) and meta.get("format") == FORMAT


def read_biggan_config(folder: Path) -> tuple[BigGANConfig, dict]:
    meta = read_json(folder / CONFIG, CheckpointError, "BigGAN config")
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{folder / CONFIG}: format is {meta.get('format')!r}, expected {FORMAT!r} "
                              f"(a part-based generator loads with memorygan.load)")
    if meta.get("version") != FORMAT_VERSION:
        raise CheckpointError(f"{folder / CONFIG}: version {meta.get('version')!r}, this memorygan reads "
                              f"version {FORMAT_VERSION}")
    cfg = BigGANConfig.from_dict(meta.get("generator"), str(folder / CONFIG))
    return cfg, meta


def load_biggan(path, device: str | torch.device = "cpu") -> tuple[BigGANGenerator, BigGANConfig]:
    """A BigGAN generator folder, checkpoint folder or run folder (newest checkpoint's EMA generator) ->
    (G in eval mode without gradients, config)."""
    p = Path(path)
    if not p.exists():
        raise CheckpointError(f"{p}: no such BigGAN generator, checkpoint or run folder")
    folder = generator_folder(p)
    cfg, meta = read_biggan_config(folder)
    with torch.device("meta"):
        n = BigGANGenerator(cfg, skip_init=True).num_params()
    if n > MAX_PARAMS:
        raise CheckpointError(f"{folder / CONFIG}: this generator would have {n:,} parameters, above the limit "
                              f"of {MAX_PARAMS:,}")
    state = read_weights(folder)
    G = BigGANGenerator(cfg, skip_init=True)
    where = str(folder / WEIGHTS)
    check_state_dict(G.state_dict(), state, where)
    check_finite(state, where)
    G.load_state_dict(state, strict=True)
    return G.eval().requires_grad_(False).to(device), cfg
