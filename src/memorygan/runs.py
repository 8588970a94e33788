"""The layout of a training run folder, in one place (DESIGN 3). Readers of runs (metrics, analysis, reports,
`memorygan.load`) use this module and never import the training code.

    RUN/config.json                      {"format": "memorygan-run", "options": {...}, "generator": {...}, ...}
    RUN/stats.jsonl, RUN/metrics.jsonl   training logs, one JSON object per line
    RUN/metric-<name>.jsonl              results of `memorygan metrics --run`
    RUN/samples/, RUN/tensorboard/
    RUN/checkpoints/step-<8 digits>/     generator/ (EMA: config.json + generator.safetensors), G.safetensors,
                                         D.safetensors, state.pt (optimizers, counters, RNG; weights_only)
    RUN/lock.json                        while a process writes the run: its pid, host and start time

A checkpoint folder is written under a temporary dot-name (`.step-N.tmp-*`), fsync'ed and renamed into place; a
prune renames `step-N` to `.step-N.del-*` before deleting it. So a folder named `step-N` is always complete, and
what a crash leaves behind has a dot-name that `clean_leftovers` removes when the next writer starts.
`list_checkpoints` skips every incomplete folder anyway (runs written before this rule could hold some).

Logs are JSON lines appended with one write each: a crash can leave at most one torn last line, which readers
skip (`read_log`) and a resume drops (`truncate_logs`).
"""
from __future__ import annotations

import datetime
import os
import re
import shutil
import socket
import sys
from pathlib import Path

from memorygan.errors import CheckpointError, RunBusyError
from memorygan.fileio import fsync_dir, read_json, read_lines, rewrite_lines

try:
    import fcntl
except ImportError:               # Windows: the lock falls back to an exclusively created file (see RunLock)
    fcntl = None

RUN_FORMAT = "memorygan-run"
RUN_CONFIG = "config.json"
CKPT_DIR = "checkpoints"
STATE_FILE = "state.pt"
GENERATOR_DIR = "generator"
GENERATOR_FILES = (f"{GENERATOR_DIR}/config.json", f"{GENERATOR_DIR}/generator.safetensors")
CHECKPOINT_FILES = ("G.safetensors", "D.safetensors", STATE_FILE) + GENERATOR_FILES
LOCK_FILE = "lock.json"
STATS_LOG = "stats.jsonl"
METRICS_LOG = "metrics.jsonl"
_STEP = re.compile(r"step-(\d+)")
_LEFTOVER = re.compile(r"\.(step-\d+)\.(tmp|old|del)-.+")


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
    cfg = read_json(path, CheckpointError, "run config")
    if cfg.get("format") != RUN_FORMAT:
        raise CheckpointError(f"{path}: not a memorygan run config (format {cfg.get('format')!r})")
    if not isinstance(cfg.get("options"), dict):
        raise CheckpointError(f"{path}: has no 'options' object")
    if "dataset" in cfg and not isinstance(cfg["dataset"], dict):
        raise CheckpointError(f"{path}: 'dataset' must be an object")
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


# ---------------------------------------------------------------------------------------------------- logs

def read_log(run, name: str = STATS_LOG) -> list[dict]:
    """The rows of a run's JSON-lines log (`stats.jsonl`, `metrics.jsonl`); a torn last line is skipped."""
    return read_lines(Path(run) / name)


def truncate_logs(run, step: int) -> None:
    """Drop the rows logged after `step` (written after the checkpoint a run resumes from) and any torn line, by
    an atomic rewrite. The writer must hold the run's lock."""
    for name in (STATS_LOG, METRICS_LOG):
        rewrite_lines(Path(run) / name, lambda row: isinstance(row.get("step", 0), int) and row.get("step", 0) <= step)


# ---------------------------------------------------------------------------------------------------- checkpoints

def remove_checkpoint(path) -> None:
    """Delete a checkpoint folder by renaming it to a dot-name first, so a crash halfway through the deletion
    leaves a leftover that no reader takes for a checkpoint (and `clean_leftovers` finishes the job)."""
    path = Path(path)
    doomed = path.with_name(f".{path.name}.del-{os.getpid()}")
    os.replace(path, doomed)
    fsync_dir(path.parent)
    shutil.rmtree(doomed, ignore_errors=True)


def clean_leftovers(run) -> list[str]:
    """Remove what a crash can leave in RUN/checkpoints; returns the names removed (or restored). Call it only
    while holding the run's lock.

    - `.step-N.tmp-*`: a checkpoint write cut short (never trusted: its files may be partial);
    - `.step-N.del-*`: a prune cut short;
    - `.step-N.old-*`: a complete checkpoint moved aside to be replaced: renamed back to `step-N` when no `step-N`
      exists (the replacement never arrived), else removed;
    - an incomplete `step-N` older than the newest complete checkpoint: a prune cut short by a version that
      deleted in place. An incomplete `step-N` newer than it is left alone (not ours to judge) and skipped by
      `list_checkpoints`.
    """
    root = Path(run) / CKPT_DIR
    if not root.is_dir():
        return []
    done = []
    for p in sorted(root.iterdir()):
        m = _LEFTOVER.fullmatch(p.name)
        if not m or not p.is_dir():
            continue
        final = root / m.group(1)
        if m.group(2) == "old" and not final.exists() and is_complete_checkpoint(p, resumable=True):
            os.replace(p, final)
            done.append(f"{p.name} -> {final.name}")
        else:
            shutil.rmtree(p, ignore_errors=True)
            done.append(p.name)
    newest = latest_checkpoint(run, resumable=True)
    if newest is not None:
        for p in sorted(root.iterdir()):
            step = checkpoint_step(p)
            if step is not None and step < checkpoint_step(newest) and not is_complete_checkpoint(p, True):
                remove_checkpoint(p)
                done.append(p.name)
    if done:
        fsync_dir(root)
    return done


TRAINING_STATE_FIELDS = {"step": int, "images": int, "pl_mean": float, "train_seconds": float,
                         "nonfinite_total": int, "g_opt": dict, "d_opt": dict, "world_size": int}


def read_training_state(ckpt) -> dict:
    """A checkpoint's `state.pt`, loaded with `torch.load(weights_only=True)` (no code can run) and checked to
    hold every field a resume or a report reads, with the right types."""
    import torch

    path = Path(ckpt) / STATE_FILE
    if not path.is_file():
        raise CheckpointError(f"{path}: missing")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - a refused pickle, a truncated zip, ... are all "unreadable"
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise CheckpointError(f"{path}: unreadable training state ({type(e).__name__}: {first[:200]})") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: expected a dict of training state, got {type(state).__name__}")
    problems = []
    for key, kind in TRAINING_STATE_FIELDS.items():
        v = state.get(key)
        ok = isinstance(v, (int, float)) and not isinstance(v, bool) if kind is float else \
            isinstance(v, kind) and not isinstance(v, bool)
        if not ok:
            problems.append(f"'{key}' {'missing' if key not in state else f'is {type(v).__name__}'} "
                            f"(expected {kind.__name__})")
    if not isinstance(state.get("torch_rng"), torch.Tensor) or state["torch_rng"].dtype != torch.uint8:
        problems.append("'torch_rng' must be a uint8 tensor")
    for key in ("step", "images", "train_seconds", "nonfinite_total"):
        if not problems and state[key] < 0:
            problems.append(f"'{key}' is negative ({state[key]})")
    if problems:
        raise CheckpointError(f"{path}: not a memorygan training state: " + "; ".join(problems))
    return state


# ---------------------------------------------------------------------------------------------------- the lock

def _pid_alive(pid: int) -> bool:
    if os.name != "posix":
        return True                  # no safe probe: never take over another process's lock
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunLock:
    """Exclusive use of a run folder by the one process that writes it (training, resuming, rewriting its logs).

    `RUN/lock.json` holds the holder's pid, host, start time and command. On Linux/macOS the lock itself is an
    `flock` on that file, which the kernel drops when the process dies however it dies: the lock of a dead process
    never blocks. Without `fcntl` (Windows), the file is created exclusively and a leftover of a dead process on
    the same host is taken over. A second process is refused with a `RunBusyError` naming the holder.
    """

    def __init__(self, run, what: str = "memorygan"):
        self.run = Path(run)
        self.path = self.run / LOCK_FILE
        self.what = what
        self.fd: int | None = None

    def holder(self) -> dict:
        try:
            data = read_json(self.path, CheckpointError, "lock file")
        except CheckpointError:
            return {}
        return data

    def _busy(self) -> RunBusyError:
        h = self.holder()
        who = (f"pid {h.get('pid')} on host {h.get('host')} since {h.get('since')} ({h.get('command', '?')})"
               if h else "another process (it has not written its details yet)")
        return RunBusyError(f"run folder {self.run} is in use by {who}; wait for it to finish or stop it "
                            f"(if that process no longer exists, delete {self.path})")

    def _info(self) -> bytes:
        import json
        argv = list(sys.argv)
        if argv and os.path.basename(argv[0]) == "__main__.py":      # python -m memorygan ...
            argv[0] = "memorygan"
        cmd = " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(argv))[:300]
        return json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                           "since": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
                           "command": cmd or self.what, "what": self.what}).encode()

    def check_free(self) -> None:
        """RunBusyError if another process holds the lock now (creates nothing)."""
        if self.fd is not None or not self.path.exists():
            return
        if fcntl is None:
            h = self.holder()
            if not (h.get("host") == socket.gethostname() and isinstance(h.get("pid"), int)
                    and not _pid_alive(h["pid"])):
                raise self._busy()
            return
        try:
            fd = os.open(self.path, os.O_RDWR)
        except FileNotFoundError:
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise self._busy() from None
        finally:
            os.close(fd)                         # closing drops a lock we may have taken

    def acquire(self) -> "RunLock":
        if self.fd is not None:
            return self
        self.run.mkdir(parents=True, exist_ok=True)
        for _ in range(20):
            fd = self._try_flock() if fcntl is not None else self._try_exclusive()
            if fd is None:
                continue                     # the file was replaced under us: try again
            os.ftruncate(fd, 0)
            os.pwrite(fd, self._info(), 0)
            os.fsync(fd)
            self.fd = fd
            return self
        raise RunBusyError(f"{self.path}: could not take the lock (it keeps changing hands)")

    def _try_flock(self) -> int | None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise self._busy() from None
        except OSError:
            os.close(fd)
            raise
        try:                                 # the previous holder may have unlinked the file we opened
            same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if not same:
            os.close(fd)
            return None
        return fd

    def _try_exclusive(self) -> int | None:
        try:
            return os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            h = self.holder()
            stale = (h.get("host") == socket.gethostname() and isinstance(h.get("pid"), int)
                     and not _pid_alive(h["pid"]))
            if not stale:
                raise self._busy() from None
            self.path.unlink(missing_ok=True)
            return None

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)    # before closing: nobody can take the old file for a valid lock
        finally:
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
