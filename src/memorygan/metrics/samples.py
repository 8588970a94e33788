"""Where the images a metric measures come from: samples of a generator, or a folder of image files.

Both sources yield batches in one convention, so every consumer (Inception features, the domain probe, ...) sees
the same values whichever the source: float32 (B, 3, H, W) in [-1, 1] **on 8-bit levels** (u / 127.5 - 1 for
u in 0..255). Generated images are quantised as StyleGAN2-ADA's metrics do (`quantize_image`), which is exactly
what saving them to PNG and reading them back as the dataset does would give; a folder of those PNGs therefore
measures the same as the generator that wrote them.
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from memorygan.errors import ConfigError, DatasetError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def quantize_image(image: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) about [-1, 1] -> the same values rounded to 8-bit levels and clamped, as a PNG would keep them."""
    return (image * 127.5 + 128).clamp(0, 255).to(torch.uint8).float().div_(127.5).sub_(1.0)


def uint8_to_float(pixels: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) uint8 -> float32 in [-1, 1], as `SegmentationDataset` converts its images."""
    return pixels.float().div_(127.5).sub_(1.0)


def progress_bar(total: int, enabled: bool, desc: str, unit: str = "img"):
    """A tqdm bar (None when disabled), written to stderr so that `--json` output stays clean."""
    if not enabled:
        return None
    from tqdm import tqdm
    return tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True, leave=False)


@contextlib.contextmanager
def eval_mode(G):
    """G.eval() inside the block; G's train/eval mode is restored afterwards (also on errors)."""
    was_training = bool(getattr(G, "training", False))
    if hasattr(G, "eval"):
        G.eval()
    try:
        yield G
    finally:
        if was_training and hasattr(G, "train"):
            G.train(True)


def check_run_args(num_samples: int, batch_size: int) -> None:
    if int(num_samples) < 1:
        raise ConfigError(f"num_samples must be at least 1, got {num_samples}")
    if int(batch_size) < 1:
        raise ConfigError(f"batch_size must be at least 1, got {batch_size}")


def generator_device(G) -> torch.device:
    try:
        return next(G.parameters()).device
    except (AttributeError, StopIteration):
        return torch.device("cpu")


def generated_batches(G, num_samples: int, seed: int = 0, truncation: float = 1.0, batch_size: int = 32,
                      progress: bool = False, desc: str = "samples") -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield (image, seg) batches of `num_samples` samples of G: image quantised (see the module docstring), seg
    the generator's (B, K, H, W) segmentation logits, both on G's device.

    z comes from one torch.Generator seeded with `seed`, drawn batch by batch (`G.sample_z(m, generator=...)`);
    render noise is constant. So the samples depend on (seed, batch_size) only, and every metric computed with
    the same pair sees the same images. G is in eval mode while the batches are made; its mode is restored."""
    if int(num_samples) < 1:
        raise ConfigError(f"num_samples must be at least 1, got {num_samples}")
    if int(batch_size) < 1:
        raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
    gen = torch.Generator().manual_seed(int(seed))
    bar = progress_bar(int(num_samples), progress, desc)
    try:
        with eval_mode(G):
            for s in range(0, int(num_samples), int(batch_size)):
                m = min(int(batch_size), int(num_samples) - s)
                with torch.no_grad():  # not held across the yield: the caller's grad mode is its own
                    out = G(G.sample_z(m, generator=gen), truncation=truncation, noise_mode="const")
                    image = quantize_image(out.image)
                yield image, out.seg
                if bar is not None:
                    bar.update(m)
    finally:
        if bar is not None:
            bar.close()


class ImageFolder:
    """The image files (PNG / JPEG, by suffix, case-insensitive) directly inside a folder, in sorted name order.

    Opening reads every file's header, so an unreadable file is reported (by name) before any work starts;
    `sizes` are (width, height). Images of any size and count (at least 2) are accepted."""

    def __init__(self, directory: str | os.PathLike, limit: int | None = None):
        from PIL import Image, UnidentifiedImageError

        self.root = Path(directory)
        if not self.root.is_dir():
            raise DatasetError(f"image folder {self.root} does not exist")
        paths = sorted(p for p in self.root.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if len(paths) < 2:
            raise DatasetError(f"image folder {self.root} holds {len(paths)} PNG/JPEG image(s); metrics need at "
                               "least 2")
        if limit is not None:
            if limit > len(paths):
                raise DatasetError(f"{limit} images were asked for (--n) but image folder {self.root} holds "
                                   f"{len(paths)}")
            paths = paths[:limit]
        self.paths = paths
        self.sizes: list[tuple[int, int]] = []
        for p in paths:
            try:
                with Image.open(p) as im:
                    self.sizes.append(im.size)
            except (OSError, UnidentifiedImageError) as e:
                raise DatasetError(f"cannot read image {p}: {e}") from None

    def __len__(self) -> int:
        return len(self.paths)

    def load(self, index: int) -> torch.Tensor:
        """(3, H, W) uint8 RGB pixels of image `index`."""
        from PIL import Image

        p = self.paths[index]
        try:
            with Image.open(p) as im:
                rgb = np.array(im.convert("RGB"), dtype=np.uint8)
        except OSError as e:
            raise DatasetError(f"cannot read image {p}: {e}") from None
        return torch.from_numpy(rgb).permute(2, 0, 1)

    def batches(self, batch_size: int = 32, progress: bool = False,
                desc: str = "images") -> Iterator[tuple[torch.Tensor, None]]:
        """Yield (image, None) batches in the module's convention; a batch ends early where the image size
        changes, so batches stack."""
        bar = progress_bar(len(self), progress, desc)
        try:
            batch: list[torch.Tensor] = []
            for i in range(len(self)):
                if batch and (len(batch) == batch_size or self.sizes[i] != self.sizes[i - 1]):
                    yield uint8_to_float(torch.stack(batch)), None
                    if bar is not None:
                        bar.update(len(batch))
                    batch = []
                batch.append(self.load(i))
            if batch:
                yield uint8_to_float(torch.stack(batch)), None
                if bar is not None:
                    bar.update(len(batch))
        finally:
            if bar is not None:
                bar.close()


def dataset_batches(ds, num: int, batch_size: int = 32, progress: bool = False,
                    desc: str = "real images") -> Iterator[torch.Tensor]:
    """The first `num` images of a SegmentationDataset (no mirroring) as float batches in [-1, 1]."""
    bar = progress_bar(num, progress, desc)
    try:
        for s in range(0, num, batch_size):
            idx = range(s, min(s + batch_size, num))
            yield torch.stack([ds.load(i)["image"] for i in idx])
            if bar is not None:
                bar.update(len(idx))
    finally:
        if bar is not None:
            bar.close()
