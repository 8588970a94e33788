"""Closed-form spatial part edits: move, scale, rotate, remove and clone a part through its coordinates.

Every local generator is a stack of 1x1 convolutions evaluated on Fourier features of a coordinate grid
(SemanticStyleGAN Sec. 3.2; `models.local_generator`). A part's features and pseudo-depth at a pixel are therefore a
function of that pixel's coordinates only, and giving part k the grid T_k^-1(u) instead of u draws the same part
transformed by T_k: moved, scaled or rotated, with its pseudo-depth carried along, so the fusion (softmax over the
parts' depths) decides occlusions with the other parts exactly as it does for an unedited image. SemanticStyleGAN's
authors gave this as their answer to "move or zoom a part"; here it is a tool with measured error
(docs/spatial-edits.md).

- remove: the composition mask drops the part; the parts under it (next-highest depth) fill its place;
- clone: an extra copy of a part, rendered with its own transform and fused as one more part; its mask joins the
  part's channel of the segmentation.

Units: image pixels, x to the right and y down, pixel centres at integer positions (0 .. H-1); angles in degrees,
counter-clockwise on screen. The centre of a scale or rotation defaults to the part's centroid in the source's
coarse mask (the map the transform acts on).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch

from memorygan.models.codes import Codes
from memorygan.errors import ConfigError
from memorygan.models.fusion import check_composition_mask, fusion_weights, part_masks

#: a part whose coarse mask covers less than this many coarse pixels has no usable centroid
MIN_AREA = 0.5


@dataclass
class PartTransform:
    """T(x) = centre + S R (x - centre) + shift for one part (image pixels; see the module docstring)."""
    part: int
    shift: tuple[float, float] = (0.0, 0.0)
    scale: float | tuple[float, float] = 1.0
    rotate: float = 0.0
    centre: tuple[float, float] | None = None

    def scales(self) -> tuple[float, float]:
        s = self.scale if isinstance(self.scale, (tuple, list)) else (self.scale, self.scale)
        sx, sy = float(s[0]), float(s[1])
        if not (sx > 0 and sy > 0 and math.isfinite(sx) and math.isfinite(sy)):
            raise ConfigError(f"scale must be positive and finite, got {self.scale}")
        return sx, sy

    def is_identity(self) -> bool:
        return tuple(self.shift) == (0.0, 0.0) and self.scales() == (1.0, 1.0) and self.rotate == 0.0

    def to_dict(self) -> dict:
        return {"part": self.part, "shift": list(map(float, self.shift)), "scale": list(self.scales()),
                "rotate": float(self.rotate), "centre": None if self.centre is None else list(map(float, self.centre))}


@dataclass
class SpatialEdit:
    """What to do to an image: transform some parts, remove some, add transformed copies of some."""
    transforms: list[PartTransform] = field(default_factory=list)
    remove: list[int] = field(default_factory=list)
    clones: list[PartTransform] = field(default_factory=list)

    def check(self, G) -> None:
        k = G.num_classes
        parts = [t.part for t in self.transforms + self.clones] + list(self.remove)
        bad = [p for p in parts if not 0 <= int(p) < k]
        if bad:
            raise ConfigError(f"part id {bad[0]} is out of range for a generator with {k} parts")
        moved = [t.part for t in self.transforms]
        if len(set(moved)) != len(moved):
            raise ConfigError("each part takes at most one transform (combine shift, scale and rotation in one)")
        for t in self.transforms + self.clones:
            t.scales()
        if len(set(self.remove)) >= k:
            raise ConfigError("removing every part leaves nothing to draw")

    def to_dict(self, names: list[str] | None = None) -> dict:
        name = (lambda p: names[p] if names else p)
        return {"transforms": [dict(t.to_dict(), name=name(t.part)) for t in self.transforms],
                "remove": [name(p) for p in self.remove],
                "clones": [dict(t.to_dict(), name=name(t.part)) for t in self.clones]}


# ----------------------------------------------------------------------------------------- coordinates
def coarse_ratio(G) -> float:
    """Image pixels per coarse pixel."""
    return G.config.resolution / G.config.coarse_size


def pixels_to_coords(G, xy: torch.Tensor) -> torch.Tensor:
    """Image pixel positions (..., 2) -> grid coordinates (..., 2). The coarse grid's pixel i (coordinate
    -1 + 2i/(Hc-1)) covers image pixels [r i, r (i+1)), centre r (i + 1/2) - 1/2, r = H / Hc."""
    r, hc = coarse_ratio(G), G.config.coarse_size
    return -1.0 + 2.0 * ((xy + 0.5) / r - 0.5) / (hc - 1)


def coords_to_pixels(G, uv: torch.Tensor) -> torch.Tensor:
    """The inverse of `pixels_to_coords`."""
    r, hc = coarse_ratio(G), G.config.coarse_size
    return ((uv + 1.0) * (hc - 1) / 2.0 + 0.5) * r - 0.5


def part_centroids(G, masks: torch.Tensor, min_area: float = MIN_AREA) -> tuple[torch.Tensor, torch.Tensor]:
    """Centroids in image pixels (B, K, 2) of coarse part masks (B, K, Hc, Wc) in [0, 1], and their areas in coarse
    pixels (B, K). A part with area < min_area gets NaN."""
    b, k, h, w = masks.shape
    ys = torch.arange(h, device=masks.device, dtype=masks.dtype)
    xs = torch.arange(w, device=masks.device, dtype=masks.dtype)
    area = masks.sum((2, 3))
    cx = (masks.sum(2) * xs).sum(-1) / area.clamp(min=1e-8)
    cy = (masks.sum(3) * ys).sum(-1) / area.clamp(min=1e-8)
    r = coarse_ratio(G)
    xy = (torch.stack([cx, cy], -1) + 0.5) * r - 0.5
    xy = torch.where((area >= min_area)[..., None], xy, torch.full_like(xy, float("nan")))
    return xy, area


def inverse_grid(G, grid: torch.Tensor, t: PartTransform, centre: torch.Tensor) -> torch.Tensor:
    """T^-1 applied to a coordinate grid (B, 2, Hc, Wc), with the centre (B, 2) and shift in image pixels: the
    coordinates part t.part must read so that it is drawn transformed by T."""
    per_px = 2.0 / (coarse_ratio(G) * (G.config.coarse_size - 1))    # coordinate units per image pixel
    c = pixels_to_coords(G, centre)[:, :, None, None].to(grid.dtype)
    shift = torch.tensor([float(t.shift[0]), float(t.shift[1])], device=grid.device, dtype=grid.dtype) * per_px
    sx, sy = t.scales()
    a = math.radians(float(t.rotate))
    cos, sin = math.cos(a), math.sin(a)
    d = grid - c - shift[None, :, None, None]
    dx, dy = d[:, 0], d[:, 1]
    # on screen (y down) a counter-clockwise turn by a maps (dx, dy) to (cos dx + sin dy, -sin dx + cos dy);
    # its inverse turns by -a; then undo the scale
    rx = cos * dx - sin * dy
    ry = sin * dx + cos * dy
    return torch.stack([rx / sx, ry / sy], 1) + c


def transform_centre(G, t: PartTransform, masks: torch.Tensor | None, batch: int) -> torch.Tensor:
    """(B, 2) centre of a transform in image pixels: the given one, or the part's centroid in `masks`."""
    if t.centre is not None:
        return torch.tensor([list(map(float, t.centre))], device=G.device).expand(batch, 2)
    if masks is None:
        raise ValueError("a transform without a centre needs the source's masks")
    xy, _ = part_centroids(G, masks.float())
    c = xy[:, t.part]
    if bool(torch.isnan(c).any()):
        if t.scales() == (1.0, 1.0) and t.rotate == 0.0:      # a pure shift does not need a centre
            return torch.zeros(batch, 2, device=G.device)
        names = G.part_names
        raise ConfigError(f"part {names[t.part]!r} is (almost) absent from the image: it has no centre to scale or "
                          "turn about (give one)")
    return c


# ------------------------------------------------------------------------------------------- synthesis
#: how a transformed part's pseudo-depth meets the other parts at its new place:
#: keep-mask  its mask is exactly the old mask transformed (its depth relative to the parts under it is carried along)
#: raw        the depth the local generator gives at the new coordinates competes as it is
DEPTH_MODES = ("keep-mask", "raw")


def _lse_others(depths: torch.Tensor, part: int, keep: torch.Tensor) -> torch.Tensor:
    """log sum_{j != part, kept} exp(depth_j): (B, K', H, W) -> (B, H, W) (-inf where no other part is kept)."""
    others = keep.clone()
    others[:, part] = 0
    return torch.logsumexp(depths.masked_fill(others[:, :, None, None] == 0, float("-inf")), 1)


def _relative_depth(G, expanded, grid, part, keep):
    """depth_part - log sum_{others} exp(depth) at coordinates `grid` (B, 2, Hc, Wc) for every part: what
    decides the part's mask there (m = sigmoid of it)."""
    b, k = expanded.shape[:2]
    _, d = G.generate_parts(expanded, grid[:, None].expand(b, k, *grid.shape[1:]))
    rel = d[:, part] - _lse_others(d, part, keep[:, :k])
    return torch.where(torch.isfinite(rel), rel, d[:, part])


def synthesize_edit(G, expanded: torch.Tensor, grids: dict | None = None,
                    composition_mask: torch.Tensor | None = None, clones=(), depth: str = "keep-mask",
                    noise=None, noise_mode: str = "const", mix=None) -> dict:
    """G's three synthesis stages with per-part coordinates, a composition mask and extra copies of parts.

    grids: {part: coordinates (B, 2, Hc, Wc)} for the transformed parts (the others read the default grid).
    clones: (part, coordinates) pairs: each copy is generated from the part's codes at its own coordinates and
    fused as one more part; its mask is added to the part's channel of the coarse mask the render net sees.
    depth: see `DEPTH_MODES` (keep-mask is exact for one transformed part; with several, each is placed against
    the others as they are after their own transforms). Without any edit this is `G.synthesize`.
    Returns {image, seg, coarse_seg, masks (the merged coarse masks), depths}."""
    if depth not in DEPTH_MODES:
        raise ConfigError(f"depth must be one of {', '.join(DEPTH_MODES)}, got {depth!r}")
    grids = grids or {}
    b, k = expanded.shape[:2]
    hc = G.config.coarse_size
    coords = None
    if grids:
        coords = G.coords.to(expanded.dtype)[:, None].expand(b, k, 2, hc, hc).clone()
        for part, grid in grids.items():
            coords[:, part] = grid
    if composition_mask is not None:
        check_composition_mask(composition_mask, b, k)
    keep = torch.ones(b, k + len(clones), device=expanded.device)
    if composition_mask is not None:
        keep[:, :k] = (composition_mask != 0).to(keep.dtype)
    hidden, depths = G.generate_parts(expanded, coords)
    if depth == "keep-mask" and grids:
        raw = depths
        depths = depths.clone()
        for part, grid in grids.items():
            depths[:, part] = _relative_depth(G, expanded, grid, part, keep) + \
                torch.nan_to_num(_lse_others(raw, part, keep[:, :k]), neginf=0.0)
    if not clones:
        fusion = G.fuse(hidden, depths, composition_mask)
        image, seg = G.render(fusion.fused, fusion.coarse_seg, noise_mode, noise, mix)
        return {"image": image, "seg": seg, "coarse_seg": fusion.coarse_seg, "masks": fusion.masks, "depths": depths}
    feats = [G.to_features(hidden)]
    extra_depths, extra_parts = [], []
    base = coords if coords is not None else G.coords.to(expanded.dtype)[:, None].expand(b, k, 2, hc, hc)
    all_kept = torch.logsumexp(depths.masked_fill(keep[:, :k, None, None] == 0, float("-inf")), 1)
    for part, grid in clones:
        per_part = base.clone()
        per_part[:, part] = grid
        h, d = G.generate_parts(expanded, per_part)
        feats.append(G.to_features(h)[:, part:part + 1])
        if depth == "keep-mask":
            d_part = _relative_depth(G, expanded, grid, part, keep) + all_kept
        else:
            d_part = d[:, part]
        extra_depths.append(d_part[:, None])
        extra_parts.append(part)
    m = part_masks(torch.cat([depths] + extra_depths, 1), keep)
    transparent = [int(i) for i in G.transparent_index.tolist()]
    transparent += [k + j for j, p in enumerate(extra_parts) if p in transparent]
    weights = fusion_weights(m, transparent)
    fused = torch.einsum("bkhw,bkchw->bchw", weights.to(hidden.dtype), torch.cat(feats, 1))
    index = torch.tensor(list(range(k)) + extra_parts, device=m.device)
    merged = torch.zeros(b, k, *m.shape[2:], device=m.device, dtype=m.dtype).index_add(1, index, m)
    coarse_seg = 2.0 * merged - 1.0
    image, seg = G.render(fused, coarse_seg, noise_mode, noise, mix)
    return {"image": image, "seg": seg, "coarse_seg": coarse_seg, "masks": merged, "depths": depths}


def edit_grids(G, edit: SpatialEdit, masks: torch.Tensor) -> tuple[dict, list, torch.Tensor | None]:
    """The inputs of `synthesize_edit` for an edit on images whose coarse masks (B, K, Hc, Wc) are `masks`:
    {part: grid}, [(part, grid)] for the clones, and the composition mask (None without removals)."""
    b = masks.shape[0]
    hc = G.config.coarse_size
    grid = G.coords.to(torch.float32).expand(b, 2, hc, hc)
    grids = {t.part: inverse_grid(G, grid, t, transform_centre(G, t, masks, b))
             for t in edit.transforms if not t.is_identity()}
    clones = [(t.part, inverse_grid(G, grid, t, transform_centre(G, t, masks, b))) for t in edit.clones]
    comp = None
    if edit.remove:
        comp = torch.ones(b, G.num_classes, device=masks.device)
        comp[:, list(edit.remove)] = 0
    return grids, clones, comp


@dataclass
class SpatialEditResult:
    before: dict
    after: dict
    edit: SpatialEdit
    seconds: float                      # per image, the edit's synthesis only
    region: torch.Tensor | None = None  # (B, H, W) in [0, 1]: where the edit may change the image (preserve)


#: the preserved outside: the edited parts' old and new pixels, dilated by this many pixels per 64 px and blurred
PRESERVE_DILATE = 2
PRESERVE_BLUR = 1.0


def edit_region(G, edit: SpatialEdit, before: dict, after: dict, dilate_px: float | None = None,
                blur: float | None = None) -> torch.Tensor:
    """(B, 1, H, W) soft region of an edit: every pixel where an edited part is (fine segmentation or coarse mask
    above 1/2) before or after the edit, dilated and blurred."""
    import torch.nn.functional as F

    from memorygan.editing.region import gaussian_blur

    res = G.config.resolution
    parts = sorted({t.part for t in edit.transforms + edit.clones} | set(edit.remove))
    hard = torch.zeros(before["seg"].shape[0], 1, res, res, device=before["seg"].device)
    for out in (before, after):
        ids = out["seg"].argmax(1)
        coarse = F.interpolate(out["masks"].float(), size=(res, res), mode="nearest")
        for p in parts:
            hard = torch.maximum(hard, ((ids == p) | (coarse[:, p] > 0.5)).float()[:, None])
    d = int(round((PRESERVE_DILATE if dilate_px is None else dilate_px) * res / 64))
    if d > 0:
        hard = F.max_pool2d(hard, 2 * d + 1, 1, d)
    sigma = (PRESERVE_BLUR if blur is None else blur) * res / 64
    return torch.maximum(gaussian_blur(hard, sigma).clamp(0, 1), hard)


def warp_images(G, x: torch.Tensor, t: PartTransform, centre: torch.Tensor) -> torch.Tensor:
    """x (B, C, h, w), a map over the image at any resolution, drawn transformed by t (centre (B, 2) in image
    pixels): bilinear samples of x at T^-1 of each output pixel's position (zero outside)."""
    import torch.nn.functional as F

    b, _, h, w = x.shape
    res = G.config.resolution
    sx, sy = t.scales()
    a = math.radians(float(t.rotate))
    cos, sin = math.cos(a), math.sin(a)
    ys = (torch.arange(h, device=x.device, dtype=torch.float32) + 0.5) * (res / h) - 0.5
    xs = (torch.arange(w, device=x.device, dtype=torch.float32) + 0.5) * (res / w) - 0.5
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    c = centre.to(x.device, torch.float32)[:, :, None, None]
    dx = xx[None] - c[:, 0] - float(t.shift[0])
    dy = yy[None] - c[:, 1] - float(t.shift[1])
    srcx = (cos * dx - sin * dy) / sx + c[:, 0]
    srcy = (sin * dx + cos * dy) / sy + c[:, 1]
    grid = torch.stack([(srcx + 0.5) / res * 2 - 1, (srcy + 0.5) / res * 2 - 1], -1)
    return F.grid_sample(x, grid.to(x.dtype), mode="bilinear", padding_mode="zeros", align_corners=False)


class PartWarp:
    """mix(i, t) for the render net: inside each moved (or cloned) part's new place, the source's render activation
    i transformed with the part; elsewhere the activation of the coordinate edit (which fills the part's old
    place). The parts' soft masks (the source's fine segmentation, transformed) set where."""

    def __init__(self, G, trace: list, moves: list[tuple[PartTransform, torch.Tensor]], seg: torch.Tensor):
        import torch.nn.functional as F

        self.G, self.trace, self.moves = G, trace, moves
        prob = torch.softmax(seg.float(), 1)
        self.masks = [warp_images(G, prob[:, t.part:t.part + 1], t, c) for t, c in moves]
        self._at: dict = {}
        self._F = F

    def mask(self, j: int, size) -> torch.Tensor:
        key = (j, tuple(size))
        if key not in self._at:
            m = self.masks[j]
            self._at[key] = m if tuple(m.shape[-2:]) == tuple(size) else self._F.interpolate(m, size=tuple(size),
                                                                                               mode="area")
        return self._at[key]

    def __call__(self, i: int, x: torch.Tensor) -> torch.Tensor:
        for j, (t, c) in enumerate(self.moves):
            m = self.mask(j, x.shape[-2:]).to(x.dtype)
            x = x + m * (warp_images(self.G, self.trace[i], t, c).to(x.dtype) - x)
        return x


@torch.no_grad()
def spatial_edit(G, source: Codes, edit: SpatialEdit, depth: str = "keep-mask", preserve: bool = True,
                 warp: bool = True) -> SpatialEditResult:
    """Apply a spatial edit to every image of `source` (codes are unchanged; only coordinates, the composition
    mask and extra copies differ).

    warp: the render net's activations move with the part too (`PartWarp`): at a 16 x 16 fusion grid an eye or a
    mouth is about one coarse pixel, drawn mostly by the render net, so new coordinates alone barely move it (what
    the render net still draws at the old place stays: measured in docs/spatial-edits.md).
    preserve: every render activation outside the edit's region (the edited parts' old and new pixels, dilated
    and blurred: `edit_region`) is the source's, as in Paint-by-Word's split generator, so the image there is the
    source's bit for bit; without it, the render net's convolutions carry the change a few pixels beyond the part."""
    from memorygan.editing.region import LayerBlend

    edit.check(G)
    expanded = source.expanded.to(G.device)
    noise = None if source.noise is None else [n.to(G.device) for n in source.noise]
    trace = []

    def record(i, t):
        trace.append(t)
        return t

    before = synthesize_edit(G, expanded, noise=noise, mix=record if (preserve or warp) else None)
    t0 = time.perf_counter()
    grids, clones, comp = edit_grids(G, edit, before["masks"])
    b = expanded.shape[0]
    moves = [(t, transform_centre(G, t, before["masks"], b)) for t in edit.transforms + edit.clones
             if not t.is_identity()]
    mover = PartWarp(G, trace, moves, before["seg"]) if (warp and moves) else None
    after = synthesize_edit(G, expanded, grids, comp, clones, depth=depth, noise=noise, mix=mover)
    region = None
    if preserve:
        region = edit_region(G, edit, before, after)
        keep = LayerBlend(trace, region)
        mix = keep if mover is None else (lambda i, t: keep(i, mover(i, t)))
        after = synthesize_edit(G, expanded, grids, comp, clones, depth=depth, noise=noise, mix=mix)
        region = region[:, 0]
    seconds = (time.perf_counter() - t0) / max(b, 1)
    return SpatialEditResult(before, after, edit, seconds, region)


def measure_edit(G, result: SpatialEditResult) -> list[dict]:
    """Per image, what the generator's own coarse masks say the edit did: each transformed part's centroid before
    and after (image pixels), the expected centroid (T applied to the old one) and area ratio, and removed parts'
    remaining area. (The study in docs/spatial-edits.md judges with the segmentation probe instead.)"""
    names = G.part_names
    xy0, a0 = part_centroids(G, result.before["masks"].float())
    xy1, a1 = part_centroids(G, result.after["masks"].float())
    rows = []
    for i in range(xy0.shape[0]):
        row = {"transforms": [], "removed": []}
        for t in result.edit.transforms:
            p = t.part
            centre = torch.tensor(t.centre) if t.centre is not None else xy0[i, p].cpu()
            want = apply_transform(t, xy0[i, p].cpu(), centre)
            sx, sy = t.scales()
            row["transforms"].append({
                "part": names[p], "centroid_before": _pt(xy0[i, p]), "centroid_after": _pt(xy1[i, p]),
                "centroid_expected": _pt(want),
                "centroid_error_px": float(torch.linalg.norm(xy1[i, p].cpu() - want)),
                "area_ratio": float(a1[i, p] / a0[i, p].clamp(min=1e-8)), "area_ratio_expected": sx * sy})
        for p in result.edit.remove:
            row["removed"].append({"part": names[p], "area_before": float(a0[i, p]), "area_after": float(a1[i, p])})
        rows.append(row)
    return rows


def apply_transform(t: PartTransform, xy: torch.Tensor, centre: torch.Tensor) -> torch.Tensor:
    """T(xy) in image pixels for points (..., 2) (the forward map `inverse_grid` inverts)."""
    sx, sy = t.scales()
    a = math.radians(float(t.rotate))
    d = xy - centre
    dx, dy = d[..., 0] * sx, d[..., 1] * sy
    rx = math.cos(a) * dx + math.sin(a) * dy
    ry = -math.sin(a) * dx + math.cos(a) * dy
    return torch.stack([rx, ry], -1) + centre + torch.tensor([float(t.shift[0]), float(t.shift[1])])


def _pt(t: torch.Tensor) -> list[float] | None:
    v = [float(x) for x in t.flatten().tolist()]
    return None if any(math.isnan(x) for x in v) else [round(x, 3) for x in v]
