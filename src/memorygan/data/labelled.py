"""PyTorch access to image-level labels (dataset.json 'categories' and 'labels'), for class-conditional models.

`LabelledDataset` reads any dataset folder with categories (an image-level-only import, or a `categories`
synthesis that also has masks, which are never read); `ProceduralLabelled` renders the `categories` kind on the
fly with the same items.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

from memorygan.data.dataset import image_tensor, load_resolution, read_rgb
from memorygan.data.files import IMAGE_DIR, DatasetInfo, labelled_fingerprint, list_images, load_info_json
from memorygan.errors import DatasetError


def _item(rgb, label: int, index: int, flip: bool) -> dict:
    return {"image": image_tensor(rgb, flip), "label": torch.tensor(label, dtype=torch.int64), "index": index,
            "flip": bool(flip)}


def _split_index(i: int, n: int, mirror: bool) -> tuple[int, bool]:
    """Dataset index -> (file index, flip): with `mirror`, index i >= n is item i - n flipped."""
    total = n * (2 if mirror else 1)
    if not -total <= i < total:
        raise IndexError(f"index {i} out of range for dataset of {total} items")
    i = i % total
    return (i - n, True) if i >= n else (i, False)


class LabelledDataset(torch.utils.data.Dataset):
    """Images with their image-level class (category).

    Each item is a dict::

        image  (3, H, W) float32 in [-1, 1]
        label  () int64 tensor, the category index into `categories`
        index  int, the dataset index of the item (before mirroring)
        flip   bool, whether the item was mirrored

    `mirror=True` doubles the dataset (index i >= N is item i - N flipped), as `SegmentationDataset`;
    `resolution` resizes a square dataset on load (LANCZOS) with a warning. Opening validates cheaply
    (dataset.json, images/, every image has a label and every label an image, the count, the size of the
    first image) and raises DatasetError naming the problem; `memorygan data check` reads every file.
    """

    def __init__(self, root: str | os.PathLike, mirror: bool = False, resolution: int | None = None):
        self.root = Path(root)
        if not self.root.is_dir():
            raise DatasetError(f"dataset folder {self.root} does not exist")
        info, errors = load_info_json(self.root)
        if errors:
            raise DatasetError("; ".join(errors))
        self.info: DatasetInfo = info
        if info.categories is None:
            raise DatasetError(f"dataset {self.root} has no image-level labels (dataset.json 'categories'); import "
                               f"it with `memorygan data import-classes` or synthesise `memorygan data synth "
                               f"categories`")
        if info.labels is None:
            raise DatasetError(f"dataset {self.root}: dataset.json has 'categories' but no 'labels' (image basename "
                               f"-> category index)")
        if not (self.root / IMAGE_DIR).is_dir():
            raise DatasetError(f"dataset {self.root} has no {IMAGE_DIR}/ folder")
        listing = list_images(self.root)
        unlabelled = [n for n in listing.names if n not in info.labels]
        missing = sorted(info.labels.keys() - listing.images.keys())
        problems = []
        if unlabelled:
            problems.append(f"{len(unlabelled)} images have no label (first: {IMAGE_DIR}/{unlabelled[0]})")
        if missing:
            problems.append(f"{len(missing)} labels name no image (first: {missing[0]})")
        if listing.duplicate_images:
            problems.append(f"basename {listing.duplicate_images[0]} has more than one image file")
        if not listing.names:
            problems.append("it holds no images")
        if problems:
            raise DatasetError(f"dataset {self.root}: " + "; ".join(problems)
                               + f" (run `memorygan data check {self.root}` for a full report)")
        if len(listing.names) != info.num_images:
            raise DatasetError(f"dataset {self.root}: dataset.json declares {info.num_images} images "
                               f"but the folder holds {len(listing.names)}")
        self._listing = listing
        self.names = listing.names
        self.image_paths = [listing.images[n] for n in self.names]
        self.labels = torch.tensor([info.labels[n] for n in self.names], dtype=torch.int64)   # (N,)
        self.mirror = bool(mirror)
        self.resolution = load_resolution(self.root, info, resolution, "import-classes",
                                          "images are resized on load (LANCZOS)")
        h, w = info.resolution
        try:
            read_rgb(self.image_paths[0], (w, h))   # catches a wrong resolution before training starts
        except OSError as e:
            raise DatasetError(f"cannot read {self.image_paths[0].name} in {self.root}: {e}") from None

    @property
    def categories(self) -> list[str]:
        return list(self.info.categories)

    @property
    def num_categories(self) -> int:
        return self.info.num_categories

    def fingerprint(self) -> dict:
        """`data.files.labelled_fingerprint` of this folder (images, labels, categories; not its path)."""
        return labelled_fingerprint(self.root, self.info, self._listing)

    def __len__(self) -> int:
        return len(self.names) * (2 if self.mirror else 1)

    def load(self, index: int, flip: bool = False) -> dict:
        """Item `index` (0 <= index < number of files), mirrored if `flip`."""
        path = self.image_paths[index]
        h, w = self.info.resolution
        try:
            rgb = read_rgb(path, (w, h), self.resolution)
        except OSError as e:
            raise DatasetError(f"cannot read {path.name} in {self.root}: {e}") from None
        return _item(rgb, int(self.labels[index]), index, flip)

    def __getitem__(self, i: int) -> dict:
        index, flip = _split_index(i, len(self.names), self.mirror)
        return self.load(index, flip)


class ProceduralLabelled(torch.utils.data.Dataset):
    """The `categories` procedural dataset rendered on the fly (no files): item i equals item i of
    `memorygan data synth categories --n N --size S --seed X --categories C` read through `LabelledDataset`,
    with the same item format, `mirror` semantics, `categories`, `num_categories` and `labels`."""

    def __init__(self, n: int, size: int, seed: int = 0, num_categories: int | None = None, mirror: bool = False):
        from memorygan.data.synth import make_spec
        if n < 1:
            raise DatasetError(f"--n must be at least 1, got {n}")
        self.spec = make_spec("categories", size, seed, num_categories=num_categories)
        self.n, self.mirror = int(n), bool(mirror)
        self.categories = self.spec.category_names()
        c = len(self.categories)
        self.labels = torch.arange(self.n, dtype=torch.int64) % c   # item i is category i % C

    @property
    def num_categories(self) -> int:
        return len(self.categories)

    def __len__(self) -> int:
        return self.n * (2 if self.mirror else 1)

    def __getitem__(self, i: int) -> dict:
        index, flip = _split_index(i, self.n, self.mirror)
        rgb, _, rec = self.spec.generate(index)
        return _item(rgb, rec["category_id"], index, flip)
