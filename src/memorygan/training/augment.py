"""Discriminator augmentation that keeps image and mask in step (issue 26).

Two sources, one pipeline (`AugmentPipe`): every augmentation is applied to what D sees, real and generated alike,
in every phase (D main, D reg, G main), so G cannot learn it (it is not in the data D rewards). The dual-branch D
judges an image together with its segmentation, so every **geometric** transform moves the image and its mask
identically (one sampling grid, one fill); **colour** transforms touch the image only.

- DiffAugment (Zhao et al., NeurIPS 2020, the official `DiffAugment_pytorch.py`): `color` (brightness + U[-0.5,
  0.5], saturation x U[0, 2], contrast x U[0.5, 1.5]), `translation` (integer shift of up to 1/8 of the size,
  zero fill), `cutout` (a square of half the size at a random place, zero fill). `--augment diffaug` applies all
  three to every sample (p = 1), as the paper.
- StyleGAN2-ADA (Karras et al., NeurIPS 2020, `augment.py`, pipeline "bgc"): `xflip`, `rotate90`, `xint` (integer
  translation, 1/8), `scale` (lognormal, std 0.2 octaves), `rotate` (uniform angle), `aniso` (0.2), `xfrac`
  (fractional translation, std 1/8) composed into one affine warp with reflection padding; `brightness` (N(0, 0.2)),
  `contrast` (lognormal 0.5), `lumaflip`, `hue` (rotation about the luma axis), `saturation` (lognormal 1) composed
  into one 4x4 colour matrix. Each op is applied to each sample with probability p; `--augment ada` adjusts p every
  `interval` steps by sign(r_t - target) * batch * interval / (ada_kimg * 1000), with r_t = E[sign(D(real))]
  over the interval (ADA Eq. 1 heuristic; target 0.6). The geometric warp is plain bilinear (ADA upsamples with a
  wavelet filter first to limit aliasing: not done here, stated).

Fill values: the image is filled with 0 (mid grey, DiffAugment's zeros); the mask with the background's one-hot
(+1 on class 0, -1 elsewhere), the same for real and generated masks.

Every op is written with gathers and elementwise maths, so R1 (which differentiates D's output w.r.t. the real
input with `create_graph=True`) can go through the augmentation to any order (torch's `grid_sample` has no double
backward: ADA wrote `grid_sample_gradfix` for this). Random numbers come from the caller's `torch.Generator` (the
training loop's per-(step, phase, chunk) stream), so a resumed run augments exactly as an uninterrupted one; they
are drawn on that generator's device and moved with `devices.to_device` (no host sync).
"""
from __future__ import annotations

import math

import torch

from memorygan.devices import to_device
from memorygan.errors import ConfigError

DIFFAUG_OPS = ("color", "translation", "cutout")
ADA_GEOM_OPS = ("xflip", "rotate90", "xint", "scale", "rotate", "aniso", "xfrac")
ADA_COLOR_OPS = ("brightness", "contrast", "lumaflip", "hue", "saturation")
ADA_OPS = ADA_GEOM_OPS + ADA_COLOR_OPS
ALL_OPS = DIFFAUG_OPS + ADA_OPS
POLICIES = ("none", "diffaug", "ada")
POLICY_OPS = {"none": (), "diffaug": DIFFAUG_OPS, "ada": ADA_OPS}


def parse_ops(text: str | None, policy: str) -> tuple[str, ...]:
    """The ops of `policy`, or the comma-separated `text` (any of `ALL_OPS`, applied in `ALL_OPS` order)."""
    if policy not in POLICIES:
        raise ConfigError(f"--augment must be one of {', '.join(POLICIES)}, got {policy!r}")
    if not text:
        return POLICY_OPS[policy]
    names = [t.strip() for t in text.split(",") if t.strip()]
    bad = [n for n in names if n not in ALL_OPS]
    if bad:
        raise ConfigError(f"--augment-ops: unknown op(s) {', '.join(bad)} (known: {', '.join(ALL_OPS)})")
    return tuple(op for op in ALL_OPS if op in names)


# ---------------------------------------------------------------------------------------------------- sampling

def _uniform(shape, gen: torch.Generator, device) -> torch.Tensor:
    return to_device(torch.rand(shape, generator=gen, device=gen.device), device)


def _normal(shape, gen: torch.Generator, device) -> torch.Tensor:
    return to_device(torch.randn(shape, generator=gen, device=gen.device), device)


def _gate(values: torch.Tensor, identity: float, p: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Per sample: `values` with probability p, else `identity` (the op's no-change parameter)."""
    on = _uniform(values.shape, gen, values.device) < p
    return torch.where(on, values, torch.full_like(values, identity))


# ---------------------------------------------------------------------------------------------------- warping

def reflect_coords(x: torch.Tensor, size: int) -> torch.Tensor:
    """Pixel coordinates reflected into [-0.5, size - 0.5] (grid_sample's reflection padding, align_corners=False),
    then clipped to [0, size - 1]."""
    span = 2.0 * size
    x = torch.remainder(x + 0.5, span)
    x = torch.where(x > size, span - x, x) - 0.5
    return x.clamp(0, size - 1)


def warp_bilinear(x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Bilinear resampling of x (B, C, H, W) by the affine maps theta (B, 2, 3) from output to input coordinates,
    in grid_sample's normalised convention (align_corners=False) with reflection padding; the same result as
    `F.grid_sample(x, F.affine_grid(theta, x.shape, align_corners=False), padding_mode="reflection",
    align_corners=False)`, written with gathers so it has derivatives of every order w.r.t. x."""
    b, c, h, w = x.shape
    dev, dt = x.device, x.dtype
    xs = (2 * torch.arange(w, device=dev, dtype=dt) + 1) / w - 1
    ys = (2 * torch.arange(h, device=dev, dtype=dt) + 1) / h - 1
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    base = torch.stack([gx, gy, torch.ones_like(gx)], -1).reshape(1, h * w, 3)      # (1, HW, 3)
    src = base @ theta.to(dt).transpose(1, 2)                                        # (B, HW, 2) normalised
    px = reflect_coords(((src[..., 0] + 1) * w - 1) / 2, w)
    py = reflect_coords(((src[..., 1] + 1) * h - 1) / 2, h)
    x0, y0 = px.floor(), py.floor()
    fx, fy = (px - x0).unsqueeze(1), (py - y0).unsqueeze(1)                         # (B, 1, HW)
    x0, y0 = x0.long(), y0.long()
    x1, y1 = (x0 + 1).clamp(max=w - 1), (y0 + 1).clamp(max=h - 1)
    flat = x.reshape(b, c, h * w)

    def at(yy, xx):
        return flat.gather(2, (yy * w + xx).unsqueeze(1).expand(b, c, h * w))
    out = ((at(y0, x0) * (1 - fx) + at(y0, x1) * fx) * (1 - fy)
           + (at(y1, x0) * (1 - fx) + at(y1, x1) * fx) * fy)
    return out.reshape(b, c, h, w)


def shift_fill(x: torch.Tensor, dx: torch.Tensor, dy: torch.Tensor, fill: torch.Tensor) -> torch.Tensor:
    """x (B, C, H, W) shifted by integer pixels dx, dy (B,) (out[y, x] = in[y - dy, x - dx]), the uncovered border
    set to `fill` (C,) (DiffAugment's `rand_translation`, which pads with zeros)."""
    b, c, h, w = x.shape
    ys = torch.arange(h, device=x.device).view(1, h, 1) - dy.view(b, 1, 1)
    xs = torch.arange(w, device=x.device).view(1, 1, w) - dx.view(b, 1, 1)
    inside = ((ys >= 0) & (ys < h) & (xs >= 0) & (xs < w)).unsqueeze(1)              # (B, 1, H, W)
    idx = (ys.clamp(0, h - 1) * w + xs.clamp(0, w - 1)).reshape(b, 1, h * w).expand(b, c, h * w)
    out = x.reshape(b, c, h * w).gather(2, idx).reshape(b, c, h, w)
    return torch.where(inside, out, fill.view(1, c, 1, 1).to(x.dtype))


def cutout_fill(x: torch.Tensor, cx: torch.Tensor, cy: torch.Tensor, size: int, fill: torch.Tensor,
                on: torch.Tensor) -> torch.Tensor:
    """x with the square of side `size` centred at integer pixel (cx, cy) (B,) set to `fill` (C,) where `on` (B,)
    (DiffAugment's `rand_cutout`: the square is clipped at the border)."""
    b, c, h, w = x.shape
    ys = torch.arange(h, device=x.device).view(1, h, 1)
    xs = torch.arange(w, device=x.device).view(1, 1, w)
    half = size // 2
    sq = ((ys >= (cy - half).view(b, 1, 1)) & (ys < (cy - half + size).view(b, 1, 1))
          & (xs >= (cx - half).view(b, 1, 1)) & (xs < (cx - half + size).view(b, 1, 1)))
    sq = (sq & on.view(b, 1, 1)).unsqueeze(1)
    return torch.where(sq, fill.view(1, c, 1, 1).to(x.dtype), x)


# ---------------------------------------------------------------------------------------------------- matrices

def _eye(b: int, n: int, device, dtype=torch.float32) -> torch.Tensor:
    return torch.eye(n, device=device, dtype=dtype).expand(b, n, n).clone()


def _scale2d(sx, sy):
    m = _eye(sx.shape[0], 3, sx.device)
    m[:, 0, 0], m[:, 1, 1] = sx, sy
    return m


def _translate2d(tx, ty):
    m = _eye(tx.shape[0], 3, tx.device)
    m[:, 0, 2], m[:, 1, 2] = tx, ty
    return m


def _rotate2d(a):
    m = _eye(a.shape[0], 3, a.device)
    m[:, 0, 0], m[:, 0, 1], m[:, 1, 0], m[:, 1, 1] = a.cos(), -a.sin(), a.sin(), a.cos()
    return m


def geometric_matrix(ops, n: int, size: int, p: torch.Tensor, gen: torch.Generator, device) -> torch.Tensor:
    """(n, 3, 3) inverse affine maps (output -> input, normalised coordinates) of ADA's geometric ops in `ops`, each
    applied per sample with probability p; the identity where none fired."""
    g = _eye(n, 3, device)
    z = torch.zeros(n, device=device)
    if "xflip" in ops:
        i = (_uniform((n,), gen, device) * 2).floor()
        g = g @ _scale2d(1 - 2 * _gate(i, 0.0, p, gen), z + 1)
    if "rotate90" in ops:
        k = (_uniform((n,), gen, device) * 4).floor()
        g = g @ _rotate2d(-math.pi / 2 * _gate(k, 0.0, p, gen))
    if "xint" in ops:
        t = (_uniform((n, 2), gen, device) * 2 - 1) * 0.125
        t = _gate(torch.round(t * size) * 2 / size, 0.0, p, gen)
        g = g @ _translate2d(-t[:, 0], -t[:, 1])
    if "scale" in ops:
        s = _gate(torch.exp2(_normal((n,), gen, device) * 0.2), 1.0, p, gen)
        g = g @ _scale2d(1 / s, 1 / s)
    if "rotate" in ops:
        a = _gate((_uniform((n,), gen, device) * 2 - 1) * math.pi, 0.0, p, gen)
        g = g @ _rotate2d(-a)
    if "aniso" in ops:
        s = _gate(torch.exp2(_normal((n,), gen, device) * 0.2), 1.0, p, gen)
        g = g @ _scale2d(1 / s, s)
    if "xfrac" in ops:
        t = _gate(_normal((n, 2), gen, device) * 0.125 * 2, 0.0, p, gen)
        g = g @ _translate2d(-t[:, 0], -t[:, 1])
    return g


def color_matrix(ops, n: int, p: torch.Tensor, gen: torch.Generator, device) -> torch.Tensor:
    """(n, 4, 4) homogeneous colour transforms of ADA's colour ops in `ops` (brightness, contrast, lumaflip, hue,
    saturation), each per sample with probability p, for images in [-1, 1]."""
    c = _eye(n, 4, device)
    v = torch.full((4,), 1 / math.sqrt(3), device=device)       # the luma axis (1, 1, 1) / sqrt(3), homogeneous 0
    v[3] = 0
    vv = torch.outer(v, v)
    eye4 = torch.eye(4, device=device)
    if "brightness" in ops:
        b = _gate(_normal((n,), gen, device) * 0.2, 0.0, p, gen)
        t = _eye(n, 4, device)
        t[:, :3, 3] = b[:, None]
        c = t @ c
    if "contrast" in ops:
        s = _gate(torch.exp2(_normal((n,), gen, device) * 0.5), 1.0, p, gen)
        t = _eye(n, 4, device)
        t[:, 0, 0], t[:, 1, 1], t[:, 2, 2] = s, s, s
        c = t @ c
    if "lumaflip" in ops:
        i = _gate((_uniform((n,), gen, device) * 2).floor(), 0.0, p, gen)
        c = (eye4 - 2 * vv * i.view(n, 1, 1)) @ c                          # Householder reflection about the luma axis
    if "hue" in ops:
        a = _gate((_uniform((n,), gen, device) * 2 - 1) * math.pi, 0.0, p, gen)
        c = _rotate_about(v[:3], a) @ c
    if "saturation" in ops:
        s = _gate(torch.exp2(_normal((n,), gen, device) * 1.0), 1.0, p, gen)
        c = (vv + (eye4 - vv) * s.view(n, 1, 1)) @ c
    return c


def _rotate_about(axis: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """(n, 4, 4) rotations by `angle` (n,) about the unit 3-vector `axis` (Rodrigues)."""
    n = angle.shape[0]
    x, y, z = axis
    k = torch.stack([torch.stack([0 * x, -z, y]), torch.stack([z, 0 * x, -x]), torch.stack([-y, x, 0 * x])])
    s, co = angle.sin().view(n, 1, 1), angle.cos().view(n, 1, 1)
    r = torch.eye(3, device=angle.device) + s * k + (1 - co) * (k @ k)
    m = _eye(n, 4, angle.device)
    m[:, :3, :3] = r
    return m


# ---------------------------------------------------------------------------------------------------- the pipe

class AugmentPipe:
    """`pipe(image, mask, generator)` -> (image, mask) augmented, with per-op probability `pipe.p` (a 0-d tensor on
    the training device). image (B, 3, H, W) in [-1, 1]; mask (B, K, H, W) (one-hot in {-1, 1} or the generator's
    seg). `ops` from `parse_ops`; an empty tuple (or p == 0 everywhere) returns the inputs unchanged.

    ADA bookkeeping (`adaptive=True`): `accumulate(real_logits)` adds sign(D(real)) of the D main phase, and
    `adjust(batch, world_sum)` at the end of every `interval`-th step moves p towards the target r_t. Both stay on
    the device (no host read); `state()` / `load_state()` carry p and the running sums in checkpoints."""

    def __init__(self, ops=(), p: float = 0.0, adaptive: bool = False, target: float = 0.6, ada_kimg: float = 100.0,
                 interval: int = 4, device="cpu"):
        self.ops = tuple(ops)
        self.adaptive = bool(adaptive)
        self.target, self.ada_kimg, self.interval = float(target), float(ada_kimg), int(interval)
        self.device = torch.device(device)
        self.p = torch.full((), float(p), device=self.device)
        self.sign_sum = torch.zeros((), device=self.device)
        self.sign_count = torch.zeros((), device=self.device)
        self.rt = torch.zeros((), device=self.device)

    @property
    def active(self) -> bool:
        return bool(self.ops)

    def __call__(self, image: torch.Tensor, mask: torch.Tensor, generator: torch.Generator):
        if not self.ops:
            return image, mask
        b, _, h, w = image.shape
        if mask.shape[0] != b or mask.shape[2:] != image.shape[2:]:
            raise ValueError(f"augment: image {tuple(image.shape)} and mask {tuple(mask.shape)} must share batch and "
                             f"size")
        dev, gen, p, ops = image.device, generator, self.p, self.ops      # p lives on the training device
        img_fill = torch.zeros(3, device=dev)
        mask_fill = torch.full((mask.shape[1],), -1.0, device=dev)
        mask_fill[0] = 1.0
        # --- DiffAugment colour (image only)
        if "color" in ops:
            image = image + _gate(_uniform((b,), gen, dev) - 0.5, 0.0, p, gen).view(b, 1, 1, 1)
            mean_c = image.mean(1, keepdim=True)
            image = (image - mean_c) * _gate(_uniform((b,), gen, dev) * 2, 1.0, p, gen).view(b, 1, 1, 1) + mean_c
            mean_a = image.mean((1, 2, 3), keepdim=True)
            image = (image - mean_a) * _gate(_uniform((b,), gen, dev) + 0.5, 1.0, p, gen).view(b, 1, 1, 1) + mean_a
        # --- DiffAugment translation (both, fill)
        if "translation" in ops:
            shift = int(h * 0.125 + 0.5)
            t = (_uniform((b, 2), gen, dev) * (2 * shift + 1)).floor() - shift
            t = _gate(t, 0.0, p, gen).long()
            image = shift_fill(image, t[:, 0], t[:, 1], img_fill)
            mask = shift_fill(mask, t[:, 0], t[:, 1], mask_fill)
        # --- ADA geometric (both, one warp, reflection)
        geom = [op for op in ops if op in ADA_GEOM_OPS]
        if geom:
            g = geometric_matrix(geom, b, h, p, gen, dev)
            theta = g[:, :2, :]
            both = warp_bilinear(torch.cat([image, mask.to(image.dtype)], 1), theta)
            image, mask = both[:, :3], both[:, 3:].to(mask.dtype)
        # --- ADA colour (image only)
        col = [op for op in ops if op in ADA_COLOR_OPS]
        if col:
            c = color_matrix(col, b, p, gen, dev).to(image.dtype)
            image = torch.einsum("bij,bjhw->bihw", c[:, :3, :3], image) + c[:, :3, 3].view(b, 3, 1, 1)
        # --- DiffAugment cutout (both, fill)
        if "cutout" in ops:
            size = int(h * 0.5 + 0.5)
            cx = (_uniform((b,), gen, dev) * (w + (1 - size % 2))).floor().long()
            cy = (_uniform((b,), gen, dev) * (h + (1 - size % 2))).floor().long()
            on = _uniform((b,), gen, dev) < p
            image = cutout_fill(image, cx, cy, size, img_fill, on)
            mask = cutout_fill(mask, cx, cy, size, mask_fill, on)
        return image, mask

    # ------------------------------------------------------------------ ADA
    def accumulate(self, real_logits: torch.Tensor) -> None:
        """Add sign(D(real)) of one D main chunk (ADA's r_t numerator), on the device."""
        if self.adaptive:
            s = real_logits.detach().float().sign()
            self.sign_sum = self.sign_sum + s.sum()
            self.sign_count = self.sign_count + s.numel()

    def adjust(self, batch: int, reduce=None) -> None:
        """End of an interval: r_t = mean sign over the interval (summed over processes by `reduce`, a function of a
        (2,) tensor), p += sign(r_t - target) * batch * interval / (ada_kimg * 1000), clamped to [0, 1]."""
        if not self.adaptive:
            return
        tot = torch.stack([self.sign_sum, self.sign_count])
        if reduce is not None:
            tot = reduce(tot)
        rt = tot[0] / tot[1].clamp(min=1)
        step = batch * self.interval / (self.ada_kimg * 1000)
        self.p = (self.p + torch.sign(rt - self.target) * step).clamp(0, 1)
        self.rt = rt
        self.sign_sum = torch.zeros_like(self.sign_sum)
        self.sign_count = torch.zeros_like(self.sign_count)

    def state(self) -> dict:
        """The checkpointed state (host floats; read back at checkpoint time only)."""
        vals = torch.stack([self.p, self.sign_sum, self.sign_count, self.rt]).tolist()
        return dict(zip(("p", "sign_sum", "sign_count", "rt"), vals))

    def load_state(self, state: dict) -> None:
        for k in ("p", "sign_sum", "sign_count", "rt"):
            if k in state:
                setattr(self, k, torch.full((), float(state[k]), device=self.device))
