"""Metrics registered by name (as StyleGAN2-ADA's metric_main), computed together, logged as JSON lines.

    fid, kid, is         Inception features (`metrics.fidelity`): FID, KID, IS          group "inception"
    ifid                 EfficientNet-Lite0 ImageNet features: FID (not Inception's)    group "imagenet"
    dfid, dkid           the dataset's probe (`metrics.domain`): domain FID / KID       group "domain"
    consistency          mIoU of the generator's seg vs the probe's segmentation       group "domain"
    smse                 MemoryGAN Eq. 15 per part (`metrics.smse`)                     group "smse"
    leakage              change outside / inside a resampled part (`metrics.leakage`)   group "leakage"

This module holds the registry itself: `Metric` records, metric groups (`MetricGroup`: metrics computed together,
e.g. one Inception pass for fid, kid and is) and the context they are computed in. The built-in groups are in
`metrics.groups`, the computation in `metrics.compute` (`compute_metrics`), the evaluation of a run's newest
checkpoint in `metrics.evaluate`, JSON-lines I/O in `metrics.jsonl` and the readable table in `metrics.format`.
"""
from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import torch

from memorygan.errors import ConfigError

DEFAULT_SAMPLES = 1000      # images generated for the shared pass when n is not given


@dataclass(frozen=True)
class Metric:
    name: str
    group: str                   # metrics of one group are computed together
    summary: str
    key: str                     # the headline value in the metric's result
    std_key: str | None = None   # its spread, when there is one
    needs_generator: bool = False
    needs_data: bool = False


METRICS: dict[str, Metric] = {}
GROUPS: dict[str, type] = {}


def register_metric(metric: Metric) -> Metric:
    if metric.group not in GROUPS:
        raise ValueError(f"metric {metric.name!r}: unknown group {metric.group!r}")
    METRICS[metric.name] = metric
    return metric


def _builtins() -> None:
    import memorygan.metrics.groups  # noqa: F401  (registers the built-in metrics and groups)


def metric_names() -> list[str]:
    _builtins()
    return list(METRICS)


def registered_metrics() -> list[Metric]:
    """Every registered metric, in registration order."""
    _builtins()
    return list(METRICS.values())


def get_metric(name: str) -> Metric:
    """The registered metric `name`; ConfigError listing the known ones otherwise."""
    return METRICS[parse_metric_names([name])[0]]


def parse_metric_names(names: str | Iterable[str]) -> list[str]:
    """"fid,kid" or ["fid", "kid"] -> validated names in the given order without repeats; ConfigError listing the
    known names for an unknown one."""
    _builtins()
    if isinstance(names, str):
        names = names.split(",")
    out: list[str] = []
    for raw in names:
        name = raw.strip().lower()
        if not name:
            continue
        if name not in METRICS:
            raise ConfigError(f"unknown metric {raw.strip()!r} (--metrics); known metrics: {', '.join(METRICS)}")
        if name not in out:
            out.append(name)
    if not out:
        raise ConfigError(f"no metric given (--metrics); known metrics: {', '.join(METRICS)}")
    return out


# ---------------------------------------------------------------------------------------------------- groups

@dataclass
class MetricContext:
    """What a group needs, resolved and validated by `compute_metrics`."""
    generator: object | None
    images: object | None                 # samples.ImageFolder
    data: Path | None
    dataset: object | None                # SegmentationDataset of `data`
    n: int | None                         # as given (None: each metric's default)
    num_shared: int                       # images in the shared pass
    seed: int = 0
    truncation: float = 1.0
    batch_size: int = 32
    num_real: int | None = None
    kid_subset_size: int | None = None
    inception: object | None = None       # a fidelity.FeatureExtractor overriding the weights file
    inception_weights: str | os.PathLike | None = None
    probe: str | os.PathLike | None = None
    cache: bool = True
    cache_dir: str | os.PathLike | None = None
    device: str | torch.device = "cpu"
    progress: bool = False


class MetricGroup:
    """Computes the metrics `names` of one group. Shared groups (`shared = True`) are fed the shared pass of
    images with `update(images, seg)` (images in the `metrics.samples` convention, seg None for a folder) and
    report with `finish()`; the others compute everything in `run()`. Construction does the checks and the
    cheap set-up (weights), `prepare()` the expensive one (real statistics): all groups are constructed before
    any is prepared, and all are prepared before any image is made. `seconds` accumulates the group's own time."""

    shared = True

    def __init__(self, ctx: MetricContext, names: list[str]):
        self.ctx, self.names, self.seconds = ctx, names, 0.0

    def prepare(self) -> None:
        """Expensive set-up (real statistics), once every group has passed its checks."""

    def update(self, images: torch.Tensor, seg: torch.Tensor | None) -> None:
        raise NotImplementedError

    def finish(self) -> dict[str, dict]:
        raise NotImplementedError

    def run(self) -> dict[str, dict]:
        raise NotImplementedError


def register_group(name: str):
    def deco(cls):
        GROUPS[name] = cls
        return cls
    return deco
