"""Judges that took no part in an edit (issue 30): what an edit is graded by, kept apart from what it optimised.

An edit optimises a scorer (an assessor, the phrase scorer, CLIP) and reads the generator's own segmentation for its
losses. Grading it by the same scorer and segmentation lets it grade itself. The judges here are trained on the
dataset's ground truth and never enter an optimisation:

    probe       the segmentation probe (`memorygan probe train`, a U-Net on real images and their masks): its masks
                replace the generator's for the region that may change and for the non-target mIoU
    probe-area  the fraction of the image the probe gives to a part (judges sizes: the ground truth's mouth.width is
                in face units, which a regressor cannot read from the image at R^2 0.07)
    regressors  image-only attribute networks (`memorygan edit train-assessor`), one per ground-truth attribute, kept
                in one folder as DIR/<attribute>/ (e.g. DIR/hair.lightness, DIR/eyes.color): the judged gain of a
                direction, and whether a phrase holds after a text or region edit (the phrase's group attribute,
                predicted from the image, falls in the phrase's class)

`Judges(G, regressors=DIR, probe=DIR)`; every part is optional, and a measure whose judge is missing is left out
(never replaced by the scorer).
"""
from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F

from memorygan.errors import ConfigError


PROBE_AREA = "probe-area:"


class Judges:
    def __init__(self, G, regressors=None, probe=None, device=None):
        from memorygan.metrics.probe import load_probe

        self.part_names = list(G.part_names)
        self.device = torch.device(device) if device is not None else G.device
        self.regressors_dir = Path(regressors) if regressors else None
        if self.regressors_dir is not None and not self.regressors_dir.is_dir():
            raise ConfigError(f"--judges {self.regressors_dir}: not a folder (give the folder holding one "
                              "`memorygan edit train-assessor` output per attribute, e.g. DIR/hair.lightness)")
        self._nets: dict[str, tuple] = {}
        self.probe = None
        self.probe_spec = None
        if probe:
            self.probe, meta = load_probe(probe, self.device)
            self.probe_spec = meta["path"]
            self.probe_res = tuple(int(r) for r in meta["resolution"])
            names = list(meta["classes"])
            # probe class c -> the generator's part id of the same name (-1: a class the generator does not draw)
            self._probe_map = torch.tensor([self.part_names.index(c) if c in self.part_names else -1 for c in names],
                                           device=self.device)
            missing = [p for p in self.part_names if p not in names]
            if missing:
                raise ConfigError(f"--judge-probe {probe}: the probe has no class for the generator's parts "
                                  f"{', '.join(missing)} (its classes: {', '.join(names)})")

    @property
    def specs(self) -> dict:
        return {"probe": self.probe_spec, "regressors": str(self.regressors_dir) if self.regressors_dir else None}

    # ------------------------------------------------------------------------------------------------ probe masks
    @torch.no_grad()
    def probe_ids(self, image: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [-1, 1] -> (B, H, W) part ids in the generator's numbering, from the probe's masks."""
        if self.probe is None:
            raise ConfigError("no segmentation probe given to judge with (--judge-probe DIR)")
        x = image.float()
        size = tuple(x.shape[2:])
        if size != self.probe_res:
            x = F.interpolate(x, size=self.probe_res, mode="bilinear", align_corners=False, antialias=True)
        logits = self.probe(x)
        if tuple(logits.shape[2:]) != size:
            logits = F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
        return self._probe_map[logits.argmax(1)]

    # ------------------------------------------------------------------------------------------------ regressors
    def has(self, attribute: str) -> bool:
        if attribute.startswith(PROBE_AREA):
            return self.probe is not None
        return self.regressors_dir is not None and (self.regressors_dir / attribute.split(":")[0] / "assessor.json"
                                                     ).is_file()

    def _net(self, attribute: str):
        from memorygan.editing.regressor import load_regressor

        if self.regressors_dir is None:
            raise ConfigError(f"no regressors given to judge {attribute!r} with (--judges DIR)")
        if attribute not in self._nets:
            folder = self.regressors_dir / attribute
            if not (folder / "assessor.json").is_file():
                raise ConfigError(f"--judges {self.regressors_dir}: no regressor for {attribute!r} (train one: "
                                  f"memorygan edit train-assessor --data DATA --attribute {attribute} --out {folder})")
            self._nets[attribute] = load_regressor(folder, self.device)
        return self._nets[attribute]

    @torch.no_grad()
    def predict(self, attribute: str, image: torch.Tensor) -> torch.Tensor:
        """The regressor of `attribute` on images (B, 3, H, W): values (regression), presence probabilities, or
        class probabilities (B, C) for class attributes."""
        net, meta = self._net(attribute)
        x = image.float()
        res = tuple(meta["resolution"])
        if tuple(x.shape[2:]) != res:
            x = F.interpolate(x, size=res, mode="bilinear", align_corners=False, antialias=True)
        out = net(x)
        if meta["kind"] == "regression":
            return out[:, 0] * meta["std"] + meta["mean"]
        if meta["kind"] == "presence":
            return torch.sigmoid(out[:, 0])
        return torch.softmax(out, dim=1)

    def score(self, spec: str, image: torch.Tensor) -> torch.Tensor:
        """(B,) judged score of `spec`: ATTRIBUTE (a number or presence) or ATTRIBUTE:CLASS (that class's
        probability), e.g. hair.lightness, eyes.color:blue; or probe-area:PART, the fraction of the image the
        probe's masks give to PART (for sizes the ground truth states in units the image does not show)."""
        if spec.startswith(PROBE_AREA):
            part = spec[len(PROBE_AREA):]
            if part not in self.part_names:
                raise ConfigError(f"judge {spec!r}: unknown part {part!r} (parts: {', '.join(self.part_names)})")
            return (self.probe_ids(image) == self.part_names.index(part)).float().mean((1, 2))
        attribute, _, cls = spec.partition(":")
        _, meta = self._net(attribute)
        p = self.predict(attribute, image)
        if meta["kind"] == "classes":
            if cls not in meta["classes"]:
                raise ConfigError(f"judge {spec!r}: {attribute} is a class attribute; name one of its classes as "
                                  f"{attribute}:CLASS ({', '.join(meta['classes'])})")
            return p[:, meta["classes"].index(cls)]
        if cls:
            raise ConfigError(f"judge {spec!r}: {attribute} is a {meta['kind']} attribute and takes no class")
        return p

    def phrase_holds(self, prompt: str, image: torch.Tensor, book=None) -> torch.Tensor | None:
        """(B,) bool on the CPU (a per-image verdict for the metrics records): every phrase of the prompt holds by the
        regressor of its group's attribute (its prediction falls in the phrase's class); None when a group has no
        regressor here."""
        from memorygan.editing.phrases import resolve_phrases

        book = book if book is not None else resolve_phrases()
        try:
            terms = book.match(prompt)
        except ConfigError:
            return None                       # no phrase the ground truth knows (e.g. a free CLIP prompt)
        held = torch.ones(image.shape[0], dtype=torch.bool)
        for _, group_name, cls in terms:
            group = book.groups[group_name]
            if not self.has(group.attribute):
                return None
            _, meta = self._net(group.attribute)
            p = self.predict(group.attribute, image).cpu()
            if meta["kind"] == "classes":
                values = [meta["classes"][i] for i in p.argmax(1).tolist()]
            elif meta["kind"] == "presence":
                values = (p > 0.5).tolist()
            else:
                values = p.tolist()
            labels = [group.label(_record(group.attribute, v)) for v in values]
            held &= torch.tensor([lab == cls for lab in labels], dtype=torch.bool)
        return held


def _record(attribute: str, value) -> dict:
    """{"a": {"b": value}} for the dotted path "a.b" (a ground-truth record holding one predicted value)."""
    keys = attribute.split(".")
    rec: dict = {keys[-1]: value}
    for k in reversed(keys[:-1]):
        rec = {k: rec}
    return rec


def spread(values) -> float:
    """2 standard deviations of a judge's scores over random samples (the unit of a judged gain, as the scorers'),
    NaN when they do not vary."""
    import numpy as np

    s = 2 * float(np.std(values))
    return s if s > 1e-12 else math.nan
