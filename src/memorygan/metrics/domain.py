"""Domain metrics of a generator against a real dataset, through the dataset's probe (DESIGN.md section 5):

- domain FID / KID: Frechet distance and kernel distance between the probe's pooled encoder features of real
  images and of generated images (the probe plays the part of a domain-trained Inception network);
- mask consistency: mIoU between the generator's own segmentation and the probe's segmentation of the generated
  image (argmax of each);
- part presence: the fraction of images in which the probe finds each part (at least `PRESENCE_FRACTION` of the
  pixels, 4 pixels at 64 px), for generated images and, with the same probe, for the real ones; for portraits also
  how often eyes and mouth, and all four small face parts (eyes, eyebrows, mouth, nose), are found together.

Generated images are quantised to 8 bits first (as StyleGAN2-ADA's metrics do), so they are measured exactly as
they would be if saved to PNG and read back like the real ones.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
from pathlib import Path

import torch

from memorygan.errors import ConfigError, DatasetError
from memorygan.metrics.probe import load_items, check_probe_dataset, dataset_fingerprint, load_probe
from memorygan.metrics.samples import generated_batches, generator_device, quantize_image  # noqa: F401 (re-export)
from memorygan.metrics.stats import FeatureStats, IoUCounts, fid_from_stats, kernel_inception_distance

CACHE_VERSION = 1
MAX_KEPT_REAL = 50_000          # real feature rows kept for KID (KID subsets use at most 1000 of them)
PRESENCE_FRACTION = 1 / 1024    # a part is present when the probe gives it at least this share of the pixels
JOINT_PARTS = {"eyes_mouth": ("eyes", "mouth"), "face_parts": ("eyes", "eyebrows", "mouth", "nose")}


def part_presence(labels: torch.Tensor, num_classes: int, fraction: float = PRESENCE_FRACTION) -> torch.Tensor:
    """labels (B, H, W) class ids -> (B, K) bool: class k covers at least `fraction` of the pixels (at least 1)."""
    b, h, w = labels.shape
    counts = torch.nn.functional.one_hot(labels.reshape(b, -1).long(), num_classes).sum(1)       # (B, K)
    return counts >= max(1, round(fraction * h * w))


def presence_summary(flags: torch.Tensor, classes: list[str], prefix: str = "presence") -> dict:
    """(N, K) presence flags -> {prefix_CLASS: rate} and, where the classes exist, the joint rates of
    `JOINT_PARTS` ({prefix_eyes_mouth: rate, prefix_face_parts: rate})."""
    flags = flags.bool()
    out = {f"{prefix}_{c}": float(v) for c, v in zip(classes, flags.float().mean(0).tolist())}
    for name, parts in JOINT_PARTS.items():
        if all(p in classes for p in parts):
            idx = [classes.index(p) for p in parts]
            out[f"{prefix}_{name}"] = float(flags[:, idx].all(1).float().mean())
    return out


class DomainMetrics:
    """Real-image statistics of a dataset under its probe, and `evaluate(G)` against them.

    `probe` is a probe folder or a dataset folder holding one in probe/. The real statistics use the first
    `num_real` images (default all) and are cached in the probe folder as `real_stats-HASH.safetensors`, keyed by
    the dataset fingerprint, the probe's weights checksum and num_real: a second construction with the same
    inputs reads the cache, and any change of the dataset or the probe computes them afresh."""

    def __init__(self, probe: str | os.PathLike, data_dir: str | os.PathLike, num_real: int | None = None,
                 cache: bool = True, batch_size: int = 64, device: str | torch.device = "cpu"):
        from memorygan.data.dataset import SegmentationDataset

        self.probe, self.probe_meta = load_probe(probe, device)
        self.dataset = SegmentationDataset(data_dir)
        ds = self.dataset
        check_probe_dataset(self.probe, ds)
        if list(ds.info.resolution) != list(self.probe_meta["resolution"]):
            h, w = ds.info.resolution
            ph, pw = self.probe_meta["resolution"]
            raise DatasetError(f"dataset {ds.root} is {w}x{h} but the probe in {self.probe_meta['path']} was "
                               f"trained at {pw}x{ph}")
        if self.probe_meta["classes"] != ds.classes:
            warnings.warn(f"the probe in {self.probe_meta['path']} was trained on classes {self.probe_meta['classes']}"
                          f" but dataset {ds.root} declares {ds.classes}", stacklevel=2)
        n = len(ds.names)
        if num_real is None:
            num_real = n
        if not 2 <= num_real <= n:
            raise DatasetError(f"num_real must be between 2 and the {n} images of dataset {ds.root}, got {num_real}")
        self.num_real = int(num_real)
        self.classes = list(ds.classes)
        self.batch_size = int(batch_size)
        fp = dataset_fingerprint(ds.root)
        self.key = json.dumps({"version": CACHE_VERSION, "dataset": fp["hash"], "num_images": fp["num_images"],
                               "probe": self.probe_meta["checksum"], "num_real": self.num_real}, sort_keys=True)
        digest = hashlib.sha256(self.key.encode()).hexdigest()[:16]
        self.cache_path = Path(self.probe_meta["path"]) / f"real_stats-{digest}.safetensors"
        self.from_cache = False
        self._real_presence: dict | None = None
        self.real: FeatureStats | None = None
        if cache and self.cache_path.is_file():
            try:
                st = FeatureStats.load(self.cache_path)
                if st.key == self.key and st.count == self.num_real:
                    self.real, self.from_cache = st, True
            except Exception as e:  # a damaged cache is recomputed, not fatal
                warnings.warn(f"ignoring unreadable cache {self.cache_path}: {e}", stacklevel=2)
        if self.real is None:
            self.real = self._real_stats()
            if cache:
                try:
                    self.real.save(self.cache_path)
                except OSError as e:
                    warnings.warn(f"could not write the real-statistics cache {self.cache_path}: {e}", stacklevel=2)

    @property
    def device(self) -> torch.device:
        return next(self.probe.parameters()).device

    @torch.no_grad()
    def _real_stats(self) -> FeatureStats:
        st = FeatureStats(self.probe.feature_dim, max_items=min(self.num_real, MAX_KEPT_REAL), key=self.key)
        for s in range(0, self.num_real, self.batch_size):
            x, _ = load_items(self.dataset, range(s, min(s + self.batch_size, self.num_real)), self.device)
            st.append(self.probe.features(x))
        return st

    @torch.no_grad()
    def real_presence(self) -> dict:
        """`presence_summary` of the probe's segmentation of the real images (computed once)."""
        if self._real_presence is None:
            flags = []
            for s in range(0, self.num_real, self.batch_size):
                x, _ = load_items(self.dataset, range(s, min(s + self.batch_size, self.num_real)), self.device)
                flags.append(part_presence(self.probe.logits_and_features(x)[0].argmax(1), self.probe.num_classes))
            self._real_presence = presence_summary(torch.cat(flags).cpu(), self.classes, "presence_real")
        return self._real_presence

    def check_generator(self, G) -> None:
        cfg = G.config
        k = self.probe.num_classes
        if cfg.num_classes != k:
            raise ConfigError(f"the generator has {cfg.num_classes} classes but the probe and dataset "
                              f"{self.dataset.root} have {k}")
        h, w = self.dataset.info.resolution
        if (cfg.resolution, cfg.resolution) != (h, w):
            raise ConfigError(f"the generator makes {cfg.resolution}x{cfg.resolution} images but dataset "
                              f"{self.dataset.root} is {w}x{h}")

    def accumulator(self, num_samples: int, device: str | torch.device | None = None) -> "DomainAccumulator":
        """An accumulator of generated (or any) images for `evaluate`'s numbers, fed batch by batch: used by
        `evaluate` and by `memorygan.metrics.registry`, which shares one pass of samples among all metrics."""
        return DomainAccumulator(self, num_samples, device)

    def evaluate(self, G, num_samples: int = 1000, batch_size: int = 32, seed: int = 0,
                 truncation: float = 1.0, progress: bool = False) -> dict:
        """Domain FID/KID and mask consistency of `num_samples` samples of G (z from `seed`, constant noise; see
        `samples.generated_batches`). Deterministic for a seed; G's train/eval mode is restored afterwards."""
        self.check_generator(G)
        if num_samples < 2:
            raise ConfigError(f"num_samples must be at least 2, got {num_samples}")
        t0 = time.perf_counter()
        acc = self.accumulator(num_samples, generator_device(G))
        for image, seg in generated_batches(G, num_samples, seed, truncation, batch_size, progress,
                                            desc="domain metrics"):
            acc.update(image, seg)
        res = acc.result()
        res.update(seed=int(seed), truncation=float(truncation), seconds=time.perf_counter() - t0)
        return res


class DomainAccumulator:
    """Probe features (and, given the generator's seg, mask-consistency counts) of images fed batch by batch.

    `update(image, seg)`: image (B, 3, H, W) in [-1, 1] on 8-bit levels (`quantize_image`), seg (B, K, H, W)
    logits of the generator or None (images without a segmentation: no consistency). `result()` gives
    domain_fid, domain_kid, domain_kid_std, num_samples, num_real, and mask_miou / mask_iou when segs were fed."""

    def __init__(self, dm: DomainMetrics, num_samples: int, device: str | torch.device | None = None):
        self.dm = dm
        self.probe = dm.probe.to(device) if device is not None else dm.probe
        self.fake = FeatureStats(self.probe.feature_dim, max_items=int(num_samples))
        self.counts = IoUCounts(self.probe.num_classes)
        self.presence: list[torch.Tensor] = []
        self.with_seg = 0

    @torch.no_grad()
    def update(self, image: torch.Tensor, seg: torch.Tensor | None = None) -> None:
        device = next(self.probe.parameters()).device
        logits, feats = self.probe.logits_and_features(image.to(device))
        self.fake.append(feats)
        self.presence.append(part_presence(logits.argmax(1), self.probe.num_classes))
        if seg is not None:
            self.counts.update(logits.argmax(1), seg.argmax(1))
            self.with_seg += image.shape[0]

    def result(self) -> dict:
        dm = self.dm
        if self.fake.count < 2:
            raise ConfigError(f"domain metrics need at least 2 images, got {self.fake.count}")
        fid = fid_from_stats(dm.real, self.fake)
        kid, kid_std = kernel_inception_distance(dm.real.features, self.fake.features, seed=0)
        res = {"domain_fid": fid, "domain_kid": kid, "domain_kid_std": kid_std}
        if self.with_seg:
            res.update(mask_miou=self.counts.miou, mask_iou=dict(zip(dm.classes, self.counts.per_class)))
        res.update(presence_summary(torch.cat(self.presence).cpu(), dm.classes))
        res.update(dm.real_presence())
        res.update(num_samples=int(self.fake.count), num_real=dm.num_real)
        return res


def domain_metrics(generator, data_dir: str | os.PathLike, probe: str | os.PathLike | None = None,
                   num_samples: int = 1000, seed: int = 0, truncation: float = 1.0, batch_size: int = 32,
                   num_real: int | None = None, cache: bool = True, device: str | torch.device = "cpu") -> dict:
    """`DomainMetrics(probe or data_dir, data_dir).evaluate(G)` for a generator folder (or a loaded generator)."""
    if isinstance(generator, (str, os.PathLike)):
        from memorygan import load
        generator, _ = load(generator, device)
    dm = DomainMetrics(probe if probe is not None else data_dir, data_dir, num_real=num_real, cache=cache,
                       device=device)
    return dm.evaluate(generator, num_samples=num_samples, batch_size=batch_size, seed=seed, truncation=truncation)
