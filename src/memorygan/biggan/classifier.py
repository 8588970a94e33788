"""The domain classifier: a small CNN trained on a labelled dataset's categories, as the thesis uses a
Places365-trained Inception for IS and FID (Sec. 2.4). It is trained like the segmentation probe (held-out split,
one folder beside the data) and gives

- p(y | x) for the domain Inception Score and the per-class accuracy of samples,
- pooled features (64-d) for domain FID, per-class FID and precision / recall.

A trained classifier is a folder (by default `DATA/classifier/`)::

    classifier.safetensors   weights
    classifier.json          format tag, architecture, categories, resolution, dataset fingerprint, held-out accuracy
"""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from memorygan.errors import CheckpointError, DatasetError
from memorygan.metrics.probe import ConvBlock

FORMAT = "memorygan-classifier"
VERSION = 1
DIR = "classifier"
WEIGHTS = "classifier.safetensors"
META = "classifier.json"


class DomainClassifier(nn.Module):
    """Image (B, 3, R, R) in [-1, 1] -> logits (B, C); `features` gives the pooled (B, F) vector before the last
    linear layer. GroupNorm throughout, so an image's output does not depend on the rest of the batch."""

    def __init__(self, num_classes: int, base_channels: int = 16, depth: int = 4, max_channels: int = 64):
        super().__init__()
        self.num_classes, self.base_channels, self.depth, self.max_channels = num_classes, base_channels, depth, \
            max_channels
        chans = [min(base_channels * 2 ** i, max_channels) for i in range(depth + 1)]
        layers = [ConvBlock(3, chans[0])]
        for i in range(depth):
            layers.append(ConvBlock(chans[i], chans[i + 1], stride=2))
        self.body = nn.Sequential(*layers)
        self.feature_dim = chans[-1]
        self.head = nn.Linear(self.feature_dim, num_classes)

    def config(self) -> dict:
        return {"num_classes": self.num_classes, "base_channels": self.base_channels, "depth": self.depth,
                "max_channels": self.max_channels}

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).mean((2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


@dataclass
class ClassifierReport:
    path: Path
    categories: list[str]
    heldout_accuracy: float
    heldout_per_class: list[float]
    steps: int
    seconds: float


def stratified_split(labels: torch.Tensor, holdout_every: int) -> tuple[list[int], list[int]]:
    """(train, held-out) indices: within each class, in index order, every `holdout_every`-th item is held out, so
    both sets hold every class in proportion (a plain index % n split could hold out one class only: the procedural
    categories cycle with the index)."""
    if holdout_every < 2:
        raise DatasetError(f"holdout_every must be >= 2, got {holdout_every}")
    train, held = [], []
    seen: dict[int, int] = {}
    for i, c in enumerate(labels.tolist()):
        k = seen.get(c, 0)
        (held if k % holdout_every == 0 else train).append(i)
        seen[c] = k + 1
    return train, held


def _augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random x-flip and integer translation by up to 1/16 of the size (reflect padding)."""
    b, _, h, _ = x.shape
    flip = torch.rand(b, generator=gen) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    p = max(1, h // 16)
    padded = F.pad(x, (p, p, p, p), mode="reflect")
    dx, dy = torch.randint(0, 2 * p + 1, (2,), generator=gen).tolist()
    return padded[:, :, dy:dy + h, dx:dx + h]


@torch.no_grad()
def predict(model: DomainClassifier, images: torch.Tensor, batch_size: int = 128) -> tuple[torch.Tensor,
                                                                                           torch.Tensor]:
    """(logits (N, C), features (N, F)) of images (N, 3, R, R) in [-1, 1], batched."""
    logits, feats = [], []
    for chunk in images.split(batch_size):
        f = model.features(chunk)
        feats.append(f)
        logits.append(model.head(f))
    return torch.cat(logits), torch.cat(feats)


def train_classifier(data_dir: str | os.PathLike, out: str | os.PathLike | None = None, steps: int = 1500,
                     batch_size: int = 32, lr: float = 2e-3, seed: int = 0, holdout_every: int = 10,
                     progress: bool = True, device: str | torch.device = "cpu",
                     base_channels: int = 16, depth: int = 4) -> ClassifierReport:
    """Train a domain classifier on `data_dir`'s categories and save it to `out` (default DATA/classifier/): Adam
    with cosine decay, flips and small translations, cross-entropy; every `holdout_every`-th item of each class is
    held out for the reported accuracy (`stratified_split`). Deterministic for a seed."""
    from memorygan.data.labelled import LabelledDataset

    t0 = time.perf_counter()
    ds = LabelledDataset(data_dir)
    h, w = ds.info.resolution
    if h != w or h % 2 ** depth:
        raise DatasetError(f"dataset {ds.root} is {w}x{h}; the classifier needs square images whose size is a "
                           f"multiple of {2 ** depth}")
    if steps < 1 or batch_size < 1:
        raise DatasetError(f"steps and batch size must be >= 1, got {steps} and {batch_size}")
    n = len(ds.names)
    train_idx, held_idx = stratified_split(ds.labels, holdout_every)
    if not train_idx or not held_idx:
        raise DatasetError(f"dataset {ds.root} has {n} images: too few to hold out every {holdout_every}th")
    out = Path(out) if out is not None else ds.root / DIR
    device = torch.device(device)
    images = torch.stack([ds.load(i)["image"] for i in range(n)])
    bank = ((images + 1) * 127.5).round().to(torch.uint8)
    labels = ds.labels.clone()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = DomainClassifier(ds.num_categories, base_channels, depth).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s / steps, 1.0))))
    gen = torch.Generator().manual_seed(seed)
    tr = torch.tensor(train_idx)
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=steps, desc="classifier", unit="step")
    model.train()
    try:
        for _ in range(steps):
            pick = tr[torch.randint(len(tr), (batch_size,), generator=gen)]
            x = _augment(bank[pick].float().div_(127.5).sub_(1.0), gen).to(device)
            loss = F.cross_entropy(model(x), labels[pick].to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{float(loss):.3f}", refresh=False)
    finally:
        if bar is not None:
            bar.close()
    model.eval()
    held = torch.tensor(held_idx)
    logits, _ = predict(model, (bank[held].float() / 127.5 - 1).to(device))
    correct = (logits.argmax(1).cpu() == labels[held]).float()
    per_class = [float(correct[labels[held] == c].mean()) if (labels[held] == c).any() else float("nan")
                 for c in range(ds.num_categories)]
    seconds = time.perf_counter() - t0
    meta = {"format": FORMAT, "version": VERSION, **model.config(), "categories": list(ds.categories),
            "resolution": [h, w], "dataset": {"path": str(ds.root.resolve()), **ds.fingerprint()},
            "holdout_every": holdout_every, "num_train": len(train_idx), "num_holdout": len(held_idx),
            "heldout_accuracy": float(correct.mean()), "heldout_per_class": per_class, "steps": steps,
            "batch_size": batch_size, "lr": lr, "seed": seed, "seconds": round(seconds, 2)}
    save_classifier(model, out, meta)
    return ClassifierReport(out, list(ds.categories), float(correct.mean()), per_class, steps, seconds)


def save_classifier(model: DomainClassifier, out, meta: dict) -> Path:
    from safetensors.torch import save_file

    from memorygan.checkpoint import atomic_directory, state_dict_for_saving

    out = Path(out)
    if out.is_dir() and any(out.iterdir()) and not (out / META).is_file():
        raise CheckpointError(f"{out} exists and is not a classifier folder; refusing to replace it")
    with atomic_directory(out) as tmp:
        save_file(state_dict_for_saving(model), str(tmp / WEIGHTS), metadata={"format": FORMAT})
        (tmp / META).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return out


def resolve_classifier_dir(path) -> Path:
    """A classifier folder, or a dataset folder holding one in classifier/."""
    path = Path(path)
    if (path / META).is_file():
        return path
    if (path / DIR / META).is_file():
        return path / DIR
    if not path.exists():
        raise CheckpointError(f"{path}: no such classifier or dataset folder")
    if (path / "dataset.json").is_file():
        raise CheckpointError(f"dataset {path} has no trained classifier ({path / DIR / META} is missing); run "
                              f"`memorygan biggan classifier --data {path}`")
    raise CheckpointError(f"{path}: not a classifier folder (no {META}) nor a dataset folder with one")


def load_classifier(path, device: str | torch.device = "cpu") -> tuple[DomainClassifier, dict]:
    """Load a classifier (its folder, or the dataset folder whose classifier/ holds it) -> (model, metadata)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from memorygan.checkpoint import check_finite, check_state_dict
    from memorygan.fileio import read_json

    directory = resolve_classifier_dir(path)
    meta = read_json(directory / META, CheckpointError, "classifier description")
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise CheckpointError(f"{directory / META}: not a {FORMAT} version {VERSION} file")
    try:
        model = DomainClassifier(int(meta["num_classes"]), int(meta["base_channels"]), int(meta["depth"]),
                                 int(meta["max_channels"]))
        if len(meta["categories"]) != model.num_classes:
            raise ValueError(f"{len(meta['categories'])} category names for {model.num_classes} classes")
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{directory / META}: invalid classifier description ({e})") from None
    weights = directory / WEIGHTS
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{weights}: not a readable safetensors file ({e})") from None
    check_state_dict(model.state_dict(), state, str(weights))
    check_finite(state, str(weights))
    model.load_state_dict(state, strict=True)
    return model.eval().requires_grad_(False).to(device), dict(meta, path=str(directory))
