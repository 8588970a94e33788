"""CLI: `memorygan edit assessors|train-assessor|learn|interfacegan|sefa|apply|evaluate` (DESIGN 6)."""
from __future__ import annotations

import argparse
import json

from memorygan.argtypes import positive_int as _positive
from memorygan.argtypes import seed_list as _seeds

MAX_ALPHA = 2.0      # directions are learned for alpha in [-0.5, 0.5]; beyond 4x that they extrapolate blindly


def _alphas(text: str) -> list[float]:
    try:
        values = [float(a) for a in text.split(",") if a.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"alphas must be comma-separated numbers, got {text!r}") from None
    bad = [a for a in values if not abs(a) <= MAX_ALPHA]
    if bad:
        raise argparse.ArgumentTypeError(f"alpha {bad[0]:g} is out of range: directions are learned for alpha in "
                                         f"[-0.5, 0.5] and applied within [-{MAX_ALPHA:g}, {MAX_ALPHA:g}]")
    if not values:
        raise argparse.ArgumentTypeError("give at least one alpha")
    return values


def register(subparsers) -> None:
    from memorygan.editing.directions import LAYERS, SPACES

    edit = subparsers.add_parser(
        "edit", help="assessors and latent directions: learn (GANalyze), InterFaceGAN, SeFa, apply, evaluate",
        description="Controllable editing (DESIGN 6): assessors score images, directions move codes so an assessor "
                    "changes by alpha (in units of its spread); `evaluate` measures slope, monotonicity and how much "
                    "of the image outside the edited parts is preserved.")
    sub = edit.add_subparsers(dest="edit_command", metavar="EDIT")
    sub.required = True

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--generator", required=True, help="generator, checkpoint or training run folder")
    common.add_argument("--device", default="cpu")
    common.add_argument("--threads", type=_positive, help="torch CPU threads (default: torch's choice)")

    scorer = argparse.ArgumentParser(add_help=False)
    scorer.add_argument("--assessor", required=True, help="assessor spec (see `memorygan edit assessors`), e.g. "
                                                         "lightness:hair or regressor:DIR")
    scorer.add_argument("--probe", help="probe folder for probe:CLASS assessors (default DATA/probe with --data)")
    scorer.add_argument("--data", help="dataset folder (its probe, for probe:CLASS)")

    space = argparse.ArgumentParser(add_help=False)
    space.add_argument("--space", choices=SPACES, default="parts",
                       help="latent: whole latent (SSG W+ / MemoryGAN latents); parts: the named parts' own codes; "
                            "query: MemoryGAN query codes inside the working memory (default parts)")
    space.add_argument("--parts", help="comma-separated part names or ids (parts/query spaces)")
    space.add_argument("--layers", choices=list(LAYERS), default="both",
                       help="parts space: the parts' shape codes, texture codes or both (default)")
    space.add_argument("--truncation", type=float, default=1.0, help="psi of the samples (default 1: none)")
    space.add_argument("--seed", type=int, default=0)

    p = sub.add_parser("assessors", help="list the assessors and what they measure")
    p.set_defaults(func=run_assessors)

    p = sub.add_parser("train-assessor", help="train an attribute regressor on a dataset's ground truth",
                       description="Train a small CNN to predict one attribute of attributes.jsonl (a dotted path: "
                                   "skin.lightness, mouth.smile, eyes.color, glasses, ...) from the image; reports "
                                   "held-out R^2 (numbers) or accuracy (classes, presence). Use it as the assessor "
                                   "regressor:OUT[:CLASS].")
    p.add_argument("--data", required=True, help="dataset folder with attributes.jsonl")
    p.add_argument("--attribute", required=True, help="dotted attribute path, e.g. hair.lightness")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--steps", type=_positive, default=2000)
    p.add_argument("--batch", type=_positive, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-flip", action="store_true", help="no x-flip augmentation (default: flip unless the "
                                                          "attribute changes under a mirror, e.g. pose.yaw)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=_positive)
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run_train_assessor)

    p = sub.add_parser("learn", parents=[common, scorer, space], help="learn a direction (GANalyze)",
                       description="Learn theta so that A(G(w + alpha theta)) = A(G(w)) + alpha * spread, alpha ~ "
                                   "U[-0.5, 0.5] (GANalyze Eq. 3.1), with Adam; writes direction.safetensors and "
                                   "direction.json (with the training curve) into --out.")
    p.add_argument("--out", required=True)
    p.add_argument("--steps", type=_positive, default=300)
    p.add_argument("--batch", type=_positive, default=8, help="samples per step (default 8; GANalyze 4)")
    p.add_argument("--lr", type=float, default=0.005, help="Adam lr (default 0.005; GANalyze 2e-4 for BigGAN's z)")
    p.add_argument("--scale-samples", type=_positive, default=256,
                   help="samples that measure the assessor's spread (default 256)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run_learn)

    p = sub.add_parser("interfacegan", parents=[common, scorer, space], help="InterFaceGAN direction (linear SVM)",
                       description="Normal of a linear SVM separating the codes of the top and bottom --fraction of "
                                   "--n samples by the assessor; with --condition, the normal of a second assessor "
                                   "is projected out. Calibrated to the learned directions' scale.")
    p.add_argument("--out", required=True)
    p.add_argument("--n", type=_positive, default=2000)
    p.add_argument("--fraction", type=float, default=0.3)
    p.add_argument("--condition", help="assessor kept fixed (conditional editing)")
    p.set_defaults(func=run_interfacegan)

    p = sub.add_parser("sefa", parents=[common, scorer, space], help="SeFa direction (closed form, per part)",
                       description="Top eigenvectors of the modulation weights of the parts' local layers; keeps the "
                                   "one of the top --num that moves the assessor most. Parts space only.")
    p.add_argument("--out", required=True)
    p.add_argument("--num", type=_positive, default=5)
    p.set_defaults(func=run_sefa)

    p = sub.add_parser("apply", parents=[common], help="image and mask strips of a direction",
                       description="Apply a direction to sampled seeds (--seeds) or to a codes file (--codes, e.g. "
                                   "from `memorygan invert`) at each alpha; writes strip.png, the edited codes and "
                                   "apply.json.")
    p.add_argument("--direction", required=True, help="direction folder")
    p.add_argument("--alphas", type=_alphas, default=[-0.5, -0.25, 0.0, 0.25, 0.5],
                   help="comma-separated; start negative lists with '=': --alphas=-0.5,0,0.5")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--seeds", type=_seeds, help="e.g. 0-3 (default 0,1,2)")
    src.add_argument("--codes", help="codes file (.safetensors)")
    p.add_argument("--truncation", type=float, default=None, help="psi for --seeds (default: the direction's)")
    p.add_argument("--out", required=True)
    p.set_defaults(func=run_apply)

    p = sub.add_parser("evaluate", parents=[common], help="measure a direction (slope, Spearman, preservation)",
                       description="Slope, Spearman, monotone fraction, preserved pixels outside the target parts, "
                                   "non-target mask mIoU and attribute leakage over --n samples; writes "
                                   "evaluation.json and evaluation.png.")
    p.add_argument("--direction", required=True)
    p.add_argument("--n", type=_positive, default=500)
    p.add_argument("--alphas", type=_alphas, default=[-0.5, -0.25, 0.0, 0.25, 0.5])
    p.add_argument("--target-parts", help="parts whose pixels may change (default: the direction's or assessor's)")
    p.add_argument("--probe", help="probe folder for probe:CLASS assessors")
    p.add_argument("--data", help="dataset folder (its probe)")
    p.add_argument("--seed", type=int, default=12345)
    p.add_argument("--out", required=True)
    p.add_argument("--json", action="store_true", help="print the record as JSON")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run_evaluate)

    _register_report(sub)


def _register_report(sub) -> None:
    p = sub.add_parser("report", help="the editing study of docs/editing.md",
                       description="For each generator: per attribute (hair lightness, skin tone, eye colour, mouth "
                                   "width, and smile with --smile-regressor) a learned direction in the part's codes "
                                   "vs the whole latent, InterFaceGAN and SeFa, each evaluated on the same samples; "
                                   "and the eye-colour experiment (eyes' codes vs skin+hair codes vs query space). "
                                   "Writes OUT/<label>/..., OUT/editing.json and a markdown page.")
    p.add_argument("--generator", action="append", help="generator/run folder (repeat)")
    p.add_argument("--labels", type=lambda t: [x.strip() for x in t.split(",") if x.strip()])
    p.add_argument("--combine", nargs="+", metavar="OUT",
                   help="instead of running: one markdown page (--markdown) from study folders run separately")
    p.add_argument("--combine-command", help="with --combine: the command line(s) to print as 'Regenerate'")
    p.add_argument("--out", required=True)
    p.add_argument("--markdown", help="markdown page (default OUT/README.md)")
    p.add_argument("--smile-regressor", help="folder of a mouth.smile regressor (`edit train-assessor`)")
    p.add_argument("--n", type=_positive, default=500, help="evaluation samples per direction (default 500)")
    p.add_argument("--steps", type=_positive, default=300)
    p.add_argument("--batch", type=_positive, default=8)
    p.add_argument("--lr", type=float, default=0.005)
    p.add_argument("--interfacegan-n", type=_positive, default=2000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=_positive)
    from memorygan.editing.report import run_report_cli
    p.set_defaults(func=run_report_cli)


def _setup(args):
    if getattr(args, "threads", None):
        import torch
        torch.set_num_threads(args.threads)
    from memorygan import load

    return load(args.generator, device=args.device)[0]


def _assessor(args, G, spec=None):
    from memorygan.editing.assessors import get_assessor

    return get_assessor(spec or args.assessor, G, probe=args.probe, data=args.data)


def _parts(args):
    return [p.strip() for p in args.parts.split(",") if p.strip()] if args.parts else None


def _save(direction, out) -> int:
    from memorygan.editing.directions import save_direction

    path = save_direction(direction, out)
    info = {k: v for k, v in direction.info.items() if k not in ("curve", "eigenvalues")}
    print(f"{direction.describe()}: scale {direction.scale:.4g}; {json.dumps(info)}")
    print(f"wrote {path}")
    return 0


def run_assessors(args) -> int:
    from memorygan.editing.assessors import assessor_infos

    for info in assessor_infos():
        parts = {"required": "  (needs :PARTS)", "optional": "  (optional :PARTS)"}.get(info.parts, "")
        print(f"{info.name:<24} {info.summary}{parts}")
    return 0


def run_train_assessor(args) -> int:
    if args.threads:
        import torch
        torch.set_num_threads(args.threads)
    from memorygan.editing.regressor import train_assessor

    rep = train_assessor(args.data, args.attribute, args.out, steps=args.steps, batch=args.batch, lr=args.lr,
                         seed=args.seed, device=args.device, flip=False if args.no_flip else None,
                         progress=not args.no_progress)
    print(f"{rep.attribute} ({rep.kind}): held-out {json.dumps(rep.heldout)}; {rep.seconds:.0f} s")
    print(f"wrote {rep.path} (use as --assessor regressor:{rep.path})")
    return 0


def run_learn(args) -> int:
    from memorygan.editing.directions import learn_direction

    G = _setup(args)
    d = learn_direction(G, _assessor(args, G), args.space, _parts(args), args.layers, args.steps, args.batch,
                        args.lr, args.seed, args.truncation, scale_n=args.scale_samples,
                        progress=not args.no_progress)
    return _save(d, args.out)


def run_interfacegan(args) -> int:
    from memorygan.editing.baselines import interfacegan

    G = _setup(args)
    cond = _assessor(args, G, args.condition) if args.condition else None
    d = interfacegan(G, _assessor(args, G), args.space, _parts(args), args.layers, args.n, args.fraction, cond,
                     args.seed, args.truncation)
    return _save(d, args.out)


def run_sefa(args) -> int:
    from memorygan.editing.baselines import sefa
    from memorygan.errors import ConfigError

    if args.space != "parts":
        raise ConfigError("SeFa directions live in the parts space (--space parts)")
    G = _setup(args)
    return _save(sefa(G, _assessor(args, G), _parts(args), args.layers, args.num, args.seed, args.truncation),
                 args.out)


def run_apply(args) -> int:
    from memorygan.editing.apply import write_apply
    from memorygan.editing.codes import load_codes
    from memorygan.editing.directions import codes_source, load_direction, seed_source

    G = _setup(args)
    d = load_direction(args.direction, G)
    if args.codes:
        codes = load_codes(args.codes, G, allow_other_generator=False)
        source, names = codes_source(codes), codes.names or None
    else:
        seeds = args.seeds or [0, 1, 2]
        psi = d.truncation if args.truncation is None else args.truncation
        source, names = seed_source(G, seeds, psi), [f"seed {s}" for s in seeds]
    rec = write_apply(G, d, source, args.alphas, args.out, names)
    print(f"wrote {rec['png']}, {rec['codes']}, {rec['json']}")
    return 0


def run_evaluate(args) -> int:
    from pathlib import Path

    from memorygan.analysis.figures import write_json
    from memorygan.editing.assessors import get_assessor
    from memorygan.editing.directions import load_direction
    from memorygan.editing.evaluate import evaluate_direction, evaluation_figure
    from memorygan.metrics.jsonl import jsonable

    G = _setup(args)
    d = load_direction(args.direction, G)
    A = get_assessor(d.assessor, G, probe=args.probe, data=args.data)
    targets = [p.strip() for p in args.target_parts.split(",")] if args.target_parts else None
    rec = evaluate_direction(G, d, A, args.n, args.alphas, args.seed, target_parts=targets,
                             progress=not args.no_progress)
    out = Path(args.out)
    write_json(jsonable(rec), out / "evaluation.json")
    evaluation_figure(rec, out / "evaluation.png")
    if args.json:
        print(json.dumps(jsonable(rec), indent=2))
        return 0
    at = rec["at"]
    print(f"{rec['direction']} over {rec['n']} samples")
    print(f"  slope {rec['slope']:.3f} (1 = as asked)   spearman {rec['spearman']:.3f}   monotone "
          f"{rec['monotone_fraction']:.2f}")
    print(f"  at alpha {at['alpha']:g}: score gain {at['score_gain']:.3f} spreads, preserved outside "
          f"{100 * at['preserved_outside']:.2f}% (target: {', '.join(rec['target_parts']) or 'none'}), non-target "
          f"mIoU {at['seg_miou_nontarget']:.3f}, attribute leakage {rec['attribute_leakage_mean']:.3f}")
    print(f"wrote {out / 'evaluation.json'} and {out / 'evaluation.png'}")
    return 0
