"""Write a procedural dataset (`portraits` or `scenes`) in the dataset format, optionally with worker processes.

Item i is a pure function of (seed, i) (per-image RNG `default_rng([seed, i])`), so the output does not depend on
the number of workers or on chunking, and the same arguments give byte-identical files.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import memorygan
from memorygan.data import portraits, scenes
from memorygan.data.files import (
    IMAGE_DIR, MASK_DIR, AtomicOutput, DatasetInfo, class_counts, prepare_layout, write_attributes, write_info,
    run_chunks, write_mask, write_png,
)
from memorygan.data.raster import supersampling_for
from memorygan.errors import DatasetError

KINDS = ("portraits", "scenes")


@dataclass(frozen=True)
class SynthSpec:
    kind: str
    size: int
    seed: int
    num_classes: int
    ss: int
    objects: tuple[int, int] = (2, 5)

    def generate(self, index: int):
        if self.kind == "portraits":
            return portraits.generate_portrait(self.seed, index, self.size, self.ss)
        return scenes.generate_scene(self.seed, index, self.size, self.num_classes, self.ss, self.objects)


def make_spec(kind: str, size: int, seed: int, num_classes: int | None = None, ss: int | None = None,
              objects: tuple[int, int] = (2, 5)) -> SynthSpec:
    if kind not in KINDS:
        raise DatasetError(f"unknown procedural dataset {kind!r}; choose one of {', '.join(KINDS)}")
    if not 8 <= size <= 4096:
        raise DatasetError(f"--size must be between 8 and 4096 pixels, got {size}")
    if kind == "portraits":
        if num_classes not in (None, 13):
            raise DatasetError("portraits always have the 13 CelebAMask-HQ classes")
        num_classes = 13
    else:
        if num_classes is None or not 2 <= num_classes <= 65536:
            raise DatasetError(f"--classes must be between 2 and 65536 for scenes, got {num_classes}")
        if not 1 <= objects[0] <= objects[1] <= 255:
            raise DatasetError(f"--objects must satisfy 1 <= min <= max <= 255, got {objects}")
    ss = supersampling_for(size) if ss is None else int(ss)
    if not 1 <= ss <= 8:
        raise DatasetError(f"--supersample must be between 1 and 8, got {ss}")
    return SynthSpec(kind, int(size), int(seed), int(num_classes), ss, tuple(objects))


def _name_width(n: int) -> int:
    return max(6, len(str(max(n - 1, 0))))


def _render_chunk(job):
    """Worker: render items, write their files, return their attributes and summed class statistics."""
    spec, root, indices, width = job
    k = spec.num_classes
    pix = np.zeros(k, np.int64)
    img_count = np.zeros(k, np.int64)
    records = []
    for i in indices:
        img, ids, attrs = spec.generate(i)
        name = f"{i:0{width}d}"
        write_png(Path(root) / IMAGE_DIR / f"{name}.png", img)
        write_mask(Path(root) / MASK_DIR / f"{name}.png", ids, k)
        c = class_counts(ids, k)
        pix += c
        img_count += c > 0
        records.append({"basename": name, **attrs})
    return records, pix, img_count


@dataclass
class SynthResult:
    path: Path
    info: DatasetInfo
    records: list[dict]


def synthesize(kind: str, out: str | os.PathLike, n: int, size: int, seed: int = 0,
               num_classes: int | None = None, workers: int = 1, overwrite: bool = False,
               ss: int | None = None, objects: tuple[int, int] = (2, 5), progress: bool = False,
               chunk: int = 64) -> SynthResult:
    """Generate `n` items of a procedural dataset into the folder `out` (written atomically)."""
    spec = make_spec(kind, size, seed, num_classes, ss, objects)
    if n < 1:
        raise DatasetError(f"--n must be at least 1, got {n}")
    if workers < 1:
        raise DatasetError(f"--workers must be at least 1, got {workers}")
    width = _name_width(n)
    k = spec.num_classes
    with AtomicOutput(out, overwrite=overwrite) as dst:
        prepare_layout(dst.path)
        jobs = [(spec, str(dst.path), range(s, min(s + chunk, n)), width) for s in range(0, n, chunk)]
        records: list[dict] = []
        pix = np.zeros(k, np.int64)
        img_count = np.zeros(k, np.int64)
        chunks = run_chunks(_render_chunk, jobs, workers, n, f"{kind} {size}px", progress, count=lambda r: len(r[0]))
        for recs, p, c in chunks:  # in index order whatever the workers
            records.extend(recs)
            pix += p
            img_count += c
        if kind == "portraits":
            classes, transparent = list(portraits.CLASSES), list(portraits.TRANSPARENT)
        else:
            classes, transparent = scenes.class_names(k), []
        prov = {"generator": f"memorygan.data.{kind}", "memorygan_version": memorygan.__version__,
                "seed": spec.seed, "size": spec.size, "n": n, "supersample": spec.ss}
        if kind == "scenes":
            prov.update({"classes": k, "objects": list(spec.objects)})
        info = DatasetInfo(classes=classes, resolution=(size, size), num_images=n, transparent_classes=transparent,
                           name=kind, class_pixel_counts=pix.tolist(), class_image_counts=img_count.tolist(),
                           provenance=prov)
        write_info(dst.path, info)
        write_attributes(dst.path, records)
        path = dst.commit()
    return SynthResult(path, info, records)
