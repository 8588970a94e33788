"""Region-edit throughput (`memorygan edit region --batch N`): seconds per image of Paint-by-Word (CMA-ES + Adam) with
N images optimised together, against one image at a time (the baseline, batch 1) in the same run, and how far the
batched result is from the baseline's: only float rounding differs, which CMA-ES's ranks absorb and Adam can grow
(coordinates apart by up to a few tenths, mean final loss within about 1 %).

Timing depends on the architecture, so an untrained preset is used unless --generator is given; the scorer is the
attribute scorer ("red hair": the hair codes move inside a painted box at the top of the image).

    python benchmarks/bench_region.py                                   # memorygan-small on the CPU, batches 1 and 8
    python benchmarks/bench_region.py --generator portraits-ssg --device cuda --batches 1,8,32 --images 32
"""
from __future__ import annotations

import argparse
import json
import platform
import time

import torch


def final_loss(res) -> float:
    """Mean over the images of the last loss (Adam's, else CMA-ES's)."""
    last = [h["adam"][-1]["loss"] if h.get("adam") else h["cma"]["loss"] for h in res.history]
    return sum(last) / len(last)


def main(argv=None) -> int:
    import memorygan
    from memorygan.config import generator_config
    from memorygan.editing.directions import seed_source
    from memorygan.editing.region import region_edit
    from memorygan.editing.scorers import text_score
    from memorygan.models import build_generator

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="memorygan-small")
    ap.add_argument("--generator", help="a generator (path or shipped name) instead of the preset")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batches", default="1,8", help="batch sizes; the first is the baseline")
    ap.add_argument("--images", type=int, default=8)
    ap.add_argument("--popsize", type=int, default=20)
    ap.add_argument("--cma-iters", type=int, default=10)
    ap.add_argument("--adam-steps", type=int, default=50)
    ap.add_argument("--basis-samples", type=int, default=512, help="samples of the PCA search basis (default 512)")
    ap.add_argument("--threads", type=int)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.generator:
        G = memorygan.load(args.generator, device=args.device)[0]
    else:
        torch.manual_seed(0)
        G = build_generator(generator_config(args.preset)).to(args.device)
    G.eval().requires_grad_(False)
    score = text_score("attributes", "red hair", G)
    src = seed_source(G, list(range(args.images)))
    r = G.config.resolution
    mask = torch.zeros(r, r, device=G.device)
    mask[: r // 3, r // 4: 3 * r // 4] = 1               # a painted box (an untrained generator draws no hair mask)
    kw = dict(mask=mask, parts="hair", popsize=args.popsize, cma_iters=args.cma_iters, adam_steps=args.adam_steps,
              basis_samples=args.basis_samples)
    region_edit(G, seed_source(G, [0]), score, **{**kw, "popsize": 4, "cma_iters": 1, "adam_steps": 1})   # warm-up
    batches = [int(b) for b in args.batches.split(",")]
    runs, base = {}, None
    for b in batches:
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        res = region_edit(G, src, score, batch=b, **kw)
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        sec = (time.perf_counter() - t0) / args.images
        base = base or (sec, res)
        runs[str(b)] = {"seconds_per_image": round(sec, 4), "speedup_vs_baseline": round(base[0] / sec, 2),
                        "max_abs_x_diff_vs_baseline": float((res.x - base[1].x).abs().max()),
                        "max_abs_image_diff_vs_baseline": float((res.after.image - base[1].after.image).abs().max()),
                        "mean_final_loss": round(final_loss(res), 5),
                        "mean_final_loss_vs_baseline": round(final_loss(res) - final_loss(base[1]), 5)}
    print(json.dumps({"benchmark": "region edit (CMA-ES + Adam)", "generator": args.generator or args.preset,
                      "device": args.device, "threads": torch.get_num_threads(),
                      "cpu": platform.processor() or platform.machine(), "torch": torch.__version__,
                      "images": args.images, "popsize": args.popsize, "cma_iters": args.cma_iters,
                      "adam_steps": args.adam_steps, "baseline": f"batch {batches[0]}", "runs": runs}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
