"""The demo's logic, without Gradio: a plain object holding the generator, the current image's codes and their
history (undo), with one method per panel. The Gradio app (`demo.app`) only wires widgets to these methods, and tests
call them directly.

Every method returns a `View`: the image, its colour-coded mask, a grid of the per-part pseudo-depths and a one-line
message. Sliders (a direction's alpha, an interpolation's t) act on the codes as they were before the slider first
moved, so moving a slider back and forth never accumulates; any other action commits the slider's result.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from memorygan.errors import ConfigError, MemoryGANError
from memorygan.models.codes import Codes

WHAT = ("shape", "texture", "both")


class _StepCounter:
    """A progress sink for `inversion.project` (tqdm's update / set_postfix) that a polling thread reads."""

    def __init__(self):
        self.n = 0

    def update(self, k: int = 1) -> None:
        self.n += k

    def set_postfix(self, *args, **kwargs) -> None:
        pass


@dataclass
class Snapshot:
    """One step of the demo's history: the codes of the current image (`models.codes.Codes`, one image: expanded,
    and latents / z while they still describe it; a region edit's result keeps its source codes and blurred region
    in blend_source / blend_mask, blended at the fusion and every render layer, and later edits start from
    `expanded` without them), how it was made, and a pending spatial edit of those codes (editing.spatial /
    editing.drag: {"edit": SpatialEdit}, moves, turns, removals, clones with the outside preserved, or {"grids":
    {part: (1, 2, Hc, Wc)}}, a drag over coordinates; later code edits start from `expanded` without it)."""
    codes: Codes
    label: str = ""
    spatial: dict | None = None


def snapshot(expanded, latents=None, z=None, noise=None, label: str = "", blend=None, spatial=None) -> Snapshot:
    """A history step from its codes; `blend`: (source expanded (1, K, L, D), region mask (1, 1, H, W))."""
    return Snapshot(Codes(expanded, latents=latents, z=z, noise=noise,
                          blend_source=None if blend is None else blend[0],
                          blend_mask=None if blend is None else blend[1]), label, spatial)


@dataclass
class View:
    image: np.ndarray                             # (H, W, 3) uint8
    mask: np.ndarray                              # (H, W, 3) uint8, colour-coded parts
    depth: np.ndarray                             # (h, w, 3) uint8, per-part pseudo-depth tiles
    message: str = ""
    areas: dict = field(default_factory=dict)     # part name -> fraction of the image

    def panel(self, min_height: int = 0) -> np.ndarray:
        """image | mask | depth side by side (the depth grid scaled to the image height), enlarged by an integer
        factor (nearest neighbour) to at least `min_height` pixels for display."""
        from PIL import Image

        factor = max(1, -(-min_height // self.image.shape[0]))
        image, mask = (np.repeat(np.repeat(a, factor, 0), factor, 1) for a in (self.image, self.mask))
        h = image.shape[0]
        depth = np.asarray(Image.fromarray(self.depth).resize(
            (max(1, round(self.depth.shape[1] * h / self.depth.shape[0])), h), Image.NEAREST))
        gap = np.full((h, 4, 3), 255, np.uint8)
        return np.concatenate([image, gap, mask, gap, depth], axis=1)


def depth_tiles(depths: torch.Tensor, size: int) -> np.ndarray:
    """(1, K, Hc, Wc) -> a grid of K grey tiles (ceil(sqrt K) columns), each min-max normalised, `size` wide in all."""
    from memorygan.visualize import depth_to_gray, grid

    k = depths.shape[1]
    cols = math.ceil(math.sqrt(k))
    tile = max(8, size // cols)
    gray = depth_to_gray(depths[:1], tile)[0]                                   # (K, tile, tile)
    tiles = np.repeat(gray[..., None], 3, -1)
    blank = np.full_like(tiles[:1], 255)
    rows = [np.concatenate([tiles[r * cols:(r + 1) * cols]] + [blank] * max(0, (r + 1) * cols - k))
            for r in range(math.ceil(k / cols))]
    return grid(rows, pad=1)


class DemoState:
    """One user's session: the current image, its history and the loaded directions. G is shared (read-only)."""

    def __init__(self, G, directions: dict | None = None, clip=None, max_history: int = 50, phrases=None,
                 encoder=None):
        self.G = G.eval().requires_grad_(False)
        self.encoder = encoder        # a loaded `memorygan.encoder.Encoder` of G: uploads are shown at once
        self._code_space = None       # the inversion's code statistics and perceptual distance, made on first use
        self._perceptual_distance = None
        self.points: list[tuple[float, float]] = []     # drag: handle, target, handle, target, ... (image pixels)
        self.directions = dict(directions or {})
        self.clip = clip
        self.phrases = phrases        # the attribute words: None (built-in), a table or phrases file, a PhraseBook
        self.max_history = max_history
        self.current: Snapshot | None = None
        self.history: list[Snapshot] = []
        self.base: Snapshot | None = None        # the codes a slider started from
        self.slider: tuple | None = None         # which slider is moving: ("direction", name) / ("interpolate", ...)

    # ------------------------------------------------------------------ helpers
    def _need_current(self) -> Snapshot:
        if self.current is None:
            raise ConfigError("no image yet: generate a sample (or invert an image) first")
        return self.current

    def _commit(self, snap: Snapshot) -> None:
        if self.current is not None:
            self.history.append(self.current)
            del self.history[:-self.max_history]
        self.current = snap
        self.base, self.slider = None, None

    def _slide(self, key: tuple, make) -> View:
        """A slider move: start from the codes before this slider began moving (pushed to history once)."""
        if self.slider != key:
            start = self._need_current()
            self.history.append(start)
            del self.history[:-self.max_history]
            self.base, self.slider = start, key
        self.current = make(self.base)
        return self.view(message=self.current.label)

    @torch.no_grad()
    def _render(self, snap: Snapshot, composition_mask=None):
        noise = None if snap.codes.noise is None else [n.to(self.G.device) for n in snap.codes.noise]
        if snap.spatial is not None and composition_mask is None:
            from types import SimpleNamespace

            from memorygan.editing.spatial import spatial_edit, synthesize_edit

            if "edit" in snap.spatial:
                out = spatial_edit(self.G, self._source(snap), snap.spatial["edit"]).after
            else:
                out = synthesize_edit(self.G, snap.codes.expanded.to(self.G.device), snap.spatial["grids"], noise=noise)
            return SimpleNamespace(image=out["image"], seg=out["seg"], depths=out["depths"])
        if snap.codes.blend_source is not None and composition_mask is None:
            from types import SimpleNamespace

            from memorygan.editing.region import render_blended

            reference, mask = snap.codes.blend_source, snap.codes.blend_mask
            image, seg, depths = render_blended(self.G, snap.codes.expanded.to(self.G.device),
                                                reference.to(self.G.device),
                                                mask.to(self.G.device), noise)
            return SimpleNamespace(image=image, seg=seg, depths=depths)
        return self.G(expanded=snap.codes.expanded.to(self.G.device), composition_mask=composition_mask, noise=noise,
                      noise_mode="const")

    def _source(self, snap: Snapshot):
        return Codes(snap.codes.expanded.to(self.G.device), latents=snap.codes.latents, z=snap.codes.z,
                     noise=snap.codes.noise)

    def _scorer(self, prompt: str, scorer: str):
        from memorygan.editing.scorers import text_score

        if scorer == "clip":
            import os

            from memorygan.editing.clip import ENV, ClipModel
            if self.clip is None:
                self.clip = os.environ.get(ENV) or None
            if self.clip is None:
                raise ConfigError("text edit: the CLIP scorer needs a local CLIP folder (start the demo with --clip "
                                  "PATH or set MEMORYGAN_CLIP); the 'attributes' scorer works offline")
            if not isinstance(self.clip, ClipModel):
                self.clip = ClipModel(self.clip, self.G.device)     # loaded once, kept for every later edit
        if scorer == "attributes":
            from memorygan.editing.phrases import resolve_phrases
            self.phrases = resolve_phrases(self.phrases)            # read once, on the first text edit
        return text_score(scorer, prompt, self.G, clip=self.clip, phrases=self.phrases)

    def _sample(self, seed: int, truncation: float):
        with torch.no_grad():
            z = self.G.sample_z(1, int(seed))
            return z, self.G(z, truncation=float(truncation), noise_mode="const")

    def view(self, composition_mask=None, message: str = "") -> View:
        from memorygan.visualize import seg_to_color, to_uint8

        out = self._render(self._need_current(), composition_mask)
        ids = out.seg.argmax(1)[0]
        names = self.G.part_names
        counts = torch.bincount(ids.flatten().cpu(), minlength=len(names)).double() / ids.numel()
        areas = {names[k]: round(float(counts[k]), 4) for k in range(len(names)) if counts[k] > 0}
        return View(to_uint8(out.image)[0], seg_to_color(out.seg)[0], depth_tiles(out.depths, out.image.shape[-1]),
                    message, areas)

    # ------------------------------------------------------------------ panels
    def generate(self, seed: int = 0, truncation: float = 1.0) -> View:
        """A new sample (the same picture as `memorygan generate --seed S`)."""
        z, out = self._sample(seed, truncation)
        self._commit(snapshot(out.expanded, out.latents, z, None, f"seed {int(seed)}, truncation {truncation:g}"))
        return self.view(message=self.current.label)

    def compose(self, parts) -> View:
        """The current image drawn with only `parts` (names/ids; sequential composition). Changes no codes."""
        ids = self.G.resolve_parts(parts, "parts") if parts not in (None, [], "") else []
        if not ids:
            raise ConfigError("compose: choose at least one part")
        mask = torch.zeros(1, self.G.config.num_classes, device=self.G.device)
        mask[0, ids] = 1
        return self.view(mask, "parts drawn: " + ", ".join(self.G.part_names[k] for k in ids))

    def compose_first(self, n: int) -> View:
        """Sequential composition slider: the first n parts in id order (background first)."""
        k = self.G.config.num_classes
        n = int(n)
        if not 1 <= n <= k:
            raise ConfigError(f"compose: the number of parts must be in 1..{k}, got {n}")
        return self.compose(list(range(n)))

    def resample_part(self, part, what: str = "both", seed: int = 0) -> View:
        """Give one part the shape and/or texture codes of another sample (seed)."""
        from memorygan.models.codes import role_layers

        if what not in WHAT:
            raise ConfigError(f"resample: what must be one of {', '.join(WHAT)}, got {what!r}")
        cur = self._need_current()
        k = self.G.resolve_parts([part], "part")[0]
        roles = ["shape", "texture"] if what == "both" else [what]
        layers = role_layers(self.G.config, k, roles)
        _, donor = self._sample(seed, 1.0)
        e = cur.codes.expanded.clone()
        e[:, k, layers] = donor.expanded[:, k, layers].to(e)
        name = self.G.part_names[k]
        self._commit(snapshot(e, None, None, cur.codes.noise, f"{name}: {what} codes of seed {int(seed)}"))
        return self.view(message=self.current.label)

    def mix(self, parts, source_seed: int) -> View:
        """Take parts from another sample with the paper's swap rules (analysis.mix)."""
        from memorygan.analysis.mix import mix_parts

        cur = self._need_current()
        ids = self.G.resolve_parts(parts, "parts")
        _, donor = self._sample(source_seed, 1.0)
        e = mix_parts(self.G, cur.codes.expanded, donor.expanded.to(cur.codes.expanded), ids)
        names = ", ".join(self.G.part_names[k] for k in ids)
        self._commit(snapshot(e, None, None, cur.codes.noise, f"{names} from seed {int(source_seed)}"))
        return self.view(message=self.current.label)

    def interpolate(self, part, seed_b: int, t: float) -> View:
        """Move one part's codes (its swap layers) from the current image towards seed_b's, t in [0, 1]."""
        from memorygan.analysis.mix import swap_layers

        if not 0.0 <= float(t) <= 1.0:
            raise ConfigError(f"interpolate: t must be in [0, 1], got {t}")
        k = self.G.resolve_parts([part], "part")[0]
        layers = swap_layers(self.G, k)
        _, donor = self._sample(seed_b, 1.0)

        def make(base: Snapshot) -> Snapshot:
            e = base.codes.expanded.clone()
            e[:, k, layers] = (1 - t) * e[:, k, layers] + t * donor.expanded[:, k, layers].to(e)
            return snapshot(e, None, None, base.codes.noise, f"{self.G.part_names[k]} {t:.2f} of the way to seed "
                                                        f"{int(seed_b)}")
        return self._slide(("interpolate", k, int(seed_b)), make)

    def apply_direction(self, name: str, alpha: float) -> View:
        """Move the image along a loaded direction (alpha relative to where the slider started)."""
        from memorygan.editing.directions import edit_output

        if name not in self.directions:
            known = ", ".join(self.directions) or "none loaded (start the demo with --directions DIR)"
            raise ConfigError(f"unknown direction {name!r}; directions: {known}")
        d = self.directions[name]
        from memorygan.editing.directions import check_alpha
        alpha = check_alpha(alpha)

        def make(base: Snapshot) -> Snapshot:
            with torch.no_grad():
                out = edit_output(self.G, d, base.codes, float(alpha))
            latents = out.latents if d.space == "latent" else None
            return snapshot(out.expanded, latents, None, base.codes.noise, f"{name} alpha {float(alpha):+.2f}")
        return self._slide(("direction", name), make)

    def text_edit(self, prompt: str, parts, scorer: str = "attributes", layers: str = "both", space: str = "parts",
                  steps: int = 40, lambda_seg: float | None = None, seed: int = 0) -> View:
        """Text-guided edit of the chosen parts' codes (MemoryGAN Eq. 16-18, `memorygan edit text`): only those
        codes move (`space="query"`: MemoryGAN's query codes of the parts). `steps` defaults to 40 for the demo
        (the command's default is StyleCLIP's 300)."""
        from memorygan.editing.text import LAMBDA_SEG, text_edit

        cur = self._need_current()
        if not parts:
            raise ConfigError("text edit: choose the parts to edit (e.g. hair)")
        if space == "query" and cur.codes.z is None:
            raise ConfigError("text edit: the query space needs an image made from a seed (this one's codes were "
                              "edited or inverted); use the parts space")
        score = self._scorer(prompt, scorer)
        res = text_edit(self.G, self._source(cur), score, parts, layers=layers, space=space, steps=int(steps),
                        lambda_seg=LAMBDA_SEG if lambda_seg is None else float(lambda_seg), seed=int(seed))
        with torch.no_grad():
            before = float(score.score(res.before.image, res.before.seg)[0])
            after = float(score.score(res.after.image, res.after.seg)[0])
        names = ", ".join(self.G.part_names[k] for k in res.space.parts)
        self._commit(snapshot(res.after.expanded.detach(), None, None, cur.codes.noise,
                              f"text edit {prompt!r} on {names} ({space}, {int(steps)} steps): score {before:.3f} "
                              f"-> {after:.3f}"))
        return self.view(message=self.current.label)

    def region_edit(self, prompt: str, parts=None, mask: np.ndarray | None = None, scorer: str = "attributes",
                    optimizer: str = "cma+adam", popsize: int = 12, cma_iters: int = 6, adam_steps: int = 30,
                    seed: int = 0) -> View:
        """Paint-by-Word (`memorygan edit region`): `mask` (H, W) painted on the image (any size; non-zero = the
        region) and/or `parts` (their masks are the region when no mask is painted; else the codes that move).
        The result keeps the source outside the region (blended in the fused features and at every render layer).
        The budget defaults to a small one for interactive use (the command: population 50, 20 iterations, 100
        Adam steps)."""
        from PIL import Image

        from memorygan.editing.region import region_edit
        from memorygan.editing.results import psnr_outside

        cur = self._need_current()
        region = None
        if mask is not None:
            from memorygan.editing.region import painted_region

            m = painted_region(mask)                                  # painted alpha, or any colour
            size = self.G.config.resolution
            m = np.asarray(Image.fromarray((m > 0).astype(np.uint8) * 255).resize((size, size), Image.NEAREST))
            if m.max() > 0:
                region = torch.from_numpy(m.astype(np.float32) / 255).to(self.G.device)
        if region is None and not parts:
            raise ConfigError("region edit: paint a region on the image or choose parts")
        score = self._scorer(prompt, scorer)
        src = self._source(cur)
        res = region_edit(self.G, src, score, mask=region, parts=parts or None, optimizer=optimizer,
                          popsize=int(popsize), cma_iters=int(cma_iters), adam_steps=int(adam_steps), seed=int(seed))
        with torch.no_grad():
            before = float(score.score(res.before.image, res.before.seg)[0])
            after = float(score.score(res.after.image, res.after.seg)[0])
            psnr = float(psnr_outside(res.before.image, res.after.image, ~res.region.hard)[0])
        names = ", ".join(self.G.part_names[k] for k in res.parts)
        self._commit(snapshot(res.after.expanded.detach(), None, None, cur.codes.noise,
                              f"region edit {prompt!r} ({optimizer}, codes of {names}): score {before:.3f} -> "
                              f"{after:.3f}, PSNR outside {psnr:.1f} dB",
                              blend=(src.expanded.detach(), res.region.soft[:1, None].detach())))
        return self.view(message=self.current.label)

    def _fit_upload(self, image, mask):
        """An uploaded image (H, W, 3|4 uint8 or greyscale) and optional id mask -> (x (1, 3, S, S) in [-1, 1],
        ids (1, S, S) or None), fitted as `memorygan invert` fits files (`inversion.targets.fit_image`: shorter
        side scaled, centre crop; the mask with nearest neighbours); transparency is composited over white."""
        from PIL import Image

        from memorygan.inversion.targets import fit_image

        if image is None:
            raise ConfigError("invert: upload an image first")
        image = np.asarray(image)
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, -1)
        if image.ndim != 3 or image.shape[-1] not in (3, 4):
            raise ConfigError(f"invert: expected an RGB image, got an array of shape {image.shape}")
        size = self.G.config.resolution
        if image.shape[-1] == 4:                       # transparency over white, as `memorygan invert` reads files
            alpha = image[..., 3:4].astype(np.float32) / 255.0
            image = np.rint(image[..., :3] * alpha + 255.0 * (1 - alpha))
        ids_np = None
        if mask is not None:
            mask = np.asarray(mask)
            if mask.ndim == 3:
                mask = mask[..., 0]
            if mask.shape != image.shape[:2]:
                raise ConfigError(f"invert: the mask is {mask.shape[1]}x{mask.shape[0]} but the image is "
                                  f"{image.shape[1]}x{image.shape[0]}")
            k = self.G.config.num_classes
            if mask.max() >= k:
                raise ConfigError(f"invert: the mask has class id {int(mask.max())} but the generator has {k} parts "
                                  f"(ids 0..{k - 1})")
            ids_np = mask
        rgb, ids_np = fit_image(Image.fromarray(image.astype(np.uint8)), size, ids_np)   # as `memorygan invert`
        x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float().div(127.5).sub(1).to(self.G.device)
        ids = None if ids_np is None else torch.from_numpy(ids_np)[None].to(self.G.device)
        return x, ids

    def invert(self, image: np.ndarray, mask: np.ndarray | None = None, steps: int = 200) -> View:
        """Invert an uploaded image (H, W, 3 uint8; optional mask of class ids (H, W)) into codes (the inversion of
        `memorygan invert`, without PTI); it becomes the current image. With an encoder the optimisation starts
        from its codes (steps 0: the encoder alone). `invert_steps` streams the same work."""
        view = None
        for item in self.invert_steps(image, mask, steps):
            view = item if isinstance(item, View) else view
        return view

    def invert_steps(self, image: np.ndarray, mask: np.ndarray | None = None, steps: int = 200,
                     poll: float = 0.25):
        """The inversion as a stream of views and progress messages (str: the image stays as it is). With an
        encoder: its result at once (a View, committed: the codes keep their latents, so every edit applies, and Undo
        after the refinement returns to them), then progress messages while the optimisation refines it from there
        in a worker thread, then the refined image (a View, committed). Without one: progress, then the result."""
        import threading
        import time

        from memorygan.inversion import InversionOptions, project
        from memorygan.inversion.losses import psnr_uint8

        steps = int(steps)
        if steps < 0:
            raise ConfigError(f"invert: steps must be >= 0, got {steps}")
        if steps == 0 and self.encoder is None:
            raise ConfigError("invert: 0 steps needs an encoder (`memorygan demo --encoder E`)")
        t0 = time.perf_counter()
        x, ids = self._fit_upload(image, mask)
        init = None
        space = self._space() if steps > 0 else None
        if self.encoder is not None:
            from memorygan.encoder.model import encode
            with torch.no_grad():
                enc = encode(self.encoder, self.G, x)
            psnr = psnr_uint8(enc.image, x)
            self._commit(snapshot(enc.expanded.detach(), enc.latents.detach(), None, None,
                                  f"encoded image (encoder, {enc.passes} pass(es), PSNR {psnr:.1f} dB, "
                                  f"{(time.perf_counter() - t0) * 1000:.0f} ms)"))
            view = self.view(message=self.current.label + (f"; refining: 0/{steps} steps" if steps else ""))
            yield view
            if steps == 0:
                return
            init = space.units(enc.expanded)
        opts = InversionOptions(steps=steps, stats_samples=500)
        counter = _StepCounter()
        result, error = {}, {}

        def work():
            try:
                with torch.enable_grad():
                    result["p"] = project(self.G, x, opts, self._perceptual(), ids=ids, space=space,
                                          progress=counter, init_units=init)
            except Exception as e:          # re-raised on the request thread
                error["e"] = e

        thread = threading.Thread(target=work, daemon=True)
        thread.start()
        while thread.is_alive():
            thread.join(poll)
            if thread.is_alive():
                yield f"{'refining' if init is not None else 'inverting'}: {counter.n}/{steps} steps"
        if "e" in error:
            raise error["e"]
        res = result["p"]
        psnr = psnr_uint8(res.image, x)
        start = " from the encoder's codes" if init is not None else ""
        self._commit(snapshot(res.expanded.detach(), None, None, res.noise,
                              f"inverted image ({steps} steps{start}, PSNR {psnr:.1f} dB)"))
        yield self.view(message=self.current.label)

    def _space(self):
        from memorygan.inversion.projection import CodeSpace
        if self._code_space is None:
            self._code_space = CodeSpace(self.G, "expanded", 500)
        return self._code_space

    def _perceptual(self):
        from memorygan.inversion import load_perceptual
        if self._perceptual_distance is None:
            self._perceptual_distance = load_perceptual("auto", device=self.G.device)
        return self._perceptual_distance

    def load_codes(self, path, index: int = 0) -> View:
        """Continue from a codes file (e.g. written by `memorygan invert` or a download)."""
        from memorygan.editing.codes import load_codes

        codes = load_codes(path, self.G)
        if not 0 <= index < len(codes):
            raise ConfigError(f"codes file {path} holds {len(codes)} image(s); index {index} is out of range")
        c = codes.select([index])
        blend = None if c.blend_source is None else (c.blend_source, c.blend_mask)   # a region edit: as it was drawn
        self._commit(snapshot(c.expanded, c.latents, c.z if c.level == "z" else None, c.noise,
                              f"codes {Path(path).name}[{index}]", blend=blend))
        return self.view(message=self.current.label)

    # ------------------------------------------------------------------ spatial edits and drag (issue 29)
    def move_part(self, part, dx: float = 0.0, dy: float = 0.0, scale: float = 1.0, degrees: float = 0.0,
                  clone: bool = False) -> View:
        """Move / scale / turn a part through its coordinates (`memorygan edit move|scale|rotate`), or add a copy of
        it there (`clone`). A part already transformed on this image gets the new transform instead; codes do not
        change and the image outside the part's old and new place is kept."""
        from memorygan.editing.spatial import PartTransform, SpatialEdit

        cur = self._need_current()
        k = self.G.resolve_parts([part], "part")[0]
        if not float(scale) > 0:
            raise ConfigError(f"move part: scale must be > 0, got {scale}")
        t = PartTransform(k, shift=(float(dx), float(dy)), scale=float(scale), rotate=float(degrees))
        old = (cur.spatial or {}).get("edit") or SpatialEdit()
        if clone:
            if t.is_identity():
                raise ConfigError("clone: move the copy away from the part (dx, dy)")
            edit = SpatialEdit(list(old.transforms), list(old.remove), list(old.clones) + [t])
        else:
            edit = SpatialEdit([x for x in old.transforms if x.part != k] + ([] if t.is_identity() else [t]),
                               list(old.remove), list(old.clones))
        name = self.G.part_names[k]
        what = "copy of " if clone else ""
        label = (f"{what}{name} moved by ({float(dx):+g}, {float(dy):+g}) px, scale {float(scale):g}, "
                 f"turned {float(degrees):+g} deg")
        return self._spatial(cur, edit, label)

    def remove_parts(self, parts) -> View:
        """Draw the image without these parts (`memorygan edit remove`): the parts under them fill their place."""
        from memorygan.editing.spatial import SpatialEdit

        cur = self._need_current()
        ids = self.G.resolve_parts(parts, "parts") if parts not in (None, [], "") else []
        if not ids:
            raise ConfigError("remove: choose at least one part")
        old = (cur.spatial or {}).get("edit") or SpatialEdit()
        edit = SpatialEdit(list(old.transforms), sorted(set(old.remove) | set(ids)), list(old.clones))
        return self._spatial(cur, edit, "removed " + ", ".join(self.G.part_names[k] for k in ids))

    def _spatial(self, cur: Snapshot, edit, label: str) -> View:
        edit.check(self.G)
        self._commit(Snapshot(cur.codes, label, spatial={"edit": edit}))
        try:
            return self.view(message=label)
        except MemoryGANError:
            self.current = self.history.pop()            # e.g. turning a part that is not in the image
            raise

    def display_factor(self, min_height: int) -> int:
        return max(1, -(-min_height // self.G.config.resolution))

    def add_point(self, x: float, y: float, min_height: int = 0) -> np.ndarray:
        """A click on the drag canvas at display pixel (x, y): the next handle, then its target, and so on. Returns
        the canvas (the current image enlarged, with the points)."""
        f = self.display_factor(min_height)
        res = self.G.config.resolution
        px, py = (float(x) + 0.5) / f - 0.5, (float(y) + 0.5) / f - 0.5
        if not (-0.5 <= px <= res - 0.5 and -0.5 <= py <= res - 0.5):
            raise ConfigError(f"drag: the point ({x}, {y}) is outside the image")
        self.points.append((min(max(px, 0.0), res - 1.0), min(max(py, 0.0), res - 1.0)))
        return self.canvas(min_height)

    def clear_points(self, min_height: int = 0) -> np.ndarray:
        self.points = []
        return self.canvas(min_height)

    def canvas(self, min_height: int = 0, image: np.ndarray | None = None, handles=None) -> np.ndarray:
        """The current image (or `image`) enlarged, handles red, targets blue, joined by a line; `handles`
        replaces the handles' positions (where tracking has them during a drag)."""
        from PIL import Image, ImageDraw

        if image is None:
            image = self.view().image
        f = self.display_factor(min_height)
        pic = Image.fromarray(np.repeat(np.repeat(image, f, 0), f, 1))
        draw = ImageDraw.Draw(pic)
        pts = list(self.points)
        if handles is not None:
            for i, h in enumerate(handles):
                pts[2 * i] = tuple(h)
        scale = (lambda p: ((p[0] + 0.5) * f - 0.5, (p[1] + 0.5) * f - 0.5))
        r = max(2, f)
        for i, p in enumerate(pts):
            x, y = scale(p)
            if i % 2 and i > 0:
                draw.line([scale(pts[i - 1]), (x, y)], fill=(255, 255, 255), width=max(1, f // 3))
            draw.ellipse([x - r, y - r, x + r, y + r], fill=(60, 90, 255) if i % 2 else (255, 40, 40))
        return np.asarray(pic)

    def drag_steps(self, steps: int = 100, space: str = "codes", every: int = 5, min_height: int = 0):
        """Drag the handles to their targets (`memorygan edit drag`), yielding (View, canvas) every `every` steps
        and at the end, when the result becomes the current image."""
        import queue
        import threading

        from memorygan.editing.drag import drag
        from memorygan.visualize import to_uint8

        cur = self._need_current()
        if len(self.points) < 2:
            raise ConfigError("drag: click a handle point and then its target on the image first")
        pts = self.points[:len(self.points) // 2 * 2]
        handles, targets = pts[0::2], pts[1::2]
        q: queue.Queue = queue.Queue()

        def callback(step, image, tracked):
            if step % max(1, int(every)) == 0:
                q.put(("step", step, to_uint8(image)[0], tracked.tolist()))
            return False

        def work():
            try:
                with torch.enable_grad():
                    q.put(("done", drag(self.G, self._source(cur), handles, targets, space=space, steps=int(steps),
                                        callback=callback)))
            except Exception as e:                  # reported on the request thread
                q.put(("error", e))

        base = self.view()
        threading.Thread(target=work, daemon=True).start()
        while True:
            item = q.get()
            if item[0] == "error":
                raise item[1]
            if item[0] == "step":
                _, step, image, tracked = item
                msg = f"drag step {step}"
                yield View(image, base.mask, base.depth, msg), self.canvas(min_height, image, tracked)
                continue
            res = item[1]
            spatial = {"grids": res.grids} if res.grids else None
            label = (f"drag ({space}): {len(handles)} point(s), {res.steps} steps, tracked distance "
                     f"{res.trace[0]:.1f} -> {res.trace[-1]:.1f} px{'' if res.converged else ' (not converged)'}")
            self._commit(snapshot(res.expanded.detach(), None, None, cur.codes.noise, label, spatial=spatial))
            self.points = [p for pair in zip([tuple(h) for h in res.handles.tolist()], targets) for p in pair]
            view = self.view(message=label)
            yield view, self.canvas(min_height)
            return

    def undo(self) -> View:
        if not self.history:
            raise ConfigError("nothing to undo")
        self.current = self.history.pop()
        self.base, self.slider = None, None
        return self.view(message=f"undo: back to {self.current.label}")

    # ------------------------------------------------------------------ downloads
    def save(self, folder) -> dict[str, Path]:
        """image.png, mask.png (class ids) and codes.safetensors of the current image in `folder`."""
        from PIL import Image

        from memorygan.checkpoint import generator_fingerprint
        from dataclasses import replace

        from memorygan.editing.codes import save_codes
        from memorygan.visualize import to_uint8

        cur = self._need_current()
        out = self._render(cur)
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        paths = {"image": folder / "image.png", "mask": folder / "mask.png", "codes": folder / "codes.safetensors"}
        Image.fromarray(to_uint8(out.image)[0]).save(paths["image"])
        Image.fromarray(out.seg.argmax(1)[0].to(torch.uint8).cpu().numpy(), mode="L").save(paths["mask"])
        c = cur.codes
        cpu = (lambda t: None if t is None else t.cpu())
        save_codes(paths["codes"], replace(c, expanded=c.expanded.cpu(), level="z" if c.z is not None else "expanded",
                                           names=[cur.label], latents=cpu(c.latents), z=cpu(c.z), arch=self.G.arch,
                                           generator=generator_fingerprint(self.G), blend_source=cpu(c.blend_source),
                                           blend_mask=None if c.blend_mask is None else c.blend_mask.float().cpu()))
        return paths
