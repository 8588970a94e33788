"""Training curves of the two encoders (docs/inversion.md, "Encoders"): known-answer PSNR / mIoU of the encoder
alone (16 samples the training never drew) and the real-image pixel MSE, from each run's log.jsonl.

    python docs/inversion/encoder_curves.py /work/exp/enc/memorygan /work/exp/enc/ssg --out docs/inversion-encoder-training.png
"""
import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.2))
    for run in args.runs:
        rows = [json.loads(x) for x in (Path(run) / "log.jsonl").read_text().splitlines() if x.strip()]
        steps = [r["step"] for r in rows]
        label = Path(run).name
        axes[0].plot(steps, [r["known"]["psnr"] for r in rows], marker="o", label=label)
        axes[1].plot(steps, [r["known"]["miou"] for r in rows], marker="o", label=label)
        axes[2].plot(steps, [r.get("real_mse", float("nan")) for r in rows], marker="o", label=label)
    for ax, title in zip(axes, ("known answers: PSNR (dB), encoder alone", "known answers: mIoU",
                                "real images: pixel MSE (training batches)")):
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out, dpi=90)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
