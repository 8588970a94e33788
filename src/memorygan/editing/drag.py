"""Drag: move handle points to target points by motion supervision and point tracking (DragGAN, Pan et al.,
SIGGRAPH 2023), over the part codes of a compositional generator, or over per-part coordinate transforms.

Each step, with F the chosen generator feature map resized to the image (bilinear) and p_i the handles:
    motion supervision  L = sum_i sum_{q in disk(p_i, r1)} |F(q + d_i) - sg(F(q))|_1  + lambda |(F - F_0)(1 - M)|_1
                        d_i = (t_i - p_i) / |t_i - p_i|, M the optional mask of what may move (DragGAN Eq. 1);
    point tracking      p_i <- argmin_{q in square(p_i, r2)} mean_{o in disk(r1)} |F(q + o) - F_0(p_i^0 + o)|_1
                        (DragGAN Eq. 2 matches one feature vector; a patch is steadier in flat regions);
until every handle is within `stop_px` of its target (or `steps` run out).

What moves (`space`):
    codes    the expanded codes of the chosen parts (all parts by default, or the parts under the handles), in the
             chosen layers (shape codes by default: DragGAN optimises the first 6 of StyleGAN2's W+ codes, the ones
             that set geometry);
    coords   an affine transform per chosen part (6 numbers each) of its coordinate grid, the closed-form move of
             `editing.spatial` learned by the same loss: parts move as rigid-ish wholes, codes stay as they were.
Features (`feature`): "fused" (the fused coarse map), "seg" (the generator's soft segmentation: sharp at part
boundaries, flat inside), "render:B" (the second conv of render block B, negative from the end: render:-2 is the
block below the last, half the image resolution, like DragGAN's block 6 of a 256-px StyleGAN2 at 512 px), or several
joined by "+", each scaled to the same mean magnitude (default render:-2+seg).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from memorygan.models.codes import Codes
from memorygan.editing.spatial import synthesize_edit
from memorygan.errors import ConfigError
from memorygan.models import codes as codes_mod

SPACES = ("codes", "coords")
SUPERVISE = ("disk", "part")
TRACKING = ("features", "mask")
LAYER_CHOICES = ("shape", "texture", "all")
R1, R2 = 2, 4                 # px at 64 px (DragGAN: 3 and 12 on 256-px feature maps of 512-px images)
LR_CODES, LR_COORDS = 2e-3, 1e-2
STEPS = 200
STOP_PX = 0.5
LAMBDA_MASK = 10.0            # DragGAN's lambda


@dataclass
class DragResult:
    before: dict
    after: dict
    expanded: torch.Tensor                  # (1, K, L, D) the edited codes
    grids: dict                             # {part: (1, 2, Hc, Wc)} the edited coordinates (space coords)
    handles: torch.Tensor                   # (P, 2) where tracking put the handles at the end
    targets: torch.Tensor                   # (P, 2)
    trace: list = field(default_factory=list)   # per step: mean handle-target distance
    steps: int = 0
    converged: bool = False
    seconds: float = 0.0
    parts: list = field(default_factory=list)


def feature_index(G, feature: str) -> int | None:
    """The render net's mix point of a "render:B" spec (None for "fused" and "seg"); ConfigError otherwise."""
    if feature in ("fused", "seg"):
        return None
    blocks = G.render_net.mix_points // 4
    try:
        kind, b = feature.split(":")
        b = int(b)
        assert kind == "render"
    except (ValueError, AssertionError):
        raise ConfigError(f"feature must be 'fused', 'seg' or 'render:B' (a render block, e.g. render:-2), or several "
                          f"joined by '+', got {feature!r}") from None
    if not -blocks <= b < blocks:
        raise ConfigError(f"feature {feature!r}: the render net has blocks 0..{blocks - 1} (or -{blocks}..-1)")
    return 4 * (b % blocks) + 1


def feature_specs(G, feature: str) -> list[tuple[str, int | None]]:
    """["render:-2+seg"] -> [(name, mix point or None), ...], each checked."""
    specs = [f.strip() for f in str(feature).split("+")]
    if not all(specs):
        raise ConfigError(f"feature {feature!r}: an empty component")
    return [(f, feature_index(G, f)) for f in specs]


def _features(G, expanded, grids, noise, specs, scales=None):
    """Image, seg, coarse masks and the feature map (1, C, H, W) at the image resolution: the components of `specs`
    resized and concatenated, each divided by its scale (its mean absolute value in the source: so that each
    component weighs the same in the L1 losses). Returns (out, features, scales)."""
    grabbed = {}
    points = {i for _, i in specs if i is not None}

    def mix(i, t):
        if i in points:
            grabbed[i] = t
        return t

    out = synthesize_edit(G, expanded, grids, noise=noise, mix=mix if points else None)
    res = G.config.resolution
    parts = []
    for name, index in specs:
        if name == "fused":
            hidden, _ = G.generate_parts(expanded, _coords(G, expanded, grids))
            f = G.fuse(hidden, out["depths"]).fused
        elif name == "seg":
            f = torch.softmax(out["seg"].float(), 1)
        else:
            f = grabbed[index]
        parts.append(F.interpolate(f.float(), size=(res, res), mode="bilinear", align_corners=False))
    if scales is None:
        scales = [float(f.detach().abs().mean().clamp(min=1e-8)) for f in parts]
    feat = torch.cat([f / sc for f, sc in zip(parts, scales)], 1)
    return out, feat, scales


def _coords(G, expanded, grids):
    if not grids:
        return None
    b, k = expanded.shape[:2]
    hc = G.config.coarse_size
    coords = G.coords.to(expanded.dtype)[:, None].expand(b, k, 2, hc, hc).clone()
    for part, grid in grids.items():
        coords[:, part] = grid
    return coords


def sample_at(feat: torch.Tensor, xy: torch.Tensor) -> torch.Tensor:
    """Bilinear samples of feat (1, C, H, W) at pixel positions xy (N, 2) -> (N, C)."""
    h, w = feat.shape[-2:]
    gx = (xy[:, 0] + 0.5) / w * 2 - 1
    gy = (xy[:, 1] + 0.5) / h * 2 - 1
    grid = torch.stack([gx, gy], -1)[None, :, None]                  # (1, N, 1, 2)
    return F.grid_sample(feat, grid.to(feat.dtype), mode="bilinear", align_corners=False,
                         padding_mode="border")[0, :, :, 0].t()


def disk(radius: int, device) -> torch.Tensor:
    r = torch.arange(-radius, radius + 1, device=device, dtype=torch.float32)
    yy, xx = torch.meshgrid(r, r, indexing="ij")
    keep = xx ** 2 + yy ** 2 <= radius ** 2
    return torch.stack([xx[keep], yy[keep]], -1)


def square(radius: int, device) -> torch.Tensor:
    r = torch.arange(-radius, radius + 1, device=device, dtype=torch.float32)
    yy, xx = torch.meshgrid(r, r, indexing="ij")
    return torch.stack([xx.flatten(), yy.flatten()], -1)


def parts_under(G, seg: torch.Tensor, points: torch.Tensor) -> list[int]:
    """The parts (labels of the fine segmentation (1, K, H, W)) at the given pixel positions, each once."""
    labels = seg[0].argmax(0)
    h, w = labels.shape
    out = []
    for x, y in points.round().long().tolist():
        p = int(labels[min(max(y, 0), h - 1), min(max(x, 0), w - 1)])
        if p not in out:
            out.append(p)
    return out


def check_points(name: str, pts, resolution: int) -> torch.Tensor:
    t = torch.as_tensor(pts, dtype=torch.float32)
    if t.ndim != 2 or t.shape[1] != 2 or t.shape[0] == 0:
        raise ConfigError(f"{name} must be a list of (x, y) points, got shape {tuple(t.shape)}")
    if not bool(((t >= 0) & (t <= resolution - 1)).all()):
        raise ConfigError(f"{name} must lie inside the {resolution}x{resolution} image (0..{resolution - 1}), "
                          f"got {t.tolist()}")
    return t


def drag(G, source: Codes, handles, targets, mask: torch.Tensor | None = None, space: str = "codes",
         parts=None, layers: str = "shape", feature: str = "render:-2+seg", steps: int = STEPS,
         lr: float | None = None, r1: int = R1, r2: int = R2, lambda_mask: float = LAMBDA_MASK,
         stop_px: float = STOP_PX, supervise: str = "part", tracking: str = "mask", callback=None) -> DragResult:
    """Drag one image (source of length 1) so its handles (P, 2) reach the targets (P, 2), in image pixels (x, y).

    mask: (H, W) in {0, 1}, 1 where the image may change (None: anywhere). parts: part ids or names whose codes /
    coordinates move; None = every part (space codes) or the parts under the handles (space coords); "handles" =
    the parts under the handles. supervise: "part" (default: every pixel of the part under the handle, dilated by
    r1) or "disk" (DragGAN: the disk of radius r1 around each handle; a handle inside a flat part, such as skin,
    gets no feature gradient there). tracking: "mask" (default: the handle follows the centroid of its part in the
    generator's own segmentation) or "features" (DragGAN's nearest feature patch within r2). The defaults were
    chosen on 8 probe-judged drags per setting (docs/spatial-edits.md).
    callback(step, image (1, 3, H, W), handles (P, 2)) is called after each step (the demo streams it); return
    True from it to stop."""
    if len(source) != 1:
        raise ConfigError(f"drag edits one image at a time, got {len(source)}")
    if space not in SPACES:
        raise ConfigError(f"space must be one of {', '.join(SPACES)}, got {space!r}")
    if layers not in LAYER_CHOICES:
        raise ConfigError(f"layers must be one of {', '.join(LAYER_CHOICES)}, got {layers!r}")
    if supervise not in SUPERVISE:
        raise ConfigError(f"supervise must be one of {', '.join(SUPERVISE)}, got {supervise!r}")
    if tracking not in TRACKING:
        raise ConfigError(f"tracking must be one of {', '.join(TRACKING)}, got {tracking!r}")
    res = G.config.resolution
    dev = G.device
    handles = check_points("handles", handles, res).to(dev)
    targets = check_points("targets", targets, res).to(dev)
    if handles.shape != targets.shape:
        raise ConfigError(f"give one target per handle: {handles.shape[0]} handles, {targets.shape[0]} targets")
    if mask is not None:
        mask = torch.as_tensor(mask, dtype=torch.float32, device=dev)
        if tuple(mask.shape) != (res, res):
            raise ConfigError(f"mask must be {res}x{res}, got {tuple(mask.shape)}")
    specs = feature_specs(G, feature)
    expanded0 = source.expanded.to(dev).detach()
    noise = None if source.noise is None else [n.to(dev) for n in source.noise]
    with torch.no_grad():
        before, feat0, scales = _features(G, expanded0, {}, noise, specs)
    if parts is None:
        parts = list(range(G.num_classes)) if space == "codes" else "handles"
    if parts == "handles":
        parts = parts_under(G, before["seg"], handles)
    else:
        parts = G.resolve_parts(parts)
    offsets1 = disk(r1, dev)
    # the handles' patches to track (DragGAN tracks one feature vector; a patch over the motion disk is much less
    # likely to jump to a look-alike pixel in flat regions such as skin: measured in docs/spatial-edits.md)
    f0 = sample_at(feat0, (handles[:, None] + offsets1[None]).reshape(-1, 2)).reshape(
        handles.shape[0], offsets1.shape[0], -1).detach()          # (P, N1, C)
    k, num_layers = G.num_classes, G.config.local_layers
    t0 = time.perf_counter()

    # parameters
    if space == "codes":
        roles = codes_mod.roles_of(G.config, dev)
        want = {"shape": [codes_mod.SHAPE, codes_mod.BASE], "texture": [codes_mod.TEXTURE],
                "all": [codes_mod.BASE, codes_mod.SHAPE, codes_mod.TEXTURE]}[layers]
        sel = torch.zeros(k, num_layers, dtype=torch.bool, device=dev)
        for r in want:
            sel |= roles == r
        keep_parts = torch.zeros(k, dtype=torch.bool, device=dev)
        keep_parts[parts] = True
        sel &= keep_parts[:, None]
        if not bool(sel.any()):
            raise ConfigError(f"no code to move: parts {parts} have no {layers} layers")
        delta = torch.zeros_like(expanded0, requires_grad=True)
        params = [delta]
        lr = LR_CODES if lr is None else lr
        sel_f = sel[None, :, :, None].to(expanded0.dtype)

        def state():
            return expanded0 + delta * sel_f, {}
    else:
        affine = torch.zeros(len(parts), 2, 3, device=dev, requires_grad=True)      # identity + this
        params = [affine]
        lr = LR_COORDS if lr is None else lr
        hc = G.config.coarse_size
        grid = G.coords.to(torch.float32)[0]                          # (2, Hc, Wc)

        def state():
            grids = {}
            flat = torch.cat([grid.reshape(2, -1), torch.ones(1, hc * hc, device=dev)])   # (3, P)
            eye = torch.tensor([[1.0, 0, 0], [0, 1.0, 0]], device=dev)
            for j, p in enumerate(parts):
                grids[p] = ((eye + affine[j]) @ flat).reshape(1, 2, hc, hc)
            return expanded0, grids

    opt = torch.optim.Adam(params, lr=lr)
    offsets2 = square(r2, dev)
    handle_parts = [parts_under(G, before["seg"], handles[i:i + 1])[0] for i in range(handles.shape[0])]
    if supervise == "part":
        # offsets from the handle to every pixel of its part (dilated by r1), fixed at the start
        labels = before["seg"][0].argmax(0)
        ys, xs = torch.meshgrid(torch.arange(res, device=dev), torch.arange(res, device=dev), indexing="ij")
        regions = []
        for i, k in enumerate(handle_parts):
            region = F.max_pool2d((labels == k).float()[None, None], 2 * r1 + 1, 1, r1)[0, 0] > 0
            pts = torch.stack([xs[region], ys[region]], -1).float()
            regions.append(pts - handles[i])
    soft0 = torch.softmax(before["seg"].float(), 1)[0]
    centre0 = _soft_centroids(soft0, handle_parts)
    p = handles.clone()
    trace, converged, step = [], False, 0
    outside = None if mask is None else (1.0 - mask)[None, None]
    for step in range(steps + 1):
        expanded, grids = state()
        out, feat, _ = _features(G, expanded, grids, noise, specs, scales)
        if step > 0 and tracking == "mask":                        # the handles follow their parts' centroids
            with torch.no_grad():
                centre = _soft_centroids(torch.softmax(out["seg"].float(), 1)[0], handle_parts)
                p = (handles + centre - centre0).clamp(0, res - 1)
        elif step > 0:                                             # point tracking on the updated features
            with torch.no_grad():
                cand = (p[:, None] + offsets2[None]).clamp(0, res - 1)       # (P, N2, 2)
                pts = cand[:, :, None] + offsets1[None, None]                 # (P, N2, N1, 2)
                n1, n2 = offsets1.shape[0], offsets2.shape[0]
                fc = sample_at(feat.detach(), pts.reshape(-1, 2)).reshape(p.shape[0], n2, n1, -1)
                dist = (fc - f0[:, None]).abs().sum(-1).mean(-1)            # (P, N2)
                # ties (flat regions match everywhere) go to the nearest candidate, not the first one scanned
                dist = dist + 1e-4 * dist.detach().mean(1, keepdim=True) * offsets2.norm(dim=1)[None]
                p = cand[torch.arange(p.shape[0], device=dev), dist.argmin(1)]
        gap = torch.linalg.norm(targets - p, dim=1)
        trace.append(float(gap.mean()))
        if callback is not None and callback(step, out["image"].detach(), p.detach().clone()):
            break
        if bool((gap <= stop_px).all()):
            converged = True
            break
        if step == steps:
            break
        d = (targets - p) / gap.clamp(min=1e-6)[:, None]
        d = torch.where((gap > stop_px)[:, None], d, torch.zeros_like(d))
        if supervise == "part":
            q = torch.cat([(p[i] + regions[i]).clamp(0, res - 1) for i in range(p.shape[0])])
            dq = torch.cat([d[i].expand(regions[i].shape[0], 2) for i in range(p.shape[0])])
            count = q.shape[0] / p.shape[0]
        else:
            q = (p[:, None] + offsets1[None]).reshape(-1, 2)
            dq = d[:, None].expand(-1, offsets1.shape[0], -1).reshape(-1, 2)
            count = offsets1.shape[0]
        loss = (sample_at(feat, q + dq) - sample_at(feat, q).detach()).abs().mean(1).sum() / count
        if outside is not None:
            loss = loss + lambda_mask * ((feat - feat0) * outside).abs().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    with torch.no_grad():
        expanded, grids = state()
        after = synthesize_edit(G, expanded, grids, noise=noise)
    seconds = time.perf_counter() - t0
    return DragResult(before, after, expanded.detach(), {q_: g.detach() for q_, g in grids.items()}, p.detach(),
                      targets, trace, step, converged, seconds, list(parts))


def _soft_centroids(prob: torch.Tensor, parts: list[int]) -> torch.Tensor:
    """Centroids (P, 2) in pixels (x, y) of the parts' probability maps prob (K, H, W)."""
    h, w = prob.shape[-2:]
    ys = torch.arange(h, device=prob.device, dtype=prob.dtype)
    xs = torch.arange(w, device=prob.device, dtype=prob.dtype)
    m = prob[parts]                                                   # (P, H, W)
    area = m.sum((1, 2)).clamp(min=1e-6)
    return torch.stack([(m.sum(1) * xs).sum(-1) / area, (m.sum(2) * ys).sum(-1) / area], -1)


def mean_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.linalg.norm(a - b, dim=-1).mean())


__all__ = ["drag", "DragResult", "SPACES", "feature_index", "feature_specs", "sample_at", "parts_under",
           "mean_distance"]
