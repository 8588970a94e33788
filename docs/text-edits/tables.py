"""The tables of docs/text-edits.md from the study folder (`memorygan edit text-report --out STUDY`) and the
supplementary runs (`docs/text-edits/extra.sh EXTRA`).

    python docs/text-edits/tables.py [STUDY] [EXTRA] [SEGNORM]   (defaults /work/exp/text/study3, .../study3-extra,
                                                                   .../segnorm: docs/text-edits/segnorm.sh)
"""
import json
import math
import sys
from pathlib import Path

STUDY = Path(sys.argv[1] if len(sys.argv) > 1 else "/work/exp/text/study3")
EXTRA = Path(sys.argv[2] if len(sys.argv) > 2 else "/work/exp/text/study3-extra")
SEGNORM = Path(sys.argv[3] if len(sys.argv) > 3 else "/work/exp/text/segnorm")
FOLDERS = {"MemoryGAN": "memorygan", "SSG": "ssg"}


def f(x, d=3):
    return "–" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.{d}f}"


def pct(x, d=0):
    return "–" if x is None else f"{100 * x:.{d}f}"


def pooled(recs):
    """Pool several runs' per-image records: success rate, mean loss reduction, pooled preservation."""
    rows = [r for rec in recs for r in rec["images"]]
    n = len(rows)
    s = [rec["summary"] for rec in recs]
    return {"n": n,
            "success": sum(r.get("success_after", False) for r in rows) / n,
            "held_out_success": sum(r.get("held_out_success_after", False) for r in rows) / n,
            "gain": sum(r["loss_before"] - r["loss_after"] for r in rows) / n,
            "preserved": sum(x["preserved_outside"] * x["n"] for x in s) / n,
            "miou": sum(x["seg_miou_nontarget"] * x["n"] for x in s) / n,
            "kept": sum(x["seg_kept_outside"] * x["n"] for x in s) / n,
            "psnr": sum(r["psnr_outside"] for r in rows) / n,
            "psnr_min": min(r["psnr_outside"] for r in rows),
            "psnr35": sum(r["psnr_outside"] >= 35 for r in rows) / n}


def text_row(label, key, s):
    return (f"| {label} | {key} | {f(s.get('loss_reduction'), 2)} | {pct(s.get('success_before'))} → "
            f"{pct(s.get('success_after'))} | {pct(s.get('held_out_success_after'))} | "
            f"{pct(s['preserved_outside'], 2)} | {f(s['seg_miou_nontarget'])} | {pct(s['seg_kept_outside'], 2)} | "
            f"{f(s['psnr_outside'], 1)} |")


HEAD = ("| model | run | score gain | satisfied % (before → after) | held-out satisfied % | preserved outside % | "
        "non-target mIoU | labels kept outside % | PSNR outside target (dB) |\n|---|---|---|---|---|---|---|---|---|")


def main():
    res = json.loads((STUDY / "text-edits.json").read_text())
    results, settings = res["results"], res["settings"]
    print("settings:", json.dumps(settings))
    print("\n## seg sweep (red hair, hair codes)\n")
    print(HEAD)
    for label, r in results.items():
        for key, rec in r["seg_sweep"].items():
            print(text_row(label, "λ_seg " + key.split("seg ")[1], rec["summary"]))
        for lam in (1000, 10000):
            p = EXTRA / FOLDERS[label] / "text" / f"red-hair-hair-seg{lam}" / "metrics.json"
            if p.is_file():
                print(text_row(label, f"λ_seg {lam} (extra)", json.loads(p.read_text())["summary"]))
    print("\n## phrases, per run\n")
    print(HEAD)
    for label, r in results.items():
        for key, rec in r["phrases"].items():
            print(text_row(label, key.replace(" | seg ", ", λ_seg "), rec["summary"]))
    print("\n## phrases pooled (6 phrases x seeds)\n")
    print("| model | seg term | edits | satisfied % | held-out satisfied % | mean score gain | preserved outside % | "
          "non-target mIoU | labels kept outside % | PSNR outside target (dB) |\n" + "|---" * 10 + "|")
    for label, r in results.items():
        for lam in ("0", f"{settings.get('lambda_seg', 1.0):g}"):
            recs = [rec for key, rec in r["phrases"].items() if key.endswith(f"seg {lam}")]
            for excl in (False, True):
                sel = [rec for rec in recs if not (excl and rec["summary"]["loss_reduction"] == 0)]
                if excl and len(sel) == len(recs):
                    continue
                p = pooled(sel)
                name = f"λ_seg {lam}" + (" (without dead-part runs)" if excl else "")
                print(f"| {label} | {name} | {p['n']} | {pct(p['success'])} | {pct(p['held_out_success'])} | "
                      f"{f(p['gain'], 2)} | {pct(p['preserved'], 2)} | {f(p['miou'])} | {pct(p['kept'], 2)} | "
                      f"{f(p['psnr'], 1)} |")
    print("\n## eye colour (blue eyes)\n")
    print(HEAD)
    for label, r in results.items():
        for key, rec in r["eye_colour"].items():
            print(text_row(label, key, rec["summary"]))
    print("\n## colour phrases through texture codes only (extra, λ_seg 100)\n")
    print(HEAD)
    tex = {}
    for label, folder in FOLDERS.items():
        for p in sorted((EXTRA / folder / "texture").glob("*/metrics.json")):
            rec = json.loads(p.read_text())
            tex.setdefault(label, []).append(rec)
            print(text_row(label, f"{rec['prompt']} ({', '.join(rec['parts'])} texture)", rec["summary"]))
    for label, recs in tex.items():
        p = pooled(recs)
        print(f"| {label} | pooled ({p['n']} edits) | {f(p['gain'], 2)} | {pct(p['success'])} | "
              f"{pct(p['held_out_success'])} | {pct(p['preserved'], 2)} | {f(p['miou'])} | {pct(p['kept'], 2)} | "
              f"{f(p['psnr'], 1)} |")
    print("\n## region edits\n")
    print("| model | phrase | optimiser | evaluations / image | score gain | satisfied % | held-out gain | held-out "
          "satisfied % | PSNR outside mask (dB) mean / min | images >= 35 dB |\n" + "|---" * 10 + "|")
    region_all = {}
    for label, r in results.items():
        runs = [(key.split(" | ")[0], key.split(" | ")[1], rec) for key, rec in r["region"].items()]
        for prompt in ("red hair", "blonde hair", "dark skin"):
            for opt in ("cma+adam", "adam"):
                p = (EXTRA / FOLDERS[label] / "region" / f"{prompt.replace(' ', '-')}-{opt.replace('+', '-')}-full"
                     / "metrics.json")
                if p.is_file():
                    runs.append((prompt, opt + " (full budget)", json.loads(p.read_text())))
        for prompt, opt, rec in runs:
            s = rec["summary"]
            region_all.setdefault((label, opt), []).append(rec)
            ok35 = sum(x["psnr_outside"] >= 35 for x in rec["images"])
            print(f"| {label} | {prompt} | {opt} | {rec['evaluations'] // max(s['n'], 1)} | "
                  f"{f(s['loss_reduction'], 2)} | {pct(s.get('success_after'))} | {f(s.get('held_out_gain'))} | "
                  f"{pct(s.get('held_out_success_after'))} | {f(s['psnr_outside'], 1)} / {f(s['psnr_outside_min'], 1)}"
                  f" | {ok35}/{s['n']} |")
    print("\n## region pooled (3 phrases x seeds, per budget)\n")
    print("| model | optimiser | edits | satisfied % | held-out satisfied % | mean held-out gain | PSNR outside mean / "
          "min | images >= 35 dB |\n|---|---|---|---|---|---|---|---|")
    for (label, opt), recs in region_all.items():
        p = pooled(recs)
        ho = sum(r["summary"]["held_out_gain"] * r["summary"]["n"] for r in recs) / p["n"]
        print(f"| {label} | {opt} | {p['n']} | {pct(p['success'])} | {pct(p['held_out_success'])} | {f(ho)} | "
              f"{f(p['psnr'], 1)} / {f(p['psnr_min'], 1)} | {pct(p['psnr35'])} % |")
    print("\n## region edits, full budget, measured by assessors (extra 4)\n")
    print("| model | phrase | optimiser | satisfied % | held-out assessor | before → after (mean) | gain | "
          "PSNR outside (dB) |\n|---|---|---|---|---|---|---|---|")
    for label, folder in FOLDERS.items():
        for prompt in ("red hair", "blonde hair"):
            for opt in ("cma+adam", "adam"):
                p = (EXTRA / folder / "region-assessor" / f"{prompt.replace(' ', '-')}-{opt.replace('+', '-')}-full"
                     / "metrics.json")
                if not p.is_file():
                    continue
                rec = json.loads(p.read_text())
                s = rec["summary"]
                print(f"| {label} | {prompt} | {opt} | {pct(s.get('success_after'))} | {rec['held_out']} | "
                      f"{f(s['held_out_before'])} → {f(s['held_out_after'])} | {f(s['held_out_gain'])} | "
                      f"{f(s['psnr_outside'], 1)} |")

    if SEGNORM.is_dir():
        print("\n## seg term per part (--seg-norm parts), red hair, hair codes\n")
        print(HEAD)
        for label, folder in FOLDERS.items():
            recs = [json.loads(p.read_text()) for p in (SEGNORM / folder).glob("*/metrics.json")]
            recs.sort(key=lambda r: (r["roles"] == ["texture"], r.get("seg_loss", "l2") == "margin", r["lambda_seg"],
                                     r["steps"]))
            for rec in recs:
                roles = "texture" if rec["roles"] == ["texture"] else "shape + texture"
                loss = rec.get("seg_loss", "l2")
                print(text_row(label, f"{roles}, {loss}, λ_seg {rec['lambda_seg']:g}, {rec['steps']} steps",
                               rec["summary"]))
        print("\n## six phrases, margin seg term per part, λ_seg 1000 (40 steps)\n")
        print(HEAD)
        for label, folder in FOLDERS.items():
            recs = [json.loads(p.read_text()) for p in sorted((SEGNORM / folder / "six").glob("*/metrics.json"))]
            for rec in recs:
                print(text_row(label, rec["prompt"], rec["summary"]))
            if recs:
                p = pooled(recs)
                print(f"| {label} | pooled ({p['n']} edits) | {f(p['gain'], 2)} | {pct(p['success'])} | "
                      f"{pct(p['held_out_success'])} | {pct(p['preserved'], 2)} | {f(p['miou'])} | "
                      f"{pct(p['kept'], 2)} | {f(p['psnr'], 1)} |")


if __name__ == "__main__":
    main()
