"""A small supersampled painter for the procedural datasets.

Shapes are implicit functions evaluated with numpy on the samples of a supersampled pixel grid, only inside each
shape's bounding window. Painting is back to front (painter's order). The image is anti-aliased by averaging each
`ss x ss` block of samples (area downsampling); the label map takes the majority label of the block (ties go to
the label painted earliest in the slot table), so mask edges sit where the image's half-coverage edges are.

Coordinates: x (columns) and y (rows) both in [-1, 1] over the whole image, y pointing down.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass
class Window:
    rs: slice
    cs: slice
    X: np.ndarray  # (1, w) sample x coordinates
    Y: np.ndarray  # (h, 1) sample y coordinates


class Frame:
    """A similarity transform: local (u, v) -> image (x, y) = centre + scale * R(angle) (u, v)."""

    def __init__(self, cx: float, cy: float, scale: float = 1.0, angle: float = 0.0):
        self.cx, self.cy, self.scale = float(cx), float(cy), float(scale)
        self.c, self.s = math.cos(angle), math.sin(angle)

    def local(self, win: Window) -> tuple[np.ndarray, np.ndarray]:
        """(u, v) of the window's samples, each (h, w) float32."""
        dx = win.X - self.cx
        dy = win.Y - self.cy
        k = 1.0 / self.scale
        if self.s == 0.0:
            return np.broadcast_to(dx * k, (win.Y.shape[0], win.X.shape[1])), \
                np.broadcast_to(dy * k, (win.Y.shape[0], win.X.shape[1]))
        u = (self.c * k) * dx + (self.s * k) * dy
        v = (-self.s * k) * dx + (self.c * k) * dy
        return u, v

    def bbox(self, u0: float, u1: float, v0: float, v1: float) -> tuple[float, float, float, float]:
        """Image-space bounding box (x0, x1, y0, y1) of a local rectangle."""
        xs, ys = [], []
        for u in (u0, u1):
            for v in (v0, v1):
                xs.append(self.cx + self.scale * (self.c * u - self.s * v))
                ys.append(self.cy + self.scale * (self.s * u + self.c * v))
        return min(xs), max(xs), min(ys), max(ys)


class Canvas:
    """RGB float32 samples plus an integer slot per sample (slots map to class ids at the end)."""

    def __init__(self, size: int, ss: int, background=(0.0, 0.0, 0.0)):
        """`background=None` leaves the samples uninitialised (the caller fills them with `fill_smooth`)."""
        self.size, self.ss = int(size), int(ss)
        n = self.size * self.ss
        self.n = n
        self.coords = ((np.arange(n, dtype=np.float32) + 0.5) * (2.0 / n) - 1.0).astype(np.float32)
        self.rgb = np.empty((n, n, 3), np.float32)
        if background is not None:
            self.rgb[:] = np.asarray(background, np.float32)
        self.slots = np.zeros((n, n), np.uint8)

    def full(self) -> Window:
        return Window(slice(0, self.n), slice(0, self.n), self.coords[None, :], self.coords[:, None])

    def window(self, box: tuple[float, float, float, float]) -> Window | None:
        x0, x1, y0, y1 = box
        n = self.n
        c0 = max(int(math.floor((x0 + 1.0) * 0.5 * n)) - 1, 0)
        c1 = min(int(math.ceil((x1 + 1.0) * 0.5 * n)) + 1, n)
        r0 = max(int(math.floor((y0 + 1.0) * 0.5 * n)) - 1, 0)
        r1 = min(int(math.ceil((y1 + 1.0) * 0.5 * n)) + 1, n)
        if c0 >= c1 or r0 >= r1:
            return None
        return Window(slice(r0, r1), slice(c0, c1), self.coords[None, c0:c1], self.coords[r0:r1, None])

    def paint(self, win: Window, inside: np.ndarray, color, slot: int | None) -> None:
        """Opaque paint: samples where `inside` get `color` ((3,) or (h, w, 3)) and `slot` (None keeps labels)."""
        rgb = self.rgb[win.rs, win.cs]
        color = np.asarray(color, np.float32)
        np.copyto(rgb, color, where=inside[..., None])
        if slot is not None:
            self.slots[win.rs, win.cs][inside] = slot

    def blend(self, win: Window, alpha: np.ndarray, color) -> None:
        """Transparent paint (no label change): rgb <- (1 - alpha) rgb + alpha color; alpha (h, w)."""
        rgb = self.rgb[win.rs, win.cs]
        a = alpha[..., None].astype(np.float32)
        rgb *= 1.0 - a
        rgb += a * np.asarray(color, np.float32)

    def fill_smooth(self, color_fn) -> None:
        """Fill every sample with a smooth field evaluated once per output pixel (cheap full-frame backgrounds).

        `color_fn(X, Y)` gets output-pixel centre coordinates X (1, S) and Y (S, 1) and returns (S, S, 3)."""
        s, ss = self.size, self.ss
        c = ((np.arange(s, dtype=np.float32) + 0.5) * (2.0 / s) - 1.0).astype(np.float32)
        col = np.asarray(color_fn(c[None, :], c[:, None]), np.float32)
        self.rgb.reshape(s, ss, s, ss, 3)[:] = col[:, None, :, None, :]

    def region_slots(self, win: Window) -> np.ndarray:
        return self.slots[win.rs, win.cs]

    def resolve(self, slot_to_class: np.ndarray, num_slots: int) -> tuple[np.ndarray, np.ndarray]:
        """Downsample: image (S, S, 3) uint8 by block mean, ids (S, S) by block majority of slots."""
        s, ss = self.size, self.ss
        # block mean as strided adds (much faster than mean over non-contiguous axes)
        rows = self.rgb[0::ss].copy()
        for i in range(1, ss):
            rows += self.rgb[i::ss]
        rows = rows.reshape(s, s, ss, 3)
        img = rows[:, :, 0].copy()
        for i in range(1, ss):
            img += rows[:, :, i]
        img = np.clip(np.rint(img * np.float32(255.0 / (ss * ss))), 0, 255).astype(np.uint8)
        if ss == 1:
            maj = self.slots
        else:
            blocks = self.slots.reshape(s, ss, s, ss).transpose(0, 2, 1, 3).reshape(s * s, ss * ss)
            base = np.arange(s * s, dtype=np.int64)[:, None] * num_slots
            counts = np.bincount((base + blocks).ravel(), minlength=s * s * num_slots).reshape(s * s, num_slots)
            maj = counts.argmax(axis=1).reshape(s, s)
        return img, slot_to_class[maj]


def smooth_noise(rng: np.random.Generator, n_waves: int = 3, freq: tuple[float, float] = (1.0, 3.0)):
    """Parameters of a smooth random field (sum of sinusoids); evaluate with `eval_noise`."""
    ang = rng.uniform(0, 2 * math.pi, n_waves)
    f = rng.uniform(freq[0], freq[1], n_waves) * math.pi
    ph = rng.uniform(0, 2 * math.pi, n_waves)
    # Python floats: numpy float64 scalars would promote the float32 sample arrays to float64 (NEP 50)
    return [(float(math.cos(a) * fi), float(math.sin(a) * fi), float(p)) for a, fi, p in zip(ang, f, ph)]


def eval_noise(waves, frame: Frame | None, win: Window) -> np.ndarray:
    """Mean of the sinusoids in the frame's (u, v) coordinates over a window, (h, w) float32 in [-1, 1].

    A sinusoid of (u, v) is a sinusoid of image (x, y) because frames are affine, so each one is evaluated
    separably: sin(Fx x + Fy y + P) = sin(Fx x + P) cos(Fy y) + cos(Fx x + P) sin(Fy y), with transcendental
    functions only on the window's row and column vectors.
    """
    out = np.zeros((win.Y.shape[0], win.X.shape[1]), np.float32)
    for fx, fy, p in waves:
        if frame is None:
            Fx, Fy, P = fx, fy, p
        else:
            k = 1.0 / frame.scale
            Fx = (fx * frame.c - fy * frame.s) * k
            Fy = (fx * frame.s + fy * frame.c) * k
            P = p - Fx * frame.cx - Fy * frame.cy
        ax = Fx * win.X + P
        ay = Fy * win.Y
        out += np.sin(ax) * np.cos(ay)
        out += np.cos(ax) * np.sin(ay)
    return out * np.float32(1.0 / len(waves))


def supersampling_for(size: int) -> int:
    """Default supersampling factor: 4 at <= 32 px, 3 at <= 128 px (odd: block majority has fewer ties), 2 above."""
    return 4 if size <= 32 else 3 if size <= 128 else 2
