"""Metrics of a training run's newest checkpoint, appended to RUN/metric-<name>.jsonl (RUN/metrics.jsonl belongs to
the training loop). Run folders are read through `memorygan.runs`, never through the training code."""
from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from memorygan.errors import CheckpointError, DatasetError
from memorygan.metrics.compute import compute_metrics
from memorygan.metrics.jsonl import append_metric_lines
from memorygan.metrics.registry import METRICS, parse_metric_names
from memorygan.runs import CKPT_DIR, checkpoint_step, latest_checkpoint, run_dataset, run_probe


@dataclass
class RunEvaluation:
    results: dict[str, dict]
    snapshot: Path                         # the checkpoint folder measured
    step: int | None
    files: list[Path] = field(default_factory=list)   # the RUN/metric-<name>.jsonl files appended to


def run_snapshot(run: str | os.PathLike) -> tuple[Path, int | None]:
    """(newest complete checkpoint folder of a training run, its step); CheckpointError naming the run when it has
    none."""
    run = Path(run)
    if not run.is_dir():
        raise CheckpointError(f"run folder {run} (--run) does not exist")
    snapshot = latest_checkpoint(run)
    if snapshot is None:
        raise CheckpointError(f"run {run} (--run) has no checkpoint (no {CKPT_DIR}/step-* folder); train it "
                              "longer or pass --generator")
    return snapshot, checkpoint_step(snapshot)


def evaluate_run(run: str | os.PathLike, names: str | Iterable[str], data: str | os.PathLike | None = None,
                 probe: str | os.PathLike | None = None, append: bool = True, **kwargs) -> RunEvaluation:
    """`compute_metrics` on the newest checkpoint of a training run, with the run's dataset and probe by default
    (its config.json), appending one JSON line per metric to RUN/metric-<name>.jsonl (unless not `append`)."""
    names = parse_metric_names(names)
    snapshot, step = run_snapshot(run)
    run = Path(run)
    if probe is None:
        probe = run_probe(run)
    if data is None:
        recorded = run_dataset(run)
        if recorded and Path(recorded).is_dir():
            data = recorded
        elif recorded and any(METRICS[m].needs_data for m in names):
            raise DatasetError(f"the dataset of run {run}, {recorded} (from its config.json), does not exist; "
                               "pass --data")
    results = compute_metrics(names, generator=snapshot, data=data, probe=probe, **kwargs)
    files = []
    if append:
        files = append_metric_lines(run, results, snapshot=snapshot, step=step, seed=kwargs.get("seed", 0),
                                    truncation=kwargs.get("truncation", 1.0))
    return RunEvaluation(results, snapshot, step, files)
