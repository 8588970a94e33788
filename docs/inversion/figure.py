"""Stack the NAME-compare.png strips (target | reconstruction | generator's segmentation | mask) of some runs into
one figure, scaled 2x: python figure.py OUT.png RUN/NAME [RUN/NAME ...]"""
import sys
from pathlib import Path

from PIL import Image

out, items = sys.argv[1], sys.argv[2:]
strips = [Image.open(Path(p) / f"{Path(p).name}-compare.png") for p in items]
w, h = max(s.width for s in strips), sum(s.height for s in strips)
canvas = Image.new("RGB", (w, h), "white")
y = 0
for s in strips:
    canvas.paste(s, (0, y))
    y += s.height
canvas.resize((2 * w, 2 * h), Image.NEAREST).save(out, optimize=True)
