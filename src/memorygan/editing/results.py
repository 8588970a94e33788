"""What text and region edits report and write (MemoryGAN Sec. 4.6, Fig. 17: score gain vs preserved pixels).

Per edited image, comparing the edit with its source (the measures of `editing.evaluate`):

    score_before, score_after       the scorer's score (and success_before / success_after when it has a criterion)
    loss_before, loss_after         the scorer's D_score (CLIP: 1 - cosine of the full view; attribute words:
                                    half the squared distance to the class mean); the paper's Fig. 17
                                    "score gain" is loss_before - loss_after
    preserved_outside               1 - mean |image change| / 2 over the pixels outside the target parts' region (their
                                    masks before or after): the paper's preserved pixels
    seg_miou_nontarget              mean IoU of every other part's mask before vs after (parts present in either;
                                    every part weighs the same, so a 3-pixel part that flickers counts as much as
                                    the background)
    seg_kept_outside                fraction of the pixels outside the target region whose class is unchanged
    psnr_outside                    PSNR (dB, images in [0, 1]) over the pixels outside the edit's region: the target
                                    parts for text edits, the painted mask for region edits; capped at 100 dB
    held_out_before / _after        a second scorer that was not optimised, when given
    judge_*                         with `judges` (editing.judges), measures by what took no part in the edit:
                                    judge_preserved_outside, judge_seg_miou_nontarget on the segmentation probe's
                                    masks; judge_satisfied_before / _after: the prompt's phrases hold by the
                                    ground-truth regressors

`summarise` pools them over the images (preserved pixels and mIoU pooled as `evaluate_direction` does) and gives
the success rate, also over the images that did not satisfy the phrase before the edit (`*_over_unsatisfied`: an
image satisfied before is no success of the edit). `write_edit` writes the pictures, the edited codes and metrics.json.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from memorygan.editing.evaluate import change_outside, part_overlap, pooled_miou, target_region

PSNR_CAP = 100.0
DIFF_SCALE = 0.25          # difference maps: |change| / 2 of 0.25 (a quarter of the range) or more is full colour
STRIP_LIMIT = 64           # strip.png shows the first 64 images; the metrics and the other PNGs hold every image


def psnr_outside(before: torch.Tensor, after: torch.Tensor, outside: torch.Tensor) -> torch.Tensor:
    """(B,) PSNR in dB of images in [-1, 1] (compared in [0, 1]) over the pixels where `outside` (B, H, W) is true;
    capped at PSNR_CAP (identical pixels)."""
    se = (((after.double() - before.double()) / 2) ** 2).mean(1)                          # (B, H, W)
    w = outside.double()
    mse = (se * w).sum((1, 2)) / w.sum((1, 2)).clamp(min=1)
    return (10 * torch.log10(1.0 / mse.clamp(min=10 ** (-PSNR_CAP / 10)))).float()


@torch.no_grad()
def edit_metrics(before, after, targets: list[int], num_classes: int, score=None, held_out=None,
                 region: torch.Tensor | None = None, names=None, judges=None, prompt: str | None = None
                 ) -> list[dict]:
    """Per image records (module docstring). before/after: GeneratorOutputs of the source and the edit; targets: the
    part ids allowed to change; region (B, H, W) bool: the painted mask of a region edit (PSNR outside it, and the
    scorers read inside it)."""
    ids0, ids1 = before.seg.argmax(1), after.seg.argmax(1)
    reg = target_region(ids0, ids1, targets)
    changed, count = change_outside(before.image, after.image, reg)
    others = [p for p in range(num_classes) if p not in targets]
    inter, union = part_overlap(ids0, ids1, others)
    outside = ~(region if region is not None else reg)
    psnr = psnr_outside(before.image, after.image, outside)
    same = ((ids0 == ids1) & ~reg).sum((1, 2)).double()                  # labels kept outside the target region
    soft = None if region is None else region.float()
    rows = []
    scores = {}
    for key, scorer in (("score", score), ("held_out", held_out)):
        if scorer is None:
            continue
        scores[f"{key}_before"] = scorer.score(before.image, before.seg, soft).float().cpu()
        scores[f"{key}_after"] = scorer.score(after.image, after.seg, soft).float().cpu()
        if key == "score":
            scores["loss_before"] = scorer.loss(before.image, before.seg, soft).float().cpu()
            scores["loss_after"] = scorer.loss(after.image, after.seg, soft).float().cpu()
        ok0, ok1 = scorer.success(before.image, before.seg, soft), scorer.success(after.image, after.seg, soft)
        if ok0 is not None:
            scores[f"{'success' if key == 'score' else 'held_out_success'}_before"] = ok0.cpu()
            scores[f"{'success' if key == 'score' else 'held_out_success'}_after"] = ok1.cpu()
    judged = {}
    if judges is not None and judges.probe is not None:
        p0, p1 = judges.probe_ids(before.image), judges.probe_ids(after.image)
        j_changed, j_count = change_outside(before.image, after.image, target_region(p0, p1, targets))
        j_inter, j_union = part_overlap(p0, p1, others)
        judged.update(_j_changed=j_changed, _j_count=j_count, _j_inter=j_inter, _j_union=j_union)
    if judges is not None and prompt:
        ok0, ok1 = judges.phrase_holds(prompt, before.image), judges.phrase_holds(prompt, after.image)
        if ok0 is not None:
            judged.update(judge_satisfied_before=ok0, judge_satisfied_after=ok1)
    for b in range(before.image.shape[0]):
        present = union[b] > 0
        row = {"name": names[b] if names else f"image {b}",
               "preserved_outside": float(1 - changed[b] / count[b].clamp(min=1)),
               "seg_miou_nontarget": float((inter[b][present] / union[b][present]).mean()) if present.any()
               else math.nan,
               "psnr_outside": float(psnr[b]),
               "seg_kept_outside": float(same[b] / count[b].clamp(min=1)),
               "_changed": float(changed[b]), "_count": float(count[b]), "_same": float(same[b]),
               "_inter": inter[b].cpu().numpy(), "_union": union[b].cpu().numpy()}
        for key, v in scores.items():
            row[key] = bool(v[b]) if v.dtype == torch.bool else float(v[b])
        if "_j_count" in judged:
            ju = judged["_j_union"][b]
            row["judge_preserved_outside"] = float(1 - judged["_j_changed"][b] / judged["_j_count"][b].clamp(min=1))
            row["judge_seg_miou_nontarget"] = (float((judged["_j_inter"][b][ju > 0] / ju[ju > 0]).mean())
                                               if (ju > 0).any() else math.nan)
            row.update(_j_changed=float(judged["_j_changed"][b]), _j_count=float(judged["_j_count"][b]),
                       _j_inter=judged["_j_inter"][b].cpu().numpy(), _j_union=ju.cpu().numpy())
        for key in ("judge_satisfied_before", "judge_satisfied_after"):
            if key in judged:
                row[key] = bool(judged[key][b])
        rows.append(row)
    return rows


def summarise(rows: list[dict]) -> dict:
    """Means over the images; preserved pixels and non-target mIoU pooled over all pixels (as evaluate_direction);
    success rates."""
    out = {"n": len(rows)}
    if not rows:
        return out
    out["preserved_outside"] = float(1 - sum(r["_changed"] for r in rows) / max(sum(r["_count"] for r in rows), 1))
    out["seg_miou_nontarget"] = pooled_miou(np.sum([r["_inter"] for r in rows], 0),
                                            np.sum([r["_union"] for r in rows], 0))
    out["seg_kept_outside"] = float(sum(r["_same"] for r in rows) / max(sum(r["_count"] for r in rows), 1))
    out["psnr_outside"] = float(np.mean([r["psnr_outside"] for r in rows]))
    out["psnr_outside_min"] = float(np.min([r["psnr_outside"] for r in rows]))
    for key in ("score_before", "score_after", "loss_before", "loss_after", "held_out_before", "held_out_after"):
        if key in rows[0]:
            out[key] = float(np.mean([r[key] for r in rows]))
    if "score_before" in out:
        out["score_gain"] = out["score_after"] - out["score_before"]
        out["loss_reduction"] = out["loss_before"] - out["loss_after"]         # Fig. 17's "score gain"
    if "held_out_before" in out:
        out["held_out_gain"] = out["held_out_after"] - out["held_out_before"]
    for key in ("success_before", "success_after", "held_out_success_before", "held_out_success_after",
                "judge_satisfied_before", "judge_satisfied_after"):
        if key in rows[0]:
            out[key] = float(np.mean([r[key] for r in rows]))
    for prefix, before, after in (("success", "success_before", "success_after"),
                                  ("held_out_success", "held_out_success_before", "held_out_success_after"),
                                  ("judge_satisfied", "judge_satisfied_before", "judge_satisfied_after")):
        if before in rows[0]:
            todo = [r for r in rows if not r[before]]
            out[f"{prefix}_unsatisfied_before"] = len(todo)
            out[f"{prefix}_over_unsatisfied"] = (float(np.mean([r[after] for r in todo])) if todo else math.nan)
    if "_j_count" in rows[0]:
        out["judge_preserved_outside"] = float(1 - sum(r["_j_changed"] for r in rows) /
                                               max(sum(r["_j_count"] for r in rows), 1))
        out["judge_seg_miou_nontarget"] = pooled_miou(np.sum([r["_j_inter"] for r in rows], 0),
                                                      np.sum([r["_j_union"] for r in rows], 0))
    return out


def public(rows: list[dict]) -> list[dict]:
    """The per-image records without the pooled sums."""
    return [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows]


def difference_map(before: torch.Tensor, after: torch.Tensor) -> np.ndarray:
    """(B, H, W, 3) uint8: |after - before| / 2 (mean over channels) through a colour map, DIFF_SCALE = full."""
    from matplotlib import colormaps

    d = ((after - before).abs().mean(1) / 2 / DIFF_SCALE).clamp(0, 1).detach().cpu().numpy()
    return (colormaps["magma"](d)[..., :3] * 255).round().astype(np.uint8)


def write_edit(out, G, before, after, record: dict, names: list[str], codes_extra: dict | None = None,
               region: torch.Tensor | None = None, codes: bool = True, blend: tuple | None = None) -> dict:
    """Write before.png, after.png, mask-before.png, mask-after.png, difference.png (one column per image),
    strip.png (labelled rows per image, the first STRIP_LIMIT: before, after, masks, difference[, region]),
    edited-codes.safetensors and metrics.json (`record`) into `out`; `codes=False` leaves the codes out (spatial edits keep the codes and change
    coordinates); `blend` (source expanded codes (B, K, L, D), region mask (B, 1, H, W)): a region edit, whose codes
    file keeps both so that it renders the same image again (`codes.render_codes`). Returns {name: path}."""
    from memorygan.analysis.figures import label_rows, save_png, write_json
    from memorygan.checkpoint import generator_fingerprint
    from memorygan.editing.codes import Codes, save_codes
    from memorygan.metrics.jsonl import jsonable
    from memorygan.visualize import grid, seg_to_color, to_uint8

    out = Path(out)
    pics = {"before": to_uint8(before.image), "after": to_uint8(after.image),
            "mask-before": seg_to_color(before.seg), "mask-after": seg_to_color(after.seg),
            "difference": difference_map(before.image, after.image)}
    if region is not None:
        r = (region.float().clamp(0, 1) * 255).round().byte().cpu().numpy()
        pics["region"] = np.repeat(r[..., None], 3, -1)
    paths = {k: save_png(grid([v]), out / f"{k}.png") for k, v in pics.items()}
    shown = min(len(names), STRIP_LIMIT)
    rows = [np.stack([pics[k][i] for k in pics]) for i in range(shown)]
    paths["strip"] = save_png(label_rows(grid(rows), names[:shown], G.config.resolution), out / "strip.png")
    if codes:
        edited = Codes(after.expanded.detach().cpu(), "expanded", [f"{n} edited" for n in names], arch=G.arch,
                       generator=generator_fingerprint(G), extra=dict(codes_extra or {}),
                       blend_source=None if blend is None else blend[0].detach().cpu(),
                       blend_mask=None if blend is None else blend[1].detach().float().cpu())
        paths["codes"] = save_codes(out / "edited-codes.safetensors", edited)
    record = dict(record)
    record["files"] = {k: str(v) for k, v in paths.items()}
    record["strip_columns"] = list(pics)
    record["strip_images"] = shown
    paths["metrics"] = write_json(jsonable(record), out / "metrics.json")
    return paths
