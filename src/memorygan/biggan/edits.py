"""The thesis's edits on its BigGAN.

GANalyze (chapter 3, Eq. 3.1): a direction theta in z, learned with the class held fixed, such that moving z by
alpha theta changes an assessor A by alpha in units of s (2 std of A inside the classes by default, see
assessor_scale):

    L(theta) = E_{z, y, alpha} [ ((A(G(z + alpha theta, y)) - A(G(z, y))) / s - alpha)^2 ],  alpha ~ U[-0.5, 0.5]

judged by the slope and Spearman correlation of the assessor change against alpha on held-out seeds, and by how
often the domain classifier keeps the sample in its class (an edit within a class, not across classes).

Paint-by-Word (chapter 4, Eqs. 4.4-4.11): G = h(f(z)) split at the feature map w after the first block
("we split the featuremap output of the first convolutional block", Sec. 4.3.2): outside the mask w stays the
source's w0, inside it is w = f(z', y) for a new latent z', and h runs with the source's conditioning:
G_{z,m}(z') = h(w0 (1 - m) + f(z') m). z' is optimised with CMA-ES (Sec. 4.3.3), then Adam, on a score of the
region plus an image-consistency loss outside it (Eq. 4.10).
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from memorygan.biggan.models import BigGANGenerator, truncated_z
from memorygan.errors import CheckpointError, ConfigError

ALPHA_RANGE = 0.5
#: Paint-by-Word's image-consistency weight (Eq. 4.10; the thesis gives none): on the first CPU run 30 kept every edit
#: >= 35 dB outside (median 41.4, min 39.2) where 10 kept 18 of 20 (median 37.7, min 34.2), for 18 % less change inside
LAMBDA_IMG = 30.0
FORMAT = "memorygan-biggan-direction"


# ---------------------------------------------------------------------------------------------------- assessors

def _unit(image: torch.Tensor) -> torch.Tensor:
    return (image.float() + 1) / 2


def brightness(image: torch.Tensor) -> torch.Tensor:
    """(B,) mean Rec. 601 luma in [0, 1]."""
    rgb = _unit(image)
    return (0.299 * rgb[:, 0] + 0.587 * rgb[:, 1] + 0.114 * rgb[:, 2]).mean((1, 2))


def colourfulness(image: torch.Tensor) -> torch.Tensor:
    """(B,) Hasler & Suesstrunk's colourfulness (the thesis's metric for its colour finding, Sec. 3.4)."""
    rgb = _unit(image)
    rg = rgb[:, 0] - rgb[:, 1]
    yb = 0.5 * (rgb[:, 0] + rgb[:, 1]) - rgb[:, 2]
    std = torch.sqrt(rg.var((1, 2), unbiased=False) + yb.var((1, 2), unbiased=False) + 1e-8)
    mean = torch.sqrt(rg.mean((1, 2)) ** 2 + yb.mean((1, 2)) ** 2 + 1e-8)
    return std + 0.3 * mean


ASSESSORS = {"brightness": brightness, "colourfulness": colourfulness}


def get_assessor(name: str):
    if name not in ASSESSORS:
        raise ConfigError(f"unknown BigGAN assessor {name!r}; choose one of {', '.join(ASSESSORS)}")
    return ASSESSORS[name]


# ---------------------------------------------------------------------------------------------------- GANalyze

@dataclass
class ZDirection:
    theta: torch.Tensor            # (dim_z,)
    assessor: str
    scale: float
    generator: str                 # fingerprint
    info: dict = field(default_factory=dict)


def _fingerprint(G: BigGANGenerator) -> str:
    from memorygan.checkpoint import generator_fingerprint
    return generator_fingerprint(G)


SCALES = ("within-class", "all")


def _check_scale(kind: str) -> None:
    if kind not in SCALES:
        raise ConfigError(f"unknown scale {kind!r}; choose one of {', '.join(SCALES)}")


def _spread(vals: torch.Tensor, ys: torch.Tensor, C: int, kind: str) -> float:
    """2 std of `vals`: pooled inside the C classes (sqrt of the mean of each class's variance) or over all."""
    vals = vals.double()
    if kind == "all":
        std = float(vals.std())
    else:
        std = float(torch.stack([vals[ys == c].var() for c in range(C)]).mean().sqrt())
    if not math.isfinite(std) or std < 1e-8:
        raise ConfigError("the assessor does not vary over these images; no direction can be learned")
    return 2 * std


@torch.no_grad()
def assessor_scale(G: BigGANGenerator, assessor, n: int = 256, seed: int = 987, batch: int = 32,
                   kind: str = "within-class") -> float:
    """The unit s of Eq. 3.1 from the generator's samples: 2 std of the assessor over n samples, the classes taken
    in turn (sample i has class i % C). `within-class`: the pooled std inside the classes, the spread an edit that
    keeps the class can use; `all`: the std over all samples, which adds the differences between the classes (a
    night scene is darker than a snowfield) that a within-class edit must not make. A generator that varies little
    inside a class (an intra-class collapse) gets a small unit here: `data_scale` reads the real images instead."""
    _check_scale(kind)
    C = G.config.num_classes
    if n < 2 * C:
        raise ConfigError(f"the scale needs >= 2 samples per class: n >= {2 * C}, got {n}")
    gen = torch.Generator(device=G.device).manual_seed(seed)
    vals, ys = [], []
    for s in range(0, n, batch):
        b = min(batch, n - s)
        z = truncated_z(b, G.config.dim_z, None, gen, G.device)
        y = torch.arange(s, s + b, device=G.device) % C
        vals.append(assessor(G.generate(z, y)).cpu())
        ys.append(y.cpu())
    return _spread(torch.cat(vals), torch.cat(ys), C, kind)


@torch.no_grad()
def data_scale(data_dir, assessor, num_classes: int, kind: str = "within-class", batch: int = 256) -> float:
    """The unit s from the real images of a labelled dataset (dataset.json categories): the same for every
    generator of the data, so a collapsed generator is asked for the changes the data has, not for its own."""
    from memorygan.data.labelled import LabelledDataset

    _check_scale(kind)
    ds = LabelledDataset(data_dir)
    C = len(ds.info.categories)
    if C != num_classes:
        raise ConfigError(f"--scale-from {data_dir}: the dataset has {C} classes, the generator {num_classes}")
    counts = torch.bincount(ds.labels, minlength=C)
    if int(counts.min()) < 2:
        raise ConfigError(f"--scale-from {data_dir}: every class needs >= 2 images (class "
                          f"{ds.info.categories[int(counts.argmin())]!r} has {int(counts.min())})")
    vals = []
    for s in range(0, len(ds.names), batch):
        images = torch.stack([ds.load(i)["image"] for i in range(s, min(s + batch, len(ds.names)))])
        vals.append(assessor(images).cpu())
    return _spread(torch.cat(vals), ds.labels, C, kind)


def learn_direction(G: BigGANGenerator, assessor: str, steps: int = 300, batch: int = 16, lr: float = 0.05,
                    seed: int = 0, scale: str = "within-class", scale_from=None) -> ZDirection:
    """GANalyze in z with the class held fixed (module docstring); `scale`: the kind of unit s, measured on the
    real images of the labelled dataset `scale_from` (data_scale) or else on G's samples (assessor_scale). G stays
    frozen, in eval mode."""
    fn = get_assessor(assessor)
    if steps < 1 or batch < 1 or not lr > 0:
        raise ConfigError(f"steps and batch must be >= 1 and lr > 0 (got {steps}, {batch}, {lr})")
    G.eval().requires_grad_(False)
    t0 = time.perf_counter()
    unit = (data_scale(scale_from, fn, G.config.num_classes, scale) if scale_from is not None
            else assessor_scale(G, fn, kind=scale))
    theta = torch.zeros(G.config.dim_z, device=G.device, requires_grad=True)
    opt = torch.optim.Adam([theta], lr=lr)
    gen = torch.Generator(device=G.device).manual_seed(seed)
    curve = []
    for step in range(1, steps + 1):
        z = truncated_z(batch, G.config.dim_z, None, gen, G.device)
        y = torch.randint(0, G.config.num_classes, (batch,), generator=gen, device=G.device)
        alpha = (torch.rand(batch, generator=gen, device=G.device) * 2 - 1) * ALPHA_RANGE
        with torch.no_grad():
            s0 = fn(G.generate(z, y))
        s1 = fn(G.generate(z + alpha[:, None] * theta, y))
        loss = (((s1 - s0) / unit - alpha) ** 2).mean()                        # Eq. 3.1
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 10 == 0 or step == steps:
            curve.append({"step": step, "loss": float(loss.detach()), "theta_norm": float(theta.detach().norm())})
    return ZDirection(theta.detach(), assessor, unit, _fingerprint(G),
                      {"steps": steps, "batch": batch, "lr": lr, "seed": seed, "scale": scale,
                       "scale_from": str(scale_from) if scale_from is not None else "samples", "curve": curve,
                       "seconds": time.perf_counter() - t0})


def save_direction(d: ZDirection, out) -> Path:
    from safetensors.torch import save_file

    from memorygan.checkpoint import atomic_directory
    out = Path(out)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / "direction.json").is_file())):
        raise ConfigError(f"--out {out} exists and is not a direction folder; refusing to replace it")
    with atomic_directory(out) as tmp:
        save_file({"theta": d.theta.detach().cpu().contiguous()}, str(tmp / "direction.safetensors"))
        (tmp / "direction.json").write_text(json.dumps({"format": FORMAT, "assessor": d.assessor, "scale": d.scale,
                                                        "generator": d.generator, "info": d.info}, indent=2))
    return out


def load_direction(path, G: BigGANGenerator | None = None) -> ZDirection:
    from safetensors.torch import load_file

    from memorygan.fileio import read_json
    path = Path(path)
    meta = read_json(path / "direction.json", CheckpointError, "BigGAN direction")
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path / 'direction.json'}: not a {FORMAT} file")
    theta = load_file(str(path / "direction.safetensors"))["theta"]
    d = ZDirection(theta, meta["assessor"], float(meta["scale"]), meta["generator"], meta.get("info", {}))
    if G is not None:
        if theta.shape != (G.config.dim_z,):
            raise CheckpointError(f"{path}: theta has shape {tuple(theta.shape)}, this generator's z has "
                                  f"{G.config.dim_z} dimensions")
        if d.generator != _fingerprint(G):
            raise CheckpointError(f"{path}: learned on another generator (fingerprint {d.generator})")
        d.theta = d.theta.to(G.device)
    return d


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr
    return float(spearmanr(a, b).statistic)


@torch.no_grad()
def evaluate_direction(G: BigGANGenerator, d: ZDirection, classifier=None, seeds=range(500),
                       alphas=(-0.5, -0.25, 0.25, 0.5), batch: int = 50) -> dict:
    """Slope of (A(edit) - A(source)) / s against alpha (least squares through 0; `slope_raw`: in the assessor's own
    units, slope * s, comparable between scales), Spearman over every (seed, alpha), and with a classifier how the
    edits keep the class (the class of seed i is i % C): `class_kept` over the edits whose source the classifier
    puts in its class (an edit can only keep a class its source has), `class_kept_all` over every edit, and
    `source_accuracy`. Seeds are disjoint from training draws when they start above the ones used there."""
    fn = get_assessor(d.assessor)
    alphas = [float(a) for a in alphas]
    if not alphas or any(a == 0 for a in alphas):
        raise ConfigError(f"alphas must be non-zero (alpha 0 is the source itself), got {alphas}")
    C = G.config.num_classes
    seeds = list(seeds)
    xs, ys = [], []
    kept = kept_all = sources_ok = edits_of_ok = total = 0
    for s in range(0, len(seeds), batch):
        chunk = seeds[s:s + batch]
        z = torch.cat([truncated_z(1, G.config.dim_z, None, torch.Generator().manual_seed(int(k))) for k in chunk])
        z = z.to(G.device)
        y = torch.tensor([k % C for k in chunk], device=G.device)
        x0 = G.generate(z, y)
        s0 = fn(x0)
        ok = classifier(x0).argmax(1) == y if classifier is not None else None
        if ok is not None:
            sources_ok += int(ok.sum())
        for a in alphas:
            x = G.generate(z + a * d.theta, y)
            xs.append(np.full(len(chunk), a))
            ys.append(((fn(x) - s0) / d.scale).cpu().numpy())
            if ok is not None:
                same = classifier(x).argmax(1) == y
                kept_all += int(same.sum())
                kept += int((same & ok).sum())
                edits_of_ok += int(ok.sum())
                total += len(chunk)
    xs, ys = np.concatenate(xs), np.concatenate(ys)
    slope = float((xs * ys).sum() / (xs * xs).sum())
    out = {"assessor": d.assessor, "scale": d.info.get("scale", "all"), "scale_from": d.info.get("scale_from",
           "samples"), "seeds": len(seeds), "alphas": alphas,
           "slope": slope, "slope_raw": slope * d.scale, "spearman": spearman(xs, ys),
           "mean_change_at": {str(a): float(ys[xs == a].mean()) for a in alphas}}
    if classifier is not None:
        out["class_kept"] = kept / edits_of_ok if edits_of_ok else math.nan
        out["class_kept_all"] = kept_all / total
        out["source_accuracy"] = sources_ok / len(seeds)
    return out


# ---------------------------------------------------------------------------------------------------- Paint-by-Word

class SplitBigGAN:
    """G_{z,m}(z') = h(w0 (1 - m) + f(z') m) with w the output of the first block (Eq. 4.7). The source (z0, y)
    is fixed; `__call__` maps candidate latents (N, dim_z) to images (N, 3, R, R)."""

    def __init__(self, G: BigGANGenerator, z0: torch.Tensor, y: torch.Tensor, mask: torch.Tensor):
        cfg = G.config
        if cfg.deep:
            raise ConfigError("Paint-by-Word's feature split is implemented for BigGAN (not BigGAN-deep)")
        self.G, self.z0, self.y = G, z0.reshape(1, -1), y.reshape(1)
        emb = G.shared(self.y)
        self.ys0 = self._conds(self.z0, emb)
        self.emb = emb
        with torch.no_grad():
            self.w0 = self.f(self.z0, self.ys0)
        res = self.w0.shape[-1]
        self.m = F.interpolate(mask.float().reshape(1, 1, *mask.shape[-2:]), size=(res, res), mode="area")

    def _conds(self, z, emb):
        cfg = self.G.config
        if cfg.hier:
            zs = z.split(cfg.z_chunk, 1)
            return zs[0], [torch.cat([emb.expand(len(z), -1), c], 1) for c in zs[1:]]
        return z, [emb.expand(len(z), -1)] * len(self.G.blocks)

    def f(self, z, conds):
        """The first block's output feature map (the w of Eq. 4.4)."""
        z_lin, ys = conds
        h = self.G.linear(z_lin).view(len(z_lin), -1, 4, 4)
        for block in self.G.blocks[0]:
            h = block(h, ys[0])
        return h

    def h(self, w):
        """The rest of the network with the source's conditioning."""
        _, ys = self.ys0
        for i, blocklist in enumerate(self.G.blocks):
            if i == 0:
                continue
            for block in blocklist:
                w = block(w, ys[i].expand(len(w), -1))
        return torch.tanh(self.G.output_layer(w))

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        w = self.f(z, self._conds(z, self.emb))
        return self.h(self.w0 * (1 - self.m) + w * self.m)


def psnr_outside(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> float:
    """PSNR (dB, images in [-1, 1] read as [0, 1]) over the pixels where mask == 0."""
    out = (mask.reshape(1, 1, *mask.shape[-2:]) < 0.5).float().expand_as(a)
    mse = (((a - b) / 2) ** 2 * out).sum() / out.sum().clamp_min(1)
    return float(10 * torch.log10(1 / mse.clamp_min(1e-12)))


@dataclass
class PaintResult:
    z: torch.Tensor
    image: torch.Tensor
    source: torch.Tensor
    score_before: float
    score_after: float
    psnr_outside: float
    history: list


def region_score(assessor: str, target: float):
    """Score of a region: squared distance of the assessor, measured inside the mask, to a target value (e.g.
    brightness 0.9 paints the region bright)."""
    fn = get_assessor(assessor)

    def score(images: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        m = mask.reshape(1, 1, *mask.shape[-2:]).to(images)
        # crop-free masked measure: fill outside with the region's mean so the assessor sees only the region
        mean = (images * m).sum((2, 3), keepdim=True) / m.sum().clamp_min(1)
        inside = images * m + mean * (1 - m)
        return (fn(inside) - target) ** 2
    return score


def paint_by_word(G: BigGANGenerator, z0: torch.Tensor, y: int, mask: torch.Tensor, score,
                  lambda_img: float = LAMBDA_IMG, cma_iterations: int = 20, popsize: int = 16, sigma0: float = 0.5,
                  adam_steps: int = 30, lr: float = 0.02, seed: int = 0) -> PaintResult:
    """Eq. 4.10 over the split generator, CMA-ES then Adam (Sec. 4.3.3)."""
    from memorygan.editing.region import run_cma

    G.eval().requires_grad_(False)
    dev = G.device
    z0 = z0.reshape(1, -1).to(dev)
    mask = mask.to(dev).float()
    split = SplitBigGAN(G, z0, torch.tensor([y], device=dev), mask)
    with torch.no_grad():
        source = split(z0)
    outside = 1 - mask.reshape(1, 1, *mask.shape[-2:])

    def loss_of(z):
        img = split(z)
        sem = score(img, mask)                                                        # Eq. 4.8
        cons = (((img - source) * outside) ** 2).mean((1, 2, 3))                       # Eq. 4.9 (L2)
        return sem + lambda_img * cons

    def fn(xs):
        with torch.no_grad():
            z = z0 + torch.as_tensor(xs, dtype=torch.float32, device=dev)
            return loss_of(z).cpu().double().numpy()
    x, best, history = run_cma(fn, G.config.dim_z, popsize, sigma0, cma_iterations, seed)
    z = (z0 + torch.as_tensor(x, dtype=torch.float32, device=dev)).clone().requires_grad_(True)
    opt = torch.optim.Adam([z], lr=lr)
    for i in range(adam_steps):
        loss = loss_of(z).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        history.append({"adam_step": i + 1, "loss": float(loss.detach())})
    with torch.no_grad():
        image = split(z.detach())
        before = float(score(source, mask))
        after = float(score(image, mask))
    return PaintResult(z.detach(), image, source, before, after, psnr_outside(image, source, mask), history)
