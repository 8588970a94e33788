"""Text scorers behind one interface (text and region edits, DESIGN 6).

A `TextScore` is a prompt bound to a scorer; on a batch of generated images (B, 3, H, W) in [-1, 1] with their seg
logits (B, K, H, W), and optionally a region (B, H, W) in [0, 1] the score is restricted to:

    score(image, seg, region=None)                  (B,) higher = better match (reported before/after)
    loss(image, seg, region=None, generator=None)   (B,) the differentiable distance D_score (MemoryGAN Eq. 16)
    success(image, seg, region=None)                (B,) bool, or None when the scorer has no absolute criterion
    parts                                           the part ids the score reads (empty: the whole image)
    describe()                                      one line

Scorers: `clip` (editing.clip: a local CLIP folder) and `attributes` (editing.phrases: attribute words with
references from ground truth). `held_out_score` wraps what measures an edit without being optimised: the attribute
scorer in another colour space, or any assessor spec (e.g. an attribute regressor, `regressor:DIR:red`).
"""
from __future__ import annotations

import torch

from memorygan.errors import ConfigError

SCORERS = ("attributes", "clip")


def text_score(kind: str, prompt: str, G, clip=None, phrases=None, colour_space: str = "lab", crops: int = 8,
               min_crop: float = 0.5):
    """Resolve a scorer for a prompt. `clip`: a folder (or None: $MEMORYGAN_CLIP) or a loaded `ClipModel`;
    `phrases`: a `PhraseBook`, a phrases table file (calibrated), a JSON file of extra phrases, or None (the built-in
    portraits table); see `phrases.resolve_phrases`."""
    if not isinstance(prompt, str) or not prompt.strip():
        raise ConfigError("--prompt: give the text to edit towards, e.g. --prompt \"a person with red hair\"")
    if kind == "clip":
        from memorygan.editing.clip import ClipModel, ClipScore

        model = clip if isinstance(clip, ClipModel) else ClipModel(clip, G.device)
        return ClipScore(model, prompt, crops, min_crop)
    if kind == "attributes":
        from memorygan.editing.phrases import phrase_score, resolve_phrases

        return phrase_score(prompt, G, resolve_phrases(phrases), colour_space)
    raise ConfigError(f"--scorer must be one of {', '.join(SCORERS)}, got {kind!r}")


class AssessorScore:
    """An assessor (editing.assessors spec) as a text score: score = A(image, seg), loss = -score."""

    kind = "assessor"

    def __init__(self, assessor):
        self.assessor = assessor
        self.prompt = assessor.spec
        self.parts = list(assessor.parts)

    def describe(self) -> str:
        return f"assessor {self.assessor.spec}"

    def score(self, image, seg=None, region=None) -> torch.Tensor:
        return self.assessor(image, seg)

    def loss(self, image, seg=None, region=None, generator=None) -> torch.Tensor:
        return -self.score(image, seg, region)

    def success(self, image, seg=None, region=None):
        return None


def held_out_score(spec: str, prompt: str, G, phrases=None, probe=None, data=None):
    """A second scorer that measures an edit without being optimised: "rgb" / "lab" (the attribute scorer of the
    same prompt in that colour space) or an assessor spec (`memorygan edit assessors`)."""
    from memorygan.editing.phrases import SPACES

    if spec in SPACES:
        return text_score("attributes", prompt, G, phrases=phrases, colour_space=spec)
    from memorygan.editing.assessors import get_assessor

    return AssessorScore(get_assessor(spec, G, probe=probe, data=data))
