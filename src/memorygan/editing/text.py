"""Text-guided part edits (StyleCLIP optimisation restricted to parts; MemoryGAN Sec. 4.6.1, Eqs. 16-18).

Only the selected parts' codes move. In the parts space the variables are one offset per (part, role) added on
every local layer of that role (`space.role_masks`: shape and/or texture codes), theta (B, P, R, D); in the
query space (MemoryGAN) one offset per part added to its query code inside the working memory, theta (B, P, D), so
the parts drawn after it follow. With w = w_s + theta:

    L_CLIP = D_score(G(w)_img, t) + lambda_L2 ||w - w_s||^2 + lambda_ID L_ID(w)                  (16)
    L_ID   = 1 - <F(G(w_s)_img), F(G(w)_img)>                                                 (17)
    L      = L_CLIP + lambda_seg ||G(w)_seg - G(w_s)_seg||^2                                    (18)

D_score is the scorer's loss (CLIP: 1 - cosine; attribute words: half the squared distance to the class mean).
||.||^2 is the squared norm of theta per image. The seg term (`seg_term`) is, as Eq. 18 is written, the mean squared
difference of the seg logits over (K, H, W) (`seg_loss="l2", seg_norm="pixels"`), or by default a per-part margin
term (`seg_loss="margin", seg_norm="parts"`, lambda_seg 1000): a pixel costs only when it moves towards another label
than the source's, averaged per part so that small parts weigh as much as large ones, which is what the non-target
mIoU measures (six phrases on the trained 64 px portraits: mIoU 0.80 / 0.94 for MemoryGAN / SSG vs 0.70 / 0.88 for
Eq. 18 at its best lambda_seg of 100, with the phrases still satisfied in >= 90 % of the edits;
docs/text-edits.md). It acts on every pixel (`seg_on="all"`) or only outside the target parts' soft region before or
after (`seg_on="outside"`, for phrases that must change a part's shape, e.g. a hat appearing). The identity term
needs an identity network F (a `module:callable` mapping images to embeddings): none ships here, so it is off unless
one is given.

Optimiser: Adam with StyleCLIP's schedule (lr 0.1, cosine ramp-down over the last 25%, linear ramp-up over the
first 5%), 300 steps. Each image's loss is summed, so every image is edited independently of the batch it is in.
"""
from __future__ import annotations

import importlib
import time
from dataclasses import dataclass, field

import torch

from memorygan.models.codes import Codes
from memorygan.editing.space import TEXT_SPACES, EditSpace, edit_space  # noqa: F401  (re-exported)
from memorygan.errors import ConfigError

STEPS, LR, LAMBDA_L2 = 300, 0.1, 0.008          # StyleCLIP's defaults
LAMBDA_SEG = 1000.0                              # with SEG_LOSS / SEG_NORM: from the sweeps in docs/text-edits.md
LAMBDA_ID = 0.1
SEG_ON = ("all", "outside")
SEG_NORMS = ("pixels", "parts")
SEG_LOSSES = ("l2", "margin")
SEG_LOSS, SEG_NORM = "margin", "parts"           # six phrases: mIoU 0.80 / 0.94 vs 0.70 / 0.88 for Eq. 18 (l2, pixels)
SEG_MARGIN = 1.0        # seg-logit margin `margin` keeps (trained 64 px models: median margin 1.9, 5 % below 0.5)


def styleclip_lr(t: float, initial_lr: float, rampdown: float = 0.25, rampup: float = 0.05) -> float:
    """StyleCLIP's learning-rate schedule at progress t in [0, 1]: the StyleGAN2 projector's, as inversion uses it
    (`inversion.losses.ramped_lr`, the one implementation)."""
    from memorygan.inversion.losses import ramped_lr
    return ramped_lr(t, initial_lr, rampdown, rampup)


def identity_network(spec: str | None):
    """A user identity network F(image (B, 3, H, W) in [-1, 1]) -> (B, E) from "module:callable" (None: off)."""
    if not spec:
        return None
    module, _, attr = spec.partition(":")
    if not attr:
        raise ConfigError(f"--identity {spec!r}: give MODULE:CALLABLE (a function image -> embedding)")
    try:
        fn = getattr(importlib.import_module(module), attr, None)
    except ImportError as e:
        raise ConfigError(f"--identity {spec!r}: cannot import {module!r} ({e})") from None
    if not callable(fn):
        raise ConfigError(f"--identity {spec!r}: {module!r} has no callable {attr!r}")
    return fn


# ----------------------------------------------------------------------------------------------- the edit
@dataclass
class TextEditResult:
    before: object                  # GeneratorOutput of the source
    after: object                   # GeneratorOutput of the edit
    theta: torch.Tensor
    space: EditSpace
    targets: list[int]              # parts allowed to change (edited parts + the parts the scorer reads)
    curve: list = field(default_factory=list)
    settings: dict = field(default_factory=dict)
    seconds: float = 0.0


def seg_weight(before_seg, seg, targets: list[int], seg_on: str) -> torch.Tensor | None:
    """(B, H, W) weight of the seg term: None (every pixel) or 1 - the targets' soft region before or after."""
    if seg_on == "all":
        return None
    from memorygan.editing.assessors import soft_mask

    inside = torch.maximum(soft_mask(before_seg, targets, before_seg), soft_mask(seg, targets, seg))
    return 1 - inside


def seg_term(before_seg, seg, targets: list[int], seg_on: str = "all", seg_norm: str = "pixels",
             seg_loss: str = "l2") -> torch.Tensor:
    """(B,) the seg term of Eq. 18. Per pixel, `l2`: the squared difference of the seg logits, mean over the K
    channels (Eq. 18 as written); `margin`: relu(min(m_s, SEG_MARGIN) - m)^2 with m the margin of the source's
    label (its logit minus the largest other) now and m_s in the source, so only a move towards another label
    costs, and a change that keeps every label is free (what the non-target mIoU measures). Then the mean over the
    pixels (`pixels`: a part weighs its area) or over each part's pixels in the source and then over the parts
    present (`parts`: every part weighs the same, as in a mean IoU), both weighted by `seg_weight`."""
    labels = before_seg.argmax(1)                                                              # (B, H, W)
    if seg_loss == "l2":
        per_pixel = (seg - before_seg).pow(2).mean(1)
    else:
        from memorygan.inversion.losses import label_margin
        keep = label_margin(before_seg, labels).clamp(max=SEG_MARGIN)
        per_pixel = torch.relu(keep - label_margin(seg, labels)).pow(2)
    w = seg_weight(before_seg, seg, targets, seg_on)
    w = torch.ones_like(per_pixel) if w is None else w
    if seg_norm == "pixels":
        return (per_pixel * w).sum((1, 2)) / w.sum((1, 2)).clamp(min=1e-6)
    onehot = torch.nn.functional.one_hot(labels, seg.shape[1]).permute(0, 3, 1, 2).to(per_pixel.dtype)
    area = (onehot * w[:, None]).sum((2, 3))                                                   # (B, K)
    per_part = (onehot * (per_pixel * w)[:, None]).sum((2, 3)) / area.clamp(min=1e-6)
    present = (area > 0.5).to(per_pixel.dtype)                                                # half a pixel or more
    return (per_part * present).sum(1) / present.sum(1).clamp(min=1)


def text_edit(G, source: Codes, score, parts, layers: str = "both", space: str = "parts", steps: int = STEPS,
              lr: float = LR, lambda_l2: float = LAMBDA_L2, lambda_seg: float = LAMBDA_SEG, seg_on: str = "all",
              seg_norm: str = SEG_NORM, seg_loss: str = SEG_LOSS,
              identity=None, lambda_id: float = LAMBDA_ID, truncation: float = 1.0, seed: int = 0,
              log_every: int = 10, progress: bool = False) -> TextEditResult:
    """Optimise the selected parts' codes of every source image towards the prompt of `score` (module
    docstring). G stays frozen. Deterministic for a seed (it draws CLIP's random crops)."""
    if steps < 1 or not lr > 0 or lambda_l2 < 0 or lambda_seg < 0 or lambda_id < 0:
        raise ConfigError(f"--steps must be >= 1, --lr > 0 and the lambdas >= 0 (got {steps}, {lr}, {lambda_l2}, "
                          f"{lambda_seg}, {lambda_id})")
    if seg_on not in SEG_ON:
        raise ConfigError(f"--seg-on must be one of {', '.join(SEG_ON)}, got {seg_on!r}")
    if seg_norm not in SEG_NORMS:
        raise ConfigError(f"--seg-norm must be one of {', '.join(SEG_NORMS)}, got {seg_norm!r}")
    if seg_loss not in SEG_LOSSES:
        raise ConfigError(f"--seg-loss must be one of {', '.join(SEG_LOSSES)}, got {seg_loss!r}")
    t0 = time.perf_counter()
    G.eval().requires_grad_(False)
    es = edit_space(G, space, parts, layers, source, truncation)
    targets = sorted(set(es.parts) | set(score.parts))
    b = len(source)
    with torch.no_grad():
        before = es.render(G, source, torch.zeros(es.theta_shape(G, b), device=G.device))
        id_before = identity(before.image) if identity is not None else None
    theta = torch.zeros(es.theta_shape(G, b), device=G.device, requires_grad=True)
    opt = torch.optim.Adam([theta], lr=lr)
    gen = torch.Generator().manual_seed(seed)
    curve, acc = [], {}
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=steps, desc="text edit", unit="step")
    dims = tuple(range(1, theta.ndim))
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = styleclip_lr(step / steps, lr)
        out = es.render(G, source, theta)
        terms = {"score": score.loss(out.image, out.seg, generator=gen),                           # D_score
                 "l2": lambda_l2 * theta.pow(2).sum(dims)}                                         # Eq. 16
        if lambda_seg > 0:
            terms["seg"] = lambda_seg * seg_term(before.seg, out.seg, targets, seg_on, seg_norm,  # Eq. 18
                                                    seg_loss)
        if identity is not None and lambda_id > 0:
            cos = torch.nn.functional.cosine_similarity(identity(out.image), id_before, dim=-1)
            terms["id"] = lambda_id * (1 - cos)                                                    # Eq. 17
        loss = torch.stack(list(terms.values())).sum(0)                                            # (B,)
        opt.zero_grad(set_to_none=True)
        loss.sum().backward()                    # a sum: each image's gradient is its own
        opt.step()
        for k, v in terms.items():
            acc.setdefault(k, []).append(float(v.detach().mean()))
        if (step + 1) % log_every == 0 or step + 1 == steps:
            curve.append({"step": step + 1, **{k: sum(v) / len(v) for k, v in acc.items()},
                          "theta_norm": float(theta.detach().flatten(1).norm(dim=1).mean())})
            acc = {}
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    with torch.no_grad():
        after = es.render(G, source, theta.detach())
    settings = {"space": space, "parts": [G.part_names[p] for p in es.parts], "roles": es.roles,
                "steps": steps, "lr": lr, "schedule": "StyleCLIP cosine ramp (rampdown 0.25, rampup 0.05)",
                "lambda_l2": lambda_l2, "lambda_seg": lambda_seg, "seg_on": seg_on,
                "seg_norm": seg_norm, "seg_loss": seg_loss,
                "lambda_id": lambda_id if identity is not None else 0.0,
                "identity": "on" if identity is not None else "off (no identity network given)",
                "truncation": truncation, "seed": seed, "scorer": score.describe()}
    return TextEditResult(before, after, theta.detach(), es, targets, curve, settings, time.perf_counter() - t0)


def text_edit_record(G, result: TextEditResult, score, names: list[str], held_out=None,
                     judges=None) -> dict:
    """metrics.json of a text edit: settings, summary (means, pooled preservation, success rates), per image."""
    from memorygan.editing.results import edit_metrics, public, summarise

    rows = edit_metrics(result.before, result.after, result.targets, G.config.num_classes, score, held_out,
                        names=names, judges=judges, prompt=score.prompt)
    return {"edit": "text", "prompt": score.prompt, **result.settings,
            "target_parts": [G.part_names[p] for p in result.targets],
            "held_out": held_out.describe() if held_out is not None else None,
            "judges": judges.specs if judges is not None else None,
            "summary": summarise(rows), "images": public(rows), "curve": result.curve,
            "seconds": result.seconds}


def _cat_outputs(outs: list):
    """One GeneratorOutput from several, batch-wise (fields that are None stay None)."""
    first = outs[0]
    merged = {}
    for name, value in first.to_dict().items():
        if isinstance(value, torch.Tensor):
            merged[name] = torch.cat([o.to_dict()[name] for o in outs])
        elif isinstance(value, tuple):
            merged[name] = tuple(torch.cat([o.to_dict()[name][i] for o in outs]) for i in range(len(value)))
        else:
            merged[name] = value
    return type(first)(**merged)


def text_edit_batched(G, source: Codes, score, batch: int | None = None, **kw) -> TextEditResult:
    """text_edit over at most `batch` images at a time (memory bounded by the batch, not by the number of images).
    Each image's loss is its own and Adam is elementwise, so the edit of an image does not depend on the others:
    the result equals one call over all images up to float rounding (CLIP's random crops are drawn per batch).
    The curve is the image-weighted mean of the batches' curves."""
    if batch is not None and batch < 1:
        raise ConfigError(f"--batch must be >= 1, got {batch}")
    n = len(source)
    if batch is None or n <= batch:
        return text_edit(G, source, score, **kw)
    parts = [text_edit(G, source.select(slice(s, s + batch)), score, **kw) for s in range(0, n, batch)]
    sizes = [len(r.theta) for r in parts]
    curve = []
    for rows in zip(*(r.curve for r in parts)):
        curve.append({k: (rows[0][k] if k == "step" else sum(r[k] * m for r, m in zip(rows, sizes)) / n)
                      for k in rows[0]})
    first = parts[0]
    return TextEditResult(_cat_outputs([r.before for r in parts]), _cat_outputs([r.after for r in parts]),
                          torch.cat([r.theta for r in parts]), first.space, first.targets, curve,
                          {**first.settings, "batch": batch}, sum(r.seconds for r in parts))


def run_text_edit(G, source: Codes, names: list[str], score, out, held_out=None, judges=None,
                  batch: int | None = None, **kw) -> dict:
    """text_edit (`batch` images at a time) + metrics + files (the `memorygan edit text` command). Returns the
    metrics record."""
    from memorygan.editing.results import write_edit

    res = text_edit_batched(G, source, score, batch, **kw)
    record = text_edit_record(G, res, score, names, held_out, judges)
    write_edit(out, G, res.before, res.after, record, names,
               {"edit": "text", "prompt": score.prompt, "space": res.space.space,
                "parts": [G.part_names[p] for p in res.space.parts]})
    return record


__all__ = ["STEPS", "LR", "LAMBDA_L2", "LAMBDA_SEG", "styleclip_lr", "edit_space", "text_edit", "text_edit_batched",
           "run_text_edit", "identity_network", "TextEditResult"]
