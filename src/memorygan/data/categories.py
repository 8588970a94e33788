"""`categories`: scenes of named categories with image-level labels, the class-conditional testbed.

Each category (`CATEGORIES`: beach, forest, city, ...) has its own

- palette: sky (top, horizon), ground (far, near) and water (far, near) colours and a brightness range (night
  is dark, snowfield bright); every image tints the palette a little;
- layout rule: the height of the horizon (wavy for dunes and hills; none for the top-down garden), an optional
  water band down to a shore line, and where the objects go: `scatter` (at random on the ground or in the sky,
  smaller with distance), `row` (evenly spaced, standing on the horizon), `stack` (columns of objects on top of
  one another), `centre` (one large object in the middle) or `grid` (rows x columns, smaller with distance);
- a subset of the object classes (`OBJECTS`, with weights), object count and size ranges, and extras with their
  own region (a sun or moon and clouds in the sky, boats on the water, cacti on the ground, ...).

Item i of a dataset with C categories is category `i % C` (balanced); everything else comes from
`default_rng([seed, i])`. Images also have id masks over `CLASSES` (sky, ground, water, then the object
classes), so the same data serve the part-based models. The attribute record holds the category, the palette and
its brightness, and per object its class, centre, radius and angle (image coordinates in [-1, 1]) plus, measured
on the rendered mask, its centre and radius in pixels, its visible area in pixels and, for ellipses, its
circularity (minor / major axis).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from memorygan.data.raster import Canvas, Frame, eval_noise, smooth_noise, supersampling_for
from memorygan.data.scenes import ClassStyle, shape_mask, texture_color

RGB = tuple[float, float, float]
HALF_PI = math.pi / 2

DEFAULT_CATEGORIES = 10   # also the minimum: fewer would make the class-conditional testbed too easy


@dataclass(frozen=True)
class ObjectKind:
    """The fixed appearance of an object class."""

    family: str                           # a `scenes.shape_mask` family or one of CUSTOM_FAMILIES
    shape: tuple[float, ...] = ()         # family parameters; (aspect,) is drawn per object when `aspect` is set
    colors: tuple[tuple[RGB, RGB], ...] = (((1.0, 1.0, 1.0), (0.5, 0.5, 0.5)),)   # variants of (color1, color2)
    texture: str = "plain"                # a `scenes.texture_color` texture (not "noise")
    freq: float = 10.0
    tex_angle: float = 0.0
    angle: float = 0.0                    # base orientation (pi: triangles point up; pi/2: tall rectangles)
    tilt: float = 0.0                     # random rotation around `angle`, +- radians
    aspect: tuple[float, float] | None = None
    emissive: bool = False                # keeps its brightness at night (sun, moon, stars)
    sky: bool = False                     # drawn behind everything else


CUSTOM_FAMILIES = ("pine", "snowman", "boat", "stall", "umbrella", "cloud")

OBJECTS: dict[str, ObjectKind] = {
    "sun": ObjectKind("ellipse", aspect=(1.0, 1.0), colors=(((1.0, 0.93, 0.45), (1.0, 0.68, 0.2)),),
                      texture="gradient", tex_angle=HALF_PI, emissive=True, sky=True),
    "moon": ObjectKind("crescent", (0.45, 0.85), colors=(((0.97, 0.95, 0.78), (0.9, 0.9, 0.8)),), tilt=0.6,
                       emissive=True, sky=True),
    "star": ObjectKind("star", (5.0, 0.42), colors=(((1.0, 1.0, 0.88), (1.0, 0.95, 0.6)),), tilt=math.pi,
                       emissive=True, sky=True),
    "cloud": ObjectKind("cloud", colors=(((0.99, 0.99, 1.0), (0.82, 0.85, 0.9)),), texture="gradient",
                        tex_angle=HALF_PI, sky=True),
    "tree": ObjectKind("ellipse", aspect=(0.65, 1.0), angle=HALF_PI, tilt=0.08,
                       colors=(((0.3, 0.62, 0.2), (0.13, 0.4, 0.1)), ((0.42, 0.66, 0.22), (0.2, 0.45, 0.12))),
                       texture="dots", freq=14.0, tex_angle=0.5),
    "pine": ObjectKind("pine", colors=(((0.1, 0.36, 0.16), (0.04, 0.22, 0.09)),), texture="stripes", freq=12.0,
                       tex_angle=HALF_PI, tilt=0.04),
    "building": ObjectKind("rectangle", aspect=(0.3, 0.55), angle=HALF_PI, texture="checks", freq=18.0,
                           colors=(((0.55, 0.57, 0.62), (0.95, 0.9, 0.55)), ((0.62, 0.5, 0.44), (0.9, 0.85, 0.62)),
                                   ((0.4, 0.45, 0.56), (0.85, 0.9, 0.96)))),
    "pyramid": ObjectKind("triangle", (0.75,), angle=math.pi, colors=(((0.9, 0.76, 0.46), (0.7, 0.55, 0.3)),),
                          texture="stripes", freq=22.0, tex_angle=HALF_PI),
    "cactus": ObjectKind("cross", (0.22,), colors=(((0.32, 0.6, 0.3), (0.2, 0.44, 0.2)),), texture="stripes",
                         freq=20.0, tilt=0.1),
    "snowman": ObjectKind("snowman", colors=(((1.0, 1.0, 1.0), (0.8, 0.84, 0.92)),), texture="gradient",
                          tex_angle=0.8, tilt=0.06),
    "mountain": ObjectKind("triangle", (0.62,), angle=math.pi, colors=(((0.42, 0.4, 0.44), (0.97, 0.97, 1.0)),),
                           texture="gradient", tex_angle=HALF_PI),
    "boat": ObjectKind("boat", colors=(((0.97, 0.97, 0.94), (0.55, 0.3, 0.15)), ((0.95, 0.35, 0.28),
                                                                                (0.22, 0.24, 0.35))),
                       texture="gradient", tex_angle=HALF_PI, tilt=0.08),
    "container": ObjectKind("rectangle", aspect=(0.4, 0.5), texture="stripes", freq=26.0,
                            colors=(((0.8, 0.2, 0.15), (0.6, 0.12, 0.1)), ((0.15, 0.35, 0.7), (0.1, 0.25, 0.5)),
                                    ((0.2, 0.55, 0.3), (0.12, 0.4, 0.2)), ((0.95, 0.55, 0.1), (0.75, 0.4, 0.05)))),
    "flower": ObjectKind("star", (6.0, 0.5), texture="rings", freq=9.0, tilt=math.pi,
                         colors=(((0.95, 0.85, 0.2), (0.9, 0.15, 0.2)), ((0.95, 0.85, 0.2), (0.98, 0.98, 0.98)),
                                 ((0.95, 0.85, 0.2), (0.9, 0.45, 0.75)), ((0.95, 0.85, 0.2), (0.55, 0.3, 0.85)))),
    "rock": ObjectKind("polygon", (6.0,), colors=(((0.58, 0.56, 0.53), (0.36, 0.35, 0.34)),), texture="gradient",
                       tex_angle=1.0, tilt=math.pi),
    "stall": ObjectKind("stall", texture="stripes", freq=14.0,
                        colors=(((0.9, 0.2, 0.2), (0.97, 0.95, 0.9)), ((0.2, 0.45, 0.85), (0.97, 0.95, 0.9)),
                                ((0.2, 0.65, 0.3), (0.97, 0.95, 0.9)))),
    "umbrella": ObjectKind("umbrella", texture="stripes", freq=10.0, tilt=0.15,
                           colors=(((0.95, 0.25, 0.2), (0.98, 0.98, 0.95)), ((0.2, 0.5, 0.9), (0.98, 0.98, 0.95)),
                                   ((0.98, 0.8, 0.15), (0.95, 0.4, 0.1)))),
}

# segmentation classes (mask ids), in id order: the three background regions, then the object classes
CLASSES: tuple[str, ...] = ("sky", "ground", "water") + tuple(OBJECTS)
REGION_IDS = {"sky": 0, "ground": 1, "water": 2}


@dataclass(frozen=True)
class Extra:
    """Objects a category adds besides its main ones, each in its own region."""

    kind: str
    count: tuple[int, int]
    radius: tuple[float, float]
    region: str                  # "sky", "ground", "water" or "horizon" (standing on the horizon line)


@dataclass(frozen=True)
class Category:
    name: str
    ground: tuple[RGB, RGB]                      # (far, near)
    sky: tuple[RGB, RGB] | None                  # (top, horizon); None: seen from above, all ground
    water: tuple[RGB, RGB] | None = None         # (far, near), a band from the horizon down to the shore
    horizon: tuple[float, float] = (0.0, 0.0)    # y range of the horizon line (image y in [-1, 1], down)
    wave: float = 0.0                            # largest amplitude of a wavy horizon (dunes, hills)
    shore: tuple[float, float] | None = None     # y range of the shore line (with water)
    brightness: tuple[float, float] = (0.9, 1.1)
    layout: str = "scatter"                      # scatter | row | stack | centre | grid
    region: str = "ground"                       # where `scatter` puts the main objects
    objects: tuple[tuple[str, float], ...] = ()  # (object class, weight)
    count: tuple[int, int] = (1, 1)              # main objects (grid: columns; stack: all objects)
    radius: tuple[float, float] = (0.2, 0.3)     # object radius (image half-widths) before perspective
    row_depth: tuple[float, float] = (0.0, 0.04)  # row / centre: how far below the horizon objects stand
    extras: tuple[Extra, ...] = ()


CATEGORIES: tuple[Category, ...] = (
    Category("beach", sky=((0.3, 0.6, 0.95), (0.72, 0.88, 1.0)), ground=((0.93, 0.84, 0.58), (0.98, 0.9, 0.7)),
             water=((0.08, 0.42, 0.72), (0.2, 0.62, 0.8)), horizon=(-0.25, -0.05), shore=(0.15, 0.35),
             brightness=(0.95, 1.1), layout="scatter", objects=(("umbrella", 1.0),), count=(1, 3),
             radius=(0.16, 0.24),
             extras=(Extra("sun", (1, 1), (0.09, 0.14), "sky"), Extra("cloud", (0, 2), (0.12, 0.2), "sky"),
                     Extra("stall", (0, 1), (0.1, 0.14), "ground"))),   # a kiosk: every class occurs with C = 10
    Category("forest", sky=((0.55, 0.64, 0.6), (0.76, 0.8, 0.7)), ground=((0.2, 0.3, 0.12), (0.3, 0.22, 0.12)),
             horizon=(-0.55, -0.35), wave=0.05, brightness=(0.7, 0.95), layout="row",
             objects=(("pine", 3.0), ("tree", 1.0)), count=(5, 8), radius=(0.28, 0.42), row_depth=(0.0, 0.3)),
    Category("city", sky=((0.58, 0.64, 0.76), (0.86, 0.85, 0.84)), ground=((0.36, 0.36, 0.38), (0.46, 0.46, 0.48)),
             horizon=(0.35, 0.55), layout="row", objects=(("building", 1.0),), count=(4, 7), radius=(0.35, 0.6),
             extras=(Extra("cloud", (0, 1), (0.12, 0.18), "sky"),)),
    Category("desert", sky=((0.95, 0.72, 0.42), (1.0, 0.9, 0.7)), ground=((0.9, 0.65, 0.35), (0.8, 0.5, 0.25)),
             horizon=(-0.05, 0.15), wave=0.08, brightness=(0.95, 1.1), layout="centre",
             objects=(("pyramid", 1.0),), count=(1, 1), radius=(0.5, 0.7),
             extras=(Extra("sun", (1, 1), (0.12, 0.18), "sky"), Extra("cactus", (0, 2), (0.1, 0.18), "ground"))),
    Category("snowfield", sky=((0.74, 0.82, 0.92), (0.92, 0.94, 0.97)), ground=((0.95, 0.96, 0.98),
                                                                              (0.84, 0.87, 0.93)),
             horizon=(-0.25, 0.0), wave=0.06, brightness=(1.0, 1.1), layout="scatter",
             objects=(("snowman", 2.0), ("pine", 1.0)), count=(1, 3), radius=(0.18, 0.3)),
    Category("lake", sky=((0.28, 0.52, 0.9), (0.7, 0.84, 0.95)), ground=((0.3, 0.5, 0.2), (0.36, 0.56, 0.24)),
             water=((0.14, 0.32, 0.58), (0.1, 0.28, 0.48)), horizon=(-0.2, 0.0), shore=(0.55, 0.8),
             layout="row", objects=(("mountain", 1.0),), count=(2, 4), radius=(0.35, 0.6),
             extras=(Extra("boat", (0, 2), (0.08, 0.13), "water"),)),
    Category("night", sky=((0.02, 0.03, 0.12), (0.09, 0.11, 0.27)), ground=((0.05, 0.06, 0.08), (0.08, 0.08, 0.1)),
             horizon=(0.3, 0.55), brightness=(0.35, 0.55), layout="scatter", region="sky",
             objects=(("star", 1.0),), count=(6, 12), radius=(0.03, 0.06),
             extras=(Extra("moon", (1, 1), (0.12, 0.18), "sky"), Extra("building", (0, 3), (0.2, 0.35), "horizon"))),
    Category("orchard", sky=((0.42, 0.68, 0.95), (0.8, 0.9, 0.95)), ground=((0.45, 0.65, 0.2), (0.35, 0.55, 0.15)),
             horizon=(-0.6, -0.45), layout="grid", objects=(("tree", 1.0),), count=(3, 5), radius=(0.13, 0.18)),
    Category("garden", sky=None, ground=((0.3, 0.58, 0.2), (0.25, 0.5, 0.15)), layout="scatter",
             objects=(("flower", 4.0), ("rock", 1.0)), count=(6, 12), radius=(0.07, 0.14)),
    Category("harbour", sky=((0.48, 0.64, 0.8), (0.8, 0.85, 0.9)), ground=((0.45, 0.4, 0.35), (0.52, 0.46, 0.4)),
             water=((0.08, 0.28, 0.42), (0.14, 0.34, 0.5)), horizon=(-0.35, -0.2), shore=(0.1, 0.3),
             layout="stack", objects=(("container", 1.0),), count=(3, 8), radius=(0.13, 0.18),
             extras=(Extra("boat", (1, 2), (0.1, 0.16), "water"),)),
    Category("market", sky=((0.6, 0.75, 0.92), (0.9, 0.92, 0.9)), ground=((0.62, 0.56, 0.5), (0.72, 0.66, 0.58)),
             horizon=(-0.15, 0.05), layout="row", objects=(("stall", 1.0),), count=(2, 4), radius=(0.24, 0.32),
             row_depth=(0.35, 0.55), extras=(Extra("umbrella", (0, 2), (0.12, 0.18), "ground"),)),
    Category("mountains", sky=((0.36, 0.5, 0.72), (0.78, 0.82, 0.88)), ground=((0.38, 0.42, 0.3),
                                                                             (0.44, 0.4, 0.3)),
             horizon=(0.2, 0.4), wave=0.1, layout="centre", objects=(("mountain", 1.0),), count=(1, 1),
             radius=(0.75, 0.95), row_depth=(0.05, 0.15),
             extras=(Extra("mountain", (1, 2), (0.35, 0.5), "horizon"), Extra("cloud", (0, 2), (0.1, 0.16), "sky"),
                     Extra("rock", (0, 2), (0.06, 0.1), "ground"))),
)

CATEGORY_NAMES: tuple[str, ...] = tuple(c.name for c in CATEGORIES)
LAYOUTS = ("scatter", "row", "stack", "centre", "grid")


def category_names(num_categories: int = DEFAULT_CATEGORIES) -> list[str]:
    """The first `num_categories` of `CATEGORIES` (the dataset's 'categories', id order)."""
    if not DEFAULT_CATEGORIES <= num_categories <= len(CATEGORIES):
        raise ValueError(f"num_categories must be between {DEFAULT_CATEGORIES} and {len(CATEGORIES)}, "
                         f"got {num_categories}")
    return list(CATEGORY_NAMES[:num_categories])


# ---------------------------------------------------------------------------------------------------- shapes

def object_mask(family: str, shape: tuple[float, ...], u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Inside test of a unit-radius object in local coordinates (u right, v down); (h, w) bool."""
    if family == "pine":  # three stacked tiers and a trunk
        inside = (np.abs(u) <= 0.08) & (v >= 0.75) & (v <= 1.0)
        for t in range(3):
            top = -1.0 + 0.5 * t
            inside |= (v >= top) & (v <= top + 0.8) & (np.abs(u) <= (0.3 + 0.15 * t) * (v - top) / 0.8)
        return inside
    if family == "snowman":
        return (u * u + (v - 0.4) ** 2 <= 0.36) | (u * u + (v + 0.5) ** 2 <= 0.42 ** 2)
    if family == "boat":  # hull narrowing downwards, a mast and a sail
        hull = (v >= 0.25) & (v <= 0.6) & (np.abs(u) <= 1.0 - (v - 0.25))
        mast = (np.abs(u) <= 0.04) & (v >= -0.95) & (v <= 0.25)
        sail = (v >= -0.95) & (v <= 0.2) & (u >= 0.08) & (u <= 0.08 + 0.75 * (v + 0.95) / 1.15)
        return hull | mast | sail
    if family == "stall":  # a box under a trapezoid awning
        body = (np.abs(u) <= 0.8) & (v >= 0.0) & (v <= 0.95)
        roof = (v >= -0.6) & (v < 0.0) & (np.abs(u) <= 0.6 + 0.35 * (v + 0.6) / 0.6)
        return body | roof
    if family == "umbrella":  # half-ellipse canopy on a pole
        canopy = (v <= 0.0) & (u * u + (v / 0.55) ** 2 <= 1.0)
        return canopy | ((np.abs(u) <= 0.05) & (v >= 0.0) & (v <= 1.0))
    if family == "cloud":  # three puffs with a flat bottom
        puffs = ((u + 0.5) ** 2 + (v - 0.1) ** 2 <= 0.2) | (u * u + (v + 0.1) ** 2 <= 0.3) | \
            ((u - 0.5) ** 2 + (v - 0.1) ** 2 <= 0.2)
        return puffs & (v <= 0.45)
    return shape_mask(family, shape, u, v)


def object_shape(kind: ObjectKind, aspect: float | None) -> tuple[float, ...]:
    return (aspect,) if kind.aspect is not None else kind.shape


@lru_cache(maxsize=4096)
def _extent(name: str, aspect: float | None, angle: float) -> tuple[float, float]:
    """(top, bottom): how far the object reaches above and below its centre in the image, in radii."""
    kind = OBJECTS[name]
    g = np.linspace(-1.0, 1.0, 97, dtype=np.float32)
    u, v = np.meshgrid(g, g)
    inside = object_mask(kind.family, object_shape(kind, aspect), u, v)
    y = math.sin(angle) * u + math.cos(angle) * v  # image y offset of local (u, v) (raster.Frame)
    return float(-y[inside].min()), float(y[inside].max())


# ---------------------------------------------------------------------------------------------------- sampling

def horizon_y(record: dict, x):
    """y of the horizon line at image x ((1, W) array or float); -inf-like (-2) when the scene has no sky."""
    h = record["horizon"]
    if h is None:
        return np.full_like(x, -2.0) if isinstance(x, np.ndarray) else -2.0
    a, f, p = record["wave"]
    return h + a * np.sin(f * x + p) if isinstance(x, np.ndarray) else h + a * math.sin(f * x + p)


def _r4(x: float) -> float:
    return round(float(x), 4)


def _new_object(rng: np.random.Generator, name: str, role: str) -> dict:
    kind = OBJECTS[name]
    aspect = _r4(rng.uniform(*kind.aspect)) if kind.aspect is not None else None
    tilt = float(rng.uniform(-kind.tilt, kind.tilt)) if kind.tilt else 0.0
    return {"class": name, "class_id": CLASSES.index(name), "role": role, "aspect": aspect,
            "angle": _r4(kind.angle + tilt), "color": int(rng.integers(0, len(kind.colors))),
            "brightness": _r4(rng.uniform(0.88, 1.08))}


def _stand(o: dict, x: float, foot: float, r: float) -> dict:
    """Place an object of radius r with its lowest point at y = foot."""
    _, bottom = _extent(o["class"], o["aspect"], o["angle"])
    o.update(x=_r4(x), y=_r4(foot - bottom * r), radius=_r4(r))
    return o


def _ground_top(rec: dict, x: float) -> float:
    return rec["shore"] if rec["shore"] is not None else max(horizon_y(rec, x), -1.0)


def _depth_scale(rec: dict, foot: float) -> float:
    """Perspective: objects near the horizon are drawn at 55% of their size, at the bottom edge at 100%."""
    if rec["horizon"] is None:
        return 1.0
    d = (foot - rec["horizon"]) / max(1.0 - rec["horizon"], 1e-3)
    return 0.55 + 0.45 * min(max(d, 0.0), 1.0)


def _place_in_region(rng: np.random.Generator, rec: dict, o: dict, region: str, radius: tuple[float, float]):
    r = float(rng.uniform(*radius))
    x = float(rng.uniform(-0.85, 0.85))
    hz = float(horizon_y(rec, x))
    if region == "sky":
        top, bottom = _extent(o["class"], o["aspect"], o["angle"])
        lo, hi = -0.95 + top * r, hz - 0.04 - bottom * r
        y = float(rng.uniform(lo, max(lo, hi)))
        o.update(x=_r4(x), y=_r4(y), radius=_r4(r))
        return o
    if region == "horizon":
        return _stand(o, x, hz + float(rng.uniform(0.0, 0.04)), r)
    if region == "water":
        lo, hi = hz + 0.06, rec["shore"] - 0.02
    else:  # ground
        lo, hi = _ground_top(rec, x) + 0.06, 0.97
    foot = float(rng.uniform(lo, max(lo, hi)))
    return _stand(o, x, foot, r * _depth_scale(rec, foot))


def _main_objects(rng: np.random.Generator, cat: Category, rec: dict) -> list[dict]:
    names = [n for n, _ in cat.objects]
    w = np.array([p for _, p in cat.objects], np.float64)
    n = int(rng.integers(cat.count[0], cat.count[1] + 1))

    def pick() -> dict:
        return _new_object(rng, names[int(rng.choice(len(names), p=w / w.sum()))], "main")

    objs: list[dict] = []
    if cat.layout == "scatter":
        for _ in range(n):
            objs.append(_place_in_region(rng, rec, pick(), cat.region, cat.radius))
    elif cat.layout in ("row", "centre"):
        half = 0.9 * n / (n + 1)  # few objects stay clear of the edges
        xs = [float(rng.uniform(-0.12, 0.12))] if cat.layout == "centre" else \
            list(np.linspace(-half, half, n) + rng.uniform(-0.25, 0.25, n) * min(2 * half / max(n - 1, 1), 0.4))
        for x in xs:
            foot = float(horizon_y(rec, x)) + float(rng.uniform(*cat.row_depth))
            objs.append(_stand(pick(), x, foot, float(rng.uniform(*cat.radius))))
    elif cat.layout == "stack":
        cols = int(rng.integers(1, min(3, n) + 1))
        heights = np.bincount(rng.integers(0, cols, n - cols), minlength=cols) + 1  # every column >= 1 object
        xs = np.linspace(-0.55, 0.55, cols) if cols > 1 else np.zeros(1)
        ground = float(rng.uniform(_ground_top(rec, 0.0) + 0.35, 0.9))
        for x0, hgt in zip(xs, heights):
            r = float(rng.uniform(*cat.radius))
            foot = ground
            for _ in range(int(hgt)):
                o = _stand(pick(), float(x0 + rng.uniform(-0.1, 0.1) * r), foot, r)
                objs.append(o)
                top, _ = _extent(o["class"], o["aspect"], o["angle"])
                foot = o["y"] - top * r
    elif cat.layout == "grid":
        rows = int(rng.integers(2, 4))
        r0 = float(rng.uniform(*cat.radius))
        top = _ground_top(rec, 0.0)
        for j in range(rows):
            foot = top + 0.15 + (0.9 - top - 0.15) * (j + 0.5) / rows
            s = _depth_scale(rec, foot)
            for x in np.linspace(-0.8, 0.8, n) * (0.75 + 0.25 * s):
                objs.append(_stand(pick(), float(x + rng.uniform(-0.04, 0.04)), foot, r0 * s))
    else:
        raise ValueError(f"unknown layout {cat.layout!r}")
    return objs


def sample_category_scene(rng: np.random.Generator, category: int) -> dict:
    """Draw the layout of one image of category `category` (index into CATEGORIES); the JSON-able attribute
    record `render_category_scene` draws."""
    cat = CATEGORIES[category]
    tint = 1.0 + rng.uniform(-0.06, 0.06, 3)

    def col(c) -> list[float]:
        return [_r4(x) for x in np.clip(np.asarray(c) * tint, 0.0, 1.0)]

    palette = {"ground_far": col(cat.ground[0]), "ground_near": col(cat.ground[1])}
    if cat.sky is not None:
        palette.update(sky_top=col(cat.sky[0]), sky_horizon=col(cat.sky[1]))
    if cat.water is not None:
        palette.update(water_far=col(cat.water[0]), water_near=col(cat.water[1]))
    rec = {
        "category": cat.name, "category_id": int(category), "layout": cat.layout,
        "horizon": _r4(rng.uniform(*cat.horizon)) if cat.sky is not None else None,
        "wave": [_r4(rng.uniform(0.0, cat.wave)), _r4(rng.uniform(1.5, 4.0)), _r4(rng.uniform(0, 2 * math.pi))],
        "shore": _r4(rng.uniform(*cat.shore)) if cat.water is not None else None,
        "palette": palette,
        "brightness": _r4(rng.uniform(*cat.brightness)),
        "light": _r4(rng.uniform(-0.9 * math.pi, -0.1 * math.pi)),
    }
    objs = _main_objects(rng, cat, rec)
    for ex in cat.extras:
        for _ in range(int(rng.integers(ex.count[0], ex.count[1] + 1))):
            objs.append(_place_in_region(rng, rec, _new_object(rng, ex.kind, "extra"), ex.region, ex.radius))
    # painter's order: the sky's objects first, then back to front by the lowest point (far objects first)
    objs.sort(key=lambda o: (not OBJECTS[o["class"]].sky,
                             o["y"] + _extent(o["class"], o["aspect"], o["angle"])[1] * o["radius"]))
    rec["objects"] = objs
    rec["render_seed"] = int(rng.integers(0, 2**31 - 1))
    return rec


# ---------------------------------------------------------------------------------------------------- rendering

def _gradient(c0, c1, t: np.ndarray) -> np.ndarray:
    c0 = np.asarray(c0, np.float32)
    c1 = np.asarray(c1, np.float32)
    return c0 + (c1 - c0) * t[..., None]


def render_category_scene(record: dict, size: int, ss: int | None = None
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw a record of `sample_category_scene`. Returns image (S, S, 3) uint8, class ids (S, S) uint8 over
    CLASSES, and the visible area in pixels of each object of `record["objects"]`, (N,) int64."""
    ss = supersampling_for(size) if ss is None else int(ss)
    objs = record["objects"]
    if len(objs) > 250:
        raise ValueError("at most 250 objects per scene")
    cv = Canvas(size, ss, background=None)
    win = cv.full()
    X, Y = win.X, win.Y                                                  # (1, n), (n, 1)
    n = cv.n
    pal = record["palette"]
    b = np.float32(record["brightness"])
    trng = np.random.default_rng(record["render_seed"])
    texture = 1.0 + 0.06 * eval_noise(smooth_noise(trng, 3, (1.0, 3.0)), None, win)   # (n, n)
    hz = np.broadcast_to(horizon_y(record, X).astype(np.float32), (n, n))
    Yf = np.broadcast_to(Y, (n, n))
    region = np.where(Yf < hz, REGION_IDS["sky"], REGION_IDS["ground"]).astype(np.uint8)
    ground_top = hz
    if record["shore"] is not None:
        shore = np.float32(record["shore"])
        region[(Yf >= hz) & (Yf < shore)] = REGION_IDS["water"]
        ground_top = np.maximum(hz, shore)
    rgb = _gradient(pal["ground_far"], pal["ground_near"],
                    np.clip((Yf - ground_top) / np.maximum(1.0 - ground_top, 1e-3), 0, 1)) * texture[..., None]
    if record["horizon"] is not None:
        sky = _gradient(pal["sky_top"], pal["sky_horizon"], np.clip((Yf + 1.0) / np.maximum(hz + 1.0, 1e-3), 0, 1))
        rgb = np.where((region == REGION_IDS["sky"])[..., None], sky, rgb)
    if record["shore"] is not None:
        t = np.clip((Yf - hz) / np.maximum(shore - hz, 1e-3), 0, 1)
        ripple = 1.0 + 0.05 * np.sin(70.0 * Yf + 4.0 * texture)
        rgb = np.where((region == REGION_IDS["water"])[..., None],
                       _gradient(pal["water_far"], pal["water_near"], t) * ripple[..., None], rgb)
    cv.rgb[:] = rgb * b
    cv.slots[:] = region
    lx, ly = math.cos(record["light"]), math.sin(record["light"])
    base = len(REGION_IDS)
    lut = np.array(list(range(base)) + [o["class_id"] for o in objs], np.int64)
    for i, o in enumerate(objs):
        kind = OBJECTS[o["class"]]
        c1, c2 = kind.colors[o["color"]]
        shape = object_shape(kind, o["aspect"])
        st = ClassStyle(kind.family, shape, c1, c2, kind.texture, kind.freq, kind.tex_angle)
        fr = Frame(o["x"], o["y"], o["radius"], o["angle"])
        w = cv.window(fr.bbox(-1.05, 1.05, -1.05, 1.05))
        if w is None:
            continue
        u, v = fr.local(w)
        inside = object_mask(kind.family, shape, u, v)
        shade = o["brightness"] * (1.0 + 0.15 * (u * lx + v * ly) - 0.1 * np.clip(u * u + v * v, 0, 1))
        if not kind.emissive:
            shade = shade * b
        cv.paint(w, inside, np.clip(texture_color(st, u, v, None) * shade[..., None], 0, 1), base + i)
    img, slots = cv.resolve(np.arange(base + len(objs), dtype=np.int64), base + len(objs))
    areas = np.bincount(slots.ravel(), minlength=base + len(objs))[base:].astype(np.int64)
    return img, lut[slots].astype(np.uint8), areas


def generate_category_scene(seed: int, index: int, size: int, num_categories: int = DEFAULT_CATEGORIES,
                            ss: int | None = None) -> tuple[np.ndarray, np.ndarray, dict]:
    """Image, id mask and attribute record of item `index` of the categories dataset with (`seed`, C): its
    category is `index % C`; the record adds pixel measurements to the sampled layout."""
    category_names(num_categories)  # validates C
    rng = np.random.default_rng([seed, index])
    rec = sample_category_scene(rng, index % num_categories)
    img, ids, areas = render_category_scene(rec, size, ss)
    half = size / 2.0
    for o, area in zip(rec["objects"], areas):
        o["centre_px"] = [_r4((o["x"] + 1.0) * half), _r4((o["y"] + 1.0) * half)]
        o["radius_px"] = _r4(o["radius"] * half)
        o["area_px"] = int(area)
        # minor / major axis of an ellipse (1 for a circle); undefined for other shapes
        o["circularity"] = o["aspect"] if OBJECTS[o["class"]].family == "ellipse" else None
    luma = img.astype(np.float64) @ np.array([0.299, 0.587, 0.114]) / 255.0
    rec["mean_luma"] = _r4(luma.mean())
    return img, ids, rec
