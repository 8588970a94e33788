"""Generator checkpoints: `config.json` + `generator.safetensors` in a folder (no pickle, no code).

Writes are atomic and durable: files go to a temporary sibling folder, are fsync'ed (files, then folders) and the
folder is renamed into place (then its parent fsync'ed), so an interrupted save or a power loss never leaves a
half-written checkpoint under the final name and never destroys the previous one.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from memorygan.config import GeneratorConfig
from memorygan.errors import CheckpointError, ConfigError, OutputError
from memorygan.fileio import disk_full, fsync_dir, fsync_tree, read_json
from memorygan.runs import generator_folder

FORMAT = "memorygan-generator"
FORMAT_VERSION = 1
WEIGHTS = "generator.safetensors"
CONFIG = "config.json"


def state_dict_for_saving(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous().clone() for k, v in module.state_dict().items()}


def generator_fingerprint(G) -> str:
    """16 hex digits identifying a generator's architecture and weights (SHA-256 of its config and every tensor of
    its state dict, in fp32). Files derived from a generator (codes, directions) record it, so they can refuse to be
    used with another one."""
    import hashlib

    h = hashlib.sha256(json.dumps(G.config.to_dict(), sort_keys=True).encode())
    for name, t in sorted(G.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def atomic_directory(final: Path, overwrite: bool = True):
    """Context manager yielding a temporary folder beside `final`; renamed to `final` on success, removed on error."""
    return _AtomicDir(Path(final), overwrite)


class _AtomicDir:
    def __init__(self, final: Path, overwrite: bool):
        self.final, self.overwrite = final, overwrite

    def _fail(self, exc: BaseException | None) -> None:
        """Remove the temporary folder; a write that failed for lack of space becomes an OutputError saying so
        (naming this folder, also when a nested atomic write inside it found the disk full)."""
        shutil.rmtree(self.tmp, ignore_errors=True)
        from memorygan.errors import MemoryGANError
        inner = isinstance(exc, OutputError) and getattr(exc, "disk_full", False) and \
            self.tmp in Path(getattr(exc, "path", "/")).parents
        if inner or (isinstance(exc, Exception) and not isinstance(exc, MemoryGANError) and disk_full(self.final, exc)):
            cause = getattr(exc, "cause", None) or exc_message(exc)
            err = OutputError(f"no space left on the device while writing {self.final} ({cause}); nothing was "
                              f"replaced: free some space and try again")
            err.path, err.cause, err.disk_full = str(self.final), cause, True
            raise err from None

    def __enter__(self) -> Path:
        if self.final.exists() and not self.overwrite:
            raise CheckpointError(f"{self.final} already exists (refusing to overwrite)")
        if self.final.exists() and not self.final.is_dir():
            raise CheckpointError(f"{self.final} exists and is not a folder")
        self.final.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.final.name}.tmp-", dir=self.final.parent))
        return self.tmp

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            try:
                fsync_tree(self.tmp)          # data on the disk before the rename makes it visible
            except OSError as e:
                self._fail(e)
                raise
        else:
            self._fail(exc)
            return False
        if self.final.exists():  # replace: move the old one aside first, delete it only after the rename
            old = self.final.with_name(f".{self.final.name}.old-{os.getpid()}")
            os.replace(self.final, old)
            os.replace(self.tmp, self.final)
            fsync_dir(self.final.parent)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(self.tmp, self.final)
            fsync_dir(self.final.parent)
        return False


def exc_message(exc: BaseException) -> str:
    """The first line of an exception's message (torch's write errors span several lines)."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0][:200]}" if text else type(exc).__name__


STORAGE_DTYPES = {"float16": torch.float16}      # weights stored compactly, declared in config.json, read as fp32


def save_generator(G, directory, extra: dict | None = None, overwrite: bool = True,
                   storage_dtype: str | None = None, extra_files: dict[str, str] | None = None) -> Path:
    """Save `G` (its current weights; pass the EMA copy for evaluation) to `directory`. `storage_dtype="float16"`
    stores the floating-point tensors in half precision (half the file; config.json says so, and loading converts
    them back to float32). `extra_files` ({name: text}, e.g. a model card) are written in the same atomic step."""
    directory = Path(directory)
    meta = {"format": FORMAT, "version": FORMAT_VERSION, "generator": G.config.to_dict()}
    state = state_dict_for_saving(G)
    if storage_dtype is not None:
        if storage_dtype not in STORAGE_DTYPES:
            raise ConfigError(f"storage dtype must be one of {sorted(STORAGE_DTYPES)}, got {storage_dtype!r}")
        dt = STORAGE_DTYPES[storage_dtype]
        state = {k: v.to(dt) if v.is_floating_point() else v for k, v in state.items()}
        meta["storage_dtype"] = storage_dtype
    if extra:
        meta.update(extra)
    with atomic_directory(directory, overwrite) as tmp:
        save_file(state, str(tmp / WEIGHTS), metadata={"format": FORMAT})
        (tmp / CONFIG).write_text(json.dumps(meta, indent=2))
        for name, text in (extra_files or {}).items():
            if Path(name).name != name or name in (WEIGHTS, CONFIG):
                raise ConfigError(f"extra file name {name!r} must be a plain file name other than {WEIGHTS}/{CONFIG}")
            (tmp / name).write_text(text)
    return directory


def read_config(directory) -> tuple[GeneratorConfig, dict]:
    directory = Path(directory)
    path = directory / CONFIG
    if not path.is_file():
        raise CheckpointError(f"{directory}: no {CONFIG} (not a memorygan generator folder)")
    meta = read_json(path, CheckpointError, "generator config")
    if meta.get("format") != FORMAT or "generator" not in meta:
        raise CheckpointError(f"{path}: not a {FORMAT} config (missing 'format'/'generator')")
    try:
        cfg = GeneratorConfig.from_dict(meta["generator"])
    except (ConfigError, TypeError) as e:
        raise CheckpointError(f"{path}: {e}") from None
    return cfg, meta


def check_state_dict(expected: dict[str, torch.Tensor], got: dict[str, torch.Tensor], where: str) -> None:
    """Strict key, shape and dtype comparison; one error listing every problem. Floating-point weights stored in
    another float type (float16, bfloat16, float64) would be converted silently by `load_state_dict`: they are
    refused, as are integer tensors where floats belong and the reverse."""
    missing = sorted(set(expected) - set(got))
    extra = sorted(set(got) - set(expected))
    shapes = [f"{k}: expected {tuple(expected[k].shape)}, got {tuple(got[k].shape)}"
              for k in sorted(set(expected) & set(got)) if tuple(expected[k].shape) != tuple(got[k].shape)]
    dtypes = [f"{k}: expected {str(expected[k].dtype).replace('torch.', '')}, got {str(got[k].dtype).replace('torch.', '')}"
              for k in sorted(set(expected) & set(got)) if expected[k].dtype != got[k].dtype]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing tensor(s): {', '.join(missing[:8])}{' ...' if len(missing) > 8 else ''}")
    if extra:
        problems.append(f"{len(extra)} unexpected tensor(s): {', '.join(extra[:8])}{' ...' if len(extra) > 8 else ''}")
    if shapes:
        problems.append(f"{len(shapes)} mis-shaped tensor(s): {'; '.join(shapes[:8])}{' ...' if len(shapes) > 8 else ''}")
    if dtypes:
        problems.append(f"{len(dtypes)} tensor(s) of another dtype: {'; '.join(dtypes[:8])}{' ...' if len(dtypes) > 8 else ''}")
    if problems:
        raise CheckpointError(f"{where}: " + "; ".join(problems))


def check_finite(state: dict[str, torch.Tensor], where: str) -> None:
    """Refuse weights holding NaN or infinity (a diverged or corrupted model), naming the tensors."""
    bad = [k for k, t in state.items() if t.is_floating_point() and not bool(torch.isfinite(t).all())]
    if bad:
        raise CheckpointError(f"{where}: {len(bad)} tensor(s) hold NaN or infinite values: "
                              f"{', '.join(bad[:8])}{' ...' if len(bad) > 8 else ''}")


def generator_files(path) -> Path:
    """The generator folder behind `path`: a generator folder, its `generator.safetensors`, a checkpoint folder (its
    EMA generator), a training run folder (the EMA generator of its newest checkpoint) or, when no such path exists,
    the name of a generator shipped with the package (`memorygan.pretrained.names()`). A path on disk always wins
    over a shipped name."""
    path = Path(path)
    directory = path.parent if path.is_file() else path
    if not directory.exists():
        from memorygan import pretrained
        shipped = pretrained.folder(str(path))
        if shipped is not None:
            return shipped
        known = pretrained.names()
        raise CheckpointError(f"{path}: no such file or folder"
                              + (f", nor the name of a shipped generator ({', '.join(known)})" if known else ""))
    return generator_folder(directory)


def read_weights(folder, storage_dtype: str | None = None) -> dict[str, torch.Tensor]:
    """The tensors of a generator folder's `generator.safetensors`, checked to be readable. With the
    `storage_dtype` its config.json declares ("float16"), every floating-point tensor must be of that type and is
    returned as float32 (a file of another type than declared is refused, as is an undeclared conversion)."""
    weights = Path(folder) / WEIGHTS
    if not weights.is_file():
        raise CheckpointError(f"{folder}: no {WEIGHTS}")
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{weights}: not a readable safetensors file ({e})") from None
    if storage_dtype is None:
        return state
    if storage_dtype not in STORAGE_DTYPES:
        raise CheckpointError(f"{Path(folder) / CONFIG}: unknown storage_dtype {storage_dtype!r} "
                              f"(known: {sorted(STORAGE_DTYPES)})")
    dt = STORAGE_DTYPES[storage_dtype]
    wrong = sorted(k for k, v in state.items() if v.is_floating_point() and v.dtype != dt)
    if wrong:
        raise CheckpointError(f"{weights}: config.json declares {storage_dtype} weights but {len(wrong)} tensor(s) "
                              f"are not: {', '.join(wrong[:5])}")
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}

