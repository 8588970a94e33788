"""JSON lines of metric results: RUN/metric-<name>.jsonl, one line per evaluation, appended without rewriting."""
from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path


def jsonable(x):
    """Plain JSON values: non-finite floats become null (strict JSON readers refuse NaN), paths strings."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, Path):
        return str(x)
    if hasattr(x, "item") and getattr(x, "ndim", None) == 0:  # numpy / torch scalars
        return jsonable(x.item())
    return x


def append_line(path: str | os.PathLike, row: dict) -> None:
    """Append one JSON line with a single write in append mode, so existing lines are never rewritten. When the
    file does not end with a newline (a writer killed mid-line), the new line starts on a line of its own."""
    path = Path(path)
    data = (json.dumps(jsonable(row)) + "\n").encode()
    if path.is_file() and path.stat().st_size:
        with open(path, "rb") as f:
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":
                data = b"\n" + data
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


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
    path = metric_file(run, name)
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
