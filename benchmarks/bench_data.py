"""Procedural dataset generation speed (DESIGN 4, 9): images/s on one core, and with worker processes.

Prints one JSON object. For each case, `render` times sampling + rendering only; `render_png` adds encoding the
image and mask PNGs (in memory, the settings the writer uses), which is the per-image cost of
`memorygan data synth` on one core without file-system time. `synth_workers` times the real writer
(`synthesize`, files on disk in a temporary folder) with --workers processes.

    python benchmarks/bench_data.py                     # portraits 64/256 px, scenes K=13 and K=1000 at 64/256 px
    python benchmarks/bench_data.py --n 100 --workers 2
"""
from __future__ import annotations

import argparse
import io
import json
import os
import platform
import shutil
import tempfile
import time

import numpy as np
from PIL import Image

from memorygan.data.files import PNG_COMPRESS_LEVEL
from memorygan.data.portraits import generate_portrait
from memorygan.data.raster import supersampling_for
from memorygan.data.scenes import generate_scene
from memorygan.data.synth import synthesize


def _png(a: np.ndarray) -> int:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return buf.tell()


def bench_case(kind: str, size: int, k: int, n: int) -> dict:
    gen = (lambda i: generate_portrait(0, i, size)) if kind == "portraits" else \
        (lambda i: generate_scene(0, i, size, k))
    gen(10_000)  # warm-up (imports, caches)
    t0 = time.perf_counter()
    outs = [gen(i) for i in range(n)]
    t_render = time.perf_counter() - t0
    t0 = time.perf_counter()
    nbytes = 0
    for img, ids, _ in outs:
        nbytes += _png(img) + _png(ids)
    t_png = time.perf_counter() - t0
    return {"kind": kind, "size": size, "classes": k, "n": n, "supersample": supersampling_for(size),
            "render_images_per_s": round(n / t_render, 1),
            "render_png_images_per_s": round(n / (t_render + t_png), 1),
            "png_kib_per_image": round(nbytes / n / 1024, 2)}


def bench_synth(kind: str, size: int, k: int, n: int, workers: int) -> dict:
    tmp = tempfile.mkdtemp(prefix="bench_data_")
    try:
        t0 = time.perf_counter()
        synthesize(kind, os.path.join(tmp, "ds"), n=n, size=size, seed=0,
                   num_classes=k if kind == "scenes" else None, workers=workers)
        dt = time.perf_counter() - t0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"kind": kind, "size": size, "classes": k, "n": n, "workers": workers,
            "images_per_s": round(n / dt, 1), "seconds": round(dt, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=300, help="images per 64 px case (256 px cases use n/6)")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes for the synth case")
    args = ap.parse_args()
    cases = [("portraits", 64, 13), ("portraits", 256, 13), ("scenes", 64, 13), ("scenes", 64, 1000),
             ("scenes", 256, 13), ("scenes", 256, 1000)]
    results = [bench_case(kind, size, k, args.n if size <= 64 else max(args.n // 6, 5)) for kind, size, k in cases]
    synth = [bench_synth("portraits", 64, 13, args.n * 2, 1)]
    if args.workers > 1:
        synth.append(bench_synth("portraits", 64, 13, args.n * 2, args.workers))
    print(json.dumps({"benchmark": "procedural data generation", "machine": platform.machine(),
                      "cpus": os.cpu_count(), "python": platform.python_version(), "numpy": np.__version__,
                      "single_core": results, "synth": synth}, indent=2))


if __name__ == "__main__":
    main()
