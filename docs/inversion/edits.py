"""Edits on inverted codes (docs/inversion.md, "Edits on recovered codes"): a direction learned on a final generator,
applied to (1) the true codes of its samples vs the codes `memorygan invert` recovered for them, and (2) the codes of
held-out portraits under the source generator vs under the PTI-tuned copy. Measures per image the assessor change
per unit alpha (slope, in units of the direction's scale) and the pixel difference between the edited images
(`memorygan.inversion.edits.compare_edits`). Writes E/final-edits/*.json and figures, prints the tables.

    PYTHONPATH=src python docs/inversion/edits.py [--figure docs/inversion-edits.png]
"""
import argparse
import json
from pathlib import Path

import numpy as np
import torch

import memorygan
from memorygan.editing.assessors import get_assessor
from memorygan.editing.codes import load_codes
from memorygan.editing.directions import Source, edit_output, load_direction
from memorygan.inversion.edits import EditView, compare_edits

E = Path("/work/exp/inversion")
D = Path("/work/exp/editing")
DIRECTIONS = {"memorygan": [D / "memorygan/memorygan/hair-lightness-learned-part-codes",
                            D / "memorygan/memorygan/skin-tone-learned-part-codes"],
              "ssg": [D / "ssg/ssg/hair-lightness-learned-part-codes"]}
ALPHAS = (-0.5, -0.25, 0.0, 0.25, 0.5)


def recovered(folder: Path, names, G, allow_other=False) -> Source:
    cs = [load_codes(folder / n / "codes.safetensors", G, allow_other_generator=allow_other) for n in names]
    noise = None if cs[0].noise is None else [torch.cat(m) for m in zip(*(c.noise for c in cs))]
    return Source(torch.cat([c.expanded for c in cs]), noise=noise)


def random_slope(dpath: Path) -> float | None:
    ev = dpath / "evaluation.json"
    return json.loads(ev.read_text())["slope"] if ev.is_file() else None


def fmt_list(xs, f=".2f"):
    return ", ".join(format(x, f) for x in xs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--figure", default=None, help="write a figure of the first direction per generator here")
    args = ap.parse_args()
    torch.set_num_threads(1)
    out = E / "final-edits"
    out.mkdir(exist_ok=True)
    known_rows, held_rows, fig_rows, fig_labels = [], [], [], []
    for arch, dirs in DIRECTIONS.items():
        G, _ = memorygan.load(f"/work/exp/runs/t100-{arch}")
        G.eval()
        kfold = E / f"final-known-{arch}"
        if not (kfold / "summary.json").is_file():
            print(f"(skipped {arch}: {kfold} is not finished)")
            continue
        true = load_codes(kfold / "targets/codes.safetensors", G)
        names = true.names
        rec = recovered(kfold, names, G)
        hfold = E / f"final-heldout-{arch}"
        hnames = sorted(p.name for p in hfold.iterdir() if (p / "metrics.json").is_file()) if hfold.is_dir() else []
        hrec = recovered(hfold, hnames, G) if hnames else None
        pfold = E / f"final-heldout-{arch}-pti4"             # PTI of all 4 held-out images (eval-final2.sh)
        if not (pfold / "summary.json").is_file():
            pfold = E / f"final-heldout-{arch}-pti"          # the first image only (eval-final.sh)
        pnames = sorted(p.name for p in pfold.iterdir() if (p / "metrics.json").is_file()) if pfold.is_dir() else []
        for k, dpath in enumerate(dirs):
            d = load_direction(dpath, G)
            A = get_assessor(d.assessor, G)
            # (1) known answers: true vs recovered codes, same generator
            r = compare_edits([EditView("true", G, Source(true.expanded), d), EditView("recovered", G, rec, d)], A,
                              ALPHAS, names=names)
            r.update(generator=arch, direction=str(dpath), random_samples_slope=random_slope(dpath))
            (out / f"known-{arch}-{dpath.name}.json").write_text(json.dumps(r, indent=2) + "\n")
            known_rows.append((arch, dpath.name, r))
            if hrec is None:
                continue
            # (2) held-out: recovered codes under the source generator (all projected images) and, for the images
            # PTI tuned, under each image's tuned copy
            views = [EditView("source G", G, hrec, d)]
            r2 = compare_edits(views, A, ALPHAS, names=hnames)
            r2.update(generator=arch, direction=str(dpath), random_samples_slope=random_slope(dpath), pti={})
            for n in pnames:
                Gp, _ = memorygan.load(pfold / n / "generator")
                Gp.eval()
                dp = load_direction(dpath, Gp, allow_other_generator=True)
                i = hnames.index(n)
                pv = [EditView("source G", G, hrec.select(slice(i, i + 1)), d),
                      EditView("PTI G", Gp, recovered(pfold, [n], Gp, allow_other=True), dp)]
                r2["pti"][n] = compare_edits(pv, A, ALPHAS, names=[n])
            (out / f"heldout-{arch}-{dpath.name}.json").write_text(json.dumps(r2, indent=2) + "\n")
            held_rows.append((arch, dpath.name, r2))
            if args.figure and k == 0 and hrec is not None:
                from memorygan.visualize import to_uint8
                for i in range(min(2, len(names))):
                    for label, src in (("true", Source(true.expanded[i:i + 1])), ("recovered", rec.select(slice(i, i + 1)))):
                        fig_rows.append(np.concatenate([to_uint8(edit_output(G, d, src, a).image) for a in ALPHAS]))
                        fig_labels.append(f"{arch} {names[i]} {label}")
                for n in pnames[:1]:
                    i = hnames.index(n)
                    fig_rows.append(np.concatenate([to_uint8(edit_output(G, d, hrec.select(slice(i, i + 1)), a).image)
                                                    for a in ALPHAS]))
                    fig_labels.append(f"{arch} held-out {n}")
                    Gp, _ = memorygan.load(pfold / n / "generator")
                    dp = load_direction(dpath, Gp, allow_other_generator=True)
                    src = recovered(pfold, [n], Gp, allow_other=True)
                    fig_rows.append(np.concatenate([to_uint8(edit_output(Gp, dp, src, a).image) for a in ALPHAS]))
                    fig_labels.append(f"{arch} {n} PTI")

    print("## known answers: the edit on true vs recovered codes")
    print("| generator | direction | images | slope, random samples (n=500) | slope on true codes (per image) | "
          "slope on recovered codes (per image) | PSNR edited-true vs edited-recovered at alpha -0.5 / 0 / +0.5 (dB) "
          "| edit difference at alpha -0.5 / +0.5 |")
    print("|---|---|---|---|---|---|---|---|")
    for arch, name, r in known_rows:
        t, v = r["views"]["true"], r["views"]["recovered"]
        print(f"| {arch} | {name} | {len(r['names'])} | {r['random_samples_slope']:.2f} | {t['slope_mean']:.2f} "
              f"({fmt_list(t['slope'])}) | {v['slope_mean']:.2f} ({fmt_list(v['slope'])}) | "
              f"{v['psnr_mean']['-0.5']:.1f} / {v['psnr_mean']['0']:.1f} / {v['psnr_mean']['0.5']:.1f} | "
              f"{v['edit_diff_mean']['-0.5']:.2f} / {v['edit_diff_mean']['0.5']:.2f} |")
    print()
    print("## held-out: slope on projections, and on the PTI-tuned generator")
    print("| generator | direction | slope, random samples | slope on projections, source G (per image) | image | "
          "slope source G -> PTI G | edit difference PTI vs source at alpha -0.5 / +0.5 |")
    print("|---|---|---|---|---|---|---|")
    for arch, name, r in held_rows:
        s = r["views"]["source G"]
        for n, p in (r["pti"].items() or [(None, None)]):
            tail = "- | - | -" if p is None else (
                f"{n} | {p['views']['source G']['slope_mean']:.2f} -> {p['views']['PTI G']['slope_mean']:.2f} | "
                f"{p['views']['PTI G']['edit_diff_mean']['-0.5']:.2f} / {p['views']['PTI G']['edit_diff_mean']['0.5']:.2f}")
            print(f"| {arch} | {name} | {r['random_samples_slope']:.2f} | {s['slope_mean']:.2f} ({fmt_list(s['slope'])}) "
                  f"| {tail} |")
    if args.figure and fig_rows:
        from memorygan.analysis.figures import label_rows
        from memorygan.visualize import grid
        figure = label_rows(grid(fig_rows), fig_labels, fig_rows[0].shape[1], width=170)
        from PIL import Image
        im = Image.fromarray(figure)
        im = im.resize((2 * im.width, 2 * im.height), Image.NEAREST)
        im.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(args.figure, optimize=True)   # ~160 KB
        print(f"wrote {args.figure} (columns: alpha {', '.join(f'{a:g}' for a in ALPHAS)})")


if __name__ == "__main__":
    main()
