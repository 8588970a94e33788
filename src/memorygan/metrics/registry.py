"""Metrics registered by name (as StyleGAN2-ADA's metric_main), computed together, logged as JSON lines.

    fid, kid, is         Inception features (`metrics.fidelity`): FID, KID, IS          group "inception"
    dfid, dkid           the dataset's probe (`metrics.domain`): domain FID / KID       group "domain"
    consistency          mIoU of the generator's seg vs the probe's segmentation       group "domain"
    smse                 MemoryGAN Eq. 15 per part (`metrics.smse`)                     group "smse"
    leakage              change outside / inside a resampled part (`metrics.leakage`)   group "leakage"

`compute_metrics` does shared work once: the N images are generated (or read from a folder) in ONE pass that feeds
every "shared" group, so fid, kid and is use one Inception pass over them and dfid, dkid and consistency one
probe pass (`DomainMetrics.accumulator`); real statistics are read from their caches. SMSE and leakage compose
parts themselves and run on their own. `evaluate_run` measures the newest checkpoint of a training run and appends
one line per metric to RUN/metric-<name>.jsonl (RUN/metrics.jsonl belongs to the training loop).

Errors are checked before any expensive work (weights, metric names, N, K, sources) and name the argument or file.
"""
from __future__ import annotations

import json
import math
import os
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from memorygan.errors import CheckpointError, ConfigError, DatasetError

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


_METRICS: dict[str, Metric] = {}
_GROUPS: dict[str, type] = {}


def register_metric(metric: Metric) -> Metric:
    if metric.group not in _GROUPS:
        raise ValueError(f"metric {metric.name!r}: unknown group {metric.group!r}")
    _METRICS[metric.name] = metric
    return metric


def metric_names() -> list[str]:
    return list(_METRICS)


def get_metric(name: str) -> Metric:
    """The registered metric `name`; ConfigError listing the known ones otherwise."""
    return _METRICS[parse_metric_names([name])[0]]


def parse_metric_names(names: str | Iterable[str]) -> list[str]:
    """"fid,kid" or ["fid", "kid"] -> validated names in the given order without repeats; ConfigError listing the
    known names for an unknown one."""
    if isinstance(names, str):
        names = names.split(",")
    out: list[str] = []
    for raw in names:
        name = raw.strip().lower()
        if not name:
            continue
        if name not in _METRICS:
            raise ConfigError(f"unknown metric {raw.strip()!r} (--metrics); known metrics: {', '.join(_METRICS)}")
        if name not in out:
            out.append(name)
    if not out:
        raise ConfigError(f"no metric given (--metrics); known metrics: {', '.join(_METRICS)}")
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
        _GROUPS[name] = cls
        return cls
    return deco


@register_group("inception")
class InceptionGroup(MetricGroup):
    def __init__(self, ctx, names):
        super().__init__(ctx, names)
        from memorygan.metrics import fidelity as fd

        n = ctx.num_shared
        if "is" in names and n < fd.IS_SPLITS:
            raise ConfigError(f"IS with {fd.IS_SPLITS} splits needs at least {fd.IS_SPLITS} images, got {n} (--n)")
        if "kid" in names:  # the real rows kept are known in advance: a subset too large fails now
            fd.resolve_kid_subset(n, min(ctx.num_real, fd.MAX_KEPT_REAL), ctx.kid_subset_size)
        self.extractor = ctx.inception or fd.InceptionExtractor.from_weights(ctx.inception_weights, ctx.device)
        self.real = None
        self.acc = fd.FeatureAccumulator(self.extractor, n, keep_logits="is" in names)

    def prepare(self):
        from memorygan.metrics.fidelity import real_feature_stats

        ctx = self.ctx
        if "fid" in self.names or "kid" in self.names:
            self.real = real_feature_stats(self.extractor, ctx.data, ctx.num_real, ctx.cache, ctx.cache_dir,
                                           ctx.batch_size, ctx.progress)

    def update(self, images, seg):
        self.acc.update(images, seg)

    def finish(self):
        from memorygan.metrics.fidelity import fidelity_scores

        s = fidelity_scores(self.acc.stats, self.real.stats if self.real else None, self.acc.logits, self.names,
                            kid_subset_size=self.ctx.kid_subset_size)
        common = {"num_samples": self.acc.stats.count, "extractor": self.extractor.name}
        real = {"num_real": self.real.num_real} if self.real else {}
        out = {}
        if "fid" in self.names:
            out["fid"] = {"fid": s["fid"], **common, **real}
        if "kid" in self.names:
            out["kid"] = {k: s[k] for k in ("kid", "kid_std", "kid_subset_size", "kid_subsets")} | common | real
        if "is" in self.names:
            out["is"] = {k: s[k] for k in ("is", "is_std", "is_splits")} | common
        return out


@register_group("domain")
class DomainGroup(MetricGroup):
    def __init__(self, ctx, names):
        super().__init__(ctx, names)
        from memorygan.metrics.domain import DomainMetrics

        self.dm = DomainMetrics(ctx.probe if ctx.probe is not None else ctx.data, ctx.data, num_real=ctx.num_real,
                                cache=ctx.cache, device=ctx.device)
        if ctx.generator is not None:
            self.dm.check_generator(ctx.generator)
        else:
            h, w = self.dm.dataset.info.resolution
            for path, size in zip(ctx.images.paths, ctx.images.sizes):
                if size != (w, h):
                    raise DatasetError(f"image {path} is {size[0]}x{size[1]} but the probe measures the {w}x{h} "
                                       f"images of dataset {ctx.data}")
        self.acc = self.dm.accumulator(ctx.num_shared, ctx.device)

    def update(self, images, seg):
        self.acc.update(images, seg)

    def finish(self):
        r = self.acc.result()
        common = {"num_samples": r["num_samples"], "num_real": r["num_real"]}
        out = {}
        if "dfid" in self.names:
            out["dfid"] = {"domain_fid": r["domain_fid"], **common}
        if "dkid" in self.names:
            out["dkid"] = {"domain_kid": r["domain_kid"], "domain_kid_std": r["domain_kid_std"], **common}
        if "consistency" in self.names:
            out["consistency"] = {"mask_miou": r["mask_miou"], "mask_iou": r["mask_iou"],
                                  "num_samples": r["num_samples"]}
        return out


def _import_metric_module(module: str, metric: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name == module:
            raise ConfigError(f"the {metric} metric is not available in this installation ({module} is missing)") \
                from None
        raise


@register_group("smse")
class SmseGroup(MetricGroup):
    shared = False

    def run(self):
        mod = _import_metric_module("memorygan.metrics.smse", "smse")
        kw = {} if self.ctx.n is None else {"num_samples": self.ctx.n}
        return {"smse": mod.smse(self.ctx.generator, seed=self.ctx.seed, batch_size=self.ctx.batch_size,
                                 truncation=self.ctx.truncation, progress=self.ctx.progress, **kw)}


@register_group("leakage")
class LeakageGroup(MetricGroup):
    shared = False

    def run(self):
        mod = _import_metric_module("memorygan.metrics.leakage", "leakage")
        kw = {} if self.ctx.n is None else {"num_samples": self.ctx.n}
        return {"leakage": mod.leakage(self.ctx.generator, seed=self.ctx.seed, batch_size=self.ctx.batch_size,
                                       truncation=self.ctx.truncation, progress=self.ctx.progress, **kw)}


for _m in (
    Metric("fid", "inception", "Frechet Inception Distance (2048-d pool features)", "fid", needs_data=True),
    Metric("kid", "inception", "Kernel Inception Distance (unbiased, subsets)", "kid", "kid_std", needs_data=True),
    Metric("is", "inception", "Inception Score (10 splits, 1008-way logits)", "is", "is_std"),
    Metric("dfid", "domain", "domain FID on the probe's features", "domain_fid", needs_data=True),
    Metric("dkid", "domain", "domain KID on the probe's features", "domain_kid", "domain_kid_std", needs_data=True),
    Metric("consistency", "domain", "mask consistency: mIoU of G's seg vs the probe's", "mask_miou",
           needs_generator=True, needs_data=True),
    Metric("smse", "smse", "sequential MSE, MemoryGAN Eq. 15 (mean over parts)", "smse_mean", needs_generator=True),
    Metric("leakage", "leakage", "change outside / inside a resampled part (mean over parts)", "leakage_mean",
           needs_generator=True),
):
    register_metric(_m)


# ---------------------------------------------------------------------------------------------------- compute

def compute_metrics(names: str | Iterable[str], generator=None, images: str | os.PathLike | None = None,
                    data: str | os.PathLike | None = None, n: int | None = None, seed: int = 0,
                    truncation: float = 1.0, batch_size: int = 32, num_real: int | None = None,
                    inception_weights: str | os.PathLike | None = None, inception=None,
                    probe: str | os.PathLike | None = None, kid_subset_size: int | None = None, cache: bool = True,
                    cache_dir: str | os.PathLike | None = None, device: str | torch.device = "cpu",
                    progress: bool = False) -> dict[str, dict]:
    """Compute the metrics `names` ("fid,kid" or a list; see `metric_names()`) of a generator (a loaded G, or a
    generator / checkpoint / run folder) or of a folder of images, against the dataset `data`.

    n: images of the shared pass (default 1000 generated, or every image of the folder) and samples of smse /
    leakage (default their own: 1000 / 500). num_real: real images (default all). inception_weights: the FID
    Inception file (default $MEMORYGAN_INCEPTION_WEIGHTS); `inception` may instead be any
    `fidelity.FeatureExtractor`. probe: probe folder (default DATA/probe). kid_subset_size: rows per KID subset
    (default min(1000, n, real)). Real statistics are cached (`fidelity` / `domain` docstrings) unless not `cache`.

    Returns {name: result} in the order asked; every result holds its numbers, num_samples and `seconds` (the
    group's own time plus the time to make the shared images)."""
    from memorygan.metrics.fidelity import check_num_real
    from memorygan.metrics.samples import ImageFolder

    names = parse_metric_names(names)
    metrics = [_METRICS[m] for m in names]
    if (generator is None) == (images is None):
        raise ConfigError("give exactly one source of images: a generator (--generator or --run) or an image "
                          "folder (--images)")
    if images is not None:
        need_g = [m.name for m in metrics if m.needs_generator]
        if need_g:
            raise ConfigError(f"{', '.join(need_g)} need(s) a generator (--generator or --run); --images gives only "
                              "images")
    need_data = [m.name for m in metrics if m.needs_data]
    if need_data and data is None:
        raise ConfigError(f"{', '.join(need_data)} need(s) the real dataset (--data)")
    if int(batch_size) < 1:
        raise ConfigError(f"--batch must be at least 1, got {batch_size}")
    if n is not None and int(n) < 2:
        raise ConfigError(f"--n must be at least 2, got {n}")
    if num_real is not None and not need_data:
        num_real = None  # nothing uses real images

    dataset = None
    if data is not None:
        from memorygan.data.dataset import SegmentationDataset

        dataset = SegmentationDataset(data)
        if need_data:
            num_real = check_num_real(num_real, len(dataset.names), dataset.root)
    folder = None
    if generator is not None:
        if isinstance(generator, (str, os.PathLike)):
            from memorygan import load
            generator, _ = load(generator, device)
        k = generator.config.num_classes
        if dataset is not None and k != dataset.num_classes:
            raise ConfigError(f"the generator has {k} classes (parts) but dataset {dataset.root} (--data) has "
                              f"{dataset.num_classes}")
        num_shared = DEFAULT_SAMPLES if n is None else int(n)
    else:
        folder = ImageFolder(images, limit=n)
        num_shared = len(folder)

    ctx = MetricContext(generator=generator, images=folder, data=Path(data) if data is not None else None,
                        dataset=dataset, n=None if n is None else int(n), num_shared=num_shared, seed=int(seed),
                        truncation=float(truncation), batch_size=int(batch_size), num_real=num_real,
                        kid_subset_size=kid_subset_size, inception=inception, inception_weights=inception_weights,
                        probe=probe, cache=cache, cache_dir=cache_dir, device=device, progress=progress)
    groups: list[MetricGroup] = []
    wanted = {m.group for m in metrics}
    for group in [g for g in _GROUPS if g in wanted]:  # registration order: cheap checks (weights) first
        t0 = time.perf_counter()
        g = _GROUPS[group](ctx, [m.name for m in metrics if m.group == group])
        g.seconds += time.perf_counter() - t0
        groups.append(g)
    for g in groups:
        t0 = time.perf_counter()
        g.prepare()
        g.seconds += time.perf_counter() - t0

    results: dict[str, dict] = {}
    shared = [g for g in groups if g.shared]
    if shared:
        from memorygan.metrics.samples import generated_batches

        if folder is not None:
            batches = folder.batches(ctx.batch_size, progress, desc="images")
        else:
            batches = generated_batches(generator, num_shared, ctx.seed, ctx.truncation, ctx.batch_size, progress,
                                        desc="samples")
        source_seconds = 0.0
        it = iter(batches)
        while True:
            t0 = time.perf_counter()
            item = next(it, None)
            source_seconds += time.perf_counter() - t0
            if item is None:
                break
            for g in shared:
                t0 = time.perf_counter()
                g.update(*item)
                g.seconds += time.perf_counter() - t0
        for g in shared:
            t0 = time.perf_counter()
            res = g.finish()
            seconds = g.seconds + time.perf_counter() - t0 + source_seconds
            for name, r in res.items():
                results[name] = {**r, "seconds": seconds}
    for g in groups:
        if not g.shared:
            t0 = time.perf_counter()
            for name, r in g.run().items():
                results[name] = {**r, "seconds": g.seconds + time.perf_counter() - t0}
    return {name: results[name] for name in names}


# ---------------------------------------------------------------------------------------------------- runs

@dataclass
class RunEvaluation:
    results: dict[str, dict]
    snapshot: Path                         # the checkpoint folder measured
    step: int | None
    files: list[Path] = field(default_factory=list)   # the RUN/metric-<name>.jsonl files appended to


def run_snapshot(run: str | os.PathLike) -> tuple[Path, int | None]:
    """(newest checkpoint folder of a training run, its step); CheckpointError naming the run when it has none."""
    from memorygan.checkpoint import read_config
    from memorygan.training.loop import CKPT_DIR, latest_checkpoint

    run = Path(run)
    if not run.is_dir():
        raise CheckpointError(f"run folder {run} (--run) does not exist")
    snapshot = latest_checkpoint(run)
    if snapshot is None:
        raise CheckpointError(f"run {run} (--run) has no checkpoint (no {CKPT_DIR}/step-* folder); train it "
                              "longer or pass --generator")
    step = None
    try:
        step = int(read_config(snapshot / "generator")[1]["training"]["step"])
    except (CheckpointError, KeyError, TypeError, ValueError):
        found = re.fullmatch(r"step-(\d+)", snapshot.name)
        step = int(found.group(1)) if found else None
    return snapshot, step


def evaluate_run(run: str | os.PathLike, names: str | Iterable[str], data: str | os.PathLike | None = None,
                 probe: str | os.PathLike | None = None, append: bool = True, **kwargs) -> RunEvaluation:
    """`compute_metrics` on the newest checkpoint of a training run, with the run's dataset and probe by default
    (its config.json), appending one JSON line per metric to RUN/metric-<name>.jsonl (unless not `append`)."""
    from memorygan.training.loop import read_run_options

    names = parse_metric_names(names)
    snapshot, step = run_snapshot(run)
    run = Path(run)
    if data is None or probe is None:
        opts = read_run_options(run)
        probe = probe if probe is not None else opts.probe
        if data is None and opts.data:
            if Path(opts.data).is_dir():
                data = opts.data
            elif any(_METRICS[m].needs_data for m in names):
                raise DatasetError(f"the dataset of run {run}, {opts.data} (from its config.json), does not exist; "
                                   "pass --data")
    results = compute_metrics(names, generator=snapshot, data=data, probe=probe, **kwargs)
    files = []
    if append:
        files = append_metric_lines(run, results, snapshot=snapshot, step=step, seed=kwargs.get("seed", 0),
                                    truncation=kwargs.get("truncation", 1.0))
    return RunEvaluation(results, snapshot, step, files)


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


# ---------------------------------------------------------------------------------------------------- display

def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.6g}"
    return str(v)


def _table(rows: list[tuple[str, ...]], indent: str = "") -> list[str]:
    """Columns aligned: the first left, the others right."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [indent + "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                               for i, (c, w) in enumerate(zip(row, widths))).rstrip() for row in rows]


def format_results(results: dict[str, dict]) -> str:
    """A readable table: one row per metric (value, std, samples, real images, seconds), then the per-class IoU
    of consistency and the per-part values of smse / leakage."""
    rows = [("metric", "value", "std", "samples", "real", "seconds")]
    for name, r in results.items():
        m = _METRICS.get(name)
        value = r.get(m.key) if m else None
        std = r.get(m.std_key) if m and m.std_key else None
        rows.append((name, _fmt(value), _fmt(std), _fmt(r.get("num_samples")), _fmt(r.get("num_real")),
                     f"{r.get('seconds', float('nan')):.1f}"))
    lines = _table(rows)
    if "consistency" in results:
        iou = results["consistency"].get("mask_iou") or {}
        lines += ["", "consistency per class:", *_table([("class", "IoU")] + [(c, _fmt(v)) for c, v in iou.items()],
                                                        "  ")]
    if "smse" in results:
        per = results["smse"].get("smse") or {}
        lines += ["", "smse per part, in order of addition:",
                  *_table([("part", "mean", "std", "count")] + [(p, _fmt(v.get("mean")), _fmt(v.get("std")),
                                                                 _fmt(v.get("count"))) for p, v in per.items()], "  ")]
    if "leakage" in results:
        per = results["leakage"].get("leakage") or {}
        lines += ["", "leakage per part (ratio = outside / inside):",
                  *_table([("part", "ratio", "inside", "outside", "area")]
                          + [(p, _fmt(v.get("ratio")), _fmt(v.get("inside")), _fmt(v.get("outside")),
                              _fmt(v.get("area"))) for p, v in per.items()], "  ")]
    return "\n".join(lines)
