"""Import images sorted into one folder per class (`ROOT/CLASS/*.png`) as an image-level-only dataset.

Every subfolder of ROOT is a category (sorted by name; names starting with "." are skipped). Its images are found
recursively (`ROOT/CLASS/any/depth/x.jpg` is class CLASS), with the extensions of `importer.SOURCE_IMAGE_EXTS`;
other files inside class folders are ignored. Image files directly in ROOT are an error (they have no class);
other files there (a README, a licence) are ignored. Each image gets its EXIF orientation applied, is converted
to RGB (transparent pixels composited over white, so transparent backgrounds of icons and sprites come out white
rather than whatever colour the hidden pixels hold; 16-bit greyscale scaled to 8 bits, not clipped), scaled so
its shorter side is `size` (LANCZOS) and centre-cropped, and written as `images/NNNNNN.png` (or .jpg) in the
order (category, path). The output has no
masks/: dataset.json has `"classes": []`, the `categories` and each image's label, and attributes.jsonl records
each image's source path, size and category.

Every problem (unreadable or truncated files, images too large to decode safely, empty class folders, loose
images, no class folders) is collected and reported at once in one DatasetError, and nothing is written unless
every file converts (AtomicOutput).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from memorygan.data.files import (
    IMAGE_DIR, AtomicOutput, DatasetInfo, index_name, run_chunks, write_attributes, write_image, write_info,
)
from memorygan.data.importer import SOURCE_IMAGE_EXTS, problem_summary, resize_crop
from memorygan.errors import DatasetError


@dataclass
class ClassFolders:
    """What `scan_class_folders` found: categories (sorted), (category index, source path) per image in output
    order, and the problems of the layout."""

    categories: list[str]
    items: list[tuple[int, Path]]
    problems: list[str]


def _is_image(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in SOURCE_IMAGE_EXTS


def scan_class_folders(root: Path) -> ClassFolders:
    """List ROOT/CLASS/**/image files; never raises for layout problems, returns them."""
    problems: list[str] = []
    folders: list[str] = []
    loose: list[str] = []
    with os.scandir(root) as it:
        for e in it:
            if e.name.startswith("."):
                continue
            if e.is_dir():
                folders.append(e.name)
            elif _is_image(e.name):
                loose.append(e.name)
    problems += [f"image {root / n} lies directly in --root; every image must be inside a class folder "
                 f"(ROOT/CLASS/{n})" for n in sorted(loose)]
    folders.sort()
    items: list[tuple[int, Path]] = []
    for k, name in enumerate(folders):
        found = []
        for dirpath, dirnames, filenames in os.walk(root / name):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            found += [Path(dirpath) / f for f in filenames if not f.startswith(".") and _is_image(f)]
        if not found:
            problems.append(f"class folder {root / name} holds no images "
                            f"({', '.join(e.lstrip('.') for e in SOURCE_IMAGE_EXTS)})")
        items += [(k, p) for p in sorted(found, key=lambda p: p.relative_to(root).as_posix())]
    return ClassFolders(folders, items, problems)


def load_source_image(path: Path) -> Image.Image:
    """Decode an image file fully: EXIF orientation applied, RGB, transparency composited over white, 16-bit
    greyscale scaled to 8 bits."""
    with Image.open(path) as im:
        im.load()
        im = ImageOps.exif_transpose(im)
        if im.mode == "P" and "transparency" in im.info:
            im = im.convert("RGBA")
        if im.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
            rgba = im.convert("RGBA")
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            return Image.alpha_composite(white, rgba).convert("RGB")
        if im.mode.startswith("I;16") or (im.mode == "I" and np.asarray(im).max(initial=0) > 255):
            # 16-bit greyscale: PIL's convert would clip everything above 255 to white; scale 0..65535 to 0..255
            grey = np.clip(np.rint(np.asarray(im, np.float64) / 257.0), 0, 255).astype(np.uint8)
            return Image.fromarray(grey, "L").convert("RGB")
        return im.convert("RGB") if im.mode != "RGB" else im.copy()


def _convert_chunk(job):
    """Worker: convert and write a chunk of (name, source path); -> [(name, source size or None, error or None)]."""
    items, size, out, ext = job
    results = []
    for name, src in items:
        src = Path(src)
        try:
            im = load_source_image(src)
        except Image.DecompressionBombError as e:
            results.append((name, None, f"image {src} is too large to decode safely ({e})"))
            continue
        except Exception as e:  # PIL raises many types for corrupt data
            results.append((name, None, f"image {src} is unreadable or truncated ({e})"))
            continue
        rgb = np.asarray(resize_crop(im, size, Image.LANCZOS), np.uint8)
        write_image(Path(out) / IMAGE_DIR / f"{name}{ext}", rgb)
        results.append((name, list(im.size), None))
    return results


def import_class_folders(root: str | os.PathLike, out: str | os.PathLike, size: int, image_format: str = "png",
                         name: str = "", overwrite: bool = False, workers: int = 1, progress: bool = False,
                         chunk: int = 64) -> DatasetInfo:
    """Convert ROOT/CLASS/** images to an image-level-only dataset folder `out` (atomic; ROOT is only read)."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"--root {root}: not a folder")
    if not 2 <= size <= 8192:
        raise DatasetError(f"--size must be between 2 and 8192, got {size}")
    if image_format not in ("png", "jpg"):
        raise DatasetError(f"--image-format must be png or jpg, got {image_format!r}")
    if workers < 1:
        raise DatasetError(f"--workers must be at least 1, got {workers}")
    found = scan_class_folders(root)
    if not found.categories:
        raise DatasetError(problem_summary("import failed, nothing written", found.problems + [
            f"--root {root} has no class folders: expected one subfolder per class (ROOT/CLASS/image.png)"]))
    n = len(found.items)
    names = [index_name(i, n) for i in range(n)]
    ext = ".png" if image_format == "png" else ".jpg"
    with AtomicOutput(out, overwrite=overwrite, inputs=[("--root folder", root)]) as dst:
        (dst.path / IMAGE_DIR).mkdir()
        pairs = [(nm, str(p)) for nm, (_, p) in zip(names, found.items)]
        jobs = [(pairs[s:s + chunk], size, str(dst.path), ext) for s in range(0, n, chunk)]
        errors = list(found.problems)
        sizes: dict[str, list[int]] = {}
        for res in run_chunks(_convert_chunk, jobs, workers, n, "import-classes", progress):
            for nm, src_size, err in res:
                if err:
                    errors.append(err)
                else:
                    sizes[nm] = src_size
        if errors:
            raise DatasetError(problem_summary("import failed, nothing written", errors))
        labels = {nm: k for nm, (k, _) in zip(names, found.items)}
        write_attributes(dst.path, ({"basename": nm, "category": found.categories[k], "category_id": k,
                                     "source": p.relative_to(root).as_posix(), "source_size": sizes[nm]}
                                    for nm, (k, p) in zip(names, found.items)))
        info = DatasetInfo(classes=[], resolution=(size, size), num_images=n, name=name or Path(out).name,
                           categories=found.categories, labels=labels,
                           provenance={"source": "import-classes", "root": str(root.resolve()),
                                       "resize": "shorter side + centre crop", "image_resize": "LANCZOS",
                                       "orientation": "EXIF applied", "transparency": "composited over white"})
        write_info(dst.path, info)
        dst.commit()
    return info
