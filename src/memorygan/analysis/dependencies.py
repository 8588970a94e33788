"""Part dependencies, real vs generated (MemoryGAN Sec. 4.5: "eye colour follows skin and hair"; DESIGN 4: the
procedural portraits draw skin tone, hair darkness and eye colour from one pigment factor, and a smile widens the
mouth and narrows the eyes).

The same measures are taken from an image and its part mask, whoever drew them: real portraits with their true
masks, and generated samples with the argmax of their own segmentation. Correlations between the measures over many
images show which dependencies between parts a model reproduces: a model whose parts were sampled independently
(every part its own code) cannot reproduce them, one whose parts share their code (SemanticStyleGAN's single w) or
are sampled one after another by a working memory (MemoryGAN) can.

Measures per image (NaN when a part is absent):
    skin_lightness, hair_lightness, eye_lightness   mean luma (Rec. 601, [0, 1]) over the part's pixels
    eye_blueness                                    mean (blue - red) over the eyes' pixels
    mouth_width                                     horizontal extent of the mouth
    eye_height                                      mean height of the eyes (their pixels per column they span);
                                                    both divided by the horizontal extent of the skin (pose scale)
With the dataset's attributes.jsonl, the ground-truth correlations of the corresponding attributes are reported too.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from memorygan.errors import ConfigError

NEEDED_PARTS = ("skin", "hair", "eyes", "mouth")
MEASURES = ("skin_lightness", "hair_lightness", "eye_lightness", "eye_blueness", "mouth_width", "eye_height")
#: the dependencies built into the procedural portraits: (measure a, measure b, what drives both)
PAIRS = (
    ("skin_lightness", "hair_lightness", "pigment"),
    ("skin_lightness", "eye_lightness", "pigment"),
    ("hair_lightness", "eye_lightness", "pigment"),
    ("skin_lightness", "eye_blueness", "pigment"),
    ("mouth_width", "eye_height", "smile"),
)
#: attributes.jsonl fields behind each measure (ground truth of the real images)
ATTRIBUTES = {"skin_lightness": ("skin", "lightness"), "hair_lightness": ("hair", "lightness"),
              "eye_lightness": ("eyes", "lightness"), "eye_blueness": ("eyes", "rgb"),
              "mouth_width": ("mouth", "width"), "eye_height": ("eyes", "height")}
LUMA = (0.299, 0.587, 0.114)


def part_ids(names: list[str]) -> dict[str, int]:
    """Ids of the parts the measures need, from the class names; ConfigError naming what is missing."""
    missing = [p for p in NEEDED_PARTS if p not in names]
    if missing:
        raise ConfigError(f"part dependencies need the parts {', '.join(NEEDED_PARTS)} (a portraits-like dataset); "
                          f"missing: {', '.join(missing)} (classes: {', '.join(names)})")
    return {p: names.index(p) for p in NEEDED_PARTS}


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """values (B, H, W), mask (B, H, W) bool -> (B,) mean over the mask, NaN where it is empty."""
    n = mask.sum((1, 2))
    s = (values * mask).sum((1, 2))
    return torch.where(n > 0, s / n.clamp(min=1), torch.full_like(s, math.nan))


def _extent(mask: torch.Tensor, dim: int) -> torch.Tensor:
    """(B, H, W) bool -> (B,) number of rows (dim=1) or columns (dim=2) spanned from the first to the last one that
    holds the mask; NaN where it is empty."""
    line = mask.any(dim=3 - dim).double()                       # dim=2: any over H -> (B, W)
    idx = torch.arange(line.shape[1], dtype=torch.float64, device=line.device)
    present = line.sum(1) > 0
    first = torch.where(line > 0, idx, torch.full_like(idx, math.inf)).min(1).values
    last = torch.where(line > 0, idx, torch.full_like(idx, -math.inf)).max(1).values
    return torch.where(present, last - first + 1, torch.full_like(first, math.nan))


def _mean_height(mask: torch.Tensor) -> torch.Tensor:
    """(B, H, W) bool -> (B,) pixels of the mask per column that holds it (its mean height, finer than the extent of
    a part a few pixels high); NaN where it is empty."""
    cols = mask.any(1).sum(1).double()
    area = mask.sum((1, 2)).double()
    return torch.where(cols > 0, area / cols.clamp(min=1), torch.full_like(area, math.nan))


def part_measures(image: torch.Tensor, ids: torch.Tensor, parts: dict[str, int]) -> dict[str, np.ndarray]:
    """The measures of the module docstring for a batch.

    image: (B, 3, H, W) in [-1, 1]; ids: (B, H, W) integer part ids; parts: `part_ids(names)`.
    Returns {measure: (B,) float64 array}.
    """
    if image.ndim != 4 or image.shape[1] != 3 or tuple(ids.shape) != (image.shape[0], *image.shape[2:]):
        raise ValueError(f"image must be (B, 3, H, W) and ids (B, H, W), got {tuple(image.shape)} and "
                         f"{tuple(ids.shape)}")
    rgb = ((image.double() + 1) / 2).clamp(0, 1)
    luma = sum(c * rgb[:, i] for i, c in enumerate(LUMA))
    m = {p: ids == k for p, k in parts.items()}
    skin_width = _extent(m["skin"], 2)
    out = {"skin_lightness": _masked_mean(luma, m["skin"]), "hair_lightness": _masked_mean(luma, m["hair"]),
           "eye_lightness": _masked_mean(luma, m["eyes"]),
           "eye_blueness": _masked_mean(rgb[:, 2] - rgb[:, 0], m["eyes"]),
           "mouth_width": _extent(m["mouth"], 2) / skin_width, "eye_height": _mean_height(m["eyes"]) / skin_width}
    return {k: v.cpu().numpy() for k, v in out.items()}


def correlation(a: np.ndarray, b: np.ndarray) -> tuple[float, int]:
    """Pearson correlation over the images where both are finite, and their number (NaN below 3 images or with a
    constant measure)."""
    ok = np.isfinite(a) & np.isfinite(b)
    n = int(ok.sum())
    if n < 3:
        return math.nan, n
    x, y = a[ok] - a[ok].mean(), b[ok] - b[ok].mean()
    den = math.sqrt(float((x * x).sum() * (y * y).sum()))
    return (float((x * y).sum() / den) if den > 0 else math.nan), n


def _summary(measures: dict[str, np.ndarray]) -> dict:
    pairs = {}
    for a, b, _ in PAIRS:
        r, n = correlation(measures[a], measures[b])
        pairs[f"{a}~{b}"] = {"r": r, "n": n}
    matrix = [[correlation(measures[a], measures[b])[0] for b in MEASURES] for a in MEASURES]
    present = {k: float(np.isfinite(v).mean()) for k, v in measures.items()}
    return {"pairs": pairs, "matrix": matrix, "present": present, "num_images": len(next(iter(measures.values())))}


def _attribute_value(rec: dict, measure: str) -> float:
    part, key = ATTRIBUTES[measure]
    v = (rec.get(part) or {}).get(key)
    if measure == "eye_blueness" and v is not None:
        return float(v[2] - v[0])
    return float(v) if v is not None else math.nan


@torch.no_grad()
def real_dependencies(data, n: int = 1000, batch: int = 64) -> dict:
    """Measures and correlations of the first `n` real images of a dataset (true masks), plus the ground-truth
    correlations from attributes.jsonl when the dataset has one."""
    from memorygan.data.dataset import SegmentationDataset
    from memorygan.data.files import ATTRIBUTES_FILE, read_attributes

    ds = SegmentationDataset(data)
    parts = part_ids(ds.classes)
    n = min(int(n), len(ds))
    if n < 3:
        raise ConfigError(f"n must be at least 3 images, got {n}")
    acc: dict[str, list] = {k: [] for k in MEASURES}
    for s in range(0, n, batch):
        items = [ds[i] for i in range(s, min(s + batch, n))]
        m = part_measures(torch.stack([it["image"] for it in items]), torch.stack([it["ids"] for it in items]), parts)
        for k in MEASURES:
            acc[k].append(m[k])
    measures = {k: np.concatenate(v) for k, v in acc.items()}
    out = {"source": str(data), **_summary(measures)}
    if (Path(data) / ATTRIBUTES_FILE).is_file():
        by_name = {r.get("basename"): r for r in read_attributes(data)}
        recs = [by_name.get(name, {}) for name in ds.names[:n]]
        truth = {k: np.array([_attribute_value(r, k) for r in recs]) for k in MEASURES}
        out["ground_truth"] = {f"{a}~{b}": {"r": correlation(truth[a], truth[b])[0]} for a, b, _ in PAIRS}
    return out


@torch.no_grad()
def generated_dependencies(G, n: int = 1000, seed: int = 0, truncation: float = 1.0, batch: int = 50) -> dict:
    """Measures and correlations of `n` samples of G (the model's own distribution), with their own masks."""
    from memorygan.metrics.samples import eval_mode

    parts = part_ids(G.part_names)
    if int(n) < 3:
        raise ConfigError(f"n must be at least 3 samples, got {n}")
    acc: dict[str, list] = {k: [] for k in MEASURES}
    gen = torch.Generator().manual_seed(int(seed))
    with eval_mode(G):
        for s in range(0, int(n), batch):
            out = G(G.sample_z(min(batch, int(n) - s), generator=gen), truncation=truncation, noise_mode="const")
            m = part_measures(out.image.float().cpu(), out.seg.argmax(1).cpu(), parts)
            for k in MEASURES:
                acc[k].append(m[k])
    measures = {k: np.concatenate(v) for k, v in acc.items()}
    return {"source": f"{G.arch} samples (seed {seed}, truncation {truncation})", **_summary(measures)}


def dependency_table(real: dict, models: dict[str, dict]) -> list[str]:
    """Markdown rows: per pair, the ground truth, the real images measured, and each model (|r - real| beside)."""
    def f(x):
        return "–" if x is None or not math.isfinite(x) else f"{x:+.2f}"

    head = "| dependency | driven by | ground truth | real images | " + " | ".join(models) + " |"
    rows = [head, "|" + "---|" * (4 + len(models))]
    for a, b, cause in PAIRS:
        key = f"{a}~{b}"
        gt = (real.get("ground_truth") or {}).get(key, {}).get("r")
        r = real["pairs"][key]["r"]
        cells = []
        for rec in models.values():
            m = rec["pairs"][key]["r"]
            gap = abs(m - r) if math.isfinite(m) and math.isfinite(r) else math.nan
            cells.append(f"{f(m)} (Δ {gap:.2f})" if math.isfinite(gap) else f(m))
        rows.append(f"| {a} ~ {b} | {cause} | {f(gt)} | {f(r)} | " + " | ".join(cells) + " |")
    return rows


def write_dependencies(out, data, generators: dict, n: int = 1000, seed: int = 0, truncation: float = 1.0) -> dict:
    """`dependencies.json` and `dependencies.md` (the table) in `out`: the real dataset and each generator
    ({label: G})."""
    from memorygan.analysis.figures import write_json

    out = Path(out)
    record = {"analysis": "dependencies", "measures": list(MEASURES), "pairs": [list(p) for p in PAIRS],
              "real": real_dependencies(data, n)}
    record["models"] = {label: generated_dependencies(G, n, seed, truncation) for label, G in generators.items()}
    table = dependency_table(record["real"], record["models"])
    out.mkdir(parents=True, exist_ok=True)
    (out / "dependencies.md").write_text("\n".join(table) + "\n")
    record["json"] = str(write_json(record, out / "dependencies.json"))
    return record
