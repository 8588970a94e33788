"""Assessors (GANalyze, Andonian thesis Ch. 3): differentiable scores of generated images, A(image, seg, parts)
-> (B,), that a latent direction learns to move.

An assessor is named by a spec string:

    brightness | colourfulness | redness [:PARTS]     the thesis's emerging factors (Sec. 3.3.2), over the whole
                                                      image or inside the generated mask of PARTS
    area:PARTS, centroid_x:PARTS, centroid_y:PARTS    object size and position of a part (thesis Sec. 3.3.2)
    hue:PARTS, lightness:PARTS, saturation:PARTS,     colour of a part inside its generated mask
    blueness:PARTS
    probe:CLASS                                       the segmentation probe's evidence for a class (mean softmax
                                                      probability over the image); needs a probe folder
    regressor:DIR[:CLASS]                             a regressor trained on a dataset's ground-truth attributes
                                                      (`memorygan edit train-assessor`)
    MODULE:CALLABLE                                   a user function f(image, seg, parts) -> (B,)

PARTS is one part name/id or several joined by "+" (e.g. `lightness:skin+hair`). Images are (B, 3, H, W) in
[-1, 1]; seg are the generator's segmentation logits (B, K, H, W). Part masks are soft (softmax of `SHARPNESS` x
seg: the generator's seg approximates one-hot {-1, 1}), so every built-in assessor is differentiable in both.
"""
from __future__ import annotations

import importlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from memorygan.errors import ConfigError

SHARPNESS = 5.0          # soft part masks: softmax(5 * seg); a {-1, 1} one-hot gives 0.9995 on its class
LUMA = (0.299, 0.587, 0.114)


@dataclass(frozen=True)
class AssessorInfo:
    name: str
    summary: str
    parts: str               # "none" | "optional" | "required"


@dataclass
class Assessor:
    """A resolved assessor: call it on (image, seg) -> (B,) scores."""
    spec: str
    fn: Callable
    parts: list[int]
    summary: str = ""

    def __call__(self, image: torch.Tensor, seg: torch.Tensor | None = None) -> torch.Tensor:
        score = self.fn(image, seg, self.parts)
        if score.ndim != 1 or score.shape[0] != image.shape[0]:
            raise ConfigError(f"assessor {self.spec!r} returned shape {tuple(score.shape)}, expected "
                              f"({image.shape[0]},) (one score per image)")
        return score


BUILTINS: dict[str, tuple[AssessorInfo, Callable]] = {}


def register_assessor(name: str, summary: str, parts: str = "none"):
    """Decorator registering f(image, seg, parts) -> (B,) under `name`."""
    def deco(fn):
        BUILTINS[name] = (AssessorInfo(name, summary, parts), fn)
        return fn
    return deco


# ----------------------------------------------------------------------------------------------- helpers
def to_unit(image: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> [0, 1] (not clamped: gradients flow everywhere)."""
    return (image + 1.0) / 2.0


def luma(rgb: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) in [0, 1] -> (B, H, W) Rec. 601 luma."""
    return LUMA[0] * rgb[:, 0] + LUMA[1] * rgb[:, 1] + LUMA[2] * rgb[:, 2]


def soft_mask(seg: torch.Tensor | None, parts: list[int], like: torch.Tensor) -> torch.Tensor:
    """(B, H, W) soft mask of the union of `parts` (all ones when no parts are given)."""
    if not parts:
        return torch.ones_like(like[:, 0])
    if seg is None:
        raise ConfigError("this assessor needs the generator's segmentation (seg) to find its parts")
    prob = torch.softmax(SHARPNESS * seg.float(), dim=1)
    return prob[:, parts].sum(1)


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """values, mask (B, H, W) -> (B,) weighted mean (0 where the mask is empty)."""
    return (values * mask).sum((1, 2)) / mask.sum((1, 2)).clamp(min=1e-6)


# ----------------------------------------------------------------------------------------------- built-ins
@register_assessor("brightness", "mean luma (Rec. 601) of the image or of PARTS, in [0, 1]", "optional")
def brightness(image, seg, parts):
    rgb = to_unit(image.float())
    return masked_mean(luma(rgb), soft_mask(seg, parts, rgb))


@register_assessor("colourfulness", "Hasler-Suesstrunk colourfulness of the image or of PARTS (the thesis's "
                                    "metric [38])", "optional")
def colourfulness(image, seg, parts):
    rgb = to_unit(image.float())
    m = soft_mask(seg, parts, rgb)
    rg = rgb[:, 0] - rgb[:, 1]
    yb = 0.5 * (rgb[:, 0] + rgb[:, 1]) - rgb[:, 2]
    mu_rg, mu_yb = masked_mean(rg, m), masked_mean(yb, m)
    var_rg = masked_mean((rg - mu_rg[:, None, None]) ** 2, m)
    var_yb = masked_mean((yb - mu_yb[:, None, None]) ** 2, m)
    return torch.sqrt(var_rg + var_yb + 1e-8) + 0.3 * torch.sqrt(mu_rg ** 2 + mu_yb ** 2 + 1e-8)


@register_assessor("redness", "mean of red - (green + blue) / 2 over the image or PARTS", "optional")
def redness(image, seg, parts):
    rgb = to_unit(image.float())
    return masked_mean(rgb[:, 0] - 0.5 * (rgb[:, 1] + rgb[:, 2]), soft_mask(seg, parts, rgb))


@register_assessor("area", "fraction of the image covered by PARTS (object size)", "required")
def area(image, seg, parts):
    return soft_mask(seg, parts, image).mean((1, 2))


def _centroid(image, seg, parts, axis):
    m = soft_mask(seg, parts, image)
    h, w = m.shape[1:]
    coord = torch.linspace(-1, 1, w if axis == "x" else h, device=m.device, dtype=m.dtype)
    grid = coord[None, None, :] if axis == "x" else coord[None, :, None]
    return masked_mean(grid.expand_as(m), m)


@register_assessor("centroid_x", "horizontal centre of PARTS, -1 (left) .. 1 (right)", "required")
def centroid_x(image, seg, parts):
    return _centroid(image, seg, parts, "x")


@register_assessor("centroid_y", "vertical centre of PARTS, -1 (top) .. 1 (bottom)", "required")
def centroid_y(image, seg, parts):
    return _centroid(image, seg, parts, "y")


def _hls(rgb):
    mx, mn = rgb.max(1).values, rgb.min(1).values
    lightness = (mx + mn) / 2
    chroma = mx - mn
    saturation = chroma / (1 - (2 * lightness - 1).abs()).clamp(min=1e-4)
    return lightness, saturation


@register_assessor("lightness", "HLS lightness of PARTS in [0, 1]", "required")
def part_lightness(image, seg, parts):
    rgb = to_unit(image.float()).clamp(0, 1)
    return masked_mean(_hls(rgb)[0], soft_mask(seg, parts, rgb))


@register_assessor("saturation", "HLS saturation of PARTS in [0, 1]", "required")
def part_saturation(image, seg, parts):
    rgb = to_unit(image.float()).clamp(0, 1)
    return masked_mean(_hls(rgb)[1].clamp(0, 1), soft_mask(seg, parts, rgb))


@register_assessor("hue", "hue angle of the mean colour of PARTS in turns, -0.5 .. 0.5 (0 red, 1/3 green, "
                          "-1/3 blue)", "required")
def part_hue(image, seg, parts):
    rgb = to_unit(image.float())
    m = soft_mask(seg, parts, rgb)
    r, g, b = (masked_mean(rgb[:, c], m) for c in range(3))
    return torch.atan2(math.sqrt(3) * (g - b), 2 * r - g - b) / (2 * math.pi)


@register_assessor("blueness", "mean of blue - red over PARTS (eye colour: blue vs brown)", "required")
def part_blueness(image, seg, parts):
    rgb = to_unit(image.float())
    return masked_mean(rgb[:, 2] - rgb[:, 0], soft_mask(seg, parts, rgb))


# ----------------------------------------------------------------------------------------------- resolution
def assessor_infos() -> list[AssessorInfo]:
    """The built-ins and the other kinds, for `memorygan edit assessors`."""
    return [info for info, _ in BUILTINS.values()] + [
        AssessorInfo("probe:CLASS", "the segmentation probe's mean softmax probability of CLASS (needs --probe "
                                    "or --data with DATA/probe)", "none"),
        AssessorInfo("regressor:DIR[:CLASS]", "an attribute regressor trained with `memorygan edit "
                                              "train-assessor` (value, presence probability, or CLASS probability)",
                     "none"),
        AssessorInfo("MODULE:CALLABLE", "a user function f(image, seg, parts) -> (B,) tensor", "optional"),
    ]


def _parts(G, text: str | None, spec: str) -> list[int]:
    if not text:
        return []
    return G.resolve_parts(text.replace("+", ","), f"assessor {spec!r}")


def get_assessor(spec: str, G, probe=None, data=None, device=None) -> Assessor:
    """Resolve a spec string (module docstring) for generator G (its part names). `probe`: a probe folder, or
    `data` with DATA/probe, for probe:CLASS."""
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError("--assessor: give an assessor name (see `memorygan edit assessors`)")
    spec = spec.strip()
    name, _, rest = spec.partition(":")
    device = device if device is not None else G.device
    if name in BUILTINS:
        info, fn = BUILTINS[name]
        parts = _parts(G, rest, spec)
        if info.parts == "required" and not parts:
            raise ConfigError(f"assessor {name!r} needs parts: {name}:PART or {name}:PART+PART "
                              f"(parts: {', '.join(G.part_names)})")
        if info.parts == "none" and parts:
            raise ConfigError(f"assessor {name!r} takes no parts")
        return Assessor(spec, fn, parts, info.summary)
    if name == "probe":
        return _probe_assessor(spec, rest, G, probe, data, device)
    if name == "regressor":
        from memorygan.editing.regressor import regressor_assessor
        return regressor_assessor(spec, rest, device)
    return _user_assessor(spec, name, rest, G)


def _probe_assessor(spec, cls, G, probe, data, device) -> Assessor:
    from memorygan.metrics.probe import load_probe

    if not cls:
        raise ConfigError(f"assessor {spec!r}: probe:CLASS needs a class name or id")
    k = G.resolve_parts([cls], f"assessor {spec!r}")[0]
    folder = Path(probe) if probe else (Path(data) / "probe" if data else None)
    if folder is None:
        raise ConfigError(f"assessor {spec!r} needs the segmentation probe: pass --probe DIR or --data DATA (with "
                          "DATA/probe, made by `memorygan probe train`)")
    net, info = load_probe(folder, device)
    net.eval().requires_grad_(False)
    if info.get("num_classes", G.config.num_classes) != G.config.num_classes:
        raise ConfigError(f"assessor {spec!r}: the probe in {folder} has {info.get('num_classes')} classes, the "
                          f"generator {G.config.num_classes}")

    def fn(image, seg, parts):
        return torch.softmax(net(image.float()), dim=1)[:, k].mean((1, 2))
    return Assessor(spec, fn, [], f"probe evidence for class {G.part_names[k]}")


def _user_assessor(spec, module, attr, G) -> Assessor:
    if not attr:
        raise ConfigError(f"unknown assessor {spec!r}; built-in: {', '.join(BUILTINS)}; others: probe:CLASS, "
                          "regressor:DIR, MODULE:CALLABLE")
    func, _, parts = attr.partition(":")
    try:
        mod = importlib.import_module(module)
    except ImportError as e:
        raise ConfigError(f"unknown assessor {spec!r}: not a built-in ({', '.join(BUILTINS)}) and module "
                          f"{module!r} cannot be imported ({e})") from None
    fn = getattr(mod, func, None)
    if not callable(fn):
        raise ConfigError(f"assessor {spec!r}: module {module!r} has no callable {func!r}")
    return Assessor(spec, fn, _parts(G, parts, spec), getattr(fn, "__doc__", "") or "user assessor")
