"""`memorygan train`: new runs and `--resume RUN`; also under `torchrun --nproc_per_node=P -m memorygan train`."""
from __future__ import annotations

import dataclasses
import json

from memorygan.argtypes import positive_float, positive_int
from memorygan.errors import ConfigError
from memorygan.training.options import PRESET_DEFAULTS, TrainOptions

# options that get their own flag (name -> help); the flag is --name-with-dashes
_FLAGS = {
    "kimg": "stop after this many thousand real images", "steps": "stop after this many steps",
    "minutes": "stop after this much training time (metrics, samples and checkpoints not counted)",
    "batch": "global batch size", "accum": "gradient accumulation rounds per step (per process)",
    "lr": "learning rate", "lstm_lr": "MemoryGAN LSTM learning rate", "beta1": "Adam beta1", "beta2": "Adam beta2",
    "r1_gamma": "R1 weight on the real image", "r1_gamma_mask": "R1 weight on the real mask",
    "d_reg_every": "D steps between R1 evaluations", "pl_weight": "path-length weight",
    "g_reg_every": "G steps between path-length evaluations", "pl_batch_shrink": "path-length batch divisor",
    "lambda_mask": "mask loss weight", "loss": "adversarial loss: logistic (StyleGAN2, the default) or hinge (BigGAN, "
                                               "Projected GAN)", "kl_weight": "MemoryGAN KL weight", "mixing": "style mixing probability",
    "ema_kimg": "EMA half-life in kimg", "ema_rampup": "EMA ramp-up (half-life <= rampup x images seen)",
    "clip_grad": "clip each network's gradient norm to this value", "noise_mode": "render noise: random/const/none",
    "seed": "random seed", "log_every": "steps per stats line", "sample_every": "steps between sample grids",
    "checkpoint_every": "steps between checkpoints", "metrics_every": "steps between domain metrics",
    "metrics_samples": "generated images per metrics evaluation", "probe": "probe folder (default DATA/probe)",
    "keep": "checkpoints to keep",
    "max_nonfinite": "consecutive non-finite (skipped) steps before stopping; checked on the host every --log-every "
                     "steps and at least every this many steps",
    "device": "cpu, cuda, cuda:N or auto (the GPU when torch sees one)", "threads": "torch CPU threads",
    "augment": "discriminator augmentation: none, diffaug (DiffAugment: colour, translation, cutout on every sample) "
               "or ada (StyleGAN2-ADA's geometric + colour ops with an adaptive probability); geometric ops move "
               "image and mask together, colour touches the image only",
    "augment_ops": "comma-separated ops instead of the policy's: color, translation, cutout (DiffAugment); xflip, "
                   "rotate90, xint, scale, rotate, aniso, xfrac, brightness, contrast, lumaflip, hue, saturation (ADA)",
    "augment_p": "probability per op and sample: fixed for diffaug (default 1), the starting value for ada (default 0)",
    "ada_target": "ADA's target for r_t = E[sign(D(real))]", "ada_kimg": "ADA: kimg for p to move by 1",
    "ada_interval": "ADA: steps between adjustments of p",
}


def _parse_value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _pairs(items: list[str], flag: str) -> dict:
    out = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"{flag} {item!r}: expected FIELD=VALUE")
        k, v = item.split("=", 1)
        out[k.strip()] = _parse_value(v)
    return out


def register(subparsers) -> None:
    p = subparsers.add_parser("train", help="train MemoryGAN or SemanticStyleGAN on a dataset folder",
                              description="Train a generator/discriminator pair (DESIGN 3). A run folder gets "
                              "config.json, stats.jsonl, metrics.jsonl, tensorboard/, samples/ and checkpoints/. "
                              "Ctrl-C writes a checkpoint; --resume RUN continues it exactly.")
    p.add_argument("--data", help="dataset folder (memorygan format); with --resume: the run's dataset at a new "
                                  "location (same content, the fingerprint is checked)")
    p.add_argument("--preset", default=None, help="preset name or JSON path (default memorygan-small)")
    p.add_argument("--out", help="new run folder")
    p.add_argument("--resume", metavar="RUN",
                   help="continue this run from its latest checkpoint (a run stopped before its first checkpoint "
                        "restarts in place); --steps/--kimg/--minutes are then totals for the whole run")
    p.add_argument("--more-steps", type=positive_int, default=None, metavar="N",
                   help="with --resume: train N more steps beyond the checkpoint")
    p.add_argument("--more-minutes", type=positive_float, default=None, metavar="M",
                   help="with --resume: train M more training minutes beyond the checkpoint")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="override a generator config field, e.g. --set local_layers=8 (repeatable)")
    p.add_argument("--set-d", action="append", default=[], metavar="FIELD=VALUE", dest="set_d",
                   help="override a discriminator config field, e.g. --set-d arch=projected (repeatable; fields: "
                        "arch dual|projected, projected_size, projected_width, projected_mask concat|none, "
                        "channel_base, channel_max, ...)")
    defaults = TrainOptions()
    types = {f.name: f.type for f in dataclasses.fields(TrainOptions)}
    for name, help_text in _FLAGS.items():
        kind = types[name]
        conv = (int if "int" in kind else float if "float" in kind else str)
        default = getattr(defaults, name)
        if name in PRESET_DEFAULTS:
            default = f"the preset's recommendation, else {PRESET_DEFAULTS[name]}"
        p.add_argument("--" + name.replace("_", "-"), type=conv, default=None,
                       help=f"{help_text} (default {default})")
    p.add_argument("--mirror", action="store_true", default=None, help="x-flip augmentation")
    p.add_argument("--bf16", action="store_true", default=None, help="bf16 autocast for the main passes")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run_train)


def run_train(args) -> int:
    from memorygan.training import distributed

    try:
        return _run_train(args)
    finally:
        distributed.shutdown()       # leave a torchrun process group cleanly (NCCL warns otherwise)


def _run_train(args) -> int:
    from memorygan.training.loop import resume, train

    given = {name: getattr(args, name) for name in list(_FLAGS) + ["mirror", "bf16"] if getattr(args, name) is not None}
    if args.no_progress:
        given["progress"] = False
    overrides, d_overrides = _pairs(args.set, "--set"), _pairs(args.set_d, "--set-d")
    if args.resume:
        if args.out or args.preset or overrides or d_overrides:
            raise ConfigError("--resume RUN continues a run with its own preset and out folder; "
                              "do not pass --out/--preset/--set/--set-d with it")
        result = resume(args.resume, data=args.data, more_steps=args.more_steps, more_minutes=args.more_minutes,
                        **given)
    else:
        if args.more_steps is not None or args.more_minutes is not None:
            raise ConfigError("--more-steps/--more-minutes continue a run: use them with --resume RUN")
        if not args.data or not args.out:
            raise ConfigError("--data and --out are required (or --resume RUN)")
        opts = TrainOptions(data=args.data, out=args.out, preset=args.preset or TrainOptions.preset,
                            generator_overrides=overrides, discriminator_overrides=d_overrides, **given)
        result = train(opts)
    print(f"trained {result.step} steps ({result.images / 1000:.2f} kimg, {result.train_seconds / 60:.1f} min); "
          f"checkpoint {result.checkpoint}")
    if result.metrics:
        print("metrics:", json.dumps(result.metrics[-1]))
    return 0
