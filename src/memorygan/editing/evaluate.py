"""The effect of an edit, measured (MemoryGAN Sec. 4.6, Fig. 17: score gain vs preserved pixels; GANalyze Fig. 3-2:
assessor vs alpha).

For n samples and each alpha of a grid, the direction's edit is rendered and compared with alpha = 0:

    slope               least-squares slope of (A(alpha) - A(0)) / s against alpha, pooled over samples (1 = the
                        change the direction was asked for)
    spearman            Spearman rank correlation of alpha and A(alpha) - A(0), pooled over samples
    monotone_fraction   samples whose score increases strictly with alpha
    score_gain          mean (A(alpha) - A(0)) / s at each alpha
    preserved_outside   1 - mean |image change| / 2 over the pixels outside the target parts' region (union of their
                        masks before and after), per alpha: the paper's percentage of preserved pixels
    seg_miou_nontarget  mIoU between the masks of every other part before and after the edit, per alpha
    attribute_leakage   per other part, mean |change of its lightness| / its standard deviation over samples: how much
                        the attributes of the parts that should not change move

Target parts: the direction's parts (parts/query spaces), else the assessor's, else none (then "outside" is the whole
image).

With `judges` (editing.judges: what took no part in the edit) the record gains "judged": the slope, Spearman,
monotone fraction and gain of the judge's score (`judge`, e.g. hair.lightness, in units of 2 std of the judge over
the samples at alpha 0), and the preserved pixels and non-target mIoU read on the segmentation probe's masks instead
of the generator's. `equal_gain` compares two directions at the same judged gain.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from memorygan.editing.assessors import LUMA
from memorygan.editing.directions import Direction, edit_output, sample_source
from memorygan.errors import ConfigError

DEFAULT_ALPHAS = (-0.5, -0.25, 0.0, 0.25, 0.5)


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    from scipy.stats import spearmanr

    r = spearmanr(x, y).statistic
    return float(r) if r == r else math.nan


def target_region(ids_before: torch.Tensor, ids_after: torch.Tensor, targets) -> torch.Tensor:
    """(B, H, W) bool: pixels of the target parts before or after the edit (where change is allowed)."""
    region = torch.zeros_like(ids_before, dtype=torch.bool)
    for p in targets:
        region |= (ids_after == p) | (ids_before == p)
    return region


def change_outside(image_before: torch.Tensor, image_after: torch.Tensor,
                   region: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image (B,): the summed |image change| / 2 (mean over channels, in [0, 1]) over the pixels outside
    `region` (B, H, W) bool, and the number of those pixels. preserved_outside = 1 - sum / count."""
    change = (image_after - image_before).abs().mean(1).double() / 2                   # (B, H, W) in [0, 1]
    outside = ~region
    return (change * outside).sum((1, 2)), outside.sum((1, 2)).double()


def part_overlap(ids_before: torch.Tensor, ids_after: torch.Tensor, parts) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image and part (B, P): intersection and union (pixels) of the part's mask before and after."""
    inter = torch.stack([((ids_after == p) & (ids_before == p)).sum((1, 2)) for p in parts], 1) if parts else \
        ids_before.new_zeros(ids_before.shape[0], 0)
    union = torch.stack([((ids_after == p) | (ids_before == p)).sum((1, 2)) for p in parts], 1) if parts else \
        ids_before.new_zeros(ids_before.shape[0], 0)
    return inter.double(), union.double()


def pooled_miou(inter: np.ndarray, union: np.ndarray) -> float:
    """inter, union (P,) summed over images -> mean IoU over the parts present (union > 0); NaN when none is."""
    present = union > 0
    return float(np.mean(inter[present] / union[present])) if present.any() else math.nan


def _lightness(image: torch.Tensor, ids: torch.Tensor, k: int) -> torch.Tensor:
    rgb = ((image.double() + 1) / 2).clamp(0, 1)
    luma = sum(c * rgb[:, i] for i, c in enumerate(LUMA))
    m = ids == k
    n = m.sum((1, 2))
    return torch.where(n > 0, (luma * m).sum((1, 2)) / n.clamp(min=1), torch.full_like(n, math.nan, dtype=luma.dtype))


class _Preservation:
    """Pixels kept outside the target region and the other parts' mask overlap, per alpha, summed over batches;
    read from one segmentation (the generator's, or the probe's for the judged numbers)."""

    def __init__(self, alphas, k: int, targets, others):
        self.alphas, self.targets, self.others = alphas, targets, others
        self.out = np.zeros((2, len(alphas)))                 # summed |change| outside, pixels outside
        self.inter = np.zeros((len(alphas), k))
        self.union = np.zeros((len(alphas), k))

    def add(self, outs, ids, a0: int) -> None:
        for j, o in enumerate(outs):
            changed, count = change_outside(outs[a0].image, o.image, target_region(ids[a0], ids[j], self.targets))
            self.out[0, j] += float(changed.sum())
            self.out[1, j] += float(count.sum())
            i_p, u_p = part_overlap(ids[a0], ids[j], self.others)
            self.inter[j, self.others] += i_p.sum(0).cpu().numpy()
            self.union[j, self.others] += u_p.sum(0).cpu().numpy()

    def preserved(self) -> dict:
        return {f"{a:g}": float(1 - self.out[0, j] / max(self.out[1, j], 1)) for j, a in enumerate(self.alphas)}

    def miou(self) -> dict:
        return {f"{a:g}": pooled_miou(self.inter[j, self.others], self.union[j, self.others])
                for j, a in enumerate(self.alphas)}


@torch.no_grad()
def evaluate_direction(G, direction: Direction, assessor, n: int = 500, alphas=DEFAULT_ALPHAS, seed: int = 12345,
                       batch: int = 25, target_parts=None, progress: bool = False, judges=None,
                       judge: str | None = None) -> dict:
    """Measure a direction on n fresh samples (see the module docstring). Returns a JSON-able record.
    `judges`: an editing.judges.Judges; `judge`: the spec of its regressor that grades the attribute gain."""
    alphas = sorted(float(a) for a in alphas)
    if 0.0 not in alphas:
        alphas = sorted(alphas + [0.0])
    if len(alphas) < 3:
        raise ConfigError(f"--alphas needs at least two non-zero values, got {alphas}")
    if n < 2:
        raise ConfigError(f"--n must be at least 2, got {n}")
    k = G.config.num_classes
    targets = (G.resolve_parts(target_parts, "--target-parts") if target_parts else
               (list(direction.parts) or list(assessor.parts)))
    others = [p for p in range(k) if p not in targets]
    a0 = alphas.index(0.0)
    gen = torch.Generator().manual_seed(seed)
    scores = np.zeros((n, len(alphas)))
    own = _Preservation(alphas, k, targets, others)
    light = np.full((n, len(alphas), k), np.nan)
    use_probe = judges is not None and judges.probe is not None
    if judge and judges is None:
        raise ConfigError("a judge regressor needs the judges' folder (--judges DIR)")
    j_scores = np.zeros((n, len(alphas))) if judge else None
    probed = _Preservation(alphas, k, targets, others)       # the same on the probe's masks
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=n, desc="evaluate direction", unit="img")
    done = 0
    while done < n:
        m = min(batch, n - done)
        source, _ = sample_source(G, m, generator=gen, truncation=direction.truncation)
        outs = [edit_output(G, direction, source, a) for a in alphas]
        ids = [o.seg.argmax(1) for o in outs]
        own.add(outs, ids, a0)
        for j, o in enumerate(outs):
            scores[done:done + m, j] = assessor(o.image, o.seg).double().cpu().numpy()
            for p in range(k):
                light[done:done + m, j, p] = _lightness(o.image, ids[j], p).cpu().numpy()
            if judge:
                j_scores[done:done + m, j] = judges.score(judge, o.image).double().cpu().numpy()
        if use_probe:
            probed.add(outs, [judges.probe_ids(o.image) for o in outs], a0)
        done += m
        if bar is not None:
            bar.update(m)
    if bar is not None:
        bar.close()
    rel = (scores - scores[:, a0:a0 + 1]) / direction.scale                              # (N, A)
    al = np.array(alphas)
    slope = float((rel * al).sum() / (n * (al ** 2).sum()))
    flat_a = np.repeat(al[None], n, 0).ravel()
    spearman = _spearman(flat_a, rel.ravel())
    monotone = float(np.mean(np.all(np.diff(scores, axis=1) > 0, axis=1)))
    preserved, miou = own.preserved(), own.miou()
    names = G.part_names
    leak = {}
    for p in others:
        base = light[:, a0, p]
        if np.isfinite(base).sum() < 2:
            continue                     # the part is (almost) never drawn: nothing to measure
        spread = np.nanstd(base)
        if spread < 1e-6:
            continue
        moved = [np.abs(light[:, j, p] - base) for j in range(len(alphas)) if j != a0]
        moved = np.concatenate(moved)
        if np.isfinite(moved).any():
            leak[names[p]] = float(np.nanmean(moved) / spread)
    extreme = alphas[-1] if abs(alphas[-1]) >= abs(alphas[0]) else alphas[0]
    judged = None
    if judges is not None and (judge or use_probe):
        judged = {"by": dict(judges.specs, regressor=judge)}
        if judge:
            from memorygan.editing.judges import spread

            unit = spread(j_scores[:, a0])
            jrel = (j_scores - j_scores[:, a0:a0 + 1]) / unit
            judged.update(scale=unit, slope=float((jrel * al).sum() / (n * (al ** 2).sum())),
                          spearman=_spearman(flat_a, jrel.ravel()),
                          monotone_fraction=float(np.mean(np.all(np.diff(j_scores, axis=1) > 0, axis=1))),
                          score_gain={f"{a:g}": float(jrel[:, j].mean()) for j, a in enumerate(alphas)},
                          agreement=_spearman(rel.ravel(), jrel.ravel()))
        if use_probe:
            judged["preserved_outside"], judged["seg_miou_nontarget"] = probed.preserved(), probed.miou()
        judged["at"] = {"alpha": extreme, **{key: judged[key][f"{extreme:g}"] for key in
                                             ("score_gain", "preserved_outside", "seg_miou_nontarget")
                                             if key in judged}}
    return {
        "direction": direction.describe(), "assessor": assessor.spec, "space": direction.space,
        "method": direction.method, "parts": [names[p] for p in direction.parts], "roles": direction.roles,
        "target_parts": [names[p] for p in targets], "n": n, "seed": seed, "alphas": alphas,
        "scale": direction.scale,
        "slope": slope, "spearman": spearman, "monotone_fraction": monotone,
        "score_gain": {f"{a:g}": float(rel[:, j].mean()) for j, a in enumerate(alphas)},
        "score_gain_std": {f"{a:g}": float(rel[:, j].std()) for j, a in enumerate(alphas)},
        "preserved_outside": preserved, "seg_miou_nontarget": miou,
        "at": {"alpha": extreme, "score_gain": float(rel[:, alphas.index(extreme)].mean()),
               "preserved_outside": preserved[f"{extreme:g}"], "seg_miou_nontarget": miou[f"{extreme:g}"]},
        "attribute_leakage": leak,
        "attribute_leakage_mean": float(np.mean(list(leak.values()))) if leak else math.nan,
        **({"judged": judged} if judged is not None else {}),
    }


MIN_EQUAL_GAIN = 0.05     # judged spreads: a common gain below this compares directions that do not edit


def equal_gain(records: dict, key: str = "preserved_outside", min_gain: float = MIN_EQUAL_GAIN) -> dict:
    """Directions compared at the same judged gain (issue 30: part vs whole latent at equal gain, not equal alpha).

    records: {name: evaluate_direction record with "judged" (score_gain and `key`)}. On the alphas >= 0 the judged
    gain of each direction is a curve; the common gain is the smallest of their largest gains, and each direction's
    alpha reaching it and its `key` there are interpolated linearly between the grid's alphas. A direction whose
    judged gain does not rise over the grid, or a common gain below `min_gain` (nothing the judge sees moves),
    makes the comparison NaN (stated, not guessed)."""
    curves = {}
    for name, rec in records.items():
        jd = rec.get("judged") or {}
        if "score_gain" not in jd or key not in jd:
            raise ConfigError(f"equal_gain: {name!r} has no judged gain and {key} (evaluate it with judges)")
        al = [a for a in rec["alphas"] if a >= 0]
        gain = np.array([jd["score_gain"][f"{a:g}"] for a in al])
        val = np.array([jd[key][f"{a:g}"] for a in al])
        curves[name] = (np.array(al), gain, val)
    rising = all(np.all(np.diff(g) > 0) for _, g, _ in curves.values())
    target = min(float(g[-1]) for _, g, _ in curves.values()) if rising else math.nan
    out: dict = {"gain": target, key: {}, "alpha": {}}
    for name, (al, gain, val) in curves.items():
        if not (rising and target >= min_gain):
            out["alpha"][name], out[key][name] = math.nan, math.nan
            continue
        a = float(np.interp(target, gain, al))
        out["alpha"][name] = a
        out[key][name] = float(np.interp(a, al, val))
    return out


def evaluation_figure(record: dict, path) -> None:
    """Score gain vs alpha (mean +- std) and preserved pixels outside the target vs alpha."""
    from matplotlib.figure import Figure

    al = record["alphas"]
    gain = [record["score_gain"][f"{a:g}"] for a in al]
    std = [record["score_gain_std"][f"{a:g}"] for a in al]
    fig = Figure(figsize=(9, 3.4), dpi=110)
    ax1, ax2 = fig.subplots(1, 2)
    ax1.plot(al, al, "k:", label="asked (slope 1)")
    ax1.errorbar(al, gain, yerr=std, fmt="o-", capsize=3, label=f"own assessor (slope {record['slope']:.2f})")
    jd = record.get("judged") or {}
    if "score_gain" in jd:
        ax1.plot(al, [jd["score_gain"][f"{a:g}"] for a in al], "D--",
                 label=f"judge {jd['by'].get('regressor')} (slope {jd['slope']:.2f})")
    ax1.set_xlabel("alpha")
    ax1.set_ylabel("change / spread")
    ax1.set_title(record["assessor"], fontsize=9)
    ax1.legend(fontsize=8)
    ax2.plot(al, [100 * record["preserved_outside"][f"{a:g}"] for a in al], "o-", label="pixels outside target")
    ax2.plot(al, [100 * record["seg_miou_nontarget"][f"{a:g}"] for a in al], "s--", label="non-target mask mIoU")
    if "preserved_outside" in jd:
        ax2.plot(al, [100 * jd["preserved_outside"][f"{a:g}"] for a in al], "o:", label="pixels outside (probe)")
        ax2.plot(al, [100 * jd["seg_miou_nontarget"][f"{a:g}"] for a in al], "s:", label="non-target mIoU (probe)")
    ax2.set_xlabel("alpha")
    ax2.set_ylabel("% preserved")
    ax2.set_title("preservation (target: " + (", ".join(record["target_parts"]) or "none") + ")", fontsize=9)
    ax2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
