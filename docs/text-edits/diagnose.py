"""Two diagnostics behind docs/text-edits.md, from the study folder:

1. per-part IoU (before vs after) of the "red hair" text edits with the seg term (lambda_seg 100): which parts
   pull the part-averaged non-target mIoU down, with each part's pixel count before;
2. SSG's mouth: its part generator's depth logits over the samples (a part whose depth never wins gets a fusion
   weight of ~exp(-35): its codes cannot change the image, and the gradient underflows to exactly zero).

    python docs/text-edits/diagnose.py [STUDY]        (default /work/exp/text/study2)
"""
import sys
from pathlib import Path

import torch

import memorygan
from memorygan.editing.codes import load_codes
from memorygan.editing.directions import seed_source

STUDY = Path(sys.argv[1] if len(sys.argv) > 1 else "/work/exp/text/study2")
torch.set_num_threads(1)
for label, run in (("memorygan", "t100-memorygan"), ("ssg", "t100-ssg")):
    G, _ = memorygan.load(f"/work/exp/runs/{run}")
    G.eval().requires_grad_(False)
    with torch.no_grad():
        src = seed_source(G, [0, 1, 2, 3])
        before = G(expanded=src.expanded)
        codes = load_codes(STUDY / label / "text" / "red-hair-hair-seg100" / "edited-codes.safetensors", G)
        after = G(expanded=codes.expanded.to(G.device))
        ids0, ids1 = before.seg.argmax(1), after.seg.argmax(1)
        rows = []
        for p, name in enumerate(G.part_names):
            inter = int(((ids0 == p) & (ids1 == p)).sum())
            union = int(((ids0 == p) | (ids1 == p)).sum())
            if union and name != "hair":
                rows.append(f"{name} {inter / union:.2f} ({int((ids0 == p).sum())} px)")
        print(f"{label} red hair, lambda_seg 100: per-part IoU: " + ", ".join(rows))
        if label == "ssg":
            _, depths = G.generate_parts(src.expanded)
            k = G.part_names.index("mouth")
            others = torch.cat([depths[:, :k], depths[:, k + 1:]], 1).amax(1)
            print(f"ssg mouth depth logits: min {float(depths[:, k].min()):.1f}, max {float(depths[:, k].max()):.1f}; "
                  f"the largest other depth is >= {float(others.min()):.1f} everywhere; mouth pixels in the masks: "
                  f"{(ids0 == k).sum((1, 2)).tolist()}")
