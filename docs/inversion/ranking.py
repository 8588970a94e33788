"""The distortion-ranking table of docs/inversion.md: EfficientNet-Lite0 distance (128 px) vs pixel MSE on 8
held-out procedural portraits
(`memorygan data synth portraits --n 40 --size 64 --seed 7 --out /work/exp/inversion/heldout64`)."""
import sys

import torch
import torch.nn.functional as F

from memorygan.data.dataset import SegmentationDataset
from memorygan.inversion.perceptual import load_perceptual

torch.set_num_threads(1)
ds = SegmentationDataset(sys.argv[1] if len(sys.argv) > 1 else "/work/exp/inversion/heldout64")
x = torch.stack([ds[i]["image"] for i in range(8)])


def blur(x, s):
    r = int(3 * s + 0.5)
    t = torch.exp(-0.5 * (torch.arange(-r, r + 1.0) / s) ** 2)
    k = (t[:, None] * t[None]) / t.sum() ** 2
    return F.conv2d(F.pad(x, (r,) * 4, mode="reflect"), k.expand(3, 1, *k.shape).contiguous(), groups=3)


g = torch.Generator().manual_seed(0)
cases = {f"Gaussian noise sigma {s}": (x + s * torch.randn(x.shape, generator=g)).clamp(-1, 1)
         for s in (0.02, 0.05, 0.1, 0.2)}
cases.update({f"Gaussian blur sigma {s} px": blur(x, s) for s in (0.5, 1.0, 2.0, 3.0)})
cases["shift by 1 pixel"] = x.roll(1, -1)
cases["another portrait"] = x.roll(1, 0)
dist = load_perceptual("efficientnet", min_size=128)
print("| distortion | pixel MSE | PSNR (dB) | perceptual |\n|---|---|---|---|")
with torch.no_grad():
    for name, y in cases.items():
        mse = float((x - y).pow(2).mean())
        psnr = 10 * torch.log10(torch.tensor(4 / mse))
        print(f"| {name} | {mse:.4f} | {psnr:.1f} | {float(dist(x, y).mean()):.3f} |")
