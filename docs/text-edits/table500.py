"""The 500-image text-edit study as a markdown table (docs/text-edits.md, "500 images per phrase").

    python docs/text-edits/table500.py text-500          # the folder of `memorygan edit text ... --out text-500/M/P`

Reads text-500/<model>/<phrase>/metrics.json (written by `memorygan edit text --judges ... --judge-probe ...`)
and prints one row per (model, phrase) and the totals per model: satisfied by the judges and by the optimised
scorer, both over the images that did not satisfy the phrase before the edit, and the probe's preservation.
"""
import json
import sys
from pathlib import Path

MODELS = {"memorygan": "MemoryGAN", "ssg": "SSG"}


def main(root: Path) -> None:
    print("| model | phrase | images | judged: satisfied / unsatisfied before | scorer: satisfied / unsatisfied "
          "before | preserved outside (probe) | non-target mIoU: probe / own masks |")
    print("|---|---|---|---|---|---|---|")
    totals = {}
    for model, label in MODELS.items():
        for run in sorted((root / model).glob("*/metrics.json")):
            s = json.loads(run.read_text())["summary"]
            jn, sn = s["judge_satisfied_unsatisfied_before"], s["success_unsatisfied_before"]
            jk = round(s["judge_satisfied_over_unsatisfied"] * jn) if jn else 0
            sk = round(s["success_over_unsatisfied"] * sn) if sn else 0
            keys = [label] + ([f"{label}, without the smile"] if run.parent.name != "a-big-smile" else [])
            for key in keys:
                t = totals.setdefault(key, [0, 0, 0, 0])
                t[0] += jk
                t[1] += jn
                t[2] += sk
                t[3] += sn
            phrase = run.parent.name.replace("-", " ")
            print(f"| {label} | {phrase} | {s['n']} | {jk}/{jn} = {100 * jk / max(jn, 1):.0f} % | "
                  f"{sk}/{sn} = {100 * sk / max(sn, 1):.0f} % | {100 * s['judge_preserved_outside']:.2f} % | "
                  f"{s['judge_seg_miou_nontarget']:.3f} / {s['seg_miou_nontarget']:.3f} |")
    for label, (jk, jn, sk, sn) in totals.items():
        name = label if "," in label else f"{label}, all phrases"
        print(f"| **{name}** | | | **{jk}/{jn} = {100 * jk / max(jn, 1):.0f} %** | "
              f"{sk}/{sn} = {100 * sk / max(sn, 1):.0f} % | | |")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "text-500"))
