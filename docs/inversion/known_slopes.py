"""Slopes of the learned directions on 20 samples (seeds 3000..): true codes vs the encoder's codes of the same
images, judged on the probe mask: does the encoder lose editability, or do held-out images respond less?

    python docs/inversion/known_slopes.py ARCH      (after encoder_study.py's encoders and directions exist)
"""
import json
import sys
from pathlib import Path

import torch

import memorygan

sys.path.insert(0, str(Path(__file__).parent))
from encoder_study import ProbeJudged, DIRS, PROBE, ALPHAS
from memorygan.editing.assessors import get_assessor
from memorygan.editing.directions import Source, load_direction
from memorygan.encoder.model import encode, load_encoder
from memorygan.inversion.edits import EditView, compare_edits
from memorygan.metrics.probe import load_probe
torch.set_num_threads(1)
arch = sys.argv[1]
G, _ = memorygan.load(f"portraits-{arch}"); G.eval().requires_grad_(False)
E, _ = load_encoder(f"/work/exp/enc/{arch}", G)
probe, _ = load_probe(PROBE)
with torch.no_grad():
    z = G.sample_z(20, seed=3000); o = G(z, noise_mode="const")
    enc = encode(E, G, o.image)
out = {}
for dname in (f"{arch}-hair", f"{arch}-skin", f"{arch}-hair-latent"):
    d = load_direction(DIRS / dname, G)
    J = ProbeJudged(get_assessor(d.assessor, G), probe)
    r = compare_edits([EditView("true codes", G, Source(o.expanded, o.latents, z), d),
                       EditView("encoder codes", G, Source(enc.expanded, enc.latents), d)], J, ALPHAS)
    out[dname] = {v: r["views"][v]["slope_mean"] for v in r["views"]}
    print(dname, out[dname], flush=True)
json.dump(out, open(f"/work/exp/enc/known-slopes-{arch}.json", "w"), indent=1)
