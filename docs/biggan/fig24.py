"""Thesis Fig. 2-4 for the CPU BigGAN: one class, truncation 2, 1, 0.5, 0.04 from left to right, one row per seed.

    python docs/biggan/fig24.py RUN CLASS OUT.png
"""
import sys

import numpy as np
import torch
from PIL import Image

from memorygan.biggan.checkpoint import load_biggan
from memorygan.biggan.models import truncated_z
from memorygan.visualize import grid, to_uint8

run, cls, out = sys.argv[1], sys.argv[2], sys.argv[3]
G, cfg = load_biggan(run)
c = cfg.class_names.index(cls)
rows = []
with torch.no_grad():
    for seed in range(4):
        imgs = [G.generate(truncated_z(1, cfg.dim_z, t, torch.Generator().manual_seed(seed)), torch.tensor([c]))
                for t in (2.0, 1.0, 0.5, 0.04)]
        rows.append(to_uint8(torch.cat(imgs)))
Image.fromarray(grid(rows)).save(out)
print(f"wrote {out}")
