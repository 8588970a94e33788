"""Figure of docs/training.md, issue 26's 32-kimg arms: domain FID, mask mIoU and eyes+mouth presence per kimg and
per CPU-minute (train_minutes of a run on one core), from the metrics logs kept beside this script.

    python docs/training/plot_issue26.py   # -> docs/training/issue26-k32-metrics.png
"""
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

HERE = Path(__file__).resolve().parent
ARMS = [  # (label, file, style)
    ("MemoryGAN, mask R1 100 (before)", "equal-kimg-metrics-memorygan.jsonl", dict(color="C0", ls="--")),
    ("SSG, mask R1 100 (before)", "equal-kimg-metrics-ssg.jsonl", dict(color="C1", ls="--")),
    ("MemoryGAN, mask R1 10", "issue26-k32-memorygan.jsonl", dict(color="C0", ls="-")),
    ("SSG, mask R1 10", "issue26-k32-ssg.jsonl", dict(color="C1", ls="-")),
    ("MemoryGAN, mask R1 10, seed 1 (shipped)", "issue26-k32-memorygan-s1.jsonl", dict(color="C2", ls="-")),
    ("MemoryGAN, mask R1 10 + ADA", "issue26-k32-memorygan-ada.jsonl", dict(color="C3", ls="-.")),
    ("MemoryGAN, mask R1 10 + hybrid projected D + DiffAugment", "issue26-k32-memorygan-hybrid.jsonl",
     dict(color="C4", ls=":")),
]


def rows(name):
    out = {}
    for line in (HERE / name).read_text().splitlines():
        r = json.loads(line)
        out[r["step"]] = r                       # the last row of a step wins (resumed runs repeat one)
    return [out[k] for k in sorted(out)]


def main():
    fig, axes = plt.subplots(1, 4, figsize=(18, 4))
    panels = [("kimg", "domain_fid", "domain FID (log)", True), ("kimg", "mask_miou", "mask mIoU (probe)", False),
              ("kimg", "presence_eyes_mouth", "samples with eyes and mouth (probe)", False),
              ("train_minutes", "domain_fid", "domain FID vs CPU-minutes of one core (log)", True)]
    for ax, (x, y, title, log) in zip(axes, panels):
        for label, name, style in ARMS:
            if not (HERE / name).is_file():
                continue
            data = [r for r in rows(name) if y in r]
            if data:
                ax.plot([r[x] for r in data], [r[y] for r in data], marker="o", ms=3, label=label, **style)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("thousands of real images seen" if x == "kimg" else "training minutes (one core)")
        if log:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(HERE / "issue26-k32-metrics.png", dpi=80)


if __name__ == "__main__":
    main()
