"""What to invert: images (a file, a folder, or a dataset folder with its masks) checked against the generator,
or the generator's own samples (known answers: their true codes and segmentations are written beside them)."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from memorygan.data.files import (IMAGE_DIR, IMAGE_EXTS, INFO_FILE, MASK_DIR, MASK_EXT, load_info_json,
                                  mask_array)
from memorygan.errors import DatasetError


@dataclass
class Target:
    name: str
    image: Path
    mask: Path | None = None


@dataclass
class Targets:
    items: list[Target]
    source: str                                   # what was given (for the records)
    dataset: Path | None = None                   # the dataset folder, when the images came from one
    true_codes: Path | None = None                # known answers: a codes file with one entry per name
    extra: dict = field(default_factory=dict)


def _image_files(folder: Path) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_EXTS:
            if p.stem in files:
                raise DatasetError(f"{folder}: two images named {p.stem} ({files[p.stem].name} and {p.name})")
            files[p.stem] = p
    return files


def collect_targets(G, images, masks=None, limit: int | None = None) -> Targets:
    """Resolve --images/--masks and check every file against G before any work starts (DatasetError naming the
    file and the problem): images must be the generator's size; masks single-channel, the same size, with class
    ids below the generator's number of parts. A dataset folder (dataset.json, images/, masks/) brings its masks
    (unless `masks` is given) and must declare the generator's classes. `limit`: only the first N images."""
    src = Path(images)
    if not src.exists():
        raise DatasetError(f"--images {src}: no such file or folder")
    dataset = None
    if src.is_dir() and (src / INFO_FILE).is_file():
        info, errors = load_info_json(src)
        if errors:
            raise DatasetError("; ".join(errors))
        names = G.part_names
        if info.num_classes != G.num_classes or (G.config.class_names and list(info.classes) != names):
            raise DatasetError(f"dataset {src} declares classes {info.classes} but the generator's parts are "
                               f"{names}; mask ids would mean other parts")
        dataset = src
        image_files = _image_files(src / IMAGE_DIR) if (src / IMAGE_DIR).is_dir() else {}
        if masks is None and (src / MASK_DIR).is_dir():
            masks = src / MASK_DIR
    elif src.is_dir():
        image_files = _image_files(src)
    else:
        if src.suffix.lower() not in IMAGE_EXTS:
            raise DatasetError(f"--images {src}: not an image file ({', '.join(IMAGE_EXTS)})")
        image_files = {src.stem: src}
    if not image_files:
        raise DatasetError(f"--images {src}: no images ({', '.join(IMAGE_EXTS)}) found")
    if limit is not None:
        image_files = dict(list(image_files.items())[:limit])
    mask_files: dict[str, Path] = {}
    if masks is not None:
        m = Path(masks)
        if not m.exists():
            raise DatasetError(f"--masks {m}: no such file or folder")
        if m.is_dir():
            mask_files = {p.stem: p for p in sorted(m.iterdir()) if p.is_file() and p.suffix.lower() == MASK_EXT}
            missing = [n for n in image_files if n not in mask_files]
            if missing:
                raise DatasetError(f"--masks {m}: no mask for image {missing[0]} "
                                   f"(expected {m / (missing[0] + MASK_EXT)})"
                                   + (f" and {len(missing) - 1} more" if len(missing) > 1 else ""))
        else:
            if len(image_files) != 1:
                raise DatasetError(f"--masks {m} is one file but --images holds {len(image_files)} images; pass a "
                                   "folder of masks named like the images")
            mask_files = {next(iter(image_files)): m}
    items = [Target(n, p, mask_files.get(n)) for n, p in image_files.items()]
    for t in items:
        check_target(G, t)
    return Targets(items, str(src) + (f" (first {limit})" if limit is not None else ""), dataset)


def check_target(G, t: Target) -> None:
    """Readable image (any size or aspect: `load_target` fits it), a mask of the image's size with the generator's
    ids. One-line DatasetError naming the file otherwise."""
    w, h = source_size(t.image)
    if t.mask is not None:
        ids = read_mask_ids(t.mask)
        if ids.shape != (h, w):
            raise DatasetError(f"mask {t.mask} is {ids.shape[1]}x{ids.shape[0]} but its image is {w}x{h}")
        top = int(ids.max(initial=0))
        if top >= G.num_classes:
            raise DatasetError(f"mask {t.mask} has class id {top} but the generator has {G.num_classes} parts "
                               f"(ids 0..{G.num_classes - 1})")


def source_size(path: Path) -> tuple[int, int]:
    """(width, height) of an image file as displayed (EXIF orientation applied)."""
    try:
        with Image.open(path) as im:
            w, h = im.size
            orientation = im.getexif().get(0x0112, 1)
    except Image.DecompressionBombError as e:
        raise DatasetError(f"image {path}: too large to decode safely ({e})") from None
    except OSError as e:
        raise DatasetError(f"image {path}: cannot be read ({e})") from None
    return (h, w) if orientation in (5, 6, 7, 8) else (w, h)


def fit_image(image: Image.Image, size: int, mask: np.ndarray | None = None) -> tuple[np.ndarray,
                                                                                    np.ndarray | None]:
    """An RGB image of any size or aspect (and its id mask of the same size) -> (size, size, 3) uint8 and
    (size, size) ids: the shorter side scaled to `size`, centre-cropped (LANCZOS for the image, NEAREST for the
    mask), as `memorygan data import` does. The CLI's `invert` and the demo's upload share it."""
    from memorygan.data.importer import resize_crop

    rgb = np.array(resize_crop(image.convert("RGB"), size, Image.LANCZOS), dtype=np.uint8)
    ids = None
    if mask is not None:
        ids = np.asarray(resize_crop(Image.fromarray(mask.astype(np.int32)), size, Image.NEAREST)).astype(np.int64)
    return rgb, ids


def read_mask_ids(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as im:
            return mask_array(im, str(path))
    except Image.DecompressionBombError as e:
        raise DatasetError(f"mask {path}: too large to decode safely ({e})") from None
    except OSError as e:
        raise DatasetError(f"mask {path}: cannot be read ({e})") from None


def load_target(t: Target, size: int | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(image (3, S, S) in [-1, 1], ids (S, S) int64 or None). The file is read as users have it (EXIF
    orientation, transparency over white, greyscale and 16-bit: `data.classfolders.load_source_image`) and fitted
    to `size` (`fit_image`) when given."""
    from memorygan.data.classfolders import load_source_image

    try:
        im = load_source_image(t.image)
    except Image.DecompressionBombError as e:
        raise DatasetError(f"image {t.image}: too large to decode safely ({e})") from None
    except OSError as e:
        raise DatasetError(f"image {t.image}: cannot be read ({e})") from None
    mask = None if t.mask is None else read_mask_ids(t.mask)
    if size is not None:
        rgb, mask = fit_image(im, size, mask)
    else:
        rgb = np.array(im, dtype=np.uint8)
    image = torch.from_numpy(rgb).permute(2, 0, 1).float().div(127.5).sub(1.0)
    ids = None if mask is None else torch.from_numpy(mask.astype(np.int64))
    return image, ids


# ---------------------------------------------------------------------------------------------------- known answers

@torch.no_grad()
def write_sample_targets(G, seeds, out: str | os.PathLike, truncation: float = 1.0) -> Targets:
    """The generator's samples of `seeds` as a dataset folder `out` (images/, masks/ = argmax of its own
    segmentation, dataset.json) plus `codes.safetensors` with their true codes: targets whose answer is known.
    Written once; a later call with the same folder reuses it if it holds the same seeds."""
    from memorygan.checkpoint import atomic_directory
    from memorygan.data.files import DatasetInfo, write_info, write_mask, write_png
    from memorygan.editing.codes import codes_from_output, save_codes
    from memorygan.visualize import to_uint8

    out = Path(out)
    names = [f"seed{int(s):04d}" for s in seeds]
    record = {"seeds": [int(s) for s in seeds], "truncation": truncation}
    if (out / "samples.json").is_file():
        if json.loads((out / "samples.json").read_text()) != record:
            raise DatasetError(f"{out} holds the samples of other seeds or truncation; choose another --out")
    else:
        with atomic_directory(out) as tmp:
            (tmp / IMAGE_DIR).mkdir()
            (tmp / MASK_DIR).mkdir()
            outs = []
            for s in seeds:
                z = G.sample_z(1, seed=int(s))
                o = G(z, truncation=truncation)
                outs.append(o)
                n = f"seed{int(s):04d}"
                write_png(tmp / IMAGE_DIR / f"{n}.png", to_uint8(o.image)[0])
                write_mask(tmp / MASK_DIR / f"{n}.png", o.seg.argmax(1)[0].cpu().numpy(), G.num_classes)
            cat = {k: torch.cat([getattr(o, k) for o in outs]) for k in ("expanded", "latents")}
            first = outs[0]
            first.expanded, first.latents = cat["expanded"], cat["latents"]
            first.queries = torch.cat([o.queries for o in outs]) if outs[0].queries is not None else None
            first.z = torch.cat([o.z for o in outs]) if torch.is_tensor(outs[0].z) else None
            save_codes(tmp / "codes.safetensors", codes_from_output(first, G, "z", names, truncation=truncation))
            info = DatasetInfo(classes=G.part_names, resolution=(G.config.resolution, G.config.resolution),
                               num_images=len(names), name="generator samples",
                               transparent_classes=[G.part_names[k] for k in G.config.transparent_classes],
                               provenance={"generator_samples": record})
            write_info(tmp, info)
            (tmp / "samples.json").write_text(json.dumps(record) + "\n")
    targets = collect_targets(G, out)
    targets.true_codes = out / "codes.safetensors"
    targets.source = f"samples of seeds {record['seeds']}"
    return targets
