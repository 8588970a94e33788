"""The 500-image region-edit study as a markdown table (docs/text-edits.md, "Region edits at 500 images per phrase").

    python docs/text-edits/region500.py region-500    # holds `memorygan edit region ... --out region-500/M/P/seeds-S`

Reads region-500/<model>/<phrase>/seeds-*/metrics.json (written by `memorygan edit region --judges ...
--judge-probe ...`; a phrase's seeds may be split over several runs) and pools the per-image rows of each (model,
phrase): satisfied by the judges and by the optimised scorer, both over the images that did not satisfy the phrase
before the edit; pixels preserved outside the edited part and non-target mIoU on the probe's masks (the generator's
own beside it); PSNR outside the painted region (mean, lowest image, images at >= 35 dB).
"""
import json
import sys
from pathlib import Path

MODELS = {"memorygan": "MemoryGAN", "ssg": "SSG"}


def pooled(folder: Path) -> dict:
    rows = [r for run in sorted(folder.glob("seeds-*/metrics.json")) for r in json.loads(run.read_text())["images"]]
    names = [r["name"] for r in rows]
    if len(set(names)) != len(names):
        raise SystemExit(f"{folder}: an image appears in two runs")
    mean = lambda k: sum(r[k] for r in rows) / len(rows)                    # noqa: E731
    judged = [r for r in rows if not r["judge_satisfied_before"]]
    scored = [r for r in rows if not r["success_before"]]
    return {"n": len(rows), "judged": (sum(bool(r["judge_satisfied_after"]) for r in judged), len(judged)),
            "scorer": (sum(bool(r["success_after"]) for r in scored), len(scored)),
            "preserved": mean("judge_preserved_outside"), "miou_probe": mean("judge_seg_miou_nontarget"),
            "miou_own": mean("seg_miou_nontarget"), "psnr": mean("psnr_outside"),
            "psnr_min": min(r["psnr_outside"] for r in rows), "psnr_35": sum(r["psnr_outside"] >= 35 for r in rows)}


def main(root: Path) -> None:
    def pct(k, n):
        return f"{k}/{n} = {100 * k / max(n, 1):.0f} %"

    print("| model | phrase | images | judged: satisfied / unsatisfied before | scorer: satisfied / unsatisfied "
          "before | preserved outside (probe) | non-target mIoU: probe / own masks | PSNR outside: mean / lowest | "
          "images >= 35 dB |")
    print("|---|---|---|---|---|---|---|---|---|")
    totals = {}
    for model, label in MODELS.items():
        for folder in sorted(p for p in (root / model).glob("*") if p.is_dir()):
            if not any(folder.glob("seeds-*/metrics.json")):
                continue
            s = pooled(folder)
            t = totals.setdefault(label, [0, 0, 0, 0])
            for i, v in enumerate((*s["judged"], *s["scorer"])):
                t[i] += v
            print(f"| {label} | {folder.name.replace('-', ' ')} | {s['n']} | {pct(*s['judged'])} | "
                  f"{pct(*s['scorer'])} | {100 * s['preserved']:.2f} % | {s['miou_probe']:.3f} / "
                  f"{s['miou_own']:.3f} | {s['psnr']:.1f} / {s['psnr_min']:.1f} dB | {s['psnr_35']}/{s['n']} |")
    for label, (jk, jn, sk, sn) in totals.items():
        print(f"| **{label}, all phrases** | | | **{pct(jk, jn)}** | {pct(sk, sn)} | | | | |")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "region-500"))
