"""The drag settings trial of docs/spatial-edits.md: 8 probe-judged drags of portraits-ssg (seeds 0-7, one part each,
chosen as the study does), one line per setting: the mean error of the part's displacement (probe centroids) before
and after, steps and seconds.

    python docs/spatial-edits/drag_settings.py --probe data/p64/probe \
        '[{"space": "codes", "feature": "render:-2", "supervise": "disk", "tracking": "features"}]'
"""
import argparse
import json

import numpy as np
import torch

import memorygan
from memorygan.editing.directions import seed_source
from memorygan.editing.drag import drag
from memorygan.editing.spatial_report import Judge, _offset, _pick, centroid, dilate, inner_point, shift_mask


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("settings", help="JSON list of drag keyword sets")
    ap.add_argument("--generator", default="portraits-ssg")
    ap.add_argument("--probe", required=True)
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--handle", choices=["inner", "centroid"], default="inner",
                    help="the handle: the part's innermost pixel (default) or its centroid")
    args = ap.parse_args()
    torch.set_num_threads(1)
    G = memorygan.load(args.generator)[0].eval()
    judge = Judge(args.probe, "cpu")
    names = G.part_names
    for setting in json.loads(args.settings):
        rng = np.random.default_rng(0)
        rows = []
        for i in range(args.n):
            src = seed_source(G, [i])
            with torch.no_grad():
                before = G(expanded=src.expanded)
            labels = judge.labels(before.image)[0]
            part = _pick(labels, before.seg[0].argmax(0), names, i)
            d = _offset(rng)
            if part is None:
                continue
            m0 = labels == part
            c0 = centroid(m0)
            handle = inner_point(m0) if args.handle == "inner" else c0
            target = handle + torch.tensor(d)
            if not bool(((target >= 0) & (target <= G.config.resolution - 1)).all()):
                continue
            kw = dict(setting)
            if kw.get("parts") == "part":
                kw["parts"] = [part]
            res = drag(G, src, handle[None], target[None], mask=dilate(m0 | shift_mask(m0, d), 2).float(), **kw)
            c1 = centroid(judge.labels(res.after["image"])[0] == part)
            after = float("nan") if c1 is None else float(torch.linalg.norm(c1 - c0 - torch.tensor(d)))
            rows.append((names[part], float(np.hypot(*d)), after, res.steps, res.seconds))
        print(json.dumps({"setting": setting, "n": len(rows), "before": np.mean([r[1] for r in rows]),
                          "after": np.nanmean([r[2] for r in rows]), "steps": np.mean([r[3] for r in rows]),
                          "seconds": np.mean([r[4] for r in rows]),
                          "per_part": [(r[0], round(r[2], 2)) for r in rows]}), flush=True)


if __name__ == "__main__":
    main()
