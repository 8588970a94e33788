"""The BigGAN demo's logic, without Gradio (as `demo.state` for the part-based generators): the current sample
(z, class embedding) with undo, one method per panel: a class picker with seed and truncation, class interpolation
in the shared embedding (thesis Fig. 2-7), GANalyze direction sliders (thesis ch. 3) and a Paint-by-Word box or
painted region (ch. 4). Sliders act on the sample as it was before the slider first moved."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from memorygan.biggan.edits import ZDirection, paint_by_word, region_score
from memorygan.biggan.models import BigGANGenerator, truncated_z
from memorygan.errors import ConfigError


@dataclass
class Sample:
    z: torch.Tensor            # (1, dim_z)
    cls: int                   # the class of the conditioning (for the later layers in Paint-by-Word)
    emb: torch.Tensor          # (1, shared_dim): the class embedding (interpolated ones too)
    label: str = ""


@dataclass
class BigGANView:
    image: np.ndarray          # (H, W, 3) uint8
    message: str = ""

    def panel(self, min_height: int = 0) -> np.ndarray:
        f = max(1, -(-min_height // self.image.shape[0]))
        return np.repeat(np.repeat(self.image, f, 0), f, 1)


class BigGANDemoState:
    def __init__(self, G: BigGANGenerator, directions: dict[str, ZDirection] | None = None):
        self.G = G.eval().requires_grad_(False)
        self.directions = dict(directions or {})
        cfg = G.config
        self.classes = list(cfg.class_names or [str(i) for i in range(cfg.num_classes)])
        self.history: list[Sample] = []
        self._slider: tuple[str, Sample] | None = None

    # ------------------------------------------------------------------ helpers
    @property
    def current(self) -> Sample:
        if not self.history:
            raise ConfigError("generate an image first")
        return self.history[-1]

    def _class(self, name) -> int:
        if isinstance(name, int) and 0 <= name < len(self.classes):
            return name
        if name in self.classes:
            return self.classes.index(name)
        raise ConfigError(f"unknown class {name!r}; this generator knows {', '.join(self.classes[:12])}"
                          f"{', ...' if len(self.classes) > 12 else ''}")

    @torch.no_grad()
    def render(self, s: Sample) -> np.ndarray:
        from memorygan.visualize import to_uint8
        return to_uint8(self.G(s.z.to(self.G.device), s.emb.to(self.G.device)))[0]

    def _push(self, s: Sample, message: str) -> BigGANView:
        self._slider = None
        self.history.append(s)
        return BigGANView(self.render(s), message)

    def _base(self, slider: str) -> Sample:
        """The sample a slider acts on: the one before the slider first moved (sliders never accumulate)."""
        if self._slider is None or self._slider[0] != slider:
            self._slider = (slider, self.current)
            self.history.append(self.current)
        return self._slider[1]

    # ------------------------------------------------------------------ panels
    def generate(self, cls, seed: int, truncation: float | None = None) -> BigGANView:
        c = self._class(cls)
        t = None if truncation is None or truncation >= 2.0 else float(truncation)
        z = truncated_z(1, self.G.config.dim_z, t, torch.Generator().manual_seed(int(seed)))
        emb = self.G.shared(torch.tensor([c], device=self.G.device)).cpu()
        return self._push(Sample(z, c, emb, f"{self.classes[c]}, seed {seed}"),
                          f"{self.classes[c]}, seed {seed}, truncation {t if t is not None else 'none'}")

    def interpolate_class(self, other, t: float) -> BigGANView:
        base = self._base(f"class:{other}")
        c2 = self._class(other)
        e2 = self.G.shared(torch.tensor([c2], device=self.G.device)).cpu()
        s = Sample(base.z, base.cls if t < 0.5 else c2, (1 - t) * base.emb + t * e2, base.label)
        self.history[-1] = s
        return BigGANView(self.render(s), f"{self.classes[base.cls]} -> {self.classes[c2]} at t = {t:.2f}")

    def apply_direction(self, name: str, alpha: float) -> BigGANView:
        if name not in self.directions:
            raise ConfigError(f"unknown direction {name!r}; loaded: {', '.join(self.directions) or 'none'}")
        base = self._base(f"dir:{name}")
        d = self.directions[name]
        s = Sample(base.z + alpha * d.theta.cpu(), base.cls, base.emb, base.label)
        self.history[-1] = s
        return BigGANView(self.render(s), f"{name} ({d.assessor}) alpha {alpha:+.2f}")

    def paint(self, mask: np.ndarray | torch.Tensor | None, assessor: str, target: float,
              iterations: int = 10) -> BigGANView:
        """Paint-by-Word on the current sample: the region (H, W) non-zero = edit) moves towards the assessor
        target; a painted mask of another size is resized."""
        if mask is None:
            raise ConfigError("paint the region to edit first")
        m = torch.as_tensor(np.asarray(mask), dtype=torch.float32)
        if m.ndim == 3:
            m = m.amax(-1)
        res = self.G.config.resolution
        if m.shape != (res, res):
            m = torch.nn.functional.interpolate(m[None, None], size=(res, res), mode="area")[0, 0]
        m = (m > 0.5 * m.max().clamp_min(1e-8)).float()
        if not m.any():
            raise ConfigError("the painted region is empty")
        cur = self.current
        if not torch.allclose(cur.emb, self.G.shared(torch.tensor([cur.cls], device=self.G.device)).cpu()):
            raise ConfigError("Paint-by-Word needs a sample of one class (not an interpolated class); generate one")
        r = paint_by_word(self.G, cur.z, cur.cls, m, region_score(assessor, float(target)),
                          cma_iterations=int(iterations), popsize=12, adam_steps=10)
        self._slider = None
        # the result is not a G(z) sample: keep it as an image on the history (later edits start from the source z)
        self.history.append(cur)
        from memorygan.visualize import to_uint8
        return BigGANView(to_uint8(r.image)[0], f"painted {assessor} -> {target}: loss {r.score_before:.4f} -> "
                                                f"{r.score_after:.4f}, PSNR outside {r.psnr_outside:.1f} dB")

    def undo(self) -> BigGANView:
        if len(self.history) < 2:
            raise ConfigError("nothing to undo")
        self.history.pop()
        self._slider = None
        return BigGANView(self.render(self.current), "undone")

    def view(self) -> BigGANView:
        return BigGANView(self.render(self.current), self.current.label)
