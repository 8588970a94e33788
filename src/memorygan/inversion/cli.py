"""CLI: `memorygan invert` (DESIGN 6, Inversion). Parses the arguments and calls `inversion.invert_command`."""
from __future__ import annotations

import sys

from memorygan.argtypes import non_negative_int as _non_negative_int
from memorygan.argtypes import positive_int, seed_list
from memorygan.devices import add_device_argument


def register(subparsers) -> None:
    from memorygan.inversion.perceptual import KINDS
    from memorygan.inversion.projection import LEVELS, InversionOptions

    d = InversionOptions()
    p = subparsers.add_parser(
        "invert", help="project images (+ masks) into a generator's codes; optional pivotal tuning",
        description="Optimise codes so the generator renders the given images: pixel MSE + a perceptual distance "
                    "+ (with masks) a segmentation loss + a pull towards the mean codes, from the mean codes "
                    "(SemanticStyleGAN invert.py: 400 steps, Adam lr 0.1). With --pti-steps, a copy of the "
                    "generator is then fine-tuned around the found codes (PTI) and saved per image; the source "
                    "generator is never modified. Per image: OUT/NAME/codes.safetensors, NAME-reconstruction.png, "
                    "NAME-seg.png, metrics.json (psnr, perceptual, miou). Run the same command again to continue "
                    "an interrupted folder.")
    p.add_argument("--generator", required=True, help="generator folder, checkpoint folder or training run folder, or a "
                   "shipped name (`memorygan pretrained list`)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--images", help="an image, a folder of images, or a dataset folder (its masks are used)")
    src.add_argument("--seeds", type=seed_list,
                     help="invert the generator's own samples of these seeds (known answers: their true codes "
                          "and segmentations are written to OUT/targets and compared), e.g. 0-3")
    p.add_argument("--masks", help="a mask or a folder of masks named like the images (single-channel PNG ids)")
    p.add_argument("--out", required=True, help="output folder (resumable)")
    p.add_argument("--level", choices=LEVELS, default=d.level,
                   help="codes to optimise: expanded (one per part and layer, default), latents (MemoryGAN per-part "
                        "latents; SSG W+), wplus (= latents; SSG's name)")
    p.add_argument("--steps", type=_non_negative_int, default=d.steps, help=f"optimisation steps (default {d.steps})")
    p.add_argument("--pti-steps", type=_non_negative_int, default=d.pti_steps,
                   help="pivotal tuning steps after the projection (PTI: up to 350; default 0: off)")
    p.add_argument("--init-from", metavar="DIR",
                   help="start from the codes a previous `memorygan invert` folder holds for each image (same "
                        "generator) instead of the mean codes; with --steps 0 --pti-steps M: PTI around them")
    p.add_argument("--encoder", metavar="DIR",
                   help="start from the codes an encoder of this generator predicts (`memorygan encoder train`) "
                        "instead of the mean codes; --steps 0: the encoder alone (its codes keep their latents, so "
                        "every edit space applies)")
    p.add_argument("--passes", type=positive_int,
                   help="with --encoder: ReStyle refinement passes (default: the encoder's own setting)")
    p.add_argument("--limit", type=positive_int, help="only the first N images (name order)")
    p.add_argument("--batch", type=positive_int, default=1, help="images optimised together (default 1)")
    p.add_argument("--truncation", type=float, default=1.0, help="with --seeds: truncation of the samples")

    g = p.add_argument_group("perceptual distance")
    g.add_argument("--perceptual", choices=KINDS, default="auto",
                   help="auto (default): LPIPS if its files are given, else EfficientNet-Lite0 (the perceptual "
                        "extra), else the probe (--probe or the dataset's probe/), else none")
    g.add_argument("--lpips-weights", help="official LPIPS linear weights (lpips/weights/v0.1/vgg.pth or alex.pth)")
    g.add_argument("--lpips-backbone", help="torchvision backbone (vgg16-397923af.pth or alexnet-owt-7be5be79.pth)")
    g.add_argument("--probe", help="probe folder (or dataset folder with probe/) for --perceptual probe")
    g.add_argument("--min-size", type=positive_int, default=128,
                   help="EfficientNet-Lite0: upsample smaller images to this size first (default 128)")

    o = p.add_argument_group("objective")
    o.add_argument("--lr", type=float, default=d.lr, help=f"Adam learning rate, in code-spread units (default {d.lr})")
    o.add_argument("--mse-weight", type=float, default=d.mse_weight, help=f"default {d.mse_weight}")
    o.add_argument("--perceptual-weight", type=float, default=d.perceptual_weight,
                   help=f"default {d.perceptual_weight}")
    o.add_argument("--seg-weight", type=float, default=d.seg_weight,
                   help=f"mask loss weight (default {d.seg_weight}; 0: masks only measured)")
    o.add_argument("--seg-margin", type=float, default=d.seg_margin,
                   help=f"the mask loss is zero where the segmentation agrees with the mask by this margin "
                        f"(default {d.seg_margin})")
    o.add_argument("--code-weight", type=float, default=d.code_weight,
                   help=f"pull towards the mean codes (default {d.code_weight})")
    o.add_argument("--optimize-noise", action="store_true", help="also optimise the render noise maps")
    o.add_argument("--noise-weight", type=float, default=d.noise_weight,
                   help=f"noise regulariser (default {d.noise_weight:g})")

    t = p.add_argument_group("pivotal tuning")
    t.add_argument("--pti-lr", type=float, default=d.pti_lr, help=f"default {d.pti_lr}")
    t.add_argument("--pti-mse-weight", type=float, default=d.pti_mse_weight, help=f"default {d.pti_mse_weight}")
    t.add_argument("--pti-perceptual-weight", type=float, default=d.pti_perceptual_weight,
                   help=f"default {d.pti_perceptual_weight} (PTI's LPIPS weight)")
    t.add_argument("--pti-stop-psnr", type=float, default=d.pti_stop_psnr,
                   help=f"stop once the reconstruction reaches this PSNR (default {d.pti_stop_psnr}; <= 0: never)")
    t.add_argument("--pti-stop-distance", type=float, default=None,
                   help="stop once the perceptual distance is at most this (PTI: LPIPS 0.07)")
    t.add_argument("--pti-locality-weight", type=float, default=d.pti_locality_weight,
                   help=f"locality regulariser: nearby codes keep their images (default {d.pti_locality_weight}; "
                        "0: off)")

    add_device_argument(p)
    p.add_argument("--threads", type=positive_int, help="torch CPU threads")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run_invert)


def run_invert(args) -> int:
    from memorygan.inversion.api import invert_command
    from memorygan.inversion.projection import InversionOptions
    from memorygan.inversion.run import format_summary

    opts = InversionOptions(
        level=args.level, steps=args.steps, lr=args.lr, mse_weight=args.mse_weight,
        perceptual_weight=args.perceptual_weight, seg_weight=args.seg_weight, seg_margin=args.seg_margin,
        code_weight=args.code_weight,
        optimize_noise=args.optimize_noise, noise_weight=args.noise_weight, pti_steps=args.pti_steps,
        pti_lr=args.pti_lr, pti_mse_weight=args.pti_mse_weight, pti_perceptual_weight=args.pti_perceptual_weight,
        pti_stop_psnr=args.pti_stop_psnr if args.pti_stop_psnr and args.pti_stop_psnr > 0 else None,
        pti_stop_distance=args.pti_stop_distance, pti_locality_weight=args.pti_locality_weight,
        encoder_passes=args.passes)
    if args.passes is not None and args.encoder is None:
        print("memorygan invert: --passes goes with --encoder", file=sys.stderr)
        return 2
    try:
        res = invert_command(args.generator, args.out, opts, images=args.images, masks=args.masks, seeds=args.seeds,
                             truncation=args.truncation, perceptual=args.perceptual, lpips_weights=args.lpips_weights,
                             lpips_backbone=args.lpips_backbone, probe=args.probe, min_size=args.min_size,
                             limit=args.limit, batch=args.batch, device=args.device, progress=not args.no_progress,
                             init_from=args.init_from, encoder=args.encoder)
    except KeyboardInterrupt:
        print(f"memorygan invert: interrupted; the finished images stay in {args.out}: run the same command again "
              "to continue", file=sys.stderr)
        return 130
    print(f"perceptual distance: {res.perceptual_name}")
    if res.skipped:
        print(f"{len(res.skipped)} image(s) already finished in {res.out}, {len(res.done)} inverted now")
    print(format_summary(res.summary))
    print(f"wrote {res.out}")
    return 0
