"""CLI: `memorygan complexity` (and model utilities)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from memorygan.argtypes import seed_list as _seeds
from memorygan.devices import add_device_argument


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"part counts must be integers >= 1, got {text!r}")
    return values


def register(subparsers) -> None:
    p = subparsers.add_parser("complexity", help="parameters and true MACs of generators vs number of parts",
                              description="Parameters and true multiply-accumulates (FlopCounterMode FLOPs / 2) of "
                                          "the generator for each preset and number of parts K.")
    p.add_argument("--preset", action="append", required=True, help="preset name or JSON path (repeatable)")
    p.add_argument("--parts", type=_int_list, default=[1, 10, 100, 1000], help="comma-separated K values")
    p.add_argument("--json", action="store_true", help="print a JSON list instead of a markdown table")
    p.add_argument("--plot", metavar="FILE.png", help="also plot parameters and MACs vs K (log scale)")
    p.set_defaults(func=run_complexity)

    p = subparsers.add_parser("generate", help="sample images and segmentations from a generator",
                              description="Sample from a generator folder (config.json + generator.safetensors) and "
                                          "write a PNG grid: images on top, colour-coded segmentations below.")
    p.add_argument("generator", help="generator, checkpoint or run folder, or a shipped name (`memorygan pretrained list`)")
    p.add_argument("--seeds", type=_seeds, default=list(range(8)), help="e.g. 0-7 or 1,5,9 (default 0-7)")
    p.add_argument("--truncation", type=float, default=1.0, help="psi in W (default 1: none)")
    p.add_argument("--noise-mode", choices=["const", "random", "none"], default="const",
                   help="render-net noise: const (fixed per seed), random or none (default %(default)s)")
    p.add_argument("--out", required=True, help="output PNG")
    add_device_argument(p)
    p.set_defaults(func=run_generate)


def run_complexity(args) -> int:
    from memorygan.complexity import complexity_table, format_markdown, plot_complexity

    rows = complexity_table(args.preset, args.parts)
    print(json.dumps(rows, indent=2) if args.json else format_markdown(rows))
    if args.plot:
        plot_complexity(rows, args.plot)
    return 0


def run_generate(args) -> int:
    import torch
    from PIL import Image

    from memorygan import load
    from memorygan.errors import ConfigError
    from memorygan.visualize import grid, seg_to_color, to_uint8

    if Path(args.out).suffix.lower() not in (".png", ".jpg", ".jpeg"):         # checked before any work is done
        raise ConfigError(f"--out {args.out}: expected an image file name ending in .png or .jpg")
    G, _ = load(args.generator, device=args.device)
    images, segs = [], []
    with torch.no_grad():
        for seed in args.seeds:  # one sample per seed, so a seed always gives the same picture
            out = G.sample(1, seed=seed, truncation=args.truncation, noise_mode=args.noise_mode)
            images.append(to_uint8(out.image))
            segs.append(seg_to_color(out.seg))
    import numpy as np
    Image.fromarray(grid([np.concatenate(images), np.concatenate(segs)])).save(args.out)
    print(f"wrote {args.out} ({len(args.seeds)} samples)")
    return 0
