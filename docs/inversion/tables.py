"""Print the tables of docs/inversion.md from the run folders' summary.json / metrics.json.

    python docs/inversion/tables.py [PREFIX]    PREFIX "final-" (default): the step-4000 runs; "": the step-800 runs
"""
import json
import sys
from pathlib import Path

E = Path("/work/exp/inversion")
P = sys.argv[1] if len(sys.argv) > 1 else "final-"


def s(run):
    return json.loads((E / (P + run) / "summary.json").read_text())


def done(run):
    return (E / (P + run) / "summary.json").is_file()


def pti_label(run):
    o = json.loads((E / (P + run) / "inversion.json").read_text())["options"]
    return (f"{o['pti_steps']} steps, lr {o['pti_lr']:g}, perceptual {o['pti_perceptual_weight']:g}"
            + (", no locality term" if o["pti_locality_weight"] == 0 else ""))


def f(v, fmt):
    return "-" if v is None else format(v, fmt)


print("## known answers")
print("| generator | level | mask loss | PSNR (dB) | perceptual | mIoU | code distance (relative, mean over parts) |")
print("|---|---|---|---|---|---|---|")
for arch in ("memorygan", "ssg"):
    for run, level, mask in ((f"known-{arch}", "expanded", "yes"), (f"known-{arch}-nomask", "expanded", "no"),
                             (f"known-{arch}-latents", "latents", "yes")):
        if done(run):
            x = s(run)
            print(f"| {arch} | {level} | {mask} | {f(x['psnr'], '.2f')} | {f(x['perceptual'], '.4f')} | "
                  f"{f(x['miou'], '.3f')} | {f(x['code_distance_mean_relative'], '.2f')} |")
print()
print("## per part (relative code distance, expanded level, with mask loss)")
parts = list(s("known-memorygan")["code_distance_relative"])
print("| generator | " + " | ".join(parts) + " |")
print("|---|" + "---|" * len(parts))
for arch in ("memorygan", "ssg"):
    if not done(f"known-{arch}"):
        continue
    x = s(f"known-{arch}")["code_distance_relative"]
    print(f"| {arch} | " + " | ".join(f"{x[p]:.2f}" for p in parts) + " |")
print()
print("## held-out")
print("| generator | mask loss | PTI | images | PSNR (dB) | perceptual | mIoU | PSNR before PTI | PTI gain (dB) | "
      "unrelated samples vs source (PSNR dB / MSE) |")
print("|---|---|---|---|---|---|---|---|---|---|")
for arch in ("memorygan", "ssg"):
    for run, mask in ((f"heldout-{arch}-nomask", "no"), (f"heldout-{arch}", "yes"), (f"heldout-{arch}-pti", "yes"),
                      (f"heldout-{arch}-pti-b", "yes"), (f"heldout-{arch}-pti-c", "yes"),
                      (f"heldout-{arch}-pti-noloc", "yes"), (f"heldout-{arch}-pti4", "yes"),
                      (f"heldout-{arch}-pti-long", "yes")):
        if not done(run):
            continue
        x = s(run)
        pti = pti_label(run) if "projection" in x else "-"
        extra = ["-", "-", "-"]
        if "projection" in x:
            names = sorted(p.name for p in (E / (P + run)).iterdir() if (p / "metrics.json").is_file())
            ms = [json.loads((E / (P + run) / n / "metrics.json").read_text()) for n in names]
            mse = sum(m["pti"]["unrelated_samples"]["mse"] for m in ms) / len(ms)
            extra = [f(x["projection"]["psnr"], ".2f"), f(x["pti_gain_db"], ".2f"),
                     f"{x['unrelated_samples_psnr']:.1f} / {mse:.4f}"]
        print(f"| {arch} | {mask} | {pti} | {x['images']} | {f(x['psnr'], '.2f')} | {f(x['perceptual'], '.4f')} | "
              f"{f(x['miou'], '.3f')} | " + " | ".join(extra) + " |")
print()
print("## real-data path")
print("| generator | folder | images | PSNR (dB) | perceptual | mIoU |")
print("|---|---|---|---|---|---|")
for arch in ("memorygan", "ssg"):
    for run, folder in ((f"celeba-{arch}", "celebamask-hq replica"), (f"import-{arch}", "data import")):
        if done(run):
            x = s(run)
            print(f"| {arch} | {folder} | {x['images']} | {f(x['psnr'], '.2f')} | {f(x['perceptual'], '.4f')} | "
                  f"{f(x['miou'], '.3f')} |")
