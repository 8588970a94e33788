"""JSON lines of metric results: RUN/metric-<name>.jsonl, one line per evaluation, appended without rewriting."""
from __future__ import annotations

import os
import time
from pathlib import Path

from memorygan.fileio import append_line as _append
from memorygan.fileio import jsonable, read_lines  # noqa: F401  (jsonable: re-exported, its home is fileio)


def append_line(path: str | os.PathLike, row: dict) -> None:
    """Append one JSON line (non-finite floats as null) with a single write in append mode (`fileio.append_line`)."""
    _append(path, jsonable(row))


def metric_file(run: str | os.PathLike, name: str) -> Path:
    return Path(run) / f"metric-{name}.jsonl"


def append_metric_lines(run: str | os.PathLike, results: dict[str, dict], snapshot: str | os.PathLike | None = None,
                        step: int | None = None, seed: int = 0, truncation: float = 1.0) -> list[Path]:
    """One line per metric, RUN/metric-<name>.jsonl: {"metric", "results", "snapshot", "step", "num_samples",
    "seed", "truncation", "timestamp" (seconds since the epoch), "seconds"}."""
    files = []
    for name, res in results.items():
        row = {"metric": name, "results": res, "snapshot": str(snapshot) if snapshot is not None else None,
               "step": step, "num_samples": res.get("num_samples"), "seed": int(seed),
               "truncation": float(truncation), "timestamp": time.time(), "seconds": res.get("seconds")}
        path = metric_file(run, name)
        append_line(path, row)
        files.append(path)
    return files


def read_metric_lines(run: str | os.PathLike, name: str) -> list[dict]:
    return read_lines(metric_file(run, name))
