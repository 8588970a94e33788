"""A GANalyze direction on the CPU BigGAN: one row per class (the held-out seed 100000 + c, as the judgement
draws them), alpha -0.5, -0.25, 0, 0.25, 0.5 from left to right.

    python docs/biggan/direction_strip.py RUN DIRECTION OUT.png
"""
import sys

import torch
from PIL import Image

from memorygan.biggan.checkpoint import load_biggan
from memorygan.biggan.edits import load_direction
from memorygan.biggan.models import truncated_z
from memorygan.visualize import grid, to_uint8

run, direction, out = sys.argv[1], sys.argv[2], sys.argv[3]
G, cfg = load_biggan(run)
d = load_direction(direction, G)
rows = []
with torch.no_grad():
    for c in range(cfg.num_classes):
        z = truncated_z(1, cfg.dim_z, None, torch.Generator().manual_seed(100000 + c))
        imgs = [G.generate(z + a * d.theta, torch.tensor([c])) for a in (-0.5, -0.25, 0.0, 0.25, 0.5)]
        rows.append(to_uint8(torch.cat(imgs)))
Image.fromarray(grid(rows)).save(out)
print(f"wrote {out}")
