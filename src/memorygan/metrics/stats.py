"""Feature statistics and the distances computed from them (DESIGN.md section 5), independent of the extractor.

`FeatureStats` accumulates features of any extractor (the domain probe, InceptionV3, ...); `frechet_distance`
(FID) and `kernel_inception_distance` (KID) compare two sets; `IoUCounts` / `mean_iou` is the single mIoU
definition used by the probe's evaluation and by mask consistency.
"""
from __future__ import annotations

import json
import os
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from memorygan.errors import CheckpointError, MemoryGANError

STATS_FORMAT = "memorygan-feature-stats"
STATS_VERSION = 1


# ---------------------------------------------------------------------------------------------------- feature stats

class FeatureStats:
    """Running mean/covariance of (N, D) feature rows, optionally keeping the first `max_items` rows (for KID).

    Sums are float64 (sum of rows, sum of outer products), so the result does not depend on how rows are batched
    beyond rounding. `cov` is the unbiased sample covariance (as `np.cov(x, rowvar=False)` and pytorch-fid).
    `key` is a free-form string saved with the statistics; caches compare it to decide whether they are stale.
    """

    def __init__(self, dim: int | None = None, max_items: int = 0, key: str = ""):
        if max_items < 0:
            raise ValueError(f"max_items must be >= 0, got {max_items}")
        self.dim = dim
        self.max_items = int(max_items)
        self.key = str(key)
        self.count = 0
        self._sum: np.ndarray | None = None        # (D,) float64
        self._outer: np.ndarray | None = None      # (D, D) float64
        self._kept: list[np.ndarray] = []          # rows kept for KID, float32
        self._num_kept = 0
        if dim is not None:
            self._init(dim)

    def _init(self, dim: int) -> None:
        self.dim = int(dim)
        self._sum = np.zeros(self.dim, np.float64)
        self._outer = np.zeros((self.dim, self.dim), np.float64)

    def append(self, feats) -> None:
        """Add rows: (N, D) torch tensor or numpy array."""
        if isinstance(feats, torch.Tensor):
            feats = feats.detach().cpu().double().numpy()
        x = np.asarray(feats, dtype=np.float64)
        if x.ndim != 2:
            raise ValueError(f"features must be (N, D), got shape {x.shape}")
        if self._sum is None:
            self._init(x.shape[1])
        if x.shape[1] != self.dim:
            raise ValueError(f"features have dimension {x.shape[1]}, expected {self.dim}")
        if not np.isfinite(x).all():
            raise ValueError("features contain NaN or infinite values")
        self.count += x.shape[0]
        self._sum += x.sum(0)
        self._outer += x.T @ x
        room = self.max_items - self._num_kept
        if room > 0:
            rows = x[:room].astype(np.float32)
            self._kept.append(rows)
            self._num_kept += rows.shape[0]

    @property
    def mean(self) -> np.ndarray:
        """(D,) float64."""
        self._check_count(1)
        return self._sum / self.count

    @property
    def cov(self) -> np.ndarray:
        """(D, D) float64 unbiased sample covariance."""
        self._check_count(2)
        mu = self._sum / self.count
        cov = (self._outer - self.count * np.outer(mu, mu)) / (self.count - 1)
        return (cov + cov.T) / 2  # exact symmetry despite rounding

    @property
    def features(self) -> np.ndarray:
        """(min(count, max_items), D) float32: the first rows appended."""
        if not self._kept:
            return np.zeros((0, self.dim or 0), np.float32)
        return np.concatenate(self._kept, 0)

    def _check_count(self, n: int) -> None:
        if self.count < n:
            raise MemoryGANError(f"feature statistics of {self.count} rows; at least {n} are needed")

    # --- persistence: safetensors with JSON metadata
    def save(self, path: str | os.PathLike) -> Path:
        """Write atomically (temporary file in the same folder, then os.replace)."""
        from safetensors.numpy import save_file

        if self._sum is None:
            raise MemoryGANError("cannot save empty feature statistics")
        path = Path(path)
        tensors = {"sum": self._sum, "outer": self._outer}
        if self._num_kept:
            tensors["features"] = np.ascontiguousarray(self.features)
        meta = {"format": STATS_FORMAT, "version": STATS_VERSION, "count": self.count, "dim": self.dim,
                "max_items": self.max_items, "key": self.key}
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
        os.close(fd)
        try:
            save_file(tensors, tmp, metadata={"memorygan": json.dumps(meta)})
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "FeatureStats":
        """Read a file written by `save`; CheckpointError naming the file when it is missing or invalid."""
        from safetensors import SafetensorError, safe_open

        path = Path(path)
        if not path.is_file():
            raise CheckpointError(f"{path}: no such feature-statistics file")
        try:
            with safe_open(str(path), framework="numpy") as f:
                raw = (f.metadata() or {}).get("memorygan")
                tensors = {k: f.get_tensor(k) for k in f.keys()}
        except (SafetensorError, OSError, ValueError) as e:
            raise CheckpointError(f"{path}: not a readable safetensors file ({e})") from None
        try:
            meta = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            meta = None
        if not isinstance(meta, dict) or meta.get("format") != STATS_FORMAT:
            raise CheckpointError(f"{path}: not a {STATS_FORMAT} file")
        if meta.get("version") != STATS_VERSION:
            raise CheckpointError(f"{path}: {STATS_FORMAT} version {meta.get('version')}, "
                                  f"this memorygan reads version {STATS_VERSION}")
        dim, count = meta.get("dim"), meta.get("count")
        s, o = tensors.get("sum"), tensors.get("outer")
        if (not isinstance(dim, int) or not isinstance(count, int) or s is None or o is None
                or s.shape != (dim,) or o.shape != (dim, dim)):
            raise CheckpointError(f"{path}: inconsistent feature statistics (dim {dim}, count {count})")
        st = cls(dim, int(meta.get("max_items", 0)), str(meta.get("key", "")))
        st.count = count
        st._sum, st._outer = s.astype(np.float64), o.astype(np.float64)
        feats = tensors.get("features")
        if feats is not None:
            if feats.ndim != 2 or feats.shape[1] != dim:
                raise CheckpointError(f"{path}: kept features have shape {feats.shape}, expected (N, {dim})")
            st._kept, st._num_kept = [feats.astype(np.float32)], feats.shape[0]
        return st


# ---------------------------------------------------------------------------------------------------- FID

def frechet_distance(mu1, sigma1, mu2, sigma2, eps: float = 1e-6) -> float:
    """Frechet distance between N(mu1, sigma1) and N(mu2, sigma2):
    |mu1 - mu2|^2 + tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^(1/2)).

    As pytorch-fid: when the matrix square root is not finite or scipy reports the product singular (e.g. fewer
    samples than dimensions), `eps` is added to both diagonals; a negligible imaginary part from rounding is
    dropped, a large one is an error."""
    try:
        from scipy import linalg
    except ModuleNotFoundError:
        raise MemoryGANError("the Frechet distance needs scipy (pip install scipy)") from None

    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape:
        raise ValueError(f"mean vectors have different shapes {mu1.shape} and {mu2.shape}")
    d = mu1.shape[0]
    if sigma1.shape != (d, d) or sigma2.shape != (d, d):
        raise ValueError(f"covariances must be ({d}, {d}), got {sigma1.shape} and {sigma2.shape}")
    diff = mu1 - mu2
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", linalg.LinAlgWarning)
        covmean = linalg.sqrtm(sigma1 @ sigma2)
    singular = any(issubclass(w.category, linalg.LinAlgWarning) for w in caught)
    if singular or not np.isfinite(covmean).all():
        offset = np.eye(d) * eps
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", linalg.LinAlgWarning)
            covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(f"Frechet distance: the matrix square root has an imaginary component "
                             f"{np.max(np.abs(covmean.imag)):.3g}")
        covmean = covmean.real
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def fid_from_stats(a: FeatureStats, b: FeatureStats) -> float:
    """FID between two accumulated feature sets (same extractor, same dimension)."""
    if a.dim != b.dim:
        raise MemoryGANError(f"feature statistics have different dimensions ({a.dim} vs {b.dim}); "
                             "were they computed with the same feature extractor?")
    return frechet_distance(a.mean, a.cov, b.mean, b.cov)


# ---------------------------------------------------------------------------------------------------- KID

def kernel_inception_distance(feats1, feats2, num_subsets: int = 100, max_subset_size: int = 1000,
                              seed: int = 0) -> tuple[float, float]:
    """Unbiased MMD^2 with the kernel k(x, y) = (x.y / D + 1)^3, averaged over random subsets (as StyleGAN2-ADA's
    metrics/kernel_inception_distance.py, Binkowski et al. 2018). Returns (mean, std over subsets).

    feats1 (N1, D), feats2 (N2, D); each subset takes m = min(N1, N2, max_subset_size) rows of each without
    replacement, drawn with numpy's default_rng(seed)."""
    x_all = np.asarray(feats1.detach().cpu() if isinstance(feats1, torch.Tensor) else feats1, np.float64)
    y_all = np.asarray(feats2.detach().cpu() if isinstance(feats2, torch.Tensor) else feats2, np.float64)
    if x_all.ndim != 2 or y_all.ndim != 2 or x_all.shape[1] != y_all.shape[1]:
        raise ValueError(f"features must be (N1, D) and (N2, D), got {x_all.shape} and {y_all.shape}")
    n = x_all.shape[1]
    m = min(x_all.shape[0], y_all.shape[0], max_subset_size)
    if m < 2:
        raise MemoryGANError(f"KID needs at least 2 feature rows in each set, got {x_all.shape[0]} and "
                             f"{y_all.shape[0]}")
    rng = np.random.default_rng(seed)
    values = np.empty(num_subsets, np.float64)
    for s in range(num_subsets):
        x = x_all[rng.choice(x_all.shape[0], m, replace=False)]
        y = y_all[rng.choice(y_all.shape[0], m, replace=False)]
        a = (x @ x.T / n + 1) ** 3 + (y @ y.T / n + 1) ** 3
        b = (x @ y.T / n + 1) ** 3
        values[s] = ((a.sum() - np.diag(a).sum()) / (m - 1) - b.sum() * 2 / m) / m
    return float(values.mean()), float(values.std())


# ---------------------------------------------------------------------------------------------------- mIoU

@dataclass
class IoUCounts:
    """Per-class intersection and union pixel counts accumulated over all pixels of all images.

    IoU_c = I_c / U_c for the classes with U_c > 0 (others are None: absent from both prediction and target);
    mIoU is the mean over those classes. Pixel counts are summed over the whole set before dividing, so large
    and small images weigh by their pixels, not per image."""

    num_classes: int
    intersection: np.ndarray = field(default=None)  # (K,) int64
    union: np.ndarray = field(default=None)         # (K,) int64

    def __post_init__(self):
        if self.intersection is None:
            self.intersection = np.zeros(self.num_classes, np.int64)
        if self.union is None:
            self.union = np.zeros(self.num_classes, np.int64)

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> "IoUCounts":
        """pred, target: class-id tensors of the same shape (e.g. (B, H, W))."""
        if pred.shape != target.shape:
            raise ValueError(f"prediction {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape")
        k = self.num_classes
        p, t = pred.reshape(-1).long().cpu(), target.reshape(-1).long().cpu()
        if p.numel() and (min(int(p.min()), int(t.min())) < 0 or max(int(p.max()), int(t.max())) >= k):
            raise ValueError(f"class ids must be in [0, {k})")
        inter = torch.bincount(p[p == t], minlength=k)
        area_p, area_t = torch.bincount(p, minlength=k), torch.bincount(t, minlength=k)
        self.intersection += inter.numpy()
        self.union += (area_p + area_t - inter).numpy()
        return self

    @property
    def per_class(self) -> list[float | None]:
        return [float(i / u) if u > 0 else None for i, u in zip(self.intersection, self.union)]

    @property
    def miou(self) -> float:
        present = self.union > 0
        if not present.any():
            return float("nan")
        return float(np.mean(self.intersection[present] / self.union[present]))


def mean_iou(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> tuple[float, list[float | None]]:
    """(mIoU, per-class IoU) of class-id tensors; see `IoUCounts`."""
    c = IoUCounts(num_classes).update(pred, target)
    return c.miou, c.per_class
