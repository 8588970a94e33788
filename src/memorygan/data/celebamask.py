"""Import CelebAMask-HQ from its raw layout into the dataset format with the 13 classes of DESIGN.md section 4.

Raw layout (as distributed; nothing is downloaded here)::

    RAW/CelebA-HQ-img/{i}.jpg                                   1024 x 1024 RGB
    RAW/CelebAMask-HQ-mask-anno/{i // 2000}/{i:05d}_{part}.png  512 x 512, part pixels 255

Part masks are merged into one id map with later parts overwriting earlier ones (`PART_ORDER`); a missing part
file means the part is absent. The first 28,000 images (ids 0..27999) form the training set, the rest a
held-out set written to a second folder.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from memorygan.data.files import (
    CELEBAMASK_CLASSES, CELEBAMASK_TRANSPARENT, IMAGE_DIR, MASK_DIR, AtomicOutput, DatasetInfo, class_counts,
    prepare_layout, run_chunks, write_image, write_info, write_mask,
)
from memorygan.errors import DatasetError

IMAGE_FOLDER = "CelebA-HQ-img"
ANNO_FOLDER = "CelebAMask-HQ-mask-anno"
TRAIN_COUNT = 28000

# (part file suffix, class id), in merge order: skin, eyeglasses, eyes, brows, mouth, lips, nose, hair, ears,
# neck, necklace, cloth, hat, earrings (later parts overwrite earlier ones)
PART_ORDER: tuple[tuple[str, int], ...] = (
    ("skin", 1), ("eye_g", 10), ("l_eye", 2), ("r_eye", 2), ("l_brow", 3), ("r_brow", 3),
    ("mouth", 4), ("u_lip", 4), ("l_lip", 4), ("nose", 5), ("hair", 7), ("l_ear", 6), ("r_ear", 6),
    ("neck", 8), ("neck_l", 8), ("cloth", 9), ("hat", 11), ("ear_r", 12),
)


def part_path(root: Path, index: int, part: str) -> Path:
    return Path(root) / ANNO_FOLDER / str(index // 2000) / f"{index:05d}_{part}.png"


def merge_parts(root: Path, index: int, size: int) -> tuple[np.ndarray, int]:
    """(size, size) uint8 id map of image `index`, and the number of part files found.

    Each part mask is resized NEAREST to the output size and thresholded at 128 before merging; merging after a
    NEAREST resize equals resizing the merged map, and lets parts of odd sizes line up."""
    ids = np.zeros((size, size), np.uint8)
    found = 0
    for part, cid in PART_ORDER:
        p = part_path(root, index, part)
        if not p.is_file():
            continue
        found += 1
        try:
            with Image.open(p) as im:
                im = im.convert("L")
                if im.size != (size, size):
                    im = im.resize((size, size), Image.NEAREST)
                on = np.asarray(im) >= 128
        except Exception as e:
            raise DatasetError(f"part mask {p} is unreadable ({e})") from None
        ids[on] = cid
    return ids, found


def load_image(path: Path, size: int) -> np.ndarray:
    try:
        with Image.open(path) as im:
            im = im.convert("RGB")  # grayscale and CMYK JPEGs exist in the wild
            if im.size != (size, size):
                im = im.resize((size, size), Image.LANCZOS)
            return np.asarray(im, np.uint8)
    except DatasetError:
        raise
    except Exception as e:
        raise DatasetError(f"image {path} is unreadable ({e})") from None


def list_images(root: Path) -> list[int]:
    folder = Path(root) / IMAGE_FOLDER
    ids = []
    for e in os.scandir(folder):
        stem, ext = os.path.splitext(e.name)
        if ext.lower() in (".jpg", ".jpeg", ".png") and stem.isdigit():
            ids.append(int(stem))
    return sorted(ids)


def _image_file(root: Path, index: int) -> Path:
    for ext in (".jpg", ".jpeg", ".png"):
        p = Path(root) / IMAGE_FOLDER / f"{index}{ext}"
        if p.is_file():
            return p
    raise DatasetError(f"image {index}.jpg not found in {Path(root) / IMAGE_FOLDER}")


def _convert_chunk(job):
    root, indices, size, out_for, ext = job
    k = len(CELEBAMASK_CLASSES)
    results = []
    for i in indices:
        try:
            rgb = load_image(_image_file(root, i), size)
            ids, found = merge_parts(root, i, size)
        except DatasetError as e:
            results.append((i, None, None, str(e)))
            continue
        dst = Path(out_for[i])
        write_image(dst / IMAGE_DIR / f"{i:05d}{ext}", rgb)
        write_mask(dst / MASK_DIR / f"{i:05d}.png", ids, k)
        results.append((i, class_counts(ids, k), found, None))
    return results


@dataclass
class ImportResult:
    outputs: dict[str, Path]
    infos: dict[str, DatasetInfo]
    warnings: list[str] = field(default_factory=list)


def import_celebamask_hq(root: str | os.PathLike, out: str | os.PathLike, size: int = 256,
                         test_out: str | os.PathLike | None = None, train_count: int = TRAIN_COUNT,
                         overwrite: bool = False, workers: int = 1, image_format: str = "png",
                         limit: int | None = None, progress: bool = False) -> ImportResult:
    """Convert the raw CelebAMask-HQ layout under `root` to `out` (train) and `test_out` (held out, default
    `OUT-test`). Both are written atomically; any unreadable file aborts the import and names the file."""
    root = Path(root)
    missing = [f"{root / sub}: missing" for sub in (IMAGE_FOLDER, ANNO_FOLDER) if not (root / sub).is_dir()]
    if missing:
        raise DatasetError("; ".join(missing) + f" (--root must hold {IMAGE_FOLDER}/ and {ANNO_FOLDER}/)")
    if not 2 <= size <= 8192:
        raise DatasetError(f"--size must be between 2 and 8192, got {size}")
    if image_format not in ("png", "jpg"):
        raise DatasetError(f"--image-format must be png or jpg, got {image_format!r}")
    indices = list_images(root)
    if limit is not None:
        indices = indices[:limit]
    if not indices:
        raise DatasetError(f"no images named {{i}}.jpg in {root / IMAGE_FOLDER}")
    test_out = Path(test_out) if test_out is not None else Path(str(out).rstrip("/\\") + "-test")
    splits = {"train": [i for i in indices if i < train_count], "test": [i for i in indices if i >= train_count]}
    targets = {"train": Path(out), "test": test_out}
    outputs: dict[str, AtomicOutput] = {}
    try:
        for split, idx in splits.items():
            if idx:
                outputs[split] = AtomicOutput(targets[split], overwrite=overwrite, inputs=[root])
                prepare_layout(outputs[split].path)
        out_for = {i: str(outputs[s].path) for s, idx in splits.items() for i in idx}
        ext = ".png" if image_format == "png" else ".jpg"
        chunks = [indices[s:s + 32] for s in range(0, len(indices), 32)]
        jobs = [(str(root), c, size, {i: out_for[i] for i in c}, ext) for c in chunks]
        k = len(CELEBAMASK_CLASSES)
        stats = {s: [np.zeros(k, np.int64), np.zeros(k, np.int64), 0] for s in splits}
        split_of = {i: s for s, idx in splits.items() for i in idx}
        errors: list[str] = []
        no_parts: list[int] = []
        for res in run_chunks(_convert_chunk, jobs, workers, len(indices), "CelebAMask-HQ", progress):
            for i, counts, found, err in res:
                if err:
                    errors.append(err)
                    continue
                st = stats[split_of[i]]
                st[0] += counts
                st[1] += counts > 0
                st[2] += 1
                if found == 0:
                    no_parts.append(i)
        if errors:
            shown = "; ".join(errors[:10]) + (f"; ... and {len(errors) - 10} more" if len(errors) > 10 else "")
            raise DatasetError(f"CelebAMask-HQ import failed, nothing written: {shown}")
        infos = {}
        for split, o in outputs.items():
            pix, imgs, n = stats[split]
            info = DatasetInfo(
                classes=list(CELEBAMASK_CLASSES), transparent_classes=list(CELEBAMASK_TRANSPARENT),
                resolution=(size, size), num_images=n, name=f"celebamask-hq-{split}",
                class_pixel_counts=pix.tolist(), class_image_counts=imgs.tolist(),
                provenance={"source": "CelebAMask-HQ", "root": str(root.resolve()), "split": split,
                            "train_count": train_count, "image_ids": [splits[split][0], splits[split][-1]],
                            "part_order": [p for p, _ in PART_ORDER], "image_resize": "LANCZOS",
                            "mask_resize": "NEAREST", "image_format": image_format},
            )
            write_info(o.path, info)
            infos[split] = info
        for o in outputs.values():
            o.commit()
    except BaseException:
        for o in outputs.values():
            o.abort()
        raise
    warnings = []
    if no_parts:
        warnings.append(f"{len(no_parts)} images have no part masks at all (first: {no_parts[0]}); "
                        "their masks are all background")
    if not splits["test"]:
        warnings.append(f"no images with id >= {train_count}: no held-out set written")
    return ImportResult({s: o.out for s, o in outputs.items()}, infos, warnings)


# ---------------------------------------------------------------------------------------------------- replicas

# one part file per class for `write_raw_layout` (class 0, the background, has none)
RAW_PART_OF_CLASS = {1: "skin", 2: "l_eye", 3: "l_brow", 4: "mouth", 5: "nose", 6: "l_ear", 7: "hair", 8: "neck",
                     9: "cloth", 10: "eye_g", 11: "hat", 12: "ear_r"}


def write_raw_layout(data_dir: str | os.PathLike, root: str | os.PathLike, start_index: int = 0,
                     jpeg_quality: int = 95) -> int:
    """Write a dataset folder with the 13 CelebAMask-HQ classes (e.g. procedural portraits) in the raw
    CelebAMask-HQ layout under `root`: a replica that exercises the real-data path offline (JPEG images, one
    0/255 part file per class, merging, resizing). Image n becomes CelebA-HQ-img/{start_index + n}.jpg. An id map
    holds one class per pixel, so the part files do not overlap and `merge_parts` gives the id map back.
    Returns the number of images written; refuses a `root` that already holds the layout."""
    from memorygan.data.dataset import SegmentationDataset

    ds = SegmentationDataset(data_dir)
    if list(ds.classes) != list(CELEBAMASK_CLASSES):
        raise DatasetError(f"dataset {ds.root} has classes {ds.classes}, not the 13 CelebAMask-HQ classes")
    root = Path(root)
    if (root / IMAGE_FOLDER).exists() or (root / ANNO_FOLDER).exists():
        raise DatasetError(f"{root} already holds a CelebAMask-HQ layout; choose another folder")
    (root / IMAGE_FOLDER).mkdir(parents=True)
    for n in range(len(ds.names)):
        item = ds.load(n)
        i = start_index + n
        rgb = ((item["image"].permute(1, 2, 0).numpy() + 1.0) * 127.5).round().clip(0, 255).astype(np.uint8)
        Image.fromarray(rgb).save(root / IMAGE_FOLDER / f"{i}.jpg", quality=jpeg_quality, subsampling=0)
        ids = item["ids"].numpy()
        folder = part_path(root, i, "x").parent
        folder.mkdir(parents=True, exist_ok=True)
        for cid, part in RAW_PART_OF_CLASS.items():
            on = ids == cid
            if on.any():
                Image.fromarray((on * 255).astype(np.uint8)).save(part_path(root, i, part))
    return len(ds.names)
