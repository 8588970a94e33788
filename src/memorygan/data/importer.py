"""Import any folder of images + a folder of id masks (same basenames) into the dataset format.

Both are resized so the shorter side is `size` and centre-cropped to `size x size` (images LANCZOS, masks NEAREST).
An optional remap JSON maps source ids to target ids (`{"0": 0, "255": 0, "3": 1}`); with a remap, every id found
in a mask must be mapped. An optional classes JSON names the target classes (`["background", "cat", ...]` or
`{"classes": [...], "transparent_classes": [...]}`); without it the classes are `background, class_1, ...` up to
the largest id found. Every problem is collected and reported at once, and nothing is written unless all files
convert.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from PIL import Image

from memorygan.data.files import (
    IMAGE_DIR, MASK_DIR, MASK_MODES, AtomicOutput, DatasetInfo, prepare_layout, run_chunks, write_image, write_info,
    write_mask,
)
from memorygan.errors import DatasetError

SOURCE_IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")
MAX_REPORTED = 20


def load_classes(spec) -> tuple[list[str], list[str]]:
    """Classes from a JSON file path or an already loaded list/dict."""
    where = "classes"
    if isinstance(spec, (str, os.PathLike)):
        where = str(spec)
        try:
            spec = json.loads(Path(spec).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as e:
            raise DatasetError(f"cannot read classes file {where}: {e}") from None
    transparent: list[str] = []
    if isinstance(spec, dict):
        transparent = spec.get("transparent_classes", [])
        spec = spec.get("classes")
    if not isinstance(spec, list) or len(spec) < 1 or not all(isinstance(c, str) and c for c in spec):
        raise DatasetError(f"{where}: expected a list of class names in id order (or {{\"classes\": [...]}})")
    if len(set(spec)) != len(spec):
        raise DatasetError(f"{where}: duplicate class names")
    bad = [t for t in transparent if t not in spec]
    if bad:
        raise DatasetError(f"{where}: transparent classes {bad} are not in the class list")
    return list(spec), list(transparent)


def load_remap(spec) -> dict[int, int]:
    where = "remap"
    if isinstance(spec, (str, os.PathLike)):
        where = str(spec)
        try:
            spec = json.loads(Path(spec).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as e:
            raise DatasetError(f"cannot read remap file {where}: {e}") from None
    if not isinstance(spec, dict) or not spec:
        raise DatasetError(f"{where}: expected a JSON object mapping source ids to target ids, e.g. {{\"255\": 0}}")
    out = {}
    for k, v in spec.items():
        try:
            src = int(k)
        except ValueError:
            raise DatasetError(f"{where}: key {k!r} is not an integer class id") from None
        if not isinstance(v, int) or isinstance(v, bool) or v < 0 or src < 0:
            raise DatasetError(f"{where}: {k!r} -> {v!r}: ids must be non-negative integers")
        out[src] = v
    return out


def resize_crop(im: Image.Image, size: int, resample) -> Image.Image:
    """Scale so the shorter side is `size`, then centre-crop to size x size."""
    w, h = im.size
    scale = size / min(w, h)
    nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
    if (nw, nh) != (w, h):
        im = im.resize((nw, nh), resample)
    left, top = (nw - size) // 2, (nh - size) // 2
    return im.crop((left, top, left + size, top + size))


def _convert_one(name: str, ipath: Path, mpath: Path, size: int, lut: np.ndarray | None, k: int | None):
    """-> (rgb, ids, error message or None)."""
    try:
        with Image.open(ipath) as im:
            im.load()
            rgb_im = im.convert("RGB")
    except Exception as e:
        return None, None, f"image {ipath} is unreadable ({e})"
    try:
        with Image.open(mpath) as m:
            m.load()
            if m.mode not in MASK_MODES:
                return None, None, (f"mask {mpath} has mode {m.mode} ({len(m.getbands())} channels); "
                                    "expected a single-channel PNG of class ids")
            ids = np.asarray(m).astype(np.int64)
    except Exception as e:
        return None, None, f"mask {mpath} is unreadable ({e})"
    (iw, ih), (mh, mw) = rgb_im.size, ids.shape
    if abs(iw / ih - mw / mh) > 0.01:
        return None, None, f"image {ipath.name} is {iw}x{ih} but mask {mpath.name} is {mw}x{mh} (different shape)"
    if ids.min(initial=0) < 0:
        return None, None, f"mask {mpath} has negative ids"
    if lut is not None:
        top = int(ids.max(initial=0))
        if top >= len(lut):
            lut = np.concatenate([lut, np.full(top + 1 - len(lut), -1, np.int64)])
        mapped = lut[ids]
        if (mapped < 0).any():
            bad = sorted(int(b) for b in np.unique(ids[mapped < 0]))
            return None, None, f"mask {mpath} has class id {', '.join(map(str, bad[:8]))} not in the remap"
        ids = mapped
    top = int(ids.max(initial=0))
    if k is not None and top >= k:
        bad = sorted(int(b) for b in np.unique(ids[ids >= k]))
        return None, None, (f"mask {mpath} has class id {', '.join(map(str, bad[:8]))} but the classes file "
                            f"declares {k} classes")
    if top > 65535:
        return None, None, f"mask {mpath} has class id {top}; at most 65535 is supported"
    rgb = np.asarray(resize_crop(rgb_im, size, Image.LANCZOS), np.uint8)
    mimg = Image.fromarray(ids.astype(np.int32))  # mode "I": NEAREST resize keeps ids up to 65535 exact
    ids_out = np.asarray(resize_crop(mimg, size, Image.NEAREST)).astype(np.int64)
    return rgb, ids_out, None


def _convert_chunk(job):
    items, size, lut, k, out, ext = job
    results = []
    for name, ipath, mpath in items:
        rgb, ids, err = _convert_one(name, Path(ipath), Path(mpath), size, lut, k)
        if err:
            results.append((name, None, err))
            continue
        if k is not None:
            write_mask(Path(out) / MASK_DIR / f"{name}.png", ids, k)
        else:  # K (hence 8- or 16-bit) is known only once every mask is read: finalised by the caller
            np.save(Path(out) / MASK_DIR / f".{name}.npy", ids)
        write_image(Path(out) / IMAGE_DIR / f"{name}{ext}", rgb)
        results.append((name, np.bincount(ids.ravel()), None))
    return results


def import_dataset(images: str | os.PathLike, masks: str | os.PathLike, out: str | os.PathLike, size: int,
                   classes=None, remap=None, overwrite: bool = False, workers: int = 1, image_format: str = "png",
                   name: str = "", progress: bool = False) -> DatasetInfo:
    """Convert an image folder + id-mask folder to a dataset folder `out` (atomic; inputs are only read)."""
    images, masks = Path(images), Path(masks)
    for what, d in (("--images", images), ("--masks", masks)):
        if not d.is_dir():
            raise DatasetError(f"{what} {d}: not a folder")
    if not 2 <= size <= 8192:
        raise DatasetError(f"--size must be between 2 and 8192, got {size}")
    if image_format not in ("png", "jpg"):
        raise DatasetError(f"--image-format must be png or jpg, got {image_format!r}")
    class_list, transparent = load_classes(classes) if classes is not None else (None, [])
    k = len(class_list) if class_list else None
    lut = None
    if remap is not None:
        mapping = load_remap(remap)
        lut = np.full(max(mapping) + 1, -1, np.int64)
        for s, t in mapping.items():
            lut[s] = t
        if k is not None and max(mapping.values()) >= k:
            raise DatasetError(f"remap maps to id {max(mapping.values())} but the classes file declares {k} classes")

    imgs = {os.path.splitext(e.name)[0]: Path(e.path) for e in os.scandir(images)
            if os.path.splitext(e.name)[1].lower() in SOURCE_IMAGE_EXTS and not e.name.startswith(".")}
    msks = {os.path.splitext(e.name)[0]: Path(e.path) for e in os.scandir(masks)
            if os.path.splitext(e.name)[1].lower() == ".png" and not e.name.startswith(".")}
    problems = [f"image {imgs[n]} has no mask {n}.png in {masks}" for n in sorted(imgs.keys() - msks.keys())]
    problems += [f"mask {msks[n]} has no image in {images}" for n in sorted(msks.keys() - imgs.keys())]
    names = sorted(imgs.keys() & msks.keys())
    if not names and not problems:
        raise DatasetError(f"no images in {images} and no masks in {masks}")
    if problems:
        raise DatasetError(problem_summary("import failed, nothing written", problems))

    ext = ".png" if image_format == "png" else ".jpg"
    inputs = [("--images folder", images), ("--masks folder", masks)]
    inputs += [(f"--{arg} file", spec) for arg, spec in (("classes", classes), ("remap", remap))
               if isinstance(spec, (str, os.PathLike))]
    with AtomicOutput(out, overwrite=overwrite, inputs=inputs) as dst:
        prepare_layout(dst.path)
        items = [(n, str(imgs[n]), str(msks[n])) for n in names]
        jobs = [(items[s:s + 64], size, lut, k, str(dst.path), ext) for s in range(0, len(items), 64)]
        errors: list[str] = []
        counts: list[np.ndarray] = []
        for res in run_chunks(_convert_chunk, jobs, workers, len(items), "import", progress):
            for n, c, err in res:
                if err:
                    errors.append(err)
                else:
                    counts.append(c)
        if errors:
            raise DatasetError(problem_summary("import failed, nothing written", errors))
        if class_list is None:
            k = max(len(c) for c in counts)
            class_list = ["background"] + [f"class_{i}" for i in range(1, k)]
            for n in names:
                tmp = dst.path / MASK_DIR / f".{n}.npy"
                write_mask(dst.path / MASK_DIR / f"{n}.png", np.load(tmp), k)
                tmp.unlink()
        pix = np.zeros(k, np.int64)
        present = np.zeros(k, np.int64)
        for c in counts:
            pix[:len(c)] += c
            present[:len(c)] += c > 0
        info = DatasetInfo(classes=class_list, transparent_classes=transparent, resolution=(size, size),
                           num_images=len(names), name=name or Path(out).name, class_pixel_counts=pix.tolist(),
                           class_image_counts=present.tolist(),
                           provenance={"source": "import", "images": str(images.resolve()),
                                       "masks": str(masks.resolve()), "remap": {str(a): b for a, b in
                                                                                load_remap(remap).items()}
                                       if remap is not None else None,
                                       "resize": "shorter side + centre crop", "image_resize": "LANCZOS",
                                       "mask_resize": "NEAREST"})
        write_info(dst.path, info)
        dst.commit()
    return info


def problem_summary(head: str, problems: list[str]) -> str:
    """One error message: the head, the number of problems and the first MAX_REPORTED of them, one a line."""
    shown = problems[:MAX_REPORTED]
    more = f"\n  ... and {len(problems) - MAX_REPORTED} more" if len(problems) > MAX_REPORTED else ""
    return f"{head} ({len(problems)} problem(s)):\n  " + "\n  ".join(shown) + more
