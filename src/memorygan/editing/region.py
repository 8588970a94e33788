"""Region edits: Paint-by-Word (Andonian thesis Ch. 4) with a generator split so only the region can change.

The generator is split at every layer (Eqs. 4.3-4.7): the local generators and the fusion run on the optimised
codes w and on the source codes w_s, and the two fused feature maps (and coarse masks) are blended with the
blurred region mask m downsampled to the coarse resolution; the render net then runs on the blend, and each of its
activations (both convolutions of every block, the rgb and seg skips) is blended again with the source's activation
by m at that resolution:

    fused = m * fused(w) + (1 - m) * fused(w_s),   coarse_seg likewise                                       (4.7)
    a_l   = m_l * a_l(blend) + (1 - m_l) * a_l(w_s)       at every render layer l

Everything before the render net is per pixel (1x1 modulated layers, per-pixel fusion), so the first line is the
thesis's "one style inside the mask, another outside, at every modulated layer". The render net has no styles; its
3x3 convolutions would carry the edit across the mask's border (measured: 28-30 dB outside with the blend at the
render input alone), so the split also holds its activations: wherever m is 0 the image and the segmentation are
the source's, bit for bit, and only the blur band of m (BLUR) changes outside the painted pixels. Losses:

    L_sem(w) = D_score(G_{z,m}(w) restricted to m)                        (4.8: CLIP on x * m and random crops of
                                                                           it; attribute words inside the parts' masks
                                                                           times m)
    L_img(w) = L1 + structure outside: mean |x - x_s| (1 - m) / 2 + (1 - SSIM of x (1 - m) and x_s (1 - m))    (4.9)
    L(w)     = L_sem(w) + lambda_img L_img(w)                                                                  (4.10)

The perceptual term of the thesis (LPIPS) needs pretrained weights that cannot be had here; SSIM (no weights)
stands in as the structural part of d.

Search space: the selected parts' codes (`editing.text.EditSpace`, parts space) in normalised coordinates,
w = w_s + delta(x): `basis="codes"`: delta = sigma * x per code dimension (sigma: the spread of the parts' codes over
random samples); `basis="pca"`: delta = sum_c x_c sigma_c v_c over the top `components` principal directions of
each (part, role) code. Optimisers: CMA-ES (`cma` package; population 50, sigma0 0.5, 20 iterations; the thesis's
choice: it avoids adversarial solutions) then Adam (lr 0.1 in these normalised coordinates, 100 steps), CMA-ES
alone, or Adam alone. The CMA result is the better of its best sample and its mean. Deterministic for a seed.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from memorygan.models.codes import Codes
from memorygan.editing.space import EditSpace, edit_space, role_masks
from memorygan.errors import ConfigError

OPTIMIZERS = ("cma+adam", "cma", "adam")
BASES = ("pca", "codes")
POPSIZE, SIGMA0, CMA_ITERS = 50, 0.5, 20           # Paint-by-Word's CMA-ES
ADAM_LR, ADAM_STEPS = 0.1, 100                     # lr: the thesis gives none; 0.01 left the loss far from
                                                   # converged (docs/text-edits.md, "Adam's lr")
LAMBDA_IMG = 10.0                                  # from the sweep in docs/text-edits.md
BLUR = 1.0                                         # Gaussian sigma of the mask blur, in pixels at 64 px
BATCH = 1                                          # images optimised together (> 1 pays on a GPU only:
                                                   # benchmarks/bench_region.py)
CMA_ROWS = 64                                      # CMA-ES rows per generator call (at least one population)
COVER = 0.05                                       # --mask alone: parts covering >= 5% of the mask are edited


# ----------------------------------------------------------------------------------------------- masks
def painted_region(array) -> "np.ndarray":
    """A painted mask as users give it -> (H, W) float32 in [0, 1], the one rule for files and the demo's brush:
    the alpha channel of RGBA / LA paint, else the largest channel of RGB (paint of any colour; black keeps), else
    the grey level; 8-bit values / 255."""
    import numpy as np

    a = np.asarray(array)
    if a.ndim == 3:
        a = a[..., -1] if a.shape[-1] in (2, 4) else a.max(-1)
    if a.ndim != 2:
        raise ConfigError(f"a painted mask must be (H, W) or (H, W, channels), got shape {np.asarray(array).shape}")
    a = a.astype(np.float32)
    return a / 255.0 if a.max(initial=0) > 1 or np.asarray(array).dtype == np.uint8 else a


def read_mask(path, resolution: int) -> torch.Tensor:
    """A user mask PNG (grey levels, or the alpha / luminance of an RGB(A) file) -> (H, W) in [0, 1]."""
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"--mask {path}: no such file")
    try:
        with Image.open(path) as im:
            im.load()
            size = im.size
            if im.mode not in ("RGBA", "LA", "RGB", "L"):
                im = im.convert("RGBA" if "transparency" in im.info else ("L" if im.mode in ("1", "I", "I;16", "F")
                                                                           else "RGB"))
            band = np.asarray(im)
    except (UnidentifiedImageError, OSError) as e:
        raise ConfigError(f"--mask {path}: not a readable image ({e})") from None
    if size != (resolution, resolution):
        raise ConfigError(f"--mask {path} is {size[0]}x{size[1]} but the generator draws "
                          f"{resolution}x{resolution} images")
    mask = torch.from_numpy(painted_region(band))
    if float(mask.max()) < 0.5:
        raise ConfigError(f"--mask {path} paints no pixel (white = the region to edit, black = keep)")
    return mask


def gaussian_blur(mask: torch.Tensor, sigma: float) -> torch.Tensor:
    """(B, 1, H, W) separable Gaussian blur (reflect padding); sigma 0 returns the mask."""
    if sigma <= 0:
        return mask
    r = max(1, int(math.ceil(3 * sigma)))
    x = torch.arange(-r, r + 1, device=mask.device, dtype=mask.dtype)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    k = k / k.sum()
    m = F.pad(mask, (r, r, r, r), mode="reflect" if r < mask.shape[-1] else "replicate")
    m = F.conv2d(m, k.view(1, 1, 1, -1))
    return F.conv2d(m, k.view(1, 1, -1, 1))


@dataclass
class Region:
    """The painted region of each source image."""
    hard: torch.Tensor          # (B, H, W) bool: the pixels to edit (PSNR outside them)
    soft: torch.Tensor          # (B, H, W) blurred mask in [0, 1] (scorers read inside it, consistency outside)


def make_region(G, before, mask: torch.Tensor | None = None, parts: list[int] | None = None,
                blur: float | None = None) -> Region:
    """From a user mask (H, W) (the same for every image) or the union of `parts`' masks in each source image."""
    cfg = G.config
    b = before.image.shape[0]
    if mask is not None:
        hard = (mask.to(G.device) >= 0.5)[None].expand(b, -1, -1)
        soft_in = mask.to(G.device)[None, None].expand(b, 1, -1, -1).float()
    else:
        ids = before.seg.argmax(1)
        hard = torch.zeros_like(ids, dtype=torch.bool)
        for p in parts:
            hard |= ids == p
        if not bool(hard.flatten(1).any(1).all()):
            empty = [i for i in range(b) if not bool(hard[i].any())]
            raise ConfigError(f"--parts {', '.join(G.part_names[p] for p in parts)}: image {empty[0]} has no pixel of "
                              "these parts, nothing to edit (choose other seeds or paint a --mask)")
        soft_in = hard[:, None].float()
    sigma = BLUR * cfg.resolution / 64 if blur is None else blur
    soft = gaussian_blur(soft_in, sigma).clamp(0, 1)
    soft = torch.maximum(soft, hard[:, None].float())                  # the painted pixels are fully inside
    return Region(hard.clone(), soft[:, 0])


def covered_parts(G, before, mask: torch.Tensor, cover: float = COVER) -> list[int]:
    """Parts covering at least `cover` of the painted pixels in any source image (whose codes a mask edit moves)."""
    ids = before.seg.argmax(1)
    m = (mask.to(G.device) >= 0.5)
    total = m.sum().clamp(min=1)
    return [p for p in range(G.config.num_classes)
            if any(float(((ids[i] == p) & m).sum() / total) >= cover for i in range(ids.shape[0]))]


# ----------------------------------------------------------------------------------------------- split generator
@dataclass
class Reference:
    """The source image's side of the split: its fusion and every render activation (`RenderNet.forward`'s mix
    points), batch 1 or B."""
    fusion: object
    trace: list

    def select(self, i) -> "Reference":
        """Image i (an int: batch 1), a slice of images, or rows gathered by an index tensor."""
        from memorygan.models.generator import Fusion

        i = slice(i, i + 1) if isinstance(i, int) else i
        f = self.fusion
        return Reference(Fusion(f.masks[i], f.weights[i], f.fused[i]), [t[i] for t in self.trace])


def render_reference(G, hidden, depths, noise=None):
    """Fuse and render the source, recording the render activations. -> (Reference, image, seg)."""
    fusion = G.fuse(hidden, depths)
    trace = []

    def record(i, t):
        trace.append(t.detach())
        return t

    image, seg = G.render(fusion.fused, fusion.coarse_seg, noise=noise, mix=record)
    return Reference(fusion, trace), image, seg


class LayerBlend:
    """mix(i, t) for `G.render`: t -> ref_i + m (t - ref_i), m the region mask (B, 1, H, W) area-resampled to t's
    resolution. Equal to m t + (1 - m) ref_i, and bit-exact ref_i wherever m is 0."""

    def __init__(self, trace: list, mask: torch.Tensor):
        self.trace, self.mask, self._masks = trace, mask, {}

    def at(self, size, dtype) -> torch.Tensor:
        key = (tuple(size), dtype)
        if key not in self._masks:
            m = self.mask if tuple(self.mask.shape[-2:]) == tuple(size) else \
                F.interpolate(self.mask, size=tuple(size), mode="area")
            self._masks[key] = m.to(dtype)
        return self._masks[key]

    def __call__(self, i: int, t: torch.Tensor) -> torch.Tensor:
        ref = self.trace[i]
        return ref + self.at(t.shape[-2:], t.dtype) * (t - ref)


def blend_render(G, hidden, depths, reference: Reference, mask: torch.Tensor, noise=None):
    """Eq. 4.7 at every layer: fuse the edited parts, blend the fused map and coarse mask with the source's
    (`reference`, batch 1 or B) by `mask` (B, 1, H, W) at the coarse resolution, then render blending every render
    activation with the source's at its resolution. Wherever the mask is 0 the output is the source's, bit for bit.
    -> image, seg."""
    fusion = G.fuse(hidden, depths)
    ref = reference.fusion
    m = F.interpolate(mask, size=tuple(ref.fused.shape[-2:]), mode="area").to(fusion.fused.dtype)
    # ref + m (new - ref): equal to m new + (1 - m) ref, and bit-exact ref wherever the edit left the features alone
    fused = ref.fused + m * (fusion.fused - ref.fused)
    coarse_seg = ref.coarse_seg + m * (fusion.coarse_seg - ref.coarse_seg)
    return G.render(fused, coarse_seg, noise=noise, mix=LayerBlend(reference.trace, mask))


def render_blended(G, expanded: torch.Tensor, source_expanded: torch.Tensor, mask: torch.Tensor, noise=None):
    """A region edit's image: `expanded` (B, K, L, D) inside the blurred `mask` (B, 1, H, W), the source codes
    `source_expanded` outside, blended at the fusion and every render layer (`blend_render`). The one function that
    draws a saved region edit again (codes files, the demo). -> (image, seg, depths)."""
    ref = render_reference(G, *G.generate_parts(source_expanded), noise=noise)[0]
    hidden, depths = G.generate_parts(expanded)
    image, seg = blend_render(G, hidden, depths, ref, mask, noise)
    return image, seg, depths


@dataclass
class SplitGenerator:
    """G_{z,m}(w) for S source images: codes -> (image, seg), only each image's region can change."""
    G: object
    expanded: torch.Tensor       # (S, K, L, D) source codes
    reference: Reference         # the sources' fusion and render activations (batch S)
    mask: torch.Tensor           # (S, 1, H, W) the blurred regions
    noise: list | None           # per layer (S or 1, 1, H, W)

    def __call__(self, delta: torch.Tensor, index: torch.Tensor | None = None):
        """delta (N, K, L, D) offsets of the expanded codes of source index[n] (default: every row of source 0)
        -> image (N, 3, H, W), seg (N, K, H, W)."""
        n = delta.shape[0]
        if self.expanded.shape[0] == 1:                          # one source: broadcast, no gathered copies
            hidden, depths = self.G.generate_parts(self.expanded + delta)
            noise = None if self.noise is None else [x.expand(n, -1, -1, -1) for x in self.noise]
            return blend_render(self.G, hidden, depths, self.reference, self.mask, noise)
        if index is None:
            raise ValueError("a SplitGenerator over several sources needs the source index of every row")
        hidden, depths = self.G.generate_parts(self.expanded[index] + delta)
        noise = None if self.noise is None else [x[index] if x.shape[0] > 1 else x.expand(n, -1, -1, -1)
                                                 for x in self.noise]
        return blend_render(self.G, hidden, depths, self.reference.select(index), self.mask[index], noise)


# ----------------------------------------------------------------------------------------------- search space
@dataclass
class Basis:
    """delta = einsum(x, vectors): x (N, P*R*C) normalised coordinates -> offsets of the (part, role) codes."""
    vectors: torch.Tensor        # (P, R, C, D): scaled directions (sigma_c v_c, or sigma_d e_d)
    kind: str

    @property
    def dim(self) -> int:
        p, r, c, _ = self.vectors.shape
        return p * r * c

    def theta(self, x: torch.Tensor) -> torch.Tensor:
        """(N, dim) -> (N, P, R, D)."""
        p, r, c, _ = self.vectors.shape
        return torch.einsum("nprc,prcd->nprd", x.view(-1, p, r, c).to(self.vectors.dtype), self.vectors)


@torch.no_grad()
def code_basis(G, es: EditSpace, kind: str = "pca", components: int = 16, n: int = 512, seed: int = 4321,
               truncation: float = 1.0) -> Basis:
    """The spread of the selected (part, role) codes over n random samples: per dimension (codes) or the top
    principal directions (pca), each scaled by its standard deviation."""
    from memorygan.models.codes import ROLE_NAMES

    if kind not in BASES:
        raise ConfigError(f"--basis must be one of {', '.join(BASES)}, got {kind!r}")
    gen = torch.Generator().manual_seed(seed)
    codes = []
    for s in range(0, n, 128):
        z = G.sample_z(min(128, n - s), generator=gen)
        codes.append(G(z, truncation=truncation).expanded.float().cpu())
    expanded = torch.cat(codes)                                                        # (n, K, L, D)
    d = expanded.shape[-1]
    vecs = []
    for p in es.parts:
        per_role = []
        for r in es.roles:
            layer = int((G.layer_roles[p] == ROLE_NAMES.index(r)).nonzero()[0])
            w = expanded[:, p, layer].double()                                         # (n, D)
            if kind == "codes":
                per_role.append(torch.diag(w.std(0)))
            else:
                c = min(components, d, n - 1)
                _, sv, vt = torch.linalg.svd(w - w.mean(0), full_matrices=False)
                per_role.append((sv[:c] / math.sqrt(n - 1))[:, None] * vt[:c])       # (C, D)
        vecs.append(torch.stack(per_role))
    return Basis(torch.stack(vecs).float().to(G.device), kind)


# ----------------------------------------------------------------------------------------------- losses
def ssim_outside(x: torch.Tensor, y: torch.Tensor, outside: torch.Tensor, window: int = 7) -> torch.Tensor:
    """(B,) 1 - mean SSIM of x and y (B, 3, H, W) in [-1, 1], both multiplied by `outside` (B, H, W)."""
    a, b = ((x + 1) / 2) * outside[:, None], ((y + 1) / 2) * outside[:, None]
    pad = window // 2
    mu = lambda t: F.avg_pool2d(t, window, 1, pad, count_include_pad=False)   # noqa: E731
    ma, mb = mu(a), mu(b)
    va, vb, cov = mu(a * a) - ma ** 2, mu(b * b) - mb ** 2, mu(a * b) - ma * mb
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    s = ((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma ** 2 + mb ** 2 + c1) * (va + vb + c2))
    return 1 - s.mean((1, 2, 3))


def consistency_loss(image, source_image, soft: torch.Tensor) -> torch.Tensor:
    """Eq. 4.9 (B,): L1 outside the region (mean over the outside weight) + (1 - SSIM) of the outside images."""
    outside = 1 - soft
    l1 = ((image - source_image).abs().mean(1) / 2 * outside).sum((1, 2)) / outside.sum((1, 2)).clamp(min=1)
    return l1 + ssim_outside(image, source_image, outside)


# ----------------------------------------------------------------------------------------------- optimisation
@dataclass
class RegionEditResult:
    before: object
    after: object
    region: Region
    x: torch.Tensor                       # (B, dim) final coordinates
    parts: list[int]
    history: list = field(default_factory=list)     # per image: CMA generations and Adam curve
    settings: dict = field(default_factory=dict)
    seconds: float = 0.0
    evaluations: int = 0


def _objective(split: SplitGenerator, basis: Basis, masks, score, soft, source_image, lambda_img,
               x: torch.Tensor, index: torch.Tensor | None = None, generator=None) -> torch.Tensor:
    """(N,) L(w) of Eq. 4.10 for coordinates x (N, dim), row n of source index[n] (default: one source)."""
    theta = basis.theta(x)                                                          # (N, P, R, D)
    delta = torch.einsum("prkl,nprd->nkld", masks, theta)
    image, seg = split(delta, index)
    n = x.shape[0]
    if soft.shape[0] == 1:
        region, source = soft.expand(n, -1, -1), source_image.expand(n, -1, -1, -1)
    else:
        region, source = soft[index], source_image[index]
    sem = score.loss(image, seg, region, generator=generator)                       # Eq. 4.8
    img = consistency_loss(image, source, region)                                   # Eq. 4.9
    return sem + lambda_img * img                                                   # Eq. 4.10


def run_cma(fn, dim: int, popsize: int, sigma0: float, iterations: int, seed: int, chunk: int = 50):
    """CMA-ES from 0 (the source) in `dim` coordinates; fn maps (N, dim) float64 numpy rows to (N,) losses.
    Returns (x (dim,), loss, history). The cma package seeds numpy's global generator; its state is restored."""
    return run_cma_lockstep(lambda rows, owner: fn(rows), dim, popsize, sigma0, iterations, [seed], chunk)[0]


def run_cma_lockstep(fn, dim: int, popsize: int, sigma0: float, iterations: int, seeds, chunk: int = 50) -> list:
    """CMA-ES on len(seeds) independent problems at once (one strategy per seed, all from 0): each generation asks
    every strategy for its population and evaluates all the rows together, fn(rows (N, dim) float64, owner (N,)
    int: the problem of each row) -> (N,) losses, `chunk` rows per call. cma draws from numpy's global generator,
    so each strategy keeps its own stream: a problem's result does not depend on the others (equal to solving them
    one by one). numpy's global state is restored. -> [(x (dim,), loss, history)] per seed; x is the better of the
    best sample and the final mean."""
    import numpy as np

    try:
        import cma
    except ImportError:
        raise ConfigError("--optimizer cma needs the cma package: pip install 'memorygan[edit]'") from None
    k = len(seeds)

    def evaluate(rows, owner):
        return np.concatenate([np.asarray(fn(rows[i:i + chunk], owner[i:i + chunk]), dtype=np.float64)
                               for i in range(0, len(rows), chunk)])

    state = np.random.get_state()
    try:
        strategies, streams = [], []
        for seed in seeds:
            strategies.append(cma.CMAEvolutionStrategy(np.zeros(dim), sigma0, {
                "popsize": popsize, "seed": seed + 1, "maxiter": iterations, "verbose": -9, "CMA_diagonal": False}))
            streams.append(np.random.get_state())

        def call(j, method, *args):                  # strategy j's step on its own random stream
            np.random.set_state(streams[j])
            out = getattr(strategies[j], method)(*args)
            streams[j] = np.random.get_state()
            return out

        f0 = evaluate(np.zeros((k, dim)), np.arange(k))
        best = [(np.zeros(dim), float(f0[j])) for j in range(k)]
        histories = [[] for _ in range(k)]
        for it in range(iterations):
            asked = [np.asarray(call(j, "ask")) for j in range(k)]
            losses = evaluate(np.concatenate(asked), np.repeat(np.arange(k), [len(a) for a in asked]))
            start = 0
            for j, xs in enumerate(asked):
                fs = losses[start:start + len(xs)]
                start += len(xs)
                call(j, "tell", list(xs), fs.tolist())
                i = int(np.argmin(fs))
                if fs[i] < best[j][1]:
                    best[j] = (xs[i].copy(), float(fs[i]))
                histories[j].append({"iteration": it + 1, "best": float(fs.min()), "median": float(np.median(fs)),
                                     "sigma": float(strategies[j].sigma)})
        means = np.stack([np.asarray(es.result.xfavorite) for es in strategies])
        f_mean = evaluate(means, np.arange(k))
        best = [(means[j], float(f_mean[j])) if f_mean[j] <= best[j][1] else best[j] for j in range(k)]
    finally:
        np.random.set_state(state)
    return [(x, f, h) for (x, f), h in zip(best, histories)]


def region_edit(G, source: Codes, score, mask: torch.Tensor | None = None, parts=None, layers: str = "both",
                optimizer: str = "cma+adam", basis: str = "pca", components: int = 16, popsize: int = POPSIZE,
                sigma0: float = SIGMA0, cma_iters: int = CMA_ITERS, adam_steps: int = ADAM_STEPS,
                adam_lr: float = ADAM_LR, lambda_img: float = LAMBDA_IMG, blur: float | None = None,
                seed: int = 0, basis_samples: int = 512, batch: int = BATCH,
                progress: bool = False) -> RegionEditResult:
    """Paint-by-Word on every source image (module docstring). `mask` (H, W) in [0, 1] and/or `parts` (names/ids):
    the region is the mask, else the parts' masks; the codes moved are `parts`, else the parts the mask covers.
    `batch` images are optimised together (CMA-ES in lockstep, one Adam), each on its own: the batch changes only the
    float rounding of the generator's batched calls (and a CLIP scorer's random crops, drawn per batch). CMA-ES's
    ranks absorb that; Adam at lr 0.1 on the seg-masked loss can grow it (8 images: final losses within 1 %)."""
    if optimizer not in OPTIMIZERS:
        raise ConfigError(f"--optimizer must be one of {', '.join(OPTIMIZERS)}, got {optimizer!r}")
    if mask is None and not parts:
        raise ConfigError("a region edit needs --mask MASK.png or --parts PARTS (or both: the mask is the region, "
                          "the parts the codes that move)")
    if popsize < 2 or cma_iters < 1 or adam_steps < 0 or not sigma0 > 0 or not adam_lr > 0 or lambda_img < 0:
        raise ConfigError(f"need --popsize >= 2, --cma-iters >= 1, --adam-steps >= 0, --sigma0 > 0, --adam-lr > 0, "
                          f"--lambda-img >= 0 (got {popsize}, {cma_iters}, {adam_steps}, {sigma0}, {adam_lr}, "
                          f"{lambda_img})")
    if batch < 1:
        raise ConfigError(f"--batch must be >= 1, got {batch}")
    if optimizer == "adam" and adam_steps < 1:
        raise ConfigError("--optimizer adam needs --adam-steps >= 1")
    import numpy as np

    t0 = time.perf_counter()
    G.eval().requires_grad_(False)
    dev = G.device
    b = len(source)
    expanded = source.expanded.to(dev)
    noise = None if source.noise is None else [n.to(dev) for n in source.noise]
    with torch.no_grad():
        ref, image0, seg0 = render_reference(G, *G.generate_parts(expanded), noise=noise)
    before = _output(G, expanded, image0, seg0)
    part_ids = G.resolve_parts(parts, "--parts") if parts else covered_parts(G, before, mask)
    if not part_ids:
        raise ConfigError("--mask covers no part enough to edit (each covers < 5% of it); pass --parts")
    es = edit_space(G, "parts", part_ids, layers)
    region = make_region(G, before, mask, None if mask is not None else part_ids, blur)
    B = code_basis(G, es, basis, components, basis_samples)
    masks = role_masks(G, es.parts, es.roles)                                        # (P, R, K, L)
    xs = torch.zeros(b, B.dim, device=dev)
    history, evaluations = [], 0
    gen = torch.Generator().manual_seed(seed)
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=b, desc=f"region edit ({optimizer})", unit="img")
    for s in range(0, b, batch):                    # `batch` images at a time, each edited on its own
        e = min(b, s + batch)
        k = e - s
        split = SplitGenerator(G, expanded[s:e], ref.select(slice(s, e)), region.soft[s:e, None],
                               None if noise is None else [n[s:e] if n.shape[0] > 1 else n for n in noise])
        soft = region.soft[s:e]
        src_img = image0[s:e]
        recs = [{} for _ in range(k)]
        x = torch.zeros(k, B.dim, device=dev)
        if optimizer.startswith("cma"):
            crop_gen = torch.Generator().manual_seed(seed * 1000 + s)

            def fn(rows, owner):
                with torch.no_grad():
                    xt = torch.as_tensor(rows, dtype=torch.float32, device=dev)
                    idx = torch.as_tensor(owner, dtype=torch.long, device=dev)
                    return _objective(split, B, masks, score, soft, src_img, lambda_img, xt, idx,
                                      crop_gen).double().cpu().numpy()
            found = run_cma_lockstep(fn, B.dim, popsize, sigma0, cma_iters, [seed + i for i in range(s, e)],
                                     chunk=max(popsize, CMA_ROWS))
            evaluations += (popsize * cma_iters + 2) * k
            x = torch.as_tensor(np.stack([xb for xb, _, _ in found]), dtype=torch.float32, device=dev)
            for rec, (_, fb, hist) in zip(recs, found):
                rec["cma"] = {"loss": fb, "generations": hist}
        if optimizer != "cma" and adam_steps:
            # one Adam over the k images: the loss is the sum of their own losses and Adam is elementwise, so
            # each image's coordinates move exactly as with an Adam of its own
            x = x.clone().requires_grad_(True)
            idx = torch.arange(k, device=dev)
            opt = torch.optim.Adam([x], lr=adam_lr)
            curves = [[] for _ in range(k)]
            for step in range(adam_steps):
                losses = _objective(split, B, masks, score, soft, src_img, lambda_img, x, idx, gen)
                opt.zero_grad(set_to_none=True)
                losses.sum().backward()
                opt.step()
                if (step + 1) % 10 == 0 or step + 1 == adam_steps:
                    for curve, loss in zip(curves, losses.detach().tolist()):
                        curve.append({"step": step + 1, "loss": loss})
            evaluations += adam_steps * k
            x = x.detach()
            for rec, curve in zip(recs, curves):
                rec["adam"] = curve
        xs[s:e] = x
        history.extend(recs)
        if bar is not None:
            bar.update(k)
    if bar is not None:
        bar.close()
    with torch.no_grad():
        theta = B.theta(xs)
        delta = torch.einsum("prkl,nprd->nkld", masks, theta)
        hidden, depths = G.generate_parts(expanded + delta)
        image, seg = blend_render(G, hidden, depths, ref, region.soft[:, None], noise)
        after = _output(G, expanded + delta, image, seg)
    settings = {"optimizer": optimizer, "basis": basis, "components": components if basis == "pca" else None,
                "search_dim": B.dim, "parts": [G.part_names[p] for p in es.parts], "roles": es.roles,
                "region": "mask" if mask is not None else "parts", "popsize": popsize, "sigma0": sigma0,
                "cma_iters": cma_iters, "adam_steps": adam_steps if optimizer != "cma" else 0, "adam_lr": adam_lr,
                "lambda_img": lambda_img, "blur": BLUR * G.config.resolution / 64 if blur is None else blur,
                "seed": seed, "batch": batch, "scorer": score.describe(),
                "consistency": "L1 + (1 - SSIM) outside the region (no perceptual network offline)"}
    return RegionEditResult(before, after, region, xs, es.parts, history, settings, time.perf_counter() - t0,
                            evaluations)


def _output(G, expanded, image, seg):
    from types import SimpleNamespace

    return SimpleNamespace(image=image, seg=seg, expanded=expanded)


def region_edit_record(G, result: RegionEditResult, score, names: list[str], held_out=None,
                       judges=None) -> dict:
    """metrics.json of a region edit (results module docstring; PSNR outside the painted pixels)."""
    from memorygan.editing.results import edit_metrics, public, summarise

    rows = edit_metrics(result.before, result.after, result.parts, G.config.num_classes, score, held_out,
                        region=result.region.hard, names=names, judges=judges, prompt=score.prompt)
    return {"edit": "region", "prompt": score.prompt, **result.settings,
            "held_out": held_out.describe() if held_out is not None else None,
            "judges": judges.specs if judges is not None else None,
            "summary": summarise(rows), "images": public(rows), "history": result.history,
            "evaluations": result.evaluations, "seconds": result.seconds}


def run_region_edit(G, source: Codes, names: list[str], score, out, held_out=None, judges=None, **kw) -> dict:
    """region_edit + metrics + files (the `memorygan edit region` command). Returns the metrics record."""
    from memorygan.editing.results import write_edit

    res = region_edit(G, source, score, **kw)
    record = region_edit_record(G, res, score, names, held_out, judges)
    write_edit(out, G, res.before, res.after, record, names,
               {"edit": "region", "prompt": score.prompt, "parts": [G.part_names[p] for p in res.parts]},
               region=res.region.soft, blend=(res.before.expanded, res.region.soft[:, None]))
    return record
