"""Write a procedural dataset (`portraits`, `scenes` or `categories`) in the dataset format, optionally with worker
processes. `categories` datasets also carry image-level labels (dataset.json 'categories' and 'labels').

Item i is a pure function of (seed, i) (per-image RNG `default_rng([seed, i])`), so the output does not depend on
the number of workers or on chunking, and the same arguments give byte-identical files.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import memorygan
from memorygan.data import categories, portraits, scenes
from memorygan.data.files import (
    IMAGE_DIR, MASK_DIR, AtomicOutput, DatasetInfo, class_counts, index_name, prepare_layout, run_chunks,
    write_attributes, write_info, write_mask, write_png,
)
from memorygan.data.raster import supersampling_for
from memorygan.errors import DatasetError

KINDS = ("portraits", "scenes", "categories")


@dataclass(frozen=True)
class SynthSpec:
    kind: str
    size: int
    seed: int
    num_classes: int
    ss: int
    objects: tuple[int, int] = (2, 5)
    num_categories: int | None = None     # categories only: C image-level classes

    def generate(self, index: int):
        if self.kind == "portraits":
            return portraits.generate_portrait(self.seed, index, self.size, self.ss)
        if self.kind == "categories":
            return categories.generate_category_scene(self.seed, index, self.size, self.num_categories, self.ss)
        return scenes.generate_scene(self.seed, index, self.size, self.num_classes, self.ss, self.objects)

    def classes(self) -> tuple[list[str], list[str]]:
        """(classes, transparent classes) of the masks, as dataset.json declares them."""
        if self.kind == "portraits":
            return list(portraits.CLASSES), list(portraits.TRANSPARENT)
        if self.kind == "categories":
            return list(categories.CLASSES), []
        return scenes.class_names(self.num_classes), []

    def category_names(self) -> list[str] | None:
        return categories.category_names(self.num_categories) if self.kind == "categories" else None


def make_spec(kind: str, size: int, seed: int, num_classes: int | None = None, ss: int | None = None,
              objects: tuple[int, int] = (2, 5), num_categories: int | None = None) -> SynthSpec:
    if kind not in KINDS:
        raise DatasetError(f"unknown procedural dataset {kind!r}; choose one of {', '.join(KINDS)}")
    if not 8 <= size <= 4096:
        raise DatasetError(f"--size must be between 8 and 4096 pixels, got {size}")
    if num_categories is not None and kind != "categories":
        raise DatasetError(f"--categories applies to the categories dataset only, not {kind}")
    if kind == "portraits":
        if num_classes not in (None, 13):
            raise DatasetError("portraits always have the 13 CelebAMask-HQ classes")
        num_classes = 13
    elif kind == "categories":
        if num_classes not in (None, len(categories.CLASSES)):
            raise DatasetError(f"categories always have the {len(categories.CLASSES)} mask classes "
                               f"{', '.join(categories.CLASSES)}")
        num_classes = len(categories.CLASSES)
        num_categories = categories.DEFAULT_CATEGORIES if num_categories is None else num_categories
        if not categories.DEFAULT_CATEGORIES <= num_categories <= len(categories.CATEGORIES):
            raise DatasetError(f"--categories must be between {categories.DEFAULT_CATEGORIES} and "
                               f"{len(categories.CATEGORIES)} ({', '.join(categories.CATEGORY_NAMES)}), "
                               f"got {num_categories}")
    else:
        if num_classes is None or not 2 <= num_classes <= 65536:
            raise DatasetError(f"--classes must be between 2 and 65536 for scenes, got {num_classes}")
        if not 1 <= objects[0] <= objects[1] <= 255:
            raise DatasetError(f"--objects must satisfy 1 <= min <= max <= 255, got {objects}")
    ss = supersampling_for(size) if ss is None else int(ss)
    if not 1 <= ss <= 8:
        raise DatasetError(f"--supersample must be between 1 and 8, got {ss}")
    return SynthSpec(kind, int(size), int(seed), int(num_classes), ss, tuple(objects),
                     int(num_categories) if num_categories is not None else None)


def _render_chunk(job):
    """Worker: render items, write their files, return their attributes and summed class statistics."""
    spec, root, indices, n = job
    k = spec.num_classes
    pix = np.zeros(k, np.int64)
    img_count = np.zeros(k, np.int64)
    records = []
    for i in indices:
        img, ids, attrs = spec.generate(i)
        name = index_name(i, n)
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
               chunk: int = 64, num_categories: int | None = None) -> SynthResult:
    """Generate `n` items of a procedural dataset into the folder `out` (written atomically)."""
    spec = make_spec(kind, size, seed, num_classes, ss, objects, num_categories)
    if n < 1:
        raise DatasetError(f"--n must be at least 1, got {n}")
    if workers < 1:
        raise DatasetError(f"--workers must be at least 1, got {workers}")
    k = spec.num_classes
    with AtomicOutput(out, overwrite=overwrite) as dst:
        prepare_layout(dst.path)
        jobs = [(spec, str(dst.path), range(s, min(s + chunk, n)), n) for s in range(0, n, chunk)]
        records: list[dict] = []
        pix = np.zeros(k, np.int64)
        img_count = np.zeros(k, np.int64)
        chunks = run_chunks(_render_chunk, jobs, workers, n, f"{kind} {size}px", progress, count=lambda r: len(r[0]))
        for recs, p, c in chunks:  # in index order whatever the workers
            records.extend(recs)
            pix += p
            img_count += c
        classes, transparent = spec.classes()
        prov = {"generator": f"memorygan.data.{kind}", "memorygan_version": memorygan.__version__,
                "seed": spec.seed, "size": spec.size, "n": n, "supersample": spec.ss}
        if kind == "scenes":
            prov.update({"classes": k, "objects": list(spec.objects)})
        labels = None
        if kind == "categories":
            prov["categories"] = spec.num_categories
            labels = {r["basename"]: r["category_id"] for r in records}
        info = DatasetInfo(classes=classes, resolution=(size, size), num_images=n, transparent_classes=transparent,
                           name=kind, class_pixel_counts=pix.tolist(), class_image_counts=img_count.tolist(),
                           provenance=prov, categories=spec.category_names(), labels=labels)
        write_info(dst.path, info)
        write_attributes(dst.path, records)
        path = dst.commit()
    return SynthResult(path, info, records)
