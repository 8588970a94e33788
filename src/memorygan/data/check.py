"""`data check`: read every file of a dataset folder and report every problem at once.

Segmentation datasets are checked pair by pair (image + mask); image-level-only datasets (`"classes": []`, no
masks/) image by image. Datasets with `categories` also get their labels checked against the images and a count
per category."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from memorygan.data.files import (
    ATTRIBUTES_FILE, IMAGE_DIR, INFO_FILE, MASK_DIR, MASK_MODES, DatasetInfo, list_images, load_info_json,
    pair_files,
)

MAX_LISTED = 20  # per problem kind; the rest is summarised as a count


@dataclass
class Report:
    """Result of `check_dataset`. `ok` is True when there are no errors (warnings are allowed)."""

    path: str
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)
    class_pixel_counts: list[int] = field(default_factory=list)
    class_image_counts: list[int] = field(default_factory=list)
    num_images: int = 0
    masks: bool = True                                   # False: an image-level-only dataset (images checked)
    category_counts: dict[str, int] | None = None        # images per category (datasets with 'categories')

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def class_frequencies(self) -> dict[str, float]:
        """Fraction of all mask pixels per class name."""
        total = sum(self.class_pixel_counts)
        return {c: (n / total if total else 0.0) for c, n in zip(self.classes, self.class_pixel_counts)}

    def to_json(self) -> dict:
        out = {
            "path": self.path, "ok": self.ok, "num_images": self.num_images,
            "errors": self.errors, "warnings": self.warnings,
            "class_frequencies": self.class_frequencies,
            "class_image_counts": dict(zip(self.classes, self.class_image_counts)),
        }
        if self.category_counts is not None:
            out["category_counts"] = self.category_counts
        return out

    def format(self) -> str:
        what = "image/mask pairs" if self.masks else "images (image-level labels, no masks)"
        lines = [f"dataset {self.path}: {self.num_images} {what} checked, "
                 f"{len(self.errors)} error(s), {len(self.warnings)} warning(s)"]
        for e in self.errors:
            lines.append(f"  error: {e}")
        for w in self.warnings:
            lines.append(f"  warning: {w}")
        if self.classes and self.class_pixel_counts:
            lines.append("  class frequencies (fraction of pixels, images containing the class):")
            freqs = self.class_frequencies
            width = max(len(c) for c in self.classes)
            for k, c in enumerate(self.classes):
                lines.append(f"    {k:4d} {c:<{width}} {freqs[c]:9.5f} {self.class_image_counts[k]:8d}")
        if self.category_counts:
            lines.append("  images per category:")
            width = max(len(c) for c in self.category_counts)
            for k, (c, m) in enumerate(self.category_counts.items()):
                lines.append(f"    {k:4d} {c:<{width}} {m:8d}")
        lines.append("OK" if self.ok else "INVALID")
        return "\n".join(lines)


class _Collector:
    """Groups repeated problems of one kind so a broken 30k-image folder gives a readable report."""

    def __init__(self):
        self.items: dict[str, list[str]] = {}

    def add(self, kind: str, message: str) -> None:
        self.items.setdefault(kind, []).append(message)

    def flush(self, out: list[str]) -> None:
        for kind, msgs in self.items.items():
            out.extend(msgs[:MAX_LISTED])
            if len(msgs) > MAX_LISTED:
                out.append(f"... and {len(msgs) - MAX_LISTED} more: {kind}")


def _check_image(ipath: Path, errors: _Collector, warnings: _Collector) -> tuple[int, int] | None:
    """Decode one image fully; returns its (width, height) or None."""
    try:
        with Image.open(ipath) as im:
            im.load()  # full decode: truncated files fail here
            if im.mode not in ("RGB", "L", "RGBA", "P"):
                warnings.add("unusual image mode", f"image {IMAGE_DIR}/{ipath.name} has mode {im.mode}; "
                             "it will be converted to RGB")
            elif im.mode != "RGB":
                warnings.add("non-RGB image", f"image {IMAGE_DIR}/{ipath.name} is {im.mode}, not RGB; "
                             "it will be converted to RGB")
            return im.size
    except Exception as e:  # PIL raises many types for corrupt data
        errors.add("unreadable image", f"image {IMAGE_DIR}/{ipath.name} is unreadable or truncated ({e})")
        return None


def _check_pair(name: str, ipath: Path, mpath: Path, info: DatasetInfo | None, k: int | None,
                errors: _Collector, warnings: _Collector) -> np.ndarray | None:
    """Decode one pair fully; returns the mask's per-class pixel counts or None."""
    isize = _check_image(ipath, errors, warnings)
    try:
        with Image.open(mpath) as m:
            m.load()
            msize = m.size
            if m.mode not in MASK_MODES:
                errors.add("multi-channel mask", f"mask {MASK_DIR}/{mpath.name} has mode {m.mode} "
                           f"({len(m.getbands())} channels); expected a single-channel PNG of class ids")
                ids = None
            else:
                ids = np.asarray(m).astype(np.int64)
    except Exception as e:
        errors.add("unreadable mask", f"mask {MASK_DIR}/{mpath.name} is unreadable or truncated ({e})")
        return None
    if isize is not None and isize != msize:
        errors.add("size mismatch", f"image {IMAGE_DIR}/{ipath.name} is {isize[0]}x{isize[1]} but mask "
                   f"{MASK_DIR}/{mpath.name} is {msize[0]}x{msize[1]}")
    if info is not None:
        h, w = info.resolution
        if msize != (w, h):
            errors.add("resolution", f"mask {MASK_DIR}/{mpath.name} is {msize[0]}x{msize[1]} but dataset.json "
                       f"declares resolution {w}x{h}")
    if ids is None:
        return None
    if ids.min(initial=0) < 0:
        errors.add("negative id", f"mask {MASK_DIR}/{mpath.name} has negative class ids")
        return None
    top = int(ids.max(initial=0))
    if k is not None and top >= k:
        bad = np.unique(ids[ids >= k])
        shown = ", ".join(str(int(b)) for b in bad[:5]) + (" ..." if len(bad) > 5 else "")
        errors.add("id out of range", f"mask {mpath.name} has class id {shown} but dataset.json declares "
                   f"{k} classes (ids 0..{k - 1})")
        return None
    if k is None:
        return None
    return np.bincount(ids.ravel(), minlength=k)[:k]


def check_dataset(path: str | os.PathLike, progress: bool = False) -> Report:
    """Validate a dataset folder completely; never raises for problems in the data, reports them."""
    root = Path(path)
    report = Report(path=str(root))
    errors, warnings = _Collector(), _Collector()
    if not root.is_dir():
        report.errors.append(f"{root} is not a folder")
        return report
    info, info_errors = load_info_json(root)
    report.errors.extend(info_errors)
    if (info is not None and not info.has_masks) or (info is None and _declares_no_masks(root)):
        return _check_image_level(root, info, report, progress)
    k = info.num_classes if info is not None else None
    if info is not None:
        report.classes = list(info.classes)
    missing_dirs = [d for d in (IMAGE_DIR, MASK_DIR) if not (root / d).is_dir()]
    for d in missing_dirs:
        report.errors.append(f"{root / d}: missing folder")
    if missing_dirs:
        return report
    pairing = pair_files(root)
    for n in pairing.image_without_mask:
        errors.add("image without mask", f"image {pairing.images[n].relative_to(root)} has no mask "
                   f"({MASK_DIR}/{n}.png)")
    for n in pairing.mask_without_image:
        errors.add("mask without image", f"mask {pairing.masks[n].relative_to(root)} has no image "
                   f"({IMAGE_DIR}/{n}.png or .jpg)")
    for n in pairing.duplicate_images:
        errors.add("duplicate image", f"basename {n} has more than one image file in {IMAGE_DIR}/")
    for f in pairing.other_files:
        warnings.add("stray file", f"{f}: not an image/mask file, ignored")
    if not pairing.names and not pairing.image_without_mask and not pairing.mask_without_image:
        report.errors.append(f"{root}: no images or masks")

    pixel_counts = np.zeros(k, np.int64) if k is not None else None
    image_counts = np.zeros(k, np.int64) if k is not None else None
    names = pairing.names
    it = names
    if progress:
        from tqdm import tqdm
        it = tqdm(names, desc=f"checking {root.name}", unit="img")
    for name in it:
        counts = _check_pair(name, pairing.images[name], pairing.masks[name], info, k, errors, warnings)
        if counts is not None:
            pixel_counts += counts
            image_counts += counts > 0
    report.num_images = len(names)
    errors.flush(report.errors)
    warnings.flush(report.warnings)
    if info is not None:
        if info.num_images != len(names):
            report.errors.append(f"dataset.json declares {info.num_images} images but the folder holds "
                                 f"{len(names)} image/mask pairs")
        report.class_pixel_counts = [int(c) for c in pixel_counts]
        report.class_image_counts = [int(c) for c in image_counts]
        if names:
            empty = [f"{i} {c}" for i, c in enumerate(info.classes) if pixel_counts[i] == 0]
            if empty:
                report.warnings.append(f"classes never present in any mask: {', '.join(empty)}")
    if info is not None and info.categories is not None:
        _check_labels(info, pairing.images, report)
    _check_attributes(root, len(names), report)
    return report


def _declares_no_masks(root: Path) -> bool:
    """Whether an invalid dataset.json still says `"classes": []` (so a broken label does not also report a
    missing masks/ folder)."""
    try:
        data = json.loads((root / INFO_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("classes") == []


def _check_image_level(root: Path, info: DatasetInfo | None, report: Report, progress: bool) -> Report:
    """An image-level-only dataset: images/ and labels, no masks (`info` None: dataset.json is invalid)."""
    errors, warnings = _Collector(), _Collector()
    report.masks = False
    if not (root / IMAGE_DIR).is_dir():
        report.errors.append(f"{root / IMAGE_DIR}: missing folder")
        return report
    mask_dir = root / MASK_DIR
    if mask_dir.is_dir() and any(not e.name.startswith(".") for e in mask_dir.iterdir()):
        report.errors.append(f"{mask_dir} holds files but dataset.json declares no mask classes ('classes': []); "
                             f"name the classes, or remove {MASK_DIR}/")
    listing = list_images(root)
    for n in listing.duplicate_images:
        errors.add("duplicate image", f"basename {n} has more than one image file in {IMAGE_DIR}/")
    for f in listing.other_files:
        warnings.add("stray file", f"{f}: not an image file, ignored")
    if not listing.names:
        report.errors.append(f"{root}: no images")
    it = listing.names
    if progress:
        from tqdm import tqdm
        it = tqdm(it, desc=f"checking {root.name}", unit="img")
    for name in it:
        path = listing.images[name]
        size = _check_image(path, errors, warnings)
        if info is not None and size is not None and size != info.resolution[::-1]:
            errors.add("resolution", f"image {IMAGE_DIR}/{path.name} is {size[0]}x{size[1]} but dataset.json "
                       f"declares resolution {info.resolution[1]}x{info.resolution[0]}")
    report.num_images = len(listing.names)
    errors.flush(report.errors)
    warnings.flush(report.warnings)
    if info is not None and info.num_images != len(listing.names):
        report.errors.append(f"dataset.json declares {info.num_images} images but the folder holds "
                             f"{len(listing.names)} images")
    if info is not None:
        _check_labels(info, listing.images, report)
    _check_attributes(root, len(listing.names), report)
    return report


def _check_labels(info: DatasetInfo, images: dict[str, Path], report: Report) -> None:
    """Labels must name existing images and every image must have one; count the images per category."""
    labels = info.labels or {}
    problems = _Collector()
    if info.labels is None:
        report.errors.append("dataset.json has 'categories' but no 'labels' (image basename -> category index)")
    else:
        for n in sorted(labels.keys() - images.keys()):
            problems.add("label without image", f"dataset.json 'labels' names {n!r}, which has no image in "
                         f"{IMAGE_DIR}/")
        for n in sorted(images.keys() - labels.keys()):
            problems.add("image without label", f"image {IMAGE_DIR}/{images[n].name} has no label in dataset.json "
                         f"'labels'")
    problems.flush(report.errors)
    counts = np.bincount(np.array([labels[n] for n in images if n in labels], np.int64),
                         minlength=info.num_categories)
    report.category_counts = {c: int(m) for c, m in zip(info.categories, counts)}
    empty = [f"{k} {c}" for k, c in enumerate(info.categories) if counts[k] == 0]
    if empty and images:
        report.warnings.append(f"categories without any image: {', '.join(empty)}")


def _check_attributes(root: Path, num_images: int, report: Report) -> None:
    attr = root / ATTRIBUTES_FILE
    if attr.is_file():
        try:
            with open(attr, encoding="utf-8") as f:
                nlines = 0
                for i, line in enumerate(f, 1):
                    if line.strip():
                        json.loads(line)
                        nlines += 1
            if nlines != num_images and num_images:
                report.warnings.append(f"{ATTRIBUTES_FILE} has {nlines} records for {num_images} images")
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
            report.errors.append(f"{ATTRIBUTES_FILE}: line {i} is not valid JSON ({e})")
