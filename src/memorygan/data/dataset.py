"""PyTorch access to a dataset folder (format in `memorygan.data.files`)."""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from memorygan.data.files import IMAGE_DIR, MASK_DIR, DatasetInfo, load_info_json, mask_array, pair_files
from memorygan.errors import DatasetError, MemoryGANWarning


class SegmentationDataset(torch.utils.data.Dataset):
    """Image + semantic mask pairs.

    Each item is a dict::

        image  (3, H, W) float32 in [-1, 1]
        mask   (K, H, W) float32 one-hot in {-1, 1}   (how real masks enter the discriminator, DESIGN.md 2.7)
        ids    (H, W) int64 class ids
        index  int, the dataset index of the item (before mirroring)
        flip   bool, whether the item was mirrored

    Horizontal flips are applied identically to image and mask. `mirror=True` doubles the dataset (index i >= N is
    item i - N flipped, as StyleGAN2-ADA's --mirror), which keeps the data order reproducible for resumed runs;
    `flip_prob > 0` flips at random with torch's RNG instead. `resolution` resizes square datasets on load (image
    LANCZOS, mask NEAREST) when the declared resolution differs, with a warning. Every file must have the size
    dataset.json declares: another size is an error naming the file, never a silent resize or stretch.

    Opening validates cheaply (dataset.json, folder layout, image/mask pairing, the size of the first pair) and
    raises DatasetError naming the problem; `memorygan.data.check_dataset` reads every file.
    """

    def __init__(self, root: str | os.PathLike, mirror: bool = False, flip_prob: float = 0.0,
                 resolution: int | None = None):
        self.root = Path(root)
        if not self.root.is_dir():
            raise DatasetError(f"dataset folder {self.root} does not exist")
        info, errors = load_info_json(self.root)
        if errors:
            raise DatasetError("; ".join(errors))
        self.info: DatasetInfo = info
        if not info.has_masks:
            raise DatasetError(
                f"dataset {self.root} has image-level labels ({info.num_categories} categories) but no masks, so it "
                f"trains `memorygan biggan` models, not the part-based ones (MemoryGAN and SemanticStyleGAN need "
                f"masks/)")
        for sub in (IMAGE_DIR, MASK_DIR):
            if not (self.root / sub).is_dir():
                raise DatasetError(f"dataset {self.root} has no {sub}/ folder")
        pairing = pair_files(self.root)
        problems = []
        if pairing.image_without_mask:
            problems.append(f"{len(pairing.image_without_mask)} images have no mask "
                            f"(first: {IMAGE_DIR}/{pairing.image_without_mask[0]})")
        if pairing.mask_without_image:
            problems.append(f"{len(pairing.mask_without_image)} masks have no image "
                            f"(first: {MASK_DIR}/{pairing.mask_without_image[0]}.png)")
        if not pairing.names:
            problems.append("it holds no image/mask pairs")
        if problems:
            raise DatasetError(f"dataset {self.root}: " + "; ".join(problems)
                               + f" (run `memorygan data check {self.root}` for a full report)")
        self.names = pairing.names
        self._pairing = pairing
        self.image_paths = [pairing.images[n] for n in self.names]
        self.mask_paths = [pairing.masks[n] for n in self.names]
        if len(self.names) != info.num_images:
            raise DatasetError(f"dataset {self.root}: dataset.json declares {info.num_images} images "
                               f"but the folder holds {len(self.names)} pairs")
        self.mirror = bool(mirror)
        if not 0.0 <= flip_prob <= 1.0:
            raise ValueError(f"flip_prob must be in [0, 1], got {flip_prob}")
        self.flip_prob = float(flip_prob)
        h, w = info.resolution
        self.resolution = load_resolution(self.root, info, resolution, "import", "images are resized on load "
                                          "(LANCZOS, masks NEAREST)")
        # cheap check on the first pair: catches a wrong resolution before training starts
        with Image.open(self.image_paths[0]) as im:
            isize = im.size
        with Image.open(self.mask_paths[0]) as m:
            msize = m.size
            mask_array(m, self.mask_paths[0].name)
        for what, size, path in (("image", isize, self.image_paths[0]), ("mask", msize, self.mask_paths[0])):
            if size != (w, h):
                raise DatasetError(f"{what} {path.name} is {size[0]}x{size[1]} but dataset.json declares "
                                   f"resolution {w}x{h}")

    @property
    def num_classes(self) -> int:
        return self.info.num_classes

    def fingerprint(self) -> dict:
        """`data.files.content_fingerprint` of this folder (identifies its content, not its path)."""
        from memorygan.data.files import content_fingerprint
        return content_fingerprint(self.root, self.info, self._pairing)

    @property
    def classes(self) -> list[str]:
        return self.info.classes

    def __len__(self) -> int:
        return len(self.names) * (2 if self.mirror else 1)

    def load(self, index: int, flip: bool = False) -> dict:
        """Item `index` (0 <= index < number of files), mirrored if `flip`."""
        ipath, mpath = self.image_paths[index], self.mask_paths[index]
        h, w = self.info.resolution
        res = self.resolution
        try:
            rgb = read_rgb(ipath, (w, h), res)
            with Image.open(mpath) as m:
                _check_size("mask", mpath, m.size, (w, h))
                ids = mask_array(m, mpath.name)
                if res:
                    ids = np.asarray(Image.fromarray(ids.astype(np.int32)).resize((res, res), Image.NEAREST)
                                     ).astype(np.int64)
        except OSError as e:
            raise DatasetError(f"cannot read {ipath.name} / {mpath.name} in {self.root}: {e}") from None
        if rgb.shape[:2] != ids.shape:
            raise DatasetError(f"image {ipath.name} is {rgb.shape[1]}x{rgb.shape[0]} but its mask is "
                               f"{ids.shape[1]}x{ids.shape[0]}")
        k = self.num_classes
        bad = ids.max(initial=0)
        if bad >= k:
            raise DatasetError(f"mask {mpath.name} has class id {int(bad)} but dataset.json declares {k} classes")
        return _to_item(rgb, ids, k, index, flip)

    def __getitem__(self, i: int) -> dict:
        n = len(self.names)
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for dataset of {len(self)} items")
        i = i % len(self)
        flip = i >= n
        index = i - n if flip else i
        if self.flip_prob > 0 and float(torch.rand(())) < self.flip_prob:
            flip = not flip
        return self.load(index, flip)


def load_resolution(root: Path, info: DatasetInfo, resolution: int | None, importer: str, what: str) -> int | None:
    """The size to resize to on load (None: the files' own), warning when it differs from the declared one;
    DatasetError for a non-square dataset, which would be stretched."""
    h, w = info.resolution
    if resolution is None or (h, w) == (resolution, resolution):
        return None
    if h != w:
        raise DatasetError(f"dataset {root} is {w}x{h} px (not square); it cannot be resized to the "
                           f"model's {resolution}x{resolution} without stretching: import it at "
                           f"{resolution} px (`memorygan data {importer} --size {resolution}`)")
    warnings.warn(f"dataset {root} is {w}x{h} px and the model {resolution}x{resolution}: {what}",
                  MemoryGANWarning, stacklevel=3)
    return resolution


def read_rgb(path: Path, want: tuple[int, int], resolution: int | None = None) -> np.ndarray:
    """(H, W, 3) uint8 RGB of a dataset image (a writable copy), checked against the declared (W, H), resized
    LANCZOS to `resolution` square if given. OSError for an unreadable file."""
    with Image.open(path) as im:
        _check_size("image", path, im.size, want)
        im = im.convert("RGB") if im.mode != "RGB" else im
        if resolution:
            im = im.resize((resolution, resolution), Image.LANCZOS)
        return np.array(im, dtype=np.uint8)  # writable copy for torch.from_numpy


def image_tensor(rgb: np.ndarray, flip: bool = False) -> torch.Tensor:
    """(H, W, 3) uint8 -> (3, H, W) float32 in [-1, 1] (x / 127.5 - 1), mirrored left-right if `flip`."""
    if flip:
        rgb = rgb[:, ::-1]
    return torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float().div_(127.5).sub_(1.0)


def _check_size(what: str, path: Path, size: tuple[int, int], want: tuple[int, int]) -> None:
    if size != want:
        raise DatasetError(f"{what} {path} is {size[0]}x{size[1]} but dataset.json declares {want[0]}x{want[1]}: "
                           f"files of another size are not resized (re-import the dataset, or run "
                           f"`memorygan data check {path.parent.parent}`)")


def _to_item(rgb: np.ndarray, ids: np.ndarray, k: int, index: int, flip: bool) -> dict:
    image = image_tensor(rgb, flip)
    if flip:
        ids = ids[:, ::-1]
    ids_t = torch.from_numpy(np.ascontiguousarray(ids).astype(np.int64))
    onehot = torch.nn.functional.one_hot(ids_t, k).permute(2, 0, 1).float().mul_(2.0).sub_(1.0)
    return {"image": image, "mask": onehot, "ids": ids_t, "index": index, "flip": bool(flip)}


class ProceduralDataset(torch.utils.data.Dataset):
    """A procedural dataset rendered on the fly (no files): item i equals item i of
    `memorygan data synth KIND --n N --size S --seed X [--classes K]` read through `SegmentationDataset`
    (`categories`: with its default 10 categories; their labels are `ProceduralLabelled`'s).

    Same item format and `mirror` semantics as `SegmentationDataset`; `classes`, `transparent_classes` and
    `num_classes` describe it like a dataset.json would."""

    def __init__(self, kind: str, n: int, size: int, seed: int = 0, num_classes: int | None = None,
                 mirror: bool = False):
        from memorygan.data.synth import make_spec
        self.spec = make_spec(kind, size, seed, num_classes)
        self.n, self.mirror = int(n), bool(mirror)
        self.classes, self.transparent_classes = self.spec.classes()

    @property
    def num_classes(self) -> int:
        return self.spec.num_classes

    def __len__(self) -> int:
        return self.n * (2 if self.mirror else 1)

    def __getitem__(self, i: int) -> dict:
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for dataset of {len(self)} items")
        i = i % len(self)
        flip = i >= self.n
        index = i - self.n if flip else i
        rgb, ids, _ = self.spec.generate(index)
        return _to_item(rgb, ids, self.num_classes, index, flip)
