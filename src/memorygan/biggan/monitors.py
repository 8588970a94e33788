"""Training monitors of thesis Fig. 2-2 and collapse detection.

The first singular value sigma_0 of every spectrally normalised layer comes free from spectral norm's power
iteration (the `sv0` buffers, the estimate before normalisation). BigGAN (Brock et al. 2019, Sec. 4.1) found that
collapse is announced by G's sigma_0 exploding and by D's loss falling towards zero (D separates real from fake
and G no longer gets a useful gradient); the thesis monitored exactly these with IS and FID (Sec. 2.4). The rules:

- **singular values blow up**: a layer's sigma_0 is more than `sv_ratio` times its smallest value over the
  previous `window` monitor rows (sigma_0 grows slowly in a healthy run; BigGAN's collapses show jumps of an order
  of magnitude);
- **D's loss collapses**: D's hinge loss (real + fake parts, 2 at chance, 0 when every margin is met) stays below
  `d_floor` for `window` consecutive rows.
- **variety collapses** (with `--metrics-every`): recall (Kynkäänniemi et al. 2019, in the domain classifier's
  features: the share of real images near some sample) falls below `recall_ratio` times its best value so far.
  Neither rule above sees this: the first CPU run (docs/biggan.md) kept smooth sigma_0 and D's loss near 1.4 while
  the seeds of a class converged to one image and recall fell from 0.60 to 0.16.

Each rule warns once per layer / once per run until it clears, so a log is not flooded.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import torch.nn as nn

from memorygan.biggan.layers import sn_layers


def singular_values(net: nn.Module, prefix: str) -> dict[str, float]:
    """{"G/blocks.0.0.conv1": sigma_0, ...}: the power iteration's estimate of each layer's first singular value."""
    return {f"{prefix}/{name}": float(layer.sv0) for name, layer in sn_layers(net).items()}


@dataclass
class CollapseMonitor:
    window: int = 10
    sv_ratio: float = 4.0
    d_floor: float = 0.05
    recall_ratio: float = 0.5
    _sv: dict = field(default_factory=dict)
    _best_recall: float = 0.0
    _d: deque = field(default_factory=deque)
    _fired: set = field(default_factory=set)

    def update(self, step: int, d_loss: float, svs: dict[str, float]) -> list[str]:
        """Feed one monitor row; returns the warnings it raises (empty on a healthy run)."""
        warnings = []
        for name, value in svs.items():
            hist = self._sv.setdefault(name, deque(maxlen=self.window))
            if len(hist) == self.window:
                low = min(hist)
                key = ("sv", name)
                if low > 0 and value > self.sv_ratio * low:
                    if key not in self._fired:
                        self._fired.add(key)
                        warnings.append(f"step {step}: the first singular value of {name} blew up to {value:.3g}, "
                                        f"{value / low:.1f}x its minimum over the last {self.window} rows "
                                        f"({low:.3g}); BigGAN's collapses start like this")
                else:
                    self._fired.discard(key)
            hist.append(value)
        self._d.append(d_loss)
        while len(self._d) > self.window:
            self._d.popleft()
        if len(self._d) == self.window and max(self._d) < self.d_floor:
            if "d" not in self._fired:
                self._fired.add("d")
                warnings.append(f"step {step}: D's loss has stayed below {self.d_floor} for {self.window} rows "
                                f"(last {d_loss:.3g}): D separates real from fake and G no longer learns (collapse)")
        elif self._d and self._d[-1] >= self.d_floor:
            self._fired.discard("d")
        return warnings

    def update_recall(self, step: int, recall: float) -> list[str]:
        """Feed one metrics row's recall; returns the warning it raises (variety collapse), if any."""
        warnings = []
        if not recall == recall:                                   # NaN: nothing measured
            return warnings
        if self._best_recall > 0 and recall < self.recall_ratio * self._best_recall:
            if "recall" not in self._fired:
                self._fired.add("recall")
                warnings.append(f"step {step}: recall fell to {recall:.3g}, below {self.recall_ratio:g}x its best "
                                f"({self._best_recall:.3g}): the samples cover less and less of the data (variety "
                                f"collapse; look at the seeds of one class)")
        else:
            self._fired.discard("recall")
        self._best_recall = max(self._best_recall, recall)
        return warnings

    def state(self) -> dict:
        return {"sv": {k: list(v) for k, v in self._sv.items()}, "d": list(self._d), "fired": sorted(
            "|".join(k) if isinstance(k, tuple) else k for k in self._fired), "best_recall": self._best_recall}

    def load_state(self, state: dict) -> None:
        self._best_recall = float(state.get("best_recall", 0.0))
        self._sv = {k: deque(v, maxlen=self.window) for k, v in state.get("sv", {}).items()}
        self._d = deque(state.get("d", []))
        self._fired = {tuple(k.split("|", 1)) if "|" in k else k for k in state.get("fired", [])}
