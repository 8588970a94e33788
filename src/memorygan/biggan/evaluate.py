"""Evaluation of a class-conditional generator with the domain classifier (`biggan.classifier`):

- accuracy: how often the classifier puts a sample of class c in class c (overall and per class);
- domain IS (Salimans et al. 2016, 10 splits) from the classifier's p(y | x);
- domain FID of all samples against all real images, and per class (samples of c against real images of c);
- precision / recall (Kynkäänniemi et al. 2019, k = 3 nearest neighbours) in the classifier's feature space, the
  fidelity / variety pair that the truncation sweep trades (thesis Figs. 2-4, 2-5).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from memorygan.biggan.classifier import DomainClassifier, predict
from memorygan.biggan.models import BigGANGenerator, truncated_z
from memorygan.metrics.stats import FeatureStats, fid_from_stats


def inception_score(probs: torch.Tensor, splits: int = 10) -> tuple[float, float]:
    """IS = exp(E_x KL(p(y|x) || p(y))) per split of the rows of probs (N, C); returns (mean, std) over splits.
    The rows are shuffled (a fixed permutation) before splitting: samples arrive sorted by class, and a split of one
    class would have p(y) = p(y|x) and IS 1."""
    p = probs.double().clamp_min(1e-12)
    p = p[torch.randperm(len(p), generator=torch.Generator().manual_seed(0))]
    scores = []
    for part in p.chunk(splits):
        py = part.mean(0, keepdim=True)
        kl = (part * (part.log() - py.log())).sum(1).mean()
        scores.append(math.exp(kl.item()))
    return float(np.mean(scores)), float(np.std(scores))


def _kth_distances(x: torch.Tensor, k: int) -> torch.Tensor:
    d = torch.cdist(x, x)
    return d.kthvalue(k + 1, dim=1).values           # +1: the point itself is at distance 0


def precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019): precision = share of fakes inside the union of
    real k-NN balls, recall = share of reals inside the union of fake k-NN balls. real (N, F), fake (M, F)."""
    real, fake = real.double(), fake.double()
    r_real, r_fake = _kth_distances(real, k), _kth_distances(fake, k)
    d = torch.cdist(fake, real)                                  # (M, N)
    precision = (d <= r_real[None, :]).any(1).double().mean().item()
    recall = (d.t() <= r_fake[None, :]).any(1).double().mean().item()
    return precision, recall


def real_features(classifier: DomainClassifier, data_dir, batch_size: int = 128) -> tuple[torch.Tensor,
                                                                                          torch.Tensor]:
    """(features (N, F), labels (N,)) of every real image of a labelled dataset."""
    from memorygan.data.labelled import LabelledDataset

    ds = LabelledDataset(data_dir)
    device = next(classifier.parameters()).device
    feats = []
    for s in range(0, len(ds.names), batch_size):
        x = torch.stack([ds.load(i)["image"] for i in range(s, min(s + batch_size, len(ds.names)))])
        feats.append(predict(classifier, x.to(device))[1].cpu())
    return torch.cat(feats), ds.labels.clone()


@torch.no_grad()
def sample(G: BigGANGenerator, labels: torch.Tensor, truncation: float | None = None, seed: int = 123,
           batch_size: int = 50) -> torch.Tensor:
    """Images (N, 3, R, R) of the classes `labels` (N,), z drawn (truncated) from a generator seeded by `seed`."""
    gen = torch.Generator(device=G.device).manual_seed(seed)
    out = []
    for chunk in labels.split(batch_size):
        z = truncated_z(len(chunk), G.config.dim_z, truncation, gen, G.device)
        out.append(G.generate(z, chunk.to(G.device)).cpu())
    return torch.cat(out)


def _fid(a: torch.Tensor, b: torch.Tensor) -> float:
    sa, sb = FeatureStats(a.shape[1]), FeatureStats(b.shape[1])
    sa.append(a)
    sb.append(b)
    return fid_from_stats(sa, sb)


def evaluate_generator(G: BigGANGenerator, classifier: DomainClassifier, real: tuple[torch.Tensor, torch.Tensor],
                       n_per_class: int = 100, truncation: float | None = None, seed: int = 123,
                       batch_size: int = 50, categories: list[str] | None = None) -> dict:
    """Every measure above for `n_per_class` samples of each class. `real` = `real_features(...)`."""
    real_f, real_y = real
    C = G.config.num_classes
    if classifier.num_classes != C:
        raise ValueError(f"the classifier knows {classifier.num_classes} classes, the generator {C}")
    labels = torch.arange(C).repeat_interleave(n_per_class)
    images = sample(G, labels, truncation, seed, batch_size)
    device = next(classifier.parameters()).device
    logits, feats = predict(classifier, images.to(device), batch_size)
    logits, feats = logits.cpu(), feats.cpu()
    correct = (logits.argmax(1) == labels).float()
    names = categories or [str(c) for c in range(C)]
    is_mean, is_std = inception_score(logits.softmax(1))
    per_class = {}
    for c in range(C):
        own = real_f[real_y == c]
        per_class[names[c]] = {
            "accuracy": float(correct[labels == c].mean()),
            "fid": _fid(feats[labels == c], own) if len(own) > 1 else float("nan"),
            "num_real": int(len(own)),
        }
    precision, recall = precision_recall(real_f, feats)
    fids = [v["fid"] for v in per_class.values() if math.isfinite(v["fid"])]
    return {"truncation": truncation, "num_samples": int(len(labels)), "accuracy": float(correct.mean()),
            "inception_score": is_mean, "inception_score_std": is_std, "fid": _fid(feats, real_f),
            "fid_per_class_mean": float(np.mean(fids)) if fids else float("nan"), "precision": precision,
            "recall": recall, "per_class": per_class}


def evaluate_unconditional(G: BigGANGenerator, classifier: DomainClassifier, real: tuple[torch.Tensor, torch.Tensor],
                           n: int = 1000, truncation: float | None = None, seed: int = 123, batch_size: int = 50,
                           categories: list[str] | None = None) -> dict:
    """The same measures for a generator with one class (the unconditional baseline of a conditional one): samples
    are put in classes by the classifier, and the per-class FID compares the samples assigned to class c with the
    real images of c; `class_share` says how the samples spread over the classes (a model that drops a class has
    no samples there, and that class's FID is missing from the mean)."""
    real_f, real_y = real
    C = classifier.num_classes
    labels = torch.zeros(n, dtype=torch.int64)
    images = sample(G, labels, truncation, seed, batch_size)
    device = next(classifier.parameters()).device
    logits, feats = predict(classifier, images.to(device), batch_size)
    logits, feats = logits.cpu(), feats.cpu()
    assigned = logits.argmax(1)
    names = categories or [str(c) for c in range(C)]
    per_class = {}
    for c in range(C):
        own, mine = real_f[real_y == c], feats[assigned == c]
        per_class[names[c]] = {"share": float((assigned == c).float().mean()),
                               "fid": _fid(mine, own) if len(mine) > 1 and len(own) > 1 else float("nan"),
                               "num_samples": int(len(mine))}
    is_mean, is_std = inception_score(logits.softmax(1))
    precision, recall = precision_recall(real_f, feats)
    fids = [v["fid"] for v in per_class.values() if math.isfinite(v["fid"])]
    return {"truncation": truncation, "num_samples": n, "inception_score": is_mean, "inception_score_std": is_std,
            "fid": _fid(feats, real_f), "fid_per_class_mean": float(np.mean(fids)) if fids else float("nan"),
            "classes_with_samples": len(fids), "precision": precision, "recall": recall, "per_class": per_class}


def truncation_sweep(G: BigGANGenerator, classifier: DomainClassifier, real, truncations=(2.0, 1.0, 0.5, 0.25, 0.04),
                     n_per_class: int = 100, seed: int = 123) -> list[dict]:
    """`evaluate_generator` at each truncation threshold (thesis Fig. 2-4: 2, 1, 0.5, 0.04)."""
    return [evaluate_generator(G, classifier, real, n_per_class, t, seed) for t in truncations]


def plot_sweep(rows: list[dict], path, title: str = "") -> None:
    """IS against FID (thesis Fig. 2-5) and precision against recall, one point per truncation."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(8, 3.4))
    for ax, (xk, yk, xl, yl) in zip(axes, (("fid", "inception_score", "domain FID", "domain IS"),
                                            ("recall", "precision", "recall (variety)", "precision (fidelity)"))):
        xs, ys = [r[xk] for r in rows], [r[yk] for r in rows]
        ax.plot(xs, ys, "o-")
        for r, x, y in zip(rows, xs, ys):
            ax.annotate(f"t={r['truncation']:g}" if r["truncation"] is not None else "none", (x, y), fontsize=7,
                        textcoords="offset points", xytext=(3, 3))
        ax.set_xlabel(xl)
        ax.set_ylabel(yl)
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
