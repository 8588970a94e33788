"""Paint-by-Word on a trained BigGAN: 20 samples (two per class), a 24x24 box at a random place, the region's
brightness moved by +0.25 (or -0.25 when it is already bright). Writes paint_study.json (loss before / after,
PSNR outside the box, whether the domain classifier keeps the class) and paint_strips.png (4 before | after pairs).

    python docs/biggan/paint_study.py RUN DATA [OUT_DIR] [LAMBDA_IMG]      (LAMBDA_IMG: Eq. 4.10's weight, default 30)
"""
import json
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from memorygan.biggan.checkpoint import load_biggan
from memorygan.biggan.classifier import load_classifier
from memorygan.biggan.edits import brightness, paint_by_word, region_score
from memorygan.biggan.models import truncated_z
from memorygan.visualize import grid, to_uint8

torch.set_num_threads(1)
run, data = sys.argv[1], sys.argv[2]
out = Path(sys.argv[3]) if len(sys.argv) > 3 else Path(__file__).resolve().parent
lambda_img = float(sys.argv[4]) if len(sys.argv) > 4 else 30.0
G, cfg = load_biggan(run)
clf, _ = load_classifier(data)
rng = np.random.default_rng(0)
rows, strips = [], []
for i in range(20):
    cls, seed = i % cfg.num_classes, 5000 + i
    z0 = truncated_z(1, cfg.dim_z, None, torch.Generator().manual_seed(seed))
    x0, y0 = (int(v) for v in rng.integers(4, 64 - 28, 2))
    mask = torch.zeros(64, 64)
    mask[y0:y0 + 24, x0:x0 + 24] = 1
    with torch.no_grad():
        src = G.generate(z0, torch.tensor([cls]))
    inside = ((src + 1) / 2)[..., y0:y0 + 24, x0:x0 + 24]
    b0 = float(brightness(inside * 2 - 1))
    target = b0 + 0.25 if b0 < 0.7 else b0 - 0.25
    r = paint_by_word(G, z0, cls, mask, region_score("brightness", target), lambda_img, cma_iterations=20, popsize=16,
                      adam_steps=30, seed=i)
    b1 = float(brightness(((r.image + 1) / 2)[..., y0:y0 + 24, x0:x0 + 24] * 2 - 1))
    with torch.no_grad():
        kept = int(clf(r.image).argmax(1)) == cls
    rows.append({"class": cfg.class_names[cls], "seed": seed, "box": [x0, y0, x0 + 24, y0 + 24],
                 "brightness_before": b0, "target": target, "brightness_after": b1,
                 "loss_before": r.score_before, "loss_after": r.score_after, "psnr_outside": r.psnr_outside,
                 "class_kept": kept})
    print(rows[-1], flush=True)
    if len(strips) < 4:
        a, b = to_uint8(r.source)[0].copy(), to_uint8(r.image)[0].copy()
        for im in (a, b):                                   # outline the box
            im[y0, x0:x0 + 24] = im[y0 + 23, x0:x0 + 24] = im[y0:y0 + 24, x0] = im[y0:y0 + 24, x0 + 23] = 255
        strips.append(np.stack([a, b]))
psnr = [r["psnr_outside"] for r in rows]
moved = [abs(r["brightness_after"] - r["target"]) < abs(r["brightness_before"] - r["target"]) for r in rows]
summary = {"edits": len(rows), "lambda_img": lambda_img, "psnr_outside_median": float(np.median(psnr)),
           "psnr_outside_min": float(min(psnr)), "share_psnr_ge_35": float(np.mean([p >= 35 for p in psnr])),
           "share_moved_towards_target": float(np.mean(moved)),
           "mean_brightness_change": float(np.mean([r["brightness_after"] - r["brightness_before"] for r in rows])),
           "class_kept": float(np.mean([r["class_kept"] for r in rows]))}
(out / "paint_study.json").write_text(json.dumps({"summary": summary, "edits": rows}, indent=1))
Image.fromarray(grid([np.concatenate(strips)])).save(out / "paint_strips.png")
print(json.dumps(summary, indent=1))
