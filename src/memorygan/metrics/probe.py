"""The domain probe: a light U-Net trained on the real dataset to predict the mask from the image (DESIGN.md 5).

Its pooled encoder features are the "domain Inception" features of domain FID/KID, and its predictions on
generated images give mask consistency. A trained probe is a folder (by default `DATA/probe/`)::

    probe.safetensors   weights
    probe.json          format tag, architecture, classes, resolution, dataset fingerprint, held-out IoU

Training uses the images whose index % holdout_every != 0; the others are held out for the reported IoU.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from memorygan.errors import CheckpointError, DatasetError
from memorygan.metrics.stats import IoUCounts

PROBE_FORMAT = "memorygan-probe"
PROBE_VERSION = 1
PROBE_DIR = "probe"
PROBE_WEIGHTS = "probe.safetensors"
PROBE_META = "probe.json"

# defaults measured on 1000 procedural portraits at 64 px with 2 CPU cores (docs in the report of train_probe)
DEFAULT_CHANNELS = 16
DEFAULT_DEPTH = 3
DEFAULT_STEPS = 1500
DEFAULT_BATCH = 16
DEFAULT_LR = 3e-3


# ---------------------------------------------------------------------------------------------------- network

def _groups(channels: int) -> int:
    return math.gcd(channels, 8)


class ConvBlock(nn.Sequential):
    """Two conv3x3 + GroupNorm + LeakyReLU(0.2); the first conv has the given stride."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__(
            nn.Conv2d(cin, cout, 3, stride=stride, padding=1), nn.GroupNorm(_groups(cout), cout), nn.LeakyReLU(0.2),
            nn.Conv2d(cout, cout, 3, padding=1), nn.GroupNorm(_groups(cout), cout), nn.LeakyReLU(0.2),
        )


class ProbeUNet(nn.Module):
    """Image (B, 3, H, W) in [-1, 1] -> mask logits (B, K, H, W).

    Encoder: a full-resolution block with C channels, then `depth` stride-2 blocks with 2C, 4C, ... channels.
    Decoder: bilinear upsampling, concatenation with the encoder level of the same size, a block; a 1x1 head.
    `features` is the global average pool of every encoder level, concatenated: (B, C (2^(depth+1) - 1)).
    GroupNorm has no running statistics, so train and eval modes compute the same function.
    H and W must be multiples of 2^depth.
    """

    def __init__(self, num_classes: int, base_channels: int = DEFAULT_CHANNELS, depth: int = DEFAULT_DEPTH):
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        if base_channels < 1 or depth < 1:
            raise ValueError(f"base_channels and depth must be >= 1, got {base_channels} and {depth}")
        self.num_classes, self.base_channels, self.depth = int(num_classes), int(base_channels), int(depth)
        ch = [base_channels * 2 ** i for i in range(depth + 1)]
        self.stem = ConvBlock(3, ch[0])
        self.down = nn.ModuleList([ConvBlock(ch[i], ch[i + 1], stride=2) for i in range(depth)])
        self.up = nn.ModuleList([ConvBlock(ch[i + 1] + ch[i], ch[i]) for i in reversed(range(depth))])
        self.head = nn.Conv2d(ch[0], num_classes, 1)
        self.feature_dim = sum(ch)

    def config(self) -> dict:
        return {"num_classes": self.num_classes, "base_channels": self.base_channels, "depth": self.depth}

    def _check(self, image: torch.Tensor) -> None:
        f = 2 ** self.depth
        if image.ndim != 4 or image.shape[1] != 3 or image.shape[2] % f or image.shape[3] % f:
            raise ValueError(f"probe input must be (B, 3, H, W) with H and W multiples of {f}, "
                             f"got {tuple(image.shape)}")

    def encode(self, image: torch.Tensor) -> list[torch.Tensor]:
        """Encoder levels, full resolution first: [(B, C, H, W), (B, 2C, H/2, W/2), ...]."""
        self._check(image)
        levels = [self.stem(image)]
        for block in self.down:
            levels.append(block(levels[-1]))
        return levels

    def decode(self, levels: list[torch.Tensor]) -> torch.Tensor:
        x = levels[-1]
        for block, skip in zip(self.up, reversed(levels[:-1])):
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = block(torch.cat([x, skip], 1))
        return self.head(x)

    @staticmethod
    def pool(levels: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat([lv.mean(dim=(2, 3)) for lv in levels], 1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> logits (B, K, H, W)."""
        return self.decode(self.encode(image))

    def features(self, image: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> pooled encoder features (B, feature_dim)."""
        return self.pool(self.encode(image))

    def logits_and_features(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Both outputs from one encoder pass."""
        levels = self.encode(image)
        return self.decode(levels), self.pool(levels)


# ---------------------------------------------------------------------------------------------------- data

def dataset_fingerprint(data_dir: str | os.PathLike) -> dict:
    """{"num_images", "hash"}: sha256 over dataset.json and the sorted image/mask names, sizes and mtimes, so any
    rewritten file changes it (a copy that does not keep mtimes does too: caches are then rebuilt, never stale)."""
    from memorygan.data.dataset import SegmentationDataset

    ds = SegmentationDataset(data_dir)
    h = hashlib.sha256((ds.root / "dataset.json").read_bytes())
    for name, ip, mp in zip(ds.names, ds.image_paths, ds.mask_paths):
        si, sm = ip.stat(), mp.stat()
        h.update(f"\n{name}|{ip.name}|{si.st_size}|{si.st_mtime_ns}|{sm.st_size}|{sm.st_mtime_ns}".encode())
    return {"num_images": len(ds.names), "hash": h.hexdigest()}


def load_items(ds, indices, device="cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N, 3, H, W) float in [-1, 1] and ids (N, H, W) int64 of dataset items."""
    items = [ds.load(int(i)) for i in indices]
    return (torch.stack([it["image"] for it in items]).to(device),
            torch.stack([it["ids"] for it in items]).to(device))


def split_indices(n: int, holdout_every: int) -> tuple[list[int], list[int]]:
    """(train, held-out) indices: index % holdout_every == 0 is held out."""
    if holdout_every < 2:
        raise DatasetError(f"holdout_every must be >= 2, got {holdout_every}")
    held = [i for i in range(n) if i % holdout_every == 0]
    train = [i for i in range(n) if i % holdout_every != 0]
    return train, held


# ---------------------------------------------------------------------------------------------------- training

@dataclass
class ProbeReport:
    path: Path | None
    classes: list[str]
    miou: float                               # held-out mIoU
    per_class_iou: list[float | None]         # held-out IoU per class (None: absent from the held-out images)
    steps: int
    seconds: float
    num_train: int
    num_holdout: int
    final_loss: float = float("nan")
    extra: dict = field(default_factory=dict)

    def format(self) -> str:
        lines = [f"held-out mIoU {self.miou:.4f} ({self.num_holdout} images; trained on {self.num_train} for "
                 f"{self.steps} steps in {self.seconds:.1f} s)"]
        width = max(len(c) for c in self.classes)
        for name, iou in zip(self.classes, self.per_class_iou):
            lines.append(f"  {name:<{width}}  {'-' if iou is None else f'{iou:.4f}'}")
        return "\n".join(lines)


def _class_weights(ds, k: int) -> torch.Tensor:
    """Cross-entropy weights ~ 1/sqrt(pixel frequency), normalised to mean 1 over present classes, so the probe
    learns the small parts (eyes, earrings) that dominate an unweighted mIoU's errors; None counts: uniform."""
    counts = ds.info.class_pixel_counts
    if counts is None:
        return torch.ones(k, device="cpu")
    c = torch.tensor(counts, dtype=torch.float64, device="cpu")
    w = torch.where(c > 0, (c.clamp(min=1) / c.sum()).rsqrt(), torch.zeros_like(c))
    w = w / w[c > 0].mean()
    return w.clamp(max=10.0).float()


def train_probe(data_dir: str | os.PathLike, out: str | os.PathLike | None = None, steps: int = DEFAULT_STEPS,
                batch_size: int = DEFAULT_BATCH, lr: float = DEFAULT_LR, seed: int = 0, holdout_every: int = 10,
                progress: bool = True, device: str | torch.device = "cpu", base_channels: int = DEFAULT_CHANNELS,
                depth: int = DEFAULT_DEPTH) -> ProbeReport:
    """Train a probe on `data_dir` and save it to `out` (default DATA/probe/). Adam with a cosine learning-rate
    decay, random horizontal flips, class-weighted cross-entropy on the ids; deterministic for a seed."""
    from memorygan.data.dataset import SegmentationDataset

    t0 = time.perf_counter()
    ds = SegmentationDataset(data_dir)
    h, w = ds.info.resolution
    f = 2 ** depth
    if h % f or w % f:
        raise DatasetError(f"dataset {ds.root} is {w}x{h}; the probe with depth {depth} needs multiples of {f}")
    if steps < 1 or batch_size < 1:
        raise DatasetError(f"steps and batch size must be >= 1, got {steps} and {batch_size}")
    train_idx, held_idx = split_indices(len(ds.names), holdout_every)
    if not train_idx or not held_idx:
        raise DatasetError(f"dataset {ds.root} has {len(ds.names)} images: too few to hold out every "
                           f"{holdout_every}th and train on the rest")
    out = Path(out) if out is not None else ds.root / PROBE_DIR
    k = ds.num_classes
    device = torch.device(device)
    fingerprint = dataset_fingerprint(ds.root)

    # keep the training images in memory (uint8) when they fit, otherwise read them per step
    bytes_per = h * w * 4
    cache = len(train_idx) * bytes_per <= 1 << 30
    if cache:
        imgs, ids = load_items(ds, train_idx)
        bank_img = ((imgs + 1) * 127.5).round().to(torch.uint8)
        bank_ids = ids.to(torch.uint8 if k <= 256 else torch.int32)

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        probe = ProbeUNet(k, base_channels, depth).to(device)
    opt = torch.optim.Adam(probe.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s / steps, 1.0))))
    weights = _class_weights(ds, k).to(device)
    gen = torch.Generator().manual_seed(seed)
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=steps, desc="probe", unit="step")
    probe.train()
    loss_val = float("nan")
    try:
        for _ in range(steps):
            pick = torch.randint(len(train_idx), (batch_size,), generator=gen)
            flip = torch.rand(batch_size, generator=gen) < 0.5
            if cache:
                x = bank_img[pick].float().div_(127.5).sub_(1.0)
                y = bank_ids[pick].long()
            else:
                x, y = load_items(ds, [train_idx[int(i)] for i in pick])
            x = torch.where(flip[:, None, None, None], x.flip(-1), x).to(device)
            y = torch.where(flip[:, None, None], y.flip(-1), y).to(device)
            loss = F.cross_entropy(probe(x), y, weight=weights)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_val = float(loss.detach())
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss_val:.3f}", refresh=False)
    finally:
        if bar is not None:
            bar.close()
    probe.eval()
    counts = _evaluate_indices(probe, ds, held_idx, batch_size=64)
    seconds = time.perf_counter() - t0
    meta = {
        "format": PROBE_FORMAT, "version": PROBE_VERSION, **probe.config(),
        "classes": list(ds.classes), "resolution": [h, w],
        "dataset": {"path": str(ds.root.resolve()), "name": ds.info.name, **fingerprint},
        "holdout_every": holdout_every, "num_train": len(train_idx), "num_holdout": len(held_idx),
        "heldout_miou": counts.miou, "heldout_iou": counts.per_class,
        "steps": steps, "batch_size": batch_size, "lr": lr, "seed": seed, "final_loss": loss_val,
        "seconds": round(seconds, 2),
    }
    save_probe(probe, out, meta)
    return ProbeReport(out, list(ds.classes), counts.miou, counts.per_class, steps, seconds, len(train_idx),
                       len(held_idx), loss_val)


# ---------------------------------------------------------------------------------------------------- persistence

def save_probe(probe: ProbeUNet, out: str | os.PathLike, meta: dict) -> Path:
    """Write probe.safetensors + probe.json to `out` atomically (a temporary sibling folder renamed into place)."""
    from safetensors.torch import save_file

    from memorygan.checkpoint import atomic_directory, state_dict_for_saving

    out = Path(out)
    if out.exists() and out.is_dir() and any(out.iterdir()) and not (out / PROBE_META).is_file():
        raise CheckpointError(f"{out} exists and is not a probe folder; refusing to replace it")
    with atomic_directory(out) as tmp:
        save_file(state_dict_for_saving(probe), str(tmp / PROBE_WEIGHTS), metadata={"format": PROBE_FORMAT})
        (tmp / PROBE_META).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return out


def resolve_probe_dir(path: str | os.PathLike) -> Path:
    """A probe folder, or a dataset folder holding one in probe/; CheckpointError naming the path otherwise."""
    path = Path(path)
    if (path / PROBE_META).is_file() or (path / PROBE_WEIGHTS).is_file():
        return path
    if (path / PROBE_DIR / PROBE_META).is_file() or (path / PROBE_DIR / PROBE_WEIGHTS).is_file():
        return path / PROBE_DIR
    if not path.exists():
        raise CheckpointError(f"{path}: no such probe or dataset folder")
    if (path / "dataset.json").is_file():
        raise CheckpointError(f"dataset {path} has no trained probe ({path / PROBE_DIR / PROBE_META} is missing); "
                              f"run `memorygan probe train --data {path}`")
    raise CheckpointError(f"{path}: not a probe folder (no {PROBE_META}) nor a dataset folder with a probe")


def load_probe(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[ProbeUNet, dict]:
    """Load a probe (folder, or the dataset folder whose probe/ holds it) -> (model in eval mode, metadata).
    The metadata gets "path" (the probe folder) and "checksum" (sha256 of the weights file)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from memorygan.checkpoint import check_state_dict

    directory = resolve_probe_dir(path)
    meta_path, weights = directory / PROBE_META, directory / PROBE_WEIGHTS
    if not meta_path.is_file():
        raise CheckpointError(f"{directory}: {PROBE_META} is missing")
    if not weights.is_file():
        raise CheckpointError(f"{directory}: {PROBE_WEIGHTS} is missing")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{meta_path}: not valid JSON ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != PROBE_FORMAT:
        raise CheckpointError(f"{meta_path}: not a {PROBE_FORMAT} file (format "
                              f"{meta.get('format') if isinstance(meta, dict) else None!r})")
    if meta.get("version") != PROBE_VERSION:
        raise CheckpointError(f"{meta_path}: {PROBE_FORMAT} version {meta.get('version')!r}, "
                              f"this memorygan reads version {PROBE_VERSION}")
    try:
        k, c, d = int(meta["num_classes"]), int(meta["base_channels"]), int(meta["depth"])
        classes, res = list(meta["classes"]), [int(r) for r in meta["resolution"]]
        if len(classes) != k or len(res) != 2:
            raise ValueError(f"{len(classes)} class names for {k} classes, resolution {meta['resolution']}")
        probe = ProbeUNet(k, c, d)
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{meta_path}: invalid probe description ({e})") from None
    raw = weights.read_bytes()
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{weights}: not a readable safetensors file ({e})") from None
    check_state_dict(probe.state_dict(), state, str(weights))
    probe.load_state_dict(state, strict=True)
    meta = dict(meta, path=str(directory), checksum=hashlib.sha256(raw).hexdigest())
    return probe.eval().requires_grad_(False).to(device), meta


# ---------------------------------------------------------------------------------------------------- evaluation

@torch.no_grad()
def _evaluate_indices(probe: ProbeUNet, ds, indices, batch_size: int = 64) -> IoUCounts:
    device = next(probe.parameters()).device
    counts = IoUCounts(probe.num_classes)
    for s in range(0, len(indices), batch_size):
        x, y = load_items(ds, indices[s:s + batch_size], device)
        counts.update(probe(x).argmax(1), y)
    return counts


def evaluate_probe(probe: ProbeUNet | str | os.PathLike, data_dir: str | os.PathLike, holdout_every: int = 10,
                   batch_size: int = 64) -> tuple[float, list[float | None]]:
    """Held-out (index % holdout_every == 0) mIoU and per-class IoU of a probe (model or folder) on a dataset."""
    from memorygan.data.dataset import SegmentationDataset

    if not isinstance(probe, nn.Module):
        probe, _ = load_probe(probe)
    ds = SegmentationDataset(data_dir)
    check_probe_dataset(probe, ds)
    _, held = split_indices(len(ds.names), holdout_every)
    if not held:
        raise DatasetError(f"dataset {ds.root} has no images to evaluate on")
    was_training = probe.training
    probe.eval()
    try:
        counts = _evaluate_indices(probe, ds, held, batch_size)
    finally:
        probe.train(was_training)
    return counts.miou, counts.per_class


def check_probe_dataset(probe: ProbeUNet, ds) -> None:
    if probe.num_classes != ds.num_classes:
        raise DatasetError(f"the probe predicts {probe.num_classes} classes but dataset {ds.root} has "
                           f"{ds.num_classes}")
    f = 2 ** probe.depth
    h, w = ds.info.resolution
    if h % f or w % f:
        raise DatasetError(f"dataset {ds.root} is {w}x{h}; the probe (depth {probe.depth}) needs multiples of {f}")
