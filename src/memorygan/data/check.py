"""`data check`: read every file of a dataset folder and report every problem at once."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from memorygan.data.files import (
    ATTRIBUTES_FILE, IMAGE_DIR, MASK_DIR, MASK_MODES, DatasetInfo, load_info_json, pair_files,
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

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def class_frequencies(self) -> dict[str, float]:
        """Fraction of all mask pixels per class name."""
        total = sum(self.class_pixel_counts)
        return {c: (n / total if total else 0.0) for c, n in zip(self.classes, self.class_pixel_counts)}

    def to_json(self) -> dict:
        return {
            "path": self.path, "ok": self.ok, "num_images": self.num_images,
            "errors": self.errors, "warnings": self.warnings,
            "class_frequencies": self.class_frequencies,
            "class_image_counts": dict(zip(self.classes, self.class_image_counts)),
        }

    def format(self) -> str:
        lines = [f"dataset {self.path}: {self.num_images} image/mask pairs checked, "
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


def _check_pair(name: str, ipath: Path, mpath: Path, info: DatasetInfo | None, k: int | None,
                errors: _Collector, warnings: _Collector) -> np.ndarray | None:
    """Decode one pair fully; returns the mask's per-class pixel counts or None."""
    isize = None
    try:
        with Image.open(ipath) as im:
            im.load()  # full decode: truncated files fail here
            isize = im.size
            if im.mode not in ("RGB", "L", "RGBA", "P"):
                warnings.add("unusual image mode", f"image {IMAGE_DIR}/{ipath.name} has mode {im.mode}; "
                             "it will be converted to RGB")
            elif im.mode != "RGB":
                warnings.add("non-RGB image", f"image {IMAGE_DIR}/{ipath.name} is {im.mode}, not RGB; "
                             "it will be converted to RGB")
    except Exception as e:  # PIL raises many types for corrupt data
        errors.add("unreadable image", f"image {IMAGE_DIR}/{ipath.name} is unreadable or truncated ({e})")
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
    attr = root / ATTRIBUTES_FILE
    if attr.is_file():
        try:
            with open(attr, encoding="utf-8") as f:
                nlines = 0
                for i, line in enumerate(f, 1):
                    if line.strip():
                        json.loads(line)
                        nlines += 1
            if nlines != len(names) and names:
                report.warnings.append(f"{ATTRIBUTES_FILE} has {nlines} records for {len(names)} images")
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
            report.errors.append(f"{ATTRIBUTES_FILE}: line {i} is not valid JSON ({e})")
    return report
