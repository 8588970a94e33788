"""`scenes`: K-class compositions for any K (2 .. 65536), the scaling testbed.

Class 0 is the background (its own texture); every class k >= 1 has a fixed appearance derived only from its id
(`class_style(k)`): a shape family, an aspect/shape parameter, a two-colour palette and a texture with its own
frequency and orientation. So class k looks the same in every dataset, whatever K and seed. An image holds the
background and a few objects of random classes, position, size and rotation, painted back to front (largest first,
so smaller objects are in front and partly occlude larger ones).
"""
from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from memorygan.data.raster import Canvas, Frame, Window, eval_noise, smooth_noise, supersampling_for

FAMILIES = ("ellipse", "rectangle", "triangle", "star", "ring", "blob", "cross", "polygon", "crescent", "diamond")
TEXTURES = ("plain", "stripes", "checks", "dots", "noise", "rings", "gradient")
_CLASS_SALT = 0x5CE7E5
_GOLDEN = 0.6180339887498949


def class_names(num_classes: int) -> list[str]:
    width = max(4, len(str(num_classes - 1)))
    return ["bg"] + [f"c{k:0{width}d}" for k in range(1, num_classes)]


@dataclass(frozen=True)
class ClassStyle:
    family: str
    shape: tuple[float, ...]      # family parameters (aspect, points, inner radius, harmonics, ...)
    color1: tuple[float, float, float]
    color2: tuple[float, float, float]
    texture: str
    freq: float                   # texture frequency, radians per unit of object radius
    angle: float                  # texture orientation


@lru_cache(maxsize=None)
def class_style(k: int) -> ClassStyle:
    """The fixed appearance of class `k` (deterministic in k only)."""
    rng = np.random.default_rng([_CLASS_SALT, k])
    if k == 0:
        h = rng.random()
        c1 = colorsys.hsv_to_rgb(h, 0.15, 0.75)
        c2 = colorsys.hsv_to_rgb((h + 0.1) % 1, 0.2, 0.55)
        return ClassStyle("background", (), tuple(c1), tuple(c2), "noise", 3.0, 0.0)
    # families and textures cycle with co-prime periods so neighbouring ids always differ in both
    family = FAMILIES[(k - 1) % len(FAMILIES)]
    texture = TEXTURES[(k - 1) % len(TEXTURES)]
    h = ((k - 1) * _GOLDEN + 0.05) % 1.0
    c1 = colorsys.hsv_to_rgb(h, rng.uniform(0.55, 1.0), rng.uniform(0.55, 1.0))
    c2 = colorsys.hsv_to_rgb((h + rng.uniform(0.15, 0.5)) % 1.0, rng.uniform(0.3, 1.0), rng.uniform(0.2, 0.7))
    if family in ("ellipse", "rectangle", "diamond"):
        shape = (float(rng.uniform(0.45, 1.0)),)                                   # aspect
    elif family == "star":
        shape = (float(rng.integers(4, 9)), float(rng.uniform(0.35, 0.6)))        # points, inner radius
    elif family == "ring":
        shape = (float(rng.uniform(0.4, 0.7)),)                                    # inner radius
    elif family == "blob":
        shape = tuple(float(x) for x in np.concatenate([rng.uniform(0.05, 0.16, 3), rng.uniform(0, 2 * math.pi, 3)]))
    elif family == "cross":
        shape = (float(rng.uniform(0.22, 0.4)),)                                   # arm half-width
    elif family == "polygon":
        shape = (float(rng.integers(5, 9)),)                                       # sides
    elif family == "crescent":
        shape = (float(rng.uniform(0.35, 0.6)), float(rng.uniform(0.75, 0.95)))   # offset, cut radius
    else:  # triangle
        shape = (float(rng.uniform(0.7, 1.0)),)
    return ClassStyle(family, shape, tuple(c1), tuple(c2), texture,
                      float(rng.uniform(7.0, 16.0)), float(rng.uniform(0, math.pi)))


def shape_mask(family: str, shape: tuple[float, ...], u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Inside test of a unit-radius shape in local coordinates (u, v); (h, w) bool."""
    if family == "ellipse":
        return u * u + (v / shape[0]) ** 2 <= 1.0
    if family == "rectangle":
        return u ** 8 + (v / shape[0]) ** 8 <= 0.7  # rounded rectangle (superellipse)
    if family == "diamond":
        return np.abs(u) + np.abs(v) / shape[0] <= 1.0
    if family == "triangle":
        inside = np.ones(u.shape, bool)
        vs = v / shape[0]
        for j in range(3):
            a = -math.pi / 2 + j * 2 * math.pi / 3
            inside &= u * math.cos(a) + vs * math.sin(a) <= 0.5
        return inside
    if family == "polygon":
        n = int(shape[0])
        m = np.full(u.shape, -np.inf, np.float32)
        for j in range(n):
            a = j * 2 * math.pi / n
            m = np.maximum(m, u * math.cos(a) + v * math.sin(a))
        return m <= math.cos(math.pi / n)
    if family == "cross":
        w = shape[0]
        return ((np.abs(u) <= w) & (np.abs(v) <= 1.0)) | ((np.abs(v) <= w) & (np.abs(u) <= 1.0))
    if family == "crescent":
        off, rc = shape
        return (u * u + v * v <= 1.0) & ((u - off) ** 2 + v * v > rc * rc)
    rho = np.sqrt(u * u + v * v)
    if family == "ring":
        return (rho <= 1.0) & (rho >= shape[0])
    th = np.arctan2(v, u)
    if family == "star":
        n, rin = int(shape[0]), shape[1]
        t = np.abs(((th * (n / (2 * math.pi))) % 1.0) - 0.5) * 2.0   # 1 at tips, 0 between
        return rho <= rin + (1.0 - rin) * t ** 1.5
    if family == "blob":
        amps, phases = shape[:3], shape[3:]
        r = np.full(u.shape, 0.78, np.float32)
        for j, (am, ph) in enumerate(zip(amps, phases)):
            r = r + am * np.cos((j + 2) * th + ph)
        return rho <= r
    raise ValueError(f"unknown shape family {family!r}")


def texture_color(st: ClassStyle, u: np.ndarray, v: np.ndarray, waves) -> np.ndarray:
    """(h, w, 3) colour of the class texture at local coordinates."""
    c1 = np.asarray(st.color1, np.float32)
    c2 = np.asarray(st.color2, np.float32)
    ca, sa = math.cos(st.angle), math.sin(st.angle)
    a = u * ca + v * sa
    b = -u * sa + v * ca
    f = st.freq
    if st.texture == "plain":
        t = np.zeros(u.shape, np.float32)
    elif st.texture == "stripes":
        t = (np.sin(f * a) > 0).astype(np.float32)
    elif st.texture == "checks":
        t = ((np.sin(f * a) * np.sin(f * b)) > 0).astype(np.float32)
    elif st.texture == "dots":
        pa = (a * f / (2 * math.pi)) % 1.0 - 0.5
        pb = (b * f / (2 * math.pi)) % 1.0 - 0.5
        t = (pa * pa + pb * pb <= 0.09).astype(np.float32)
    elif st.texture == "rings":
        t = (np.sin(f * np.sqrt(u * u + v * v)) > 0).astype(np.float32)
    elif st.texture == "gradient":
        t = np.clip(a * 0.5 + 0.5, 0, 1).astype(np.float32)
    else:  # noise
        t = np.clip(waves * 1.5 + 0.5, 0, 1).astype(np.float32)
    return c1 + (c2 - c1) * t[..., None]


def sample_scene(rng: np.random.Generator, num_classes: int, objects: tuple[int, int] = (2, 5)) -> dict:
    """Draw the layout of one image; the JSON-able attribute record `render_scene` draws."""
    if num_classes < 2:
        raise ValueError(f"scenes need at least 2 classes (background + one object class), got {num_classes}")
    n = int(rng.integers(objects[0], objects[1] + 1))
    objs = []
    for _ in range(n):
        objs.append({
            "class": int(rng.integers(1, num_classes)),
            "x": round(float(rng.uniform(-0.75, 0.75)), 4), "y": round(float(rng.uniform(-0.75, 0.75)), 4),
            "radius": round(float(rng.uniform(0.16, 0.5)), 4), "angle": round(float(rng.uniform(0, 2 * math.pi)), 4),
            "brightness": round(float(rng.uniform(0.85, 1.1)), 4),
        })
    objs.sort(key=lambda o: -o["radius"])  # painter's order: large (far) first
    return {"objects": objs,
            "background": {"brightness": round(float(rng.uniform(0.8, 1.15)), 4),
                           "light": round(float(rng.uniform(0, 2 * math.pi)), 4)},
            "render_seed": int(rng.integers(0, 2**31 - 1))}


def render_scene(attrs: dict, size: int, num_classes: int, ss: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Draw a scene record. Returns image (S, S, 3) uint8 and class ids (S, S) (uint8 or uint16 for K > 256)."""
    ss = supersampling_for(size) if ss is None else int(ss)
    trng = np.random.default_rng(attrs["render_seed"])
    bgs = class_style(0)
    bg = attrs["background"]
    waves = smooth_noise(trng, 3, (1.0, 3.0))
    c1 = np.asarray(bgs.color1, np.float32) * bg["brightness"]
    c2 = np.asarray(bgs.color2, np.float32) * bg["brightness"]
    lx, ly = math.cos(bg["light"]), math.sin(bg["light"])

    def field(X, Y):
        t = eval_noise(waves, None, Window(slice(None), slice(None), X, Y)) * 0.5 + 0.5
        grad = 1.0 + 0.12 * (X * lx + Y * ly)
        return (c1 + (c2 - c1) * t[..., None]) * grad[..., None]

    cv = Canvas(size, ss, background=None)
    cv.fill_smooth(field)
    objs = attrs["objects"]
    if len(objs) > 255:
        raise ValueError("at most 255 objects per scene")
    lut = np.zeros(len(objs) + 1, np.int64)
    for i, o in enumerate(objs, 1):
        k = o["class"]
        if not 1 <= k < num_classes:
            raise ValueError(f"object class {k} outside 1..{num_classes - 1}")
        lut[i] = k
        st = class_style(k)
        fr = Frame(o["x"], o["y"], o["radius"], o["angle"])
        win = cv.window(fr.bbox(-1.05, 1.05, -1.05, 1.05))
        if win is None:
            continue
        u, v = fr.local(win)
        inside = shape_mask(st.family, st.shape, u, v)
        noise = eval_noise(smooth_noise(np.random.default_rng([attrs["render_seed"], i]), 3, (1.0, 2.5)), fr, win) \
            if st.texture == "noise" else None
        col = texture_color(st, u, v, noise)
        # soft shading: lighter towards the light direction, darker rim
        shade = o["brightness"] * (1.0 + 0.15 * (u * lx + v * ly) - 0.12 * np.clip(u * u + v * v, 0, 1))
        cv.paint(win, inside, np.clip(col * shade[..., None], 0, 1), i)
    img, ids = cv.resolve(lut, len(objs) + 1)
    return img, ids.astype(np.uint8 if num_classes <= 256 else np.uint16)


def generate_scene(seed: int, index: int, size: int, num_classes: int, ss: int | None = None,
                   objects: tuple[int, int] = (2, 5)):
    """Image, id mask and attribute record of item `index` of the scenes dataset with (`seed`, K)."""
    rng = np.random.default_rng([seed, index])
    attrs = sample_scene(rng, num_classes, objects)
    img, ids = render_scene(attrs, size, num_classes, ss)
    return img, ids, attrs
