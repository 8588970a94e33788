"""RMS of (codes - mean) / spread (the inversion CodeSpace, 500 samples), all parts and skin / hair: the true codes of
the known-answer samples vs the recovered codes (known answers, held-out). python docs/inversion/spread.py"""
import torch

import memorygan
from memorygan.editing.codes import load_codes
from memorygan.inversion.projection import CodeSpace

torch.set_num_threads(1)
E = "/work/exp/inversion"
for arch in ("memorygan", "ssg"):
    G, _ = memorygan.load(f"/work/exp/runs/t100-{arch}"); G.eval()
    cs = CodeSpace(G, "expanded", n=500)
    true = load_codes(f"{E}/final-known-{arch}/targets/codes.safetensors").expanded
    rec = torch.cat([load_codes(f"{E}/final-known-{arch}/seed000{i}/codes.safetensors").expanded for i in range(4)])
    held = torch.cat([load_codes(f"{E}/final-heldout-{arch}/00000{i}/codes.safetensors").expanded for i in range(4)])
    for name, c in (("true", true), ("known recovered", rec), ("held-out recovered", held)):
        u = cs.units(c)
        r = {p: float(u[:, G.part_names.index(p)].pow(2).mean().sqrt()) for p in ("skin", "hair")}
        print(arch, name, "RMS u all %.2f" % float(u.pow(2).mean().sqrt()), {k: round(v, 2) for k, v in r.items()})
