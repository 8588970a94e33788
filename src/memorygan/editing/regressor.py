"""Attribute assessors trained on a dataset's ground truth (`memorygan edit train-assessor`).

The procedural portraits record every attribute they were drawn from (attributes.jsonl: skin tone, hair colour,
eye colour, smile, glasses, hat, ...). A small CNN learns one attribute from the image, so a latent direction can be
learned and measured against a quantity with a known meaning. The attribute is a dotted path into the record:

    numbers (e.g. skin.lightness, hair.lightness, eyes.lightness, mouth.smile, mouth.width)  -> regression (R^2)
    an object or null / a boolean (e.g. glasses, hat, earrings, hair.covers_ears)             -> presence (accuracy)
    strings (e.g. hair.color, eyes.color, hair.style)                                         -> classes (accuracy)

Saved as DIR/assessor.safetensors + DIR/assessor.json (attribute, kind, classes, target normalisation, resolution,
held-out scores). As an assessor (`regressor:DIR[:CLASS]`) it gives the attribute value (regression), the presence
probability, or the probability of CLASS.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from memorygan.errors import CheckpointError, ConfigError, DatasetError

FORMAT = "memorygan-assessor"
WEIGHTS, CONFIG = "assessor.safetensors", "assessor.json"
KINDS = ("regression", "presence", "classes")
#: attributes whose value changes under a left-right mirror: trained without x-flip augmentation
FLIP_SENSITIVE = ("pose.dx", "pose.yaw", "pose.roll", "eyes.tilt", "eyes.gaze", "background.angle", "light")


class AttributeNet(nn.Module):
    """(B, 3, H, W) in [-1, 1] -> (B, out): four stride-2 3x3 conv + leaky-ReLU stages, global mean, linear."""

    def __init__(self, out_dim: int, channels: int = 32):
        super().__init__()
        widths = [3, channels, 2 * channels, 4 * channels, 4 * channels]
        layers = []
        for a, b in zip(widths[:-1], widths[1:]):
            layers += [nn.Conv2d(a, b, 3, stride=2, padding=1), nn.LeakyReLU(0.2)]
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(widths[-1], out_dim)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(image).mean((2, 3)))


def attribute_targets(data, attribute: str) -> tuple[list, str, list[str]]:
    """Per image (dataset order) the raw value of `attribute`, its kind and (for classes) the sorted class list."""
    from memorygan.data.dataset import SegmentationDataset
    from memorygan.data.files import ATTRIBUTES_FILE, attribute_lookup, read_attributes

    ds = SegmentationDataset(data)
    if not (Path(data) / ATTRIBUTES_FILE).is_file():
        raise DatasetError(f"{data} has no {ATTRIBUTES_FILE}: attribute assessors need a dataset with ground-truth "
                           "attributes (e.g. `memorygan data synth portraits`)")
    by_name = {r.get("basename"): r for r in read_attributes(data)}
    missing = [n for n in ds.names if n not in by_name]
    if missing:
        raise DatasetError(f"{ATTRIBUTES_FILE} of {data} has no record for {len(missing)} image(s), e.g. {missing[0]}")
    values = [attribute_lookup(by_name[n], attribute, KeyError) for n in ds.names]
    if any(v is KeyError for v in values):
        example = by_name[ds.names[0]]
        keys = sorted(f"{k}.{s}" if isinstance(v, dict) else k for k, v in example.items()
                      for s in (v.keys() if isinstance(v, dict) else [None]))
        raise ConfigError(f"--attribute {attribute!r} is not in {ATTRIBUTES_FILE}; available: "
                          f"{', '.join(k.replace('.None', '') for k in keys)}")
    if all(isinstance(v, bool) or v is None or isinstance(v, dict) for v in values):
        return [bool(v) for v in values], "presence", []
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return [float(v) for v in values], "regression", []
    if all(isinstance(v, str) for v in values):
        return values, "classes", sorted(set(values))
    kinds = sorted({type(v).__name__ for v in values})
    raise ConfigError(f"--attribute {attribute!r} has values of type {', '.join(kinds)}; choose a number, a "
                      "string or an optional object/boolean")


@dataclass
class AssessorReport:
    path: Path
    attribute: str
    kind: str
    heldout: dict
    seconds: float


def train_assessor(data, attribute: str, out, steps: int = 2000, batch: int = 32, lr: float = 1e-3,
                   channels: int = 32, holdout_every: int = 10, seed: int = 0, device: str = "cpu",
                   flip: bool | None = None, eval_every: int = 100, progress: bool = False) -> AssessorReport:
    """Train an attribute regressor/classifier on `data` and save it to `out` (see the module docstring).

    Split by index: every `holdout_every`-th image is held out for the reported score, the ones half-way between
    them validate (the weights kept are those of the best validation score, evaluated every `eval_every` steps: a
    small CNN memorises subtle attributes such as a smile at 64 px long before it stops improving on new images),
    the rest train. `flip` (default: unless the attribute changes under a mirror) x-flips half of each batch."""
    from memorygan.data.dataset import SegmentationDataset
    from memorygan.metrics.probe import dataset_fingerprint, split_indices

    if steps < 1 or batch < 1 or not lr > 0:
        raise ConfigError(f"--steps and --batch must be >= 1 and --lr > 0 (got {steps}, {batch}, {lr})")
    raw, kind, classes = attribute_targets(data, attribute)
    ds = SegmentationDataset(data)
    n = len(ds)
    rest, held_idx = split_indices(n, holdout_every)
    val_idx = [i for i in rest if i % holdout_every == holdout_every // 2]
    train_idx = [i for i in rest if i % holdout_every != holdout_every // 2]
    if len(train_idx) < 2 or not held_idx or not val_idx:
        raise DatasetError(f"{data}: {n} images are too few to train, validate and hold out (need at least "
                           f"{holdout_every})")
    if flip is None:
        flip = not any(attribute == a or attribute.startswith(a + ".") for a in FLIP_SENSITIVE)
    t0 = time.perf_counter()
    images = torch.stack([ds.load(i)["image"] for i in range(n)])                    # (N, 3, H, W)
    if kind == "regression":
        y = torch.tensor(raw, dtype=torch.float32, device="cpu")
        mean, std = float(y[train_idx].mean()), float(y[train_idx].std().clamp(min=1e-6))
        target = ((y - mean) / std)[:, None]
        out_dim = 1
    elif kind == "presence":
        target = torch.tensor(raw, dtype=torch.float32, device="cpu")[:, None]
        mean, std, out_dim = 0.0, 1.0, 1
    else:
        target = torch.tensor([classes.index(v) for v in raw], device="cpu")
        mean, std, out_dim = 0.0, 1.0, len(classes)
    torch.manual_seed(seed)
    net = AttributeNet(out_dim, channels).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    tr = torch.tensor(train_idx, device="cpu")
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=steps, desc=f"assessor {attribute}", unit="step")
    best = (-math.inf, 0, None)
    for step in range(1, steps + 1):
        pick = tr[torch.randint(len(tr), (batch,), generator=gen)]
        x = images[pick]
        if flip:
            mirror = torch.rand(batch, generator=gen) < 0.5
            x = torch.where(mirror[:, None, None, None], x.flip(-1), x)
        loss = _loss(net(x.to(device)), target[pick].to(device), kind)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % eval_every == 0 or step == steps:
            score = _headline(_scores(_predict(net, images, val_idx, device), target[val_idx], kind,
                                      target[train_idx]), kind)
            if score > best[0]:
                best = (score, step, {k: v.detach().clone() for k, v in net.state_dict().items()})
            net.train()
        if bar is not None:
            bar.update(1)
            bar.set_postfix_str(f"loss {loss.item():.4f} best val {best[0]:.3f}@{best[1]}", refresh=False)
    if bar is not None:
        bar.close()
    net.load_state_dict(best[2])
    heldout = _scores(_predict(net, images, held_idx, device), target[held_idx], kind, target[train_idx])
    meta = {"format": FORMAT, "version": 1, "attribute": attribute, "kind": kind, "classes": classes,
            "mean": mean, "std": std, "resolution": list(images.shape[2:]), "channels": channels, "steps": steps,
            "heldout": heldout, "num_heldout": len(held_idx), "num_train": len(train_idx),
            "num_validation": len(val_idx), "best_step": best[1], "validation_score": best[0], "flip": flip,
            "seed": seed,
            "dataset": {"path": str(Path(data).resolve()), **dataset_fingerprint(data)}}
    from memorygan.checkpoint import atomic_directory, state_dict_for_saving
    from safetensors.torch import save_file

    out = Path(out)
    with atomic_directory(out) as tmp:
        save_file(state_dict_for_saving(net), str(tmp / WEIGHTS))
        (tmp / CONFIG).write_text(json.dumps(meta, indent=2) + "\n")
    return AssessorReport(out, attribute, kind, heldout, time.perf_counter() - t0)


@torch.no_grad()
def _predict(net, images, idx, device):
    net.eval()
    return torch.cat([net(images[idx[i:i + 256]].to(device)).cpu() for i in range(0, len(idx), 256)])


def _headline(scores: dict, kind: str) -> float:
    v = scores["r2"] if kind == "regression" else scores["accuracy"]
    return v if math.isfinite(v) else -math.inf


def _loss(pred, target, kind):
    if kind == "regression":
        return F.mse_loss(pred, target)
    if kind == "presence":
        return F.binary_cross_entropy_with_logits(pred, target)
    return F.cross_entropy(pred, target)


def _scores(pred, target, kind, train_target) -> dict:
    if kind == "regression":
        ss_res = float(((pred - target) ** 2).sum())
        ss_tot = float(((target - target.mean()) ** 2).sum())
        return {"r2": 1 - ss_res / ss_tot if ss_tot > 0 else math.nan,
                "mae_normalised": float((pred - target).abs().mean())}
    if kind == "presence":
        acc = float(((pred > 0).float() == target).float().mean())
        majority = float(max(train_target.mean(), 1 - train_target.mean()))
        return {"accuracy": acc, "majority_baseline": majority}
    acc = float((pred.argmax(1) == target).float().mean())
    majority = float(torch.bincount(train_target).max()) / len(train_target)
    return {"accuracy": acc, "majority_baseline": majority}


def load_regressor(path, device="cpu") -> tuple[AttributeNet, dict]:
    from safetensors.torch import load_file

    path = Path(path)
    cfg_path = path / CONFIG
    if not cfg_path.is_file():
        raise CheckpointError(f"{path}: no {CONFIG} (not an assessor folder made by `memorygan edit train-assessor`)")
    try:
        meta = json.loads(cfg_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{cfg_path}: unreadable ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or meta.get("kind") not in KINDS:
        raise CheckpointError(f"{cfg_path}: not a memorygan assessor config")
    out_dim = len(meta["classes"]) if meta["kind"] == "classes" else 1
    net = AttributeNet(out_dim, int(meta.get("channels", 32)))
    try:
        state = load_file(str(path / WEIGHTS))
    except Exception as e:  # noqa: BLE001 - any unreadable weights file is reported the same way
        raise CheckpointError(f"{path / WEIGHTS}: unreadable ({e})") from None
    from memorygan.checkpoint import check_state_dict
    check_state_dict(net.state_dict(), state, str(path / WEIGHTS))
    net.load_state_dict(state)
    return net.eval().requires_grad_(False).to(device), meta


def regressor_assessor(spec: str, rest: str, device="cpu"):
    """The assessor of a `regressor:DIR[:CLASS]` spec."""
    from memorygan.editing.assessors import Assessor

    folder, _, cls = rest.rpartition(":") if rest.count(":") and not Path(rest).exists() else (rest, "", "")
    if not folder:
        raise ConfigError(f"assessor {spec!r}: regressor:DIR needs the assessor folder")
    net, meta = load_regressor(folder, device)
    kind, res = meta["kind"], tuple(meta["resolution"])
    if kind == "classes":
        if cls not in meta["classes"]:
            raise ConfigError(f"assessor {spec!r}: {meta['attribute']} is a class attribute; name one of its classes "
                              f"as regressor:{folder}:CLASS ({', '.join(meta['classes'])})")
        k = meta["classes"].index(cls)
    elif cls:
        raise ConfigError(f"assessor {spec!r}: {meta['attribute']} is a {kind} attribute and takes no class")

    def fn(image, seg, parts):
        x = image.float()
        if tuple(x.shape[2:]) != res:
            x = F.interpolate(x, size=res, mode="bilinear", align_corners=False, antialias=True)
        out = net(x)
        if kind == "regression":
            return out[:, 0] * meta["std"] + meta["mean"]
        if kind == "presence":
            return torch.sigmoid(out[:, 0])
        return torch.softmax(out, dim=1)[:, k]
    summary = f"regressor of {meta['attribute']} ({kind}, held-out {meta['heldout']})"
    return Assessor(spec, fn, [], summary)
