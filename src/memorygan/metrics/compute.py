"""`compute_metrics`: the metrics asked for, sharing one pass of generated (or folder) images between the groups
that use images (see `metrics.registry`). Errors are checked before any expensive work (weights, metric names, N,
K, sources) and name the argument or file."""
from __future__ import annotations

import os
import time
from collections.abc import Iterable
from pathlib import Path

import torch

from memorygan.errors import ConfigError
from memorygan.metrics.registry import (DEFAULT_SAMPLES, GROUPS, METRICS, MetricContext, MetricGroup,
                                        parse_metric_names)


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
    metrics = [METRICS[m] for m in names]
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
    for group in [g for g in GROUPS if g in wanted]:  # registration order: cheap checks (weights) first
        t0 = time.perf_counter()
        g = GROUPS[group](ctx, [m.name for m in metrics if m.group == group])
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
