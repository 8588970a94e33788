"""`data stats`: class frequencies and, for procedural datasets, the measured dependencies between attributes."""
from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import numpy as np

from memorygan.data.files import (ATTRIBUTES_FILE, MASK_DIR, DatasetInfo, attribute_lookup, read_attributes,
                                  read_info, read_mask)
from memorygan.errors import DatasetError


def pearson(x, y) -> float:
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    if len(x) < 2 or x.std() == 0 or y.std() == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


# (name, x path, y path): the dependencies built into `portraits` (see its module docstring)
PORTRAIT_CORRELATIONS = [
    ("pigment~eye_lightness", "identity.pigment", "eyes.lightness"),
    ("pigment~eye_hue", "identity.pigment", "eyes.hue"),
    ("skin_lightness~eye_lightness", "skin.lightness", "eyes.lightness"),
    ("hair_lightness~eye_lightness", "hair.lightness", "eyes.lightness"),
    ("skin_lightness~eye_hue", "skin.lightness", "eyes.hue"),
    ("hair_lightness~eye_hue", "hair.lightness", "eyes.hue"),
    ("pigment~skin_lightness", "identity.pigment", "skin.lightness"),
    ("pigment~hair_lightness", "identity.pigment", "hair.lightness"),
    ("smile~mouth_width", "mouth.smile", "mouth.width"),
    ("smile~mouth_open", "mouth.smile", "mouth.open"),
    ("smile~eye_height", "mouth.smile", "eyes.height"),
]


def portrait_attribute_stats(records: list[dict]) -> dict:
    """Pearson correlations of the built-in dependencies, optional-part rates and category distributions."""
    out: dict = {"num_records": len(records), "correlations": {}}
    for name, xp, yp in PORTRAIT_CORRELATIONS:
        pairs = [(attribute_lookup(r, xp), attribute_lookup(r, yp)) for r in records]
        pairs = [(x, y) for x, y in pairs if isinstance(x, (int, float)) and isinstance(y, (int, float))]
        if pairs:
            xs, ys = zip(*pairs)
            out["correlations"][name] = round(pearson(xs, ys), 4)
    out["rates"] = {part: round(float(np.mean([bool(r.get(part)) for r in records])), 4)
                    for part in ("glasses", "hat", "earrings", "necklace")}
    # eye colour by pigment tercile: the dependency in a form that reads without statistics
    pig = np.array([attribute_lookup(r, "identity.pigment") for r in records], np.float64)
    if len(pig) >= 3:
        cuts = np.quantile(pig, [1 / 3, 2 / 3])
        groups = {"light": pig <= cuts[0], "medium": (pig > cuts[0]) & (pig <= cuts[1]), "dark": pig > cuts[1]}
        eye = [attribute_lookup(r, "eyes.color") for r in records]
        out["eye_color_by_pigment_tercile"] = {}
        for g, m in groups.items():
            c = Counter(e for e, keep in zip(eye, m) if keep)
            tot = sum(c.values())
            out["eye_color_by_pigment_tercile"][g] = {k: round(v / tot, 4) for k, v in sorted(c.items())}
    for key in ("hair.style", "hair.color", "eyes.color"):
        c = Counter(attribute_lookup(r, key) for r in records)
        out[key.replace(".", "_") + "_distribution"] = {k: round(v / len(records), 4) for k, v in sorted(c.items())}
    return out


def scene_attribute_stats(records: list[dict], num_classes: int) -> dict:
    nobj = [len(r.get("objects", [])) for r in records]
    used = Counter(o["class"] for r in records for o in r.get("objects", []))
    return {"num_records": len(records), "objects_per_image": round(float(np.mean(nobj)), 4) if nobj else 0.0,
            "object_classes_used": len(used), "object_classes_declared": num_classes - 1}


def count_classes(root: Path, info: DatasetInfo, progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Scan all masks: (K,) pixel counts and (K,) number of images containing each class."""
    k = info.num_classes
    pix = np.zeros(k, np.int64)
    imgs = np.zeros(k, np.int64)
    paths = sorted((root / MASK_DIR).glob("*.png"))
    if progress:
        from tqdm import tqdm
        paths = tqdm(paths, desc="counting classes", unit="mask")
    for p in paths:
        ids = read_mask(p)
        if ids.size and ids.max() >= k:
            raise DatasetError(f"mask {p.name} has class id {int(ids.max())} but dataset.json declares {k} classes")
        c = np.bincount(ids.ravel(), minlength=k)
        pix += c
        imgs += c > 0
    return pix, imgs


def class_stats(info: DatasetInfo, pix, imgs, num_images: int) -> dict:
    total = int(np.sum(pix))
    return {
        "class_frequencies": {c: round(int(p) / total, 6) if total else 0.0 for c, p in zip(info.classes, pix)},
        "class_image_fraction": {c: round(int(m) / num_images, 4) if num_images else 0.0
                                 for c, m in zip(info.classes, imgs)},
    }


def dataset_stats(path: str | os.PathLike, scan: bool = True, progress: bool = False) -> dict:
    """Per-class frequencies (scanned from the masks, or from dataset.json with `scan=False`) and attribute stats."""
    root = Path(path)
    info = read_info(root)
    if not info.has_masks:  # image-level only: no class frequencies
        pix, imgs, n, source = [], [], info.num_images, "dataset.json"
    elif scan or info.class_pixel_counts is None or info.class_image_counts is None:
        pix, imgs = count_classes(root, info, progress)
        n = len(list((root / MASK_DIR).glob("*.png")))
        source = "masks"
    else:
        pix, imgs, n = info.class_pixel_counts, info.class_image_counts, info.num_images
        source = "dataset.json"
    out = {"path": str(root), "name": info.name, "num_images": n, "num_classes": info.num_classes,
           "resolution": list(info.resolution), "counts_from": source}
    out.update(class_stats(info, pix, imgs, n))
    if info.categories is not None:
        counts = Counter((info.labels or {}).values())
        out["category_counts"] = {c: counts.get(k, 0) for k, c in enumerate(info.categories)}
    if (root / ATTRIBUTES_FILE).is_file():
        out["attributes"] = attribute_stats(read_attributes(root), info.num_classes)
    return out


def category_attribute_stats(records: list[dict]) -> dict:
    """Images per category and, for procedural categories, objects per image and mean luma per category."""
    cats = Counter(r.get("category") for r in records)
    out: dict = {"num_records": len(records), "category_distribution": dict(sorted(cats.items()))}
    if "objects" in records[0]:
        out.update(scene_attribute_stats(records, 0))
        del out["object_classes_declared"]
    if "mean_luma" in records[0]:
        out["mean_luma_by_category"] = {
            c: round(float(np.mean([r["mean_luma"] for r in records if r.get("category") == c])), 4)
            for c in sorted(cats)}
    return out


def attribute_stats(records: list[dict], num_classes: int) -> dict:
    if records and attribute_lookup(records[0], "identity.pigment") is not None:
        return portrait_attribute_stats(records)
    if records and "category" in records[0]:
        return category_attribute_stats(records)
    if records and "objects" in records[0]:
        return scene_attribute_stats(records, num_classes)
    return {"num_records": len(records)}
