"""CLI: `memorygan encoder train` (an encoder into a generator's codes; issue 28)."""
from __future__ import annotations

import sys

from memorygan.argtypes import positive_int
from memorygan.devices import add_device_argument


def register(subparsers) -> None:
    from memorygan.encoder.model import LEVELS
    from memorygan.encoder.train import EncoderTrainOptions
    from memorygan.inversion.perceptual import KINDS

    d = EncoderTrainOptions()
    p = subparsers.add_parser("encoder", help="train an encoder into a generator's codes (one-pass inversion)",
                              description="Encoders map an image to a generator's codes in one forward pass (pSp), "
                                          "optionally refined by ReStyle passes; `memorygan invert --encoder E` "
                                          "starts from them and `memorygan demo --encoder E` shows an upload at "
                                          "once.")
    sub = p.add_subparsers(dest="encoder_command", metavar="COMMAND", required=True)
    t = sub.add_parser(
        "train", help="train an encoder for one generator (resumable)",
        description="Train an encoder on the generator's own samples (their codes are known: code loss + image, "
                    "perceptual and mask losses) and, with --data, on real images and masks (image, perceptual and "
                    "mask losses). Writes OUT/encoder.safetensors, encoder.json, training.safetensors (optimiser) "
                    "and log.jsonl (losses; known-answer PSNR / mIoU every --eval-every steps). Run the same command "
                    "again to continue an interrupted run; a larger --steps extends a finished one.")
    t.add_argument("--generator", required=True, help="generator folder, checkpoint or run folder, or a shipped "
                   "name (`memorygan pretrained list`)")
    t.add_argument("--data", help="dataset folder of real images with masks (optional; its classes must be the "
                   "generator's parts)")
    t.add_argument("--out", required=True, help="encoder folder to write (resumable)")
    t.add_argument("--level", choices=LEVELS, default=d.level,
                   help="codes the encoder predicts: latents (default; SSG W+, MemoryGAN per-part latents) or "
                        "queries (MemoryGAN: the working memory's queries, mapped to latents by the generator)")
    t.add_argument("--steps", type=positive_int, default=d.steps, help=f"training steps (default {d.steps})")
    t.add_argument("--batch", type=positive_int, default=d.batch,
                   help=f"generated samples per step (default {d.batch})")
    t.add_argument("--real-batch", type=int, default=d.real_batch,
                   help=f"real images per step with --data (default {d.real_batch}; 0: samples only)")
    t.add_argument("--lr", type=float, default=d.lr, help=f"Adam learning rate (default {d.lr:g})")
    t.add_argument("--passes", type=positive_int, default=d.passes,
                   help="ReStyle refinement passes per training step; also the encoder's default at inference "
                        f"(default {d.passes}: pSp)")
    t.add_argument("--truncation", type=float, default=d.truncation,
                   help=f"psi of the training samples (default {d.truncation:g})")
    t.add_argument("--init-from", metavar="DIR",
                   help="start from the weights of another encoder of this generator (e.g. fine-tune a one-pass "
                        "encoder with --passes 2)")
    t.add_argument("--seed", type=int, default=d.seed, help=f"seed of the samples and real batches (default {d.seed})")
    w = t.add_argument_group("losses")
    w.add_argument("--code-weight", type=float, default=d.code_weight,
                   help=f"squared code error on samples, in code-spread units (default {d.code_weight:g})")
    w.add_argument("--mse-weight", type=float, default=d.mse_weight, help=f"pixel MSE (default {d.mse_weight:g})")
    w.add_argument("--perceptual-weight", type=float, default=d.perceptual_weight,
                   help=f"perceptual distance (default {d.perceptual_weight:g})")
    w.add_argument("--seg-weight", type=float, default=d.seg_weight,
                   help=f"mask hinge on the render's segmentation (default {d.seg_weight:g})")
    w.add_argument("--prior-weight", type=float, default=d.prior_weight,
                   help=f"pull towards the mean codes, mean u^2 (default {d.prior_weight:g})")
    w.add_argument("--delta-weight", type=float, default=d.delta_weight,
                   help="e4e's delta regulariser (SSG): pull the W+ codes of an image towards one w, as the "
                        f"generator draws them (default {d.delta_weight:g}: off)")
    w.add_argument("--perceptual", choices=KINDS, default="auto",
                   help="perceptual distance as for `memorygan invert` (default auto: EfficientNet-Lite0 when "
                        "installed, else the --data probe, else none)")
    w.add_argument("--probe", help="probe folder for --perceptual probe (default: DATA/probe)")
    o = t.add_argument_group("run")
    o.add_argument("--checkpoint-every", type=positive_int, default=d.checkpoint_every,
                   help=f"steps between checkpoints (default {d.checkpoint_every})")
    o.add_argument("--eval-every", type=positive_int, default=d.eval_every,
                   help=f"steps between known-answer evaluations in the log (default {d.eval_every})")
    add_device_argument(o)
    o.add_argument("--threads", type=positive_int, help="torch CPU threads")
    o.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.set_defaults(func=run_train)


def run_train(args) -> int:
    from pathlib import Path

    import memorygan
    from memorygan.encoder.train import EncoderTrainOptions, train_encoder
    from memorygan.inversion.perceptual import load_perceptual

    opts = EncoderTrainOptions(
        level=args.level, steps=args.steps, batch=args.batch, real_batch=args.real_batch, lr=args.lr,
        code_weight=args.code_weight, mse_weight=args.mse_weight, perceptual_weight=args.perceptual_weight,
        seg_weight=args.seg_weight, prior_weight=args.prior_weight, delta_weight=args.delta_weight,
        passes=args.passes, truncation=args.truncation, seed=args.seed, checkpoint_every=args.checkpoint_every,
        eval_every=args.eval_every).check()
    G, _ = memorygan.load(args.generator, args.device)
    probe = args.probe
    if probe is None and args.data is not None and (Path(args.data) / "probe").is_dir():
        probe = args.data
    dist = load_perceptual(args.perceptual, probe=probe, device=G.device) if opts.perceptual_weight > 0 else None
    try:
        run = train_encoder(G, args.out, opts, data=args.data, perceptual=dist, progress=not args.no_progress,
                            generator_path=args.generator, init_from=args.init_from)
    except KeyboardInterrupt:
        print(f"memorygan encoder train: interrupted; the last checkpoint stays in {args.out}: run the same command "
              "again to continue", file=sys.stderr)
        return 130
    if run.resumed_from >= opts.steps:
        print(f"{args.out} already holds an encoder trained for {run.step} steps; pass a larger --steps to continue")
    elif run.resumed_from:
        print(f"continued from step {run.resumed_from}")
    if run.final:
        k = run.final["known"]
        print(f"step {run.final['step']}: known answers (encoder alone, {opts.eval_samples} samples): PSNR "
              f"{k['psnr']:.2f} dB, mIoU {k['miou']:.3f}, code RMS {k['code_rms']:.3f}")
    print(f"perceptual distance: {'none' if dist is None else dist.name}")
    print(f"wrote {run.out}")
    return 0
