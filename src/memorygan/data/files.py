"""The dataset format on disk, and the file-level helpers every writer and reader shares.

A dataset is a folder::

    DIR/
      dataset.json        classes (id order), transparent classes, resolution, counts, provenance;
                          optional image-level `categories` (id order) and `labels` ({NAME: category id})
      images/NAME.png     RGB (PNG or JPEG), any of .png .jpg .jpeg
      masks/NAME.png      single-channel PNG of class ids (8-bit; 16-bit when there are more than 256 classes)
      attributes.jsonl    optional: one JSON object per image with its ground-truth attributes ("basename": NAME)

Two kinds of labels: `classes` name the ids of the pixel masks (the parts of the part-based models), and
`categories` name whole images (the classes of a class-conditional model such as `memorygan biggan`), with
`labels` giving each image's category index by basename. A dataset may have both (`data synth categories`), or
be image-level only: `"classes": []` and no `masks/` folder, allowed only when `categories` is set
(`data import-classes`).

Writers never touch an existing folder in place: they fill a temporary sibling folder and rename it into place
(`AtomicOutput`), so an interrupted or failing run leaves either the old dataset or the new one, never half of one.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np
from PIL import Image

from memorygan.errors import DatasetError

FORMAT_NAME = "memorygan-dataset"
FORMAT_VERSION = 1
INFO_FILE = "dataset.json"
ATTRIBUTES_FILE = "attributes.jsonl"
IMAGE_DIR = "images"
MASK_DIR = "masks"
IMAGE_EXTS = (".png", ".jpg", ".jpeg")
MASK_EXT = ".png"

# The 13 classes used by SemanticStyleGAN and MemoryGAN on CelebAMask-HQ (DESIGN.md section 4), in id order.
CELEBAMASK_CLASSES: tuple[str, ...] = (
    "background", "skin", "eyes", "eyebrows", "mouth", "nose", "ears",
    "hair", "neck", "cloth", "eyeglasses", "hat", "earrings",
)
CELEBAMASK_TRANSPARENT: tuple[str, ...] = ("eyeglasses", "earrings")

# fixed PNG settings: same pixels -> same bytes (zlib level is part of the output)
PNG_COMPRESS_LEVEL = 6


# ---------------------------------------------------------------------------------------------------- dataset.json

@dataclass
class DatasetInfo:
    """Contents of `dataset.json`."""

    classes: list[str]
    resolution: tuple[int, int]                      # (H, W)
    num_images: int
    transparent_classes: list[str] = field(default_factory=list)
    name: str = ""
    class_pixel_counts: list[int] | None = None      # (K,) total pixels per class over the dataset
    class_image_counts: list[int] | None = None      # (K,) number of images in which the class appears
    provenance: dict[str, Any] = field(default_factory=dict)
    categories: list[str] | None = None              # (C,) image-level class names in id order
    labels: dict[str, int] | None = None             # image basename -> category index

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def has_masks(self) -> bool:
        """False for an image-level-only dataset (`classes` empty, no masks/ folder)."""
        return bool(self.classes)

    @property
    def num_categories(self) -> int:
        return len(self.categories) if self.categories is not None else 0

    @property
    def transparent_ids(self) -> list[int]:
        return [self.classes.index(c) for c in self.transparent_classes]

    def to_json(self) -> dict[str, Any]:
        h, w = self.resolution
        d: dict[str, Any] = {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "name": self.name,
            "classes": list(self.classes),
            "transparent_classes": list(self.transparent_classes),
            "resolution": h if h == w else [h, w],
            "num_images": int(self.num_images),
        }
        if self.class_pixel_counts is not None:
            d["class_pixel_counts"] = [int(c) for c in self.class_pixel_counts]
        if self.class_image_counts is not None:
            d["class_image_counts"] = [int(c) for c in self.class_image_counts]
        if self.categories is not None:
            d["categories"] = list(self.categories)
        if self.labels is not None:
            d["labels"] = {str(k): int(v) for k, v in sorted(self.labels.items())}
        d["provenance"] = self.provenance
        return d


def parse_info(data: Any, where: str = INFO_FILE) -> tuple[DatasetInfo | None, list[str]]:
    """Validate the decoded `dataset.json`; returns (info or None, every problem found)."""
    errors: list[str] = []
    if not isinstance(data, dict):
        return None, [f"{where}: expected a JSON object, got {type(data).__name__}"]
    if data.get("format", FORMAT_NAME) != FORMAT_NAME:
        errors.append(f"{where}: format is {data.get('format')!r}, expected {FORMAT_NAME!r}")
    categories, cat_errors = _parse_categories(data, where)
    errors += cat_errors
    classes = data.get("classes")
    if isinstance(classes, list) and not classes and "categories" in data:
        pass  # image-level only: no masks; valid when 'categories' is (its own problems are reported above)
    elif not isinstance(classes, list) or not classes or not all(isinstance(c, str) and c for c in classes):
        errors.append(f"{where}: 'classes' must be a non-empty list of class names in id order (an empty list "
                      f"only for an image-level dataset, which has 'categories')")
        classes = None
    elif len(set(classes)) != len(classes):
        dup = sorted({c for c in classes if classes.count(c) > 1})
        errors.append(f"{where}: duplicate class names {dup}")
    elif len(classes) > 65536:
        errors.append(f"{where}: {len(classes)} classes; at most 65536 fit in a 16-bit mask")
    transparent = data.get("transparent_classes", [])
    if not isinstance(transparent, list) or not all(isinstance(c, str) for c in transparent):
        errors.append(f"{where}: 'transparent_classes' must be a list of class names")
        transparent = []
    elif classes is not None:
        unknown = [c for c in transparent if c not in classes]
        if unknown:
            errors.append(f"{where}: transparent classes {unknown} are not in 'classes'")
    res = data.get("resolution")
    resolution = None
    if isinstance(res, int) and not isinstance(res, bool) and res > 0:
        resolution = (res, res)
    elif (isinstance(res, list) and len(res) == 2
          and all(isinstance(r, int) and not isinstance(r, bool) and r > 0 for r in res)):
        resolution = (res[0], res[1])
    else:
        errors.append(f"{where}: 'resolution' must be a positive int or [height, width], got {res!r}")
    n = data.get("num_images")
    if not (isinstance(n, int) and not isinstance(n, bool) and n >= 0):
        errors.append(f"{where}: 'num_images' must be a non-negative int, got {n!r}")
    for key in ("class_pixel_counts", "class_image_counts"):
        v = data.get(key)
        if v is not None and (not isinstance(v, list) or (classes is not None and len(v) != len(classes))):
            errors.append(f"{where}: '{key}' must be a list with one count per class")
    prov = data.get("provenance", {})
    if not isinstance(prov, dict):
        errors.append(f"{where}: 'provenance' must be an object")
    if errors:
        return None, errors
    info = DatasetInfo(
        classes=list(classes), resolution=resolution, num_images=n,
        transparent_classes=list(transparent), name=str(data.get("name", "")),
        class_pixel_counts=data.get("class_pixel_counts"), class_image_counts=data.get("class_image_counts"),
        provenance=prov, categories=categories, labels=data.get("labels") if categories is not None else None,
    )
    return info, []


def _parse_categories(data: dict, where: str) -> tuple[list[str] | None, list[str]]:
    """Validate the optional image-level fields 'categories' and 'labels'; (categories or None, problems)."""
    errors: list[str] = []
    categories = data.get("categories")
    labels = data.get("labels")
    if "categories" in data:
        if not isinstance(categories, list) or not categories or \
                not all(isinstance(c, str) and c for c in categories):
            errors.append(f"{where}: 'categories' must be a non-empty list of image-level class names in id order")
            categories = None
        elif len(set(categories)) != len(categories):
            dup = sorted({c for c in categories if categories.count(c) > 1})
            errors.append(f"{where}: duplicate category names {dup} in 'categories'")
    if "labels" in data:
        if "categories" not in data:
            errors.append(f"{where}: 'labels' without 'categories': the category names (id order) are needed to "
                          f"read the label indices")
        elif not isinstance(labels, dict):
            errors.append(f"{where}: 'labels' must be an object mapping image basenames to category indices")
        else:
            c = len(categories) if isinstance(categories, list) else None
            bad = [f"{k!r}: {v!r}" for k, v in labels.items()
                   if not k or not isinstance(v, int) or isinstance(v, bool) or v < 0 or (c is not None and v >= c)]
            if bad:
                shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
                rng = f"0..{c - 1}" if c else "category indices"
                errors.append(f"{where}: 'labels' must map image basenames to category indices {rng}; "
                              f"bad entries: {shown}")
    return (categories if not errors else None), errors


def load_info_json(root: Path) -> tuple[DatasetInfo | None, list[str]]:
    from memorygan.fileio import read_json

    path = Path(root) / INFO_FILE
    if not path.is_file():
        return None, [f"{path}: missing (every dataset folder needs a {INFO_FILE})"]
    try:
        data = read_json(path, DatasetError, INFO_FILE, expect=None)
    except DatasetError as e:
        return None, [str(e)]
    return parse_info(data, str(path))


def read_info(root: str | os.PathLike) -> DatasetInfo:
    """Read and validate `DIR/dataset.json`; raises DatasetError naming every problem."""
    info, errors = load_info_json(Path(root))
    if errors:
        raise DatasetError("; ".join(errors))
    return info


def write_info(root: Path, info: DatasetInfo) -> None:
    text = json.dumps(info.to_json(), indent=2, sort_keys=False) + "\n"
    (Path(root) / INFO_FILE).write_text(text, encoding="utf-8")


# ---------------------------------------------------------------------------------------------------- file pairing

@dataclass
class Pairing:
    """Images and masks of a dataset folder, matched by basename (file name without extension)."""

    names: list[str]                    # sorted basenames that have both files
    images: dict[str, Path]
    masks: dict[str, Path]
    image_without_mask: list[str]
    mask_without_image: list[str]
    duplicate_images: list[str]          # basenames with two image files (a.png and a.jpg)
    other_files: list[str]               # files in images/ or masks/ with an unknown extension


@dataclass
class ImageListing:
    """The image files of a dataset folder by basename (what an image-level dataset holds)."""

    names: list[str]                    # sorted basenames
    images: dict[str, Path]
    duplicate_images: list[str]          # basenames with two image files (a.png and a.jpg)
    other_files: list[str]               # files in images/ with an unknown extension


def list_images(root: Path) -> ImageListing:
    images: dict[str, Path] = {}
    dups: list[str] = []
    other: list[str] = []
    with os.scandir(Path(root) / IMAGE_DIR) as it:
        for e in it:
            stem, ext = os.path.splitext(e.name)
            if e.name.startswith("."):
                continue
            if ext.lower() in IMAGE_EXTS:
                if stem in images:
                    dups.append(stem)
                images[stem] = Path(e.path)
            else:
                other.append(f"{IMAGE_DIR}/{e.name}")
    return ImageListing(sorted(images), images, sorted(dups), sorted(other))


def pair_files(root: Path) -> Pairing:
    """Images and masks matched by basename; a missing masks/ folder counts as empty."""
    root = Path(root)
    listing = list_images(root)
    images = listing.images
    masks: dict[str, Path] = {}
    other = list(listing.other_files)
    if (root / MASK_DIR).is_dir():
        with os.scandir(root / MASK_DIR) as it:
            for e in it:
                stem, ext = os.path.splitext(e.name)
                if e.name.startswith("."):
                    continue
                if ext.lower() == MASK_EXT:
                    masks[stem] = Path(e.path)
                else:
                    other.append(f"{MASK_DIR}/{e.name}")
    both = sorted(images.keys() & masks.keys())
    return Pairing(
        names=both, images=images, masks=masks,
        image_without_mask=sorted(images.keys() - masks.keys()),
        mask_without_image=sorted(masks.keys() - images.keys()),
        duplicate_images=listing.duplicate_images, other_files=sorted(other),
    )


def content_fingerprint(root: str | os.PathLike, info: DatasetInfo | None = None,
                        pairing: Pairing | None = None) -> dict[str, Any]:
    """What identifies a dataset's content without reading every pixel: 16 hex digits of SHA-256 over its
    classes, transparent classes and resolution and the sorted (name, byte size) of every image and mask, plus the
    number of pairs. The folder's path and the files' times are left out, so a moved or copied dataset keeps its
    fingerprint while adding, removing, renaming or re-encoding a file changes it (an edit that keeps a file's
    exact byte size is not detected). Runs record it to refuse resuming on other data; the metric caches use the
    stricter `metrics.probe.dataset_fingerprint` (file times too)."""
    import hashlib

    root = Path(root)
    info = info if info is not None else read_info(root)
    pairing = pairing if pairing is not None else pair_files(root)
    h = hashlib.sha256(json.dumps({"classes": info.classes, "transparent": info.transparent_classes,
                                   "resolution": list(info.resolution)}, sort_keys=True).encode())
    for name in pairing.names:
        for kind, path in ((IMAGE_DIR, pairing.images[name]), (MASK_DIR, pairing.masks[name])):
            h.update(f"{kind}/{path.name}\0{path.stat().st_size}\n".encode())
    return {"fingerprint": h.hexdigest()[:16], "num_images": len(pairing.names)}


def labelled_fingerprint(root: str | os.PathLike, info: DatasetInfo | None = None,
                         listing: ImageListing | None = None) -> dict[str, Any]:
    """`content_fingerprint` for class-conditional training: 16 hex digits of SHA-256 over the categories, the
    resolution, every image's label and the sorted (name, byte size) of every image; masks are not part of it
    (an image-level-only dataset has none), so adding masks to a dataset keeps it and relabelling an image
    changes it."""
    import hashlib

    root = Path(root)
    info = info if info is not None else read_info(root)
    listing = listing if listing is not None else list_images(root)
    labels = info.labels or {}
    h = hashlib.sha256(json.dumps({"categories": info.categories, "resolution": list(info.resolution)},
                                  sort_keys=True).encode())
    for name in listing.names:
        path = listing.images[name]
        h.update(f"{IMAGE_DIR}/{path.name}\0{path.stat().st_size}\0{labels.get(name)}\n".encode())
    return {"fingerprint": h.hexdigest()[:16], "num_images": len(listing.names)}


def index_name(i: int, n: int) -> str:
    """File basename of item `i` of `n` written by the generators and the class-folder importer: zero-padded to
    at least 6 digits (`000042`), wider when `n` needs it, so names sort in index order."""
    return f"{i:0{max(6, len(str(max(n - 1, 0))))}d}"


# ---------------------------------------------------------------------------------------------------- pixels

def read_image(path: Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB; grayscale/palette/RGBA are converted."""
    with Image.open(path) as im:
        if im.mode != "RGB":
            im = im.convert("RGB")
        return np.asarray(im, dtype=np.uint8)


MASK_MODES = ("L", "P", "I;16", "I;16B", "I;16L", "I")


def mask_array(im: Image.Image, name: str) -> np.ndarray:
    """Class ids of an opened mask image, (H, W) int64; DatasetError if it has more than one channel."""
    if im.mode not in MASK_MODES:
        raise DatasetError(
            f"mask {name} has mode {im.mode} ({len(im.getbands())} channels); "
            "expected a single-channel PNG of class ids")
    return np.asarray(im).astype(np.int64)


def read_mask(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return mask_array(im, Path(path).name)


def write_png(path: Path, array: np.ndarray) -> None:
    Image.fromarray(array).save(path, format="PNG", compress_level=PNG_COMPRESS_LEVEL)


def write_mask(path: Path, ids: np.ndarray, num_classes: int) -> None:
    """Single-channel PNG: 8-bit when the ids fit, 16-bit grayscale for more than 256 classes."""
    dtype = np.uint8 if num_classes <= 256 else np.uint16
    write_png(path, np.ascontiguousarray(ids, dtype=dtype))


def write_image(path: Path, rgb: np.ndarray, jpeg_quality: int = 95) -> None:
    if path.suffix.lower() in (".jpg", ".jpeg"):
        Image.fromarray(rgb).save(path, format="JPEG", quality=jpeg_quality, subsampling=0)
    else:
        write_png(path, rgb)


def class_counts(ids: np.ndarray, num_classes: int) -> np.ndarray:
    """(K,) int64 pixel count per class of one id mask."""
    return np.bincount(ids.ravel(), minlength=num_classes)[:num_classes].astype(np.int64)


# ---------------------------------------------------------------------------------------------------- atomic output

def _same_or_inside(a: Path, b: Path) -> bool:
    a, b = a.resolve(), b.resolve()
    return a == b or b in a.parents or a in b.parents


class AtomicOutput:
    """A dataset folder written all-or-nothing.

    Files go to a temporary sibling folder (`.NAME.tmp-XXXX`); `commit()` renames it to the final path. With
    `overwrite`, an existing folder is first renamed aside and deleted only once the new one is in place, so at
    every moment one complete dataset sits at the path (or the old one is restored if the rename fails).
    `abort()` (or leaving the `with` block with an exception) deletes the temporary folder.
    """

    def __init__(self, out: str | os.PathLike, overwrite: bool = False,
                 inputs: Sequence[str | os.PathLike | tuple[str, str | os.PathLike]] = ()):
        """`inputs`: folders or files the writer reads, each a path or (argument name, path); none may overlap
        `out`, since replacing `out` would delete it. With `overwrite`, an existing non-empty `out` is replaced
        only if it is a dataset folder (a valid dataset.json): anything else is refused, never deleted."""
        self.out = Path(out)
        for src in inputs:
            what, src = src if isinstance(src, tuple) else ("input folder", src)
            if _same_or_inside(self.out, Path(src)):
                if Path(src).resolve() != self.out.resolve() and self.out.resolve() in Path(src).resolve().parents:
                    raise DatasetError(f"{what} {src} lies inside the output folder {self.out}, which would be "
                                       f"replaced; move it out first or choose another --out")
                raise DatasetError(f"output folder {self.out} overlaps the {what} {src}; choose another --out")
        if self.out.exists():
            if not self.out.is_dir():
                raise DatasetError(f"output {self.out} exists and is not a folder")
            if any(self.out.iterdir()):
                if not overwrite:
                    raise DatasetError(f"output folder {self.out} exists and is not empty; "
                                       "pass --overwrite to replace it")
                _, problems = load_info_json(self.out)
                if problems:
                    raise DatasetError(f"--overwrite replaces only a dataset folder, and {self.out} is not one "
                                       f"({problems[0]}); refusing to delete it: remove it yourself or choose "
                                       f"another --out")
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.path = Path(tempfile.mkdtemp(prefix=f".{self.out.name}.tmp-", dir=self.out.parent))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(self.path, 0o777 & ~umask)  # mkdtemp makes 0700; a dataset folder should look like mkdir's
        self.done = False

    def commit(self) -> Path:
        old = None
        if self.out.exists():
            old = self.out.with_name(f".{self.out.name}.old-{uuid.uuid4().hex[:8]}")
            os.rename(self.out, old)
        try:
            os.rename(self.path, self.out)
        except BaseException:
            if old is not None:
                os.rename(old, self.out)
            raise
        self.done = True
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return self.out

    def abort(self) -> None:
        if not self.done:
            shutil.rmtree(self.path, ignore_errors=True)
            self.done = True

    def __enter__(self) -> "AtomicOutput":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()


def prepare_layout(root: Path) -> None:
    (root / IMAGE_DIR).mkdir(exist_ok=True)
    (root / MASK_DIR).mkdir(exist_ok=True)


def write_attributes(root: Path, records: Iterable[dict]) -> None:
    with open(root / ATTRIBUTES_FILE, "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, sort_keys=True, separators=(",", ":")) + "\n")


def attribute_lookup(record: dict, path: str, missing=None):
    """The value at a dotted path of an attributes record ("mouth.smile"), or `missing` when a key is absent."""
    cur = record
    for key in path.split("."):
        if not isinstance(cur, dict) or key not in cur:
            return missing
        cur = cur[key]
    return cur


def read_attributes(root: str | os.PathLike) -> list[dict]:
    path = Path(root) / ATTRIBUTES_FILE
    if not path.is_file():
        raise DatasetError(f"{path}: missing (only procedural datasets have ground-truth attributes)")
    out = []
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            if line.strip():
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise DatasetError(f"{path}: line {i} is not valid JSON ({e})") from None
    return out


def run_chunks(fn: Callable, jobs: Sequence, workers: int, total: int, desc: str, progress: bool,
               count: Callable[[Any], int] = len) -> Iterator:
    """Yield `fn(job)` for each job in order, on `workers` forked processes (1: in this process), with an optional
    progress bar advanced by `count(result)` items per result. The pool and bar are closed however the caller exits."""
    import multiprocessing as mp

    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=total, desc=desc, unit="img")
    pool = mp.get_context("fork").Pool(workers) if workers > 1 else None
    try:
        for res in (pool.imap(fn, jobs) if pool else map(fn, jobs)):
            yield res
            if bar is not None:
                bar.update(count(res))
    finally:
        if pool is not None:
            pool.close()
            pool.join()
        if bar is not None:
            bar.close()
