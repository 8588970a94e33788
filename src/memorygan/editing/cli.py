"""CLI: `memorygan edit assessors|train-assessor|learn|interfacegan|sefa|apply|evaluate` (DESIGN 6)."""
from __future__ import annotations

import argparse
import json

from memorygan.argtypes import positive_int as _positive
from memorygan.argtypes import seed_list as _seeds
from memorygan.devices import add_device_argument
from memorygan.editing.directions import check_alpha
from memorygan.errors import ConfigError


def _alphas(text: str) -> list[float]:
    try:
        values = [float(a) for a in text.split(",") if a.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"alphas must be comma-separated numbers, got {text!r}") from None
    for a in values:
        try:
            check_alpha(a)
        except ConfigError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
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
    common.add_argument("--generator", required=True, help="generator, checkpoint or training run folder, or a shipped name "
                        "(`memorygan pretrained list`)")
    add_device_argument(common)
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
    space.add_argument("--seed", type=int, default=0, help="random seed (default %(default)s)")

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
    p.add_argument("--steps", type=_positive, default=2000, help="optimisation steps (default %(default)s)")
    p.add_argument("--batch", type=_positive, default=32, help="batch size (default %(default)s)")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default %(default)s)")
    p.add_argument("--no-flip", action="store_true", help="no x-flip augmentation (default: flip unless the "
                                                          "attribute changes under a mirror, e.g. pose.yaw)")
    add_device_argument(p)
    p.add_argument("--threads", type=_positive, help="torch CPU threads (default: from the idle cores)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run_train_assessor)

    p = sub.add_parser("learn", parents=[common, scorer, space], help="learn a direction (GANalyze)",
                       description="Learn theta so that A(G(w + alpha theta)) = A(G(w)) + alpha * spread, alpha ~ "
                                   "U[-0.5, 0.5] (GANalyze Eq. 3.1), with Adam; writes direction.safetensors and "
                                   "direction.json (with the training curve) into --out.")
    p.add_argument("--out", required=True,
                   help="direction folder to write (a direction folder there is replaced; anything else is refused "
                        "before any work)")
    p.add_argument("--steps", type=_positive, default=300, help="optimisation steps (default %(default)s)")
    p.add_argument("--batch", type=_positive, default=8, help="samples per step (default 8; GANalyze 4)")
    p.add_argument("--lr", type=float, default=0.005, help="Adam lr (default 0.005; GANalyze 2e-4 for BigGAN's z)")
    p.add_argument("--scale-samples", type=_positive, default=256,
                   help="samples that measure the assessor's spread (default 256)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run_learn)

    p = sub.add_parser("interfacegan", parents=[common, scorer, space], help="InterFaceGAN direction (linear SVM)",
                       description="Normal of a linear SVM separating the codes of the top and bottom --fraction of "
                                   "--n samples by the assessor; with --condition, the normal of a second assessor "
                                   "is projected out. Calibrated to the learned directions' scale.")
    p.add_argument("--out", required=True,
                   help="direction folder to write (a direction folder there is replaced; anything else is refused "
                        "before any work)")
    p.add_argument("--n", type=_positive, default=2000, help="samples (default %(default)s)")
    p.add_argument("--fraction", type=float, default=0.3,
                   help="the top and bottom fraction of the samples are the SVM's two classes (default %(default)s)")
    p.add_argument("--condition", help="assessor kept fixed (conditional editing)")
    p.set_defaults(func=run_interfacegan)

    p = sub.add_parser("sefa", parents=[common, scorer, space], help="SeFa direction (closed form, per part)",
                       description="Top eigenvectors of the modulation weights of the parts' local layers; keeps the "
                                   "one of the top --num that moves the assessor most. Parts space only.")
    p.add_argument("--out", required=True,
                   help="direction folder to write (a direction folder there is replaced; anything else is refused "
                        "before any work)")
    p.add_argument("--num", type=_positive, default=5,
                   help="top eigenvectors considered, per part (default %(default)s)")
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
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--allow-other-generator", action="store_true",
                   help="use a direction learned on another generator of the same architecture (e.g. the generator "
                        "a PTI inversion tuned from the one the direction was learned on)")
    p.set_defaults(func=run_apply)

    p = sub.add_parser("evaluate", parents=[common], help="measure a direction (slope, Spearman, preservation)",
                       description="Slope, Spearman, monotone fraction, preserved pixels outside the target parts, "
                                   "non-target mask mIoU and attribute leakage over --n samples; writes "
                                   "evaluation.json and evaluation.png.")
    p.add_argument("--direction", required=True, help="direction folder (`memorygan edit learn|interfacegan|sefa`)")
    p.add_argument("--n", type=_positive, default=500, help="samples (default %(default)s)")
    p.add_argument("--alphas", type=_alphas, default=[-0.5, -0.25, 0.0, 0.25, 0.5],
                   help="comma-separated alphas (default %(default)s)")
    p.add_argument("--target-parts", help="parts whose pixels may change (default: the direction's or assessor's)")
    p.add_argument("--probe", help="probe folder for probe:CLASS assessors")
    p.add_argument("--data", help="dataset folder (its probe)")
    p.add_argument("--seed", type=int, default=12345, help="random seed (default %(default)s)")
    p.add_argument("--out", required=True, help="output folder")
    judge_arguments(p)
    p.add_argument("--judge", metavar="ATTRIBUTE[:CLASS]",
                   help="with --judges: the regressor that grades the attribute gain, e.g. hair.lightness or "
                        "eyes.color:blue (reported beside the direction's own assessor)")
    p.add_argument("--json", action="store_true", help="print the record as JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--allow-other-generator", action="store_true",
                   help="use a direction learned on another generator of the same architecture (e.g. the generator "
                        "a PTI inversion tuned from the one the direction was learned on)")
    p.set_defaults(func=run_evaluate)

    _register_report(sub)
    from memorygan.editing import spatial_cli
    spatial_cli.register(sub, common)
    _register_text(sub, common)


def judge_arguments(p) -> None:
    """--judges / --judge-probe: what grades an edit without taking part in it (editing.judges)."""
    p.add_argument("--judges", metavar="DIR",
                   help="judges that took no part in the edit: a folder of ground-truth regressors, one "
                        "`edit train-assessor` output per attribute (DIR/hair.lightness, DIR/eyes.color, ...)")
    p.add_argument("--judge-probe", metavar="DIR",
                   help="segmentation probe (`memorygan probe train`, or DATA/probe) whose masks judge the region "
                        "that may change and the non-target mIoU, instead of the generator's own segmentation")


def _judges(args, G):
    from memorygan.editing.judges import Judges

    if not (getattr(args, "judges", None) or getattr(args, "judge_probe", None)):
        return None
    return Judges(G, regressors=args.judges, probe=args.judge_probe)


def _register_text(sub, common) -> None:
    """`edit text`, `edit region`, `edit phrases` (text and region edits, DESIGN 6)."""
    from memorygan.editing.region import (ADAM_LR, ADAM_STEPS, BASES, BATCH as REGION_BATCH, CMA_ITERS, LAMBDA_IMG,
                                          OPTIMIZERS, POPSIZE, SIGMA0)
    from memorygan.editing.scorers import SCORERS
    from memorygan.editing.text import (LAMBDA_ID, LAMBDA_L2, LAMBDA_SEG, LR, SEG_LOSS, SEG_LOSSES, SEG_NORM,
                                        SEG_NORMS, SEG_ON, STEPS, TEXT_SPACES)

    text = argparse.ArgumentParser(add_help=False)
    text.add_argument("--prompt", required=True, help="the text to edit towards, e.g. \"a person with red hair\"")
    text.add_argument("--scorer", choices=SCORERS, default="attributes",
                      help="attributes: offline attribute words (see `memorygan edit phrases`); clip: a local CLIP "
                           "folder (default attributes)")
    text.add_argument("--clip", help="CLIP folder in the transformers format (default: $MEMORYGAN_CLIP)")
    text.add_argument("--crops", type=int, default=8, help="CLIP: random crops per step (default 8)")
    text.add_argument("--phrases", help="a phrases table (`memorygan edit phrases --calibrate --out T.json`) or a "
                                        "JSON file of extra phrases {\"phrase\": [\"group\", \"class\"]}")
    text.add_argument("--colour-space", choices=["lab", "rgb"], default="lab",
                      help="attribute scorer: colour space of its colour features (default lab)")
    text.add_argument("--held-out", help="a second scorer measured but not optimised: rgb / lab (the attribute "
                                         "scorer in that colour space) or an assessor spec (e.g. regressor:DIR:red)")
    src = text.add_mutually_exclusive_group()
    src.add_argument("--seeds", type=_seeds, help="images to edit: generated seeds, e.g. 0-3 (default 0)")
    src.add_argument("--codes", help="images to edit: a codes file (e.g. from `memorygan invert`)")
    text.add_argument("--truncation", type=float, default=1.0, help="psi of --seeds samples (default 1)")
    text.add_argument("--layers", choices=["shape", "texture", "both"], default="both",
                      help="the parts' shape codes, texture codes or both (default)")
    text.add_argument("--seed", type=int, default=0, help="random crops / CMA-ES seed (default 0)")
    text.add_argument("--out", required=True,
                   help="output folder")
    text.add_argument("--no-progress", action="store_true", help="no progress bar")
    judge_arguments(text)

    p = sub.add_parser("text", parents=[common, text], help="text-guided part edit (StyleCLIP, MemoryGAN Eq. 16-18)",
                       description="Optimise only the selected parts' codes (or MemoryGAN query codes) so the image "
                                   "matches the prompt: L = D_score + lambda_L2 ||w - w_s||^2 (+ lambda_ID L_ID with "
                                   "--identity) + lambda_seg ||seg - seg_s||^2. Writes before/after images and "
                                   "masks, a difference map, strip.png, edited-codes.safetensors and metrics.json.")
    p.add_argument("--parts", required=True, help="comma-separated parts whose codes may change, e.g. hair or "
                                                  "skin,hair")
    p.add_argument("--space", choices=TEXT_SPACES, default="parts",
                   help="parts: the parts' own codes; query: MemoryGAN query codes in the working memory")
    p.add_argument("--steps", type=_positive, default=STEPS, help=f"Adam steps (default {STEPS}, StyleCLIP)")
    p.add_argument("--lr", type=float, default=LR, help=f"peak lr of the cosine ramp (default {LR})")
    p.add_argument("--batch", type=_positive, default=64,
                   help="images edited at a time (memory; every image is edited on its own, default %(default)s)")
    p.add_argument("--lambda-l2", type=float, default=LAMBDA_L2, help=f"default {LAMBDA_L2} (StyleCLIP)")
    p.add_argument("--lambda-seg", type=float, default=LAMBDA_SEG,
                   help=f"Eq. 18 segmentation term; 0 turns it off (default {LAMBDA_SEG}, docs/text-edits.md)")
    p.add_argument("--seg-on", choices=SEG_ON, default="all",
                   help="seg term over every pixel (Eq. 18) or only outside the target parts (for shape phrases)")
    p.add_argument("--seg-norm", choices=SEG_NORMS, default=SEG_NORM,
                   help=f"pixels: mean over the pixels (Eq. 18 as written); parts: mean over each part's pixels, then "
                        f"over the parts, so small parts weigh as much as large ones (default {SEG_NORM})")
    p.add_argument("--seg-loss", choices=SEG_LOSSES, default=SEG_LOSS,
                   help=f"l2: squared change of the seg logits (Eq. 18); margin: only a pixel's move towards another "
                        f"label than the source's costs (default {SEG_LOSS}; Eq. 18 exactly: --seg-loss l2 --seg-norm "
                        f"pixels --lambda-seg 100)")
    p.add_argument("--identity", help="identity network MODULE:CALLABLE (image -> embedding) for Eq. 17; off without")
    p.add_argument("--lambda-id", type=float, default=LAMBDA_ID,
                   help="weight of the loss that keeps the image outside the edited parts (default %(default)s)")
    p.set_defaults(func=run_text)

    p = sub.add_parser("region", parents=[common, text], help="region edit (Paint-by-Word: split generator, CMA-ES)",
                       description="Edit only a painted region: the optimised codes act inside the blurred mask "
                                   "and the source codes outside (blended in the fused map and at every render "
                                   "layer); scorer inside, L1 + SSIM consistency outside; CMA-ES then Adam. "
                                   "Writes the outputs of `edit text` plus region.png; metrics.json adds "
                                   "psnr_outside.")
    p.add_argument("--mask", help="PNG at the generator's resolution: white = edit, black = keep")
    p.add_argument("--parts", help="the region (without --mask) and the codes that move (default with --mask: the "
                                   "parts covering >= 5%% of it)")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default="cma+adam",
                   help="cma+adam (CMA-ES, then Adam; default), cma or adam (thesis Sec. 4.3.3)")
    p.add_argument("--basis", choices=BASES, default="pca",
                   help="CMA-ES search space: principal directions of the parts' codes (default) or every code "
                        "dimension")
    p.add_argument("--components", type=_positive, default=16, help="pca: directions per part and role (default 16)")
    p.add_argument("--popsize", type=_positive, default=POPSIZE, help=f"CMA-ES population (default {POPSIZE})")
    p.add_argument("--sigma0", type=float, default=SIGMA0, help=f"CMA-ES initial step, in code spreads "
                                                                 f"(default {SIGMA0})")
    p.add_argument("--cma-iters", type=_positive, default=CMA_ITERS, help=f"default {CMA_ITERS}")
    p.add_argument("--adam-steps", type=int, default=ADAM_STEPS, help=f"default {ADAM_STEPS}")
    p.add_argument("--adam-lr", type=float, default=ADAM_LR, help=f"default {ADAM_LR}")
    p.add_argument("--lambda-img", type=float, default=LAMBDA_IMG,
                   help=f"weight of the consistency outside the region (default {LAMBDA_IMG})")
    p.add_argument("--blur", type=float, help="mask blur sigma in pixels (default 1 per 64 px)")
    p.add_argument("--batch", type=_positive, default=REGION_BATCH,
                   help="images optimised together (CMA-ES in lockstep, one Adam; each image is still edited on its "
                        "own: only speed, memory and float rounding change). Pays on a GPU (more rows per call), not "
                        "on a CPU (default %(default)s)")
    p.set_defaults(func=run_region)

    p = sub.add_parser("phrases", help="the attribute scorer's phrases (or calibrate them on a dataset)",
                       description="List the phrases of the attribute scorer with their group, class and how well "
                                   "the references classify the calibration images; with --calibrate, measure the "
                                   "references on a dataset with attributes.jsonl (--data) and write a table.")
    p.add_argument("--table", help="a phrases table (default: the built-in portraits table)")
    p.add_argument("--calibrate", action="store_true", help="measure the references on --data, write --out")
    p.add_argument("--data", help="dataset folder with attributes.jsonl (for --calibrate)")
    p.add_argument("--n", type=_positive, help="calibration images (default all)")
    p.add_argument("--out", help="table file to write (with --calibrate)")
    p.set_defaults(func=run_phrases)

    p = sub.add_parser("text-report", help="the text and region editing study of docs/text-edits.md",
                       description="For each generator on the same seeds: a lambda_seg sweep, six phrases through "
                                   "their parts' codes without and with the seg term, the eye-colour experiment "
                                   "(blue eyes through eyes vs skin+hair codes), region edits with CMA-ES + Adam vs "
                                   "Adam alone measured by a held-out scorer. Runs whose metrics.json exists are "
                                   "read back (resumable). Writes OUT/<label>/..., OUT/text-edits.json, "
                                   "OUT/fig17.png and a markdown page.")
    p.add_argument("--generator", action="append", required=True, help="generator/run folder or shipped name (repeat)")
    p.add_argument("--labels", type=lambda t: [x.strip() for x in t.split(",") if x.strip()],
                   help="comma-separated labels, one per --generator (default: the folder names)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--markdown", help="markdown page (default OUT/README.md)")
    p.add_argument("--seeds", type=_seeds, default=list(range(8)), help="images edited per run (default 0-7)")
    p.add_argument("--region-seeds", type=_seeds, help="images per region edit (default: --seeds)")
    p.add_argument("--steps", type=_positive, default=STEPS, help="optimisation steps (default %(default)s)")
    p.add_argument("--lambda-seg", type=float, default=LAMBDA_SEG, help="the seg weight of the 'with' runs")
    p.add_argument("--seg-loss", choices=SEG_LOSSES, default=SEG_LOSS, help="the seg term of every run (edit text)")
    p.add_argument("--seg-norm", choices=SEG_NORMS, default=SEG_NORM, help="the seg term of every run (edit text)")
    p.add_argument("--sweep", type=lambda t: [float(x) for x in t.split(",") if x.strip()],
                   default=[0, 100, 1000, 10000], help="lambda_seg values of the sweep (default 0,100,1000,10000)")
    p.add_argument("--held-out", default="rgb", help="held-out scorer (default rgb: the attribute scorer in RGB)")
    judge_arguments(p)
    p.add_argument("--colour-space", choices=["lab", "rgb"], default="lab",
                   help="attribute scorer: colour space of its colour features (default %(default)s)")
    p.add_argument("--popsize", type=_positive, default=POPSIZE, help="CMA-ES population (default %(default)s)")
    p.add_argument("--cma-iters", type=_positive, default=CMA_ITERS, help="CMA-ES iterations (default %(default)s)")
    p.add_argument("--adam-steps", type=int, default=ADAM_STEPS, help="Adam steps after CMA-ES (default %(default)s)")
    p.add_argument("--components", type=_positive, default=16,
                   help="PCA directions per part and role (default %(default)s)")
    p.add_argument("--lambda-img", type=float, default=LAMBDA_IMG,
                   help="weight of the image-consistency loss outside the region, thesis Eq. 4.10 (default %(default)s)")
    add_device_argument(p)
    p.add_argument("--threads", type=_positive, help="torch CPU threads (default: from the idle cores)")
    p.set_defaults(func=run_text_report)


def run_text_report(args) -> int:
    from memorygan.editing.text_report import write_text_report
    from memorygan.models import load_generators

    gens = load_generators(args.generator, args.labels, device=args.device)
    region_kw = {"popsize": args.popsize, "cma_iters": args.cma_iters, "adam_steps": args.adam_steps,
                 "components": args.components, "lambda_img": args.lambda_img}
    md = write_text_report(gens, args.out, seeds=args.seeds, markdown=args.markdown, steps=args.steps,
                           lambda_seg=args.lambda_seg, seg_loss=args.seg_loss, seg_norm=args.seg_norm,
                           sweep=args.sweep, region_seeds=args.region_seeds,
                           held_out=args.held_out, colour_space=args.colour_space, region_kw=region_kw,
                           judges=args.judges, judge_probe=args.judge_probe)
    print(f"wrote {md}")
    return 0


def _source(args, G):
    from memorygan.editing.codes import load_codes
    from memorygan.editing.directions import codes_source, seed_source

    if args.codes:
        codes = load_codes(args.codes, G)
        return codes_source(codes), codes.names or [f"image {i}" for i in range(len(codes))]
    seeds = args.seeds or [0]
    return seed_source(G, seeds, args.truncation), [f"seed {s}" for s in seeds]


def _text_scores(args, G):
    from memorygan.editing.scorers import held_out_score, text_score

    score = text_score(args.scorer, args.prompt, G, clip=args.clip, phrases=args.phrases,
                       colour_space=args.colour_space, crops=args.crops)
    held = held_out_score(args.held_out, args.prompt, G, phrases=args.phrases) if args.held_out else None
    return score, held


def _print_summary(record: dict, out) -> None:
    s = record["summary"]
    line = [f"{record['edit']} edit {record['prompt']!r} on {s['n']} image(s): loss {s['loss_before']:.3f} -> "
            f"{s['loss_after']:.3f}, score {s['score_before']:.3f} -> {s['score_after']:.3f}"]
    if "success_after" in s:
        line.append(f"satisfied {100 * s['success_before']:.0f}% -> {100 * s['success_after']:.0f}%")
    line.append(f"preserved outside {100 * s['preserved_outside']:.2f}%, non-target mIoU "
                f"{s['seg_miou_nontarget']:.3f}, PSNR outside {s['psnr_outside']:.1f} dB")
    if "held_out_after" in s:
        line.append(f"held-out {s['held_out_before']:.3f} -> {s['held_out_after']:.3f}")
    if "judge_satisfied_after" in s:
        line.append(f"judged (regressors): satisfied {100 * s['judge_satisfied_before']:.0f}% -> "
                    f"{100 * s['judge_satisfied_after']:.0f}%, of the {s['judge_satisfied_unsatisfied_before']} "
                    f"unsatisfied before: {100 * s['judge_satisfied_over_unsatisfied']:.0f}%"
                    if s["judge_satisfied_unsatisfied_before"] else "judged (regressors): every image satisfied "
                    "the phrase before the edit")
    if "judge_seg_miou_nontarget" in s:
        line.append(f"judged (probe masks): preserved outside {100 * s['judge_preserved_outside']:.2f}%, non-target "
                    f"mIoU {s['judge_seg_miou_nontarget']:.3f}")
    print("; ".join(line))
    print(f"wrote {out}/ (strip.png, metrics.json, edited-codes.safetensors)")


def run_text(args) -> int:
    from memorygan.editing.text import identity_network, run_text_edit

    G = _setup(args)
    source, names = _source(args, G)
    score, held = _text_scores(args, G)
    identity = identity_network(args.identity)
    if identity is None:
        print("identity term off (no identity network given; --identity MODULE:CALLABLE turns Eq. 17 on)")
    record = run_text_edit(G, source, names, score, args.out, held_out=held, judges=_judges(args, G),
                           parts=_parts(args), layers=args.layers,
                           space=args.space, steps=args.steps, lr=args.lr, lambda_l2=args.lambda_l2,
                           lambda_seg=args.lambda_seg, seg_on=args.seg_on, seg_norm=args.seg_norm,
                           seg_loss=args.seg_loss,
                           identity=identity,
                           lambda_id=args.lambda_id, truncation=args.truncation, seed=args.seed,
                           batch=args.batch, progress=not args.no_progress)
    _print_summary(record, args.out)
    return 0


def run_region(args) -> int:
    from memorygan.editing.region import read_mask, run_region_edit

    G = _setup(args)
    mask = read_mask(args.mask, G.config.resolution) if args.mask else None
    source, names = _source(args, G)
    score, held = _text_scores(args, G)
    record = run_region_edit(G, source, names, score, args.out, held_out=held, judges=_judges(args, G), mask=mask,
                             parts=_parts(args),
                             layers=args.layers, optimizer=args.optimizer, basis=args.basis,
                             components=args.components, popsize=args.popsize, sigma0=args.sigma0,
                             cma_iters=args.cma_iters, adam_steps=args.adam_steps, adam_lr=args.adam_lr,
                             lambda_img=args.lambda_img, blur=args.blur, seed=args.seed, batch=args.batch,
                             progress=not args.no_progress)
    _print_summary(record, args.out)
    return 0


def run_phrases(args) -> int:
    from memorygan.editing.phrases import PhraseBook, calibrate, load_phrasebook, phrase_table
    from memorygan.errors import ConfigError

    if args.calibrate:
        if not args.data or not args.out:
            raise ConfigError("--calibrate needs --data DIR (with attributes.jsonl) and --out TABLE.json")
        book = calibrate(PhraseBook(), data=args.data, n=args.n)
        print(f"wrote {book.save(args.out)} (calibrated on {book.source})")
    else:
        book = load_phrasebook(args.table)
    print(f"references: {book.source}")
    for phrase, group, cls in phrase_table(book):
        ref = book.references.get(group, {}).get("lab")
        acc = ref.accuracy.get(cls) if ref is not None else None
        acc_text = f"  (calibration images of this class classified right: {100 * acc:.0f}%, lab)" if acc is not None \
            else ""
        print(f"{phrase:<22} {group} = {cls}{acc_text}")
    return 0


def _register_report(sub) -> None:
    from memorygan.editing.report import STUDY_PARTS

    p = sub.add_parser("report", help="the editing study of docs/editing.md",
                       description="For each generator: per attribute (hair lightness, skin tone, eye colour, mouth "
                                   "width, and smile with --smile-regressor) a learned direction in the part's codes "
                                   "vs the whole latent, InterFaceGAN and SeFa, each evaluated on the same samples; "
                                   "and the eye-colour experiment (eyes' codes vs skin+hair codes vs query space). "
                                   "Writes OUT/<label>/..., OUT/editing.json and a markdown page.")
    p.add_argument("--generator", action="append", help="generator/run folder or shipped name (repeat)")
    p.add_argument("--labels", type=lambda t: [x.strip() for x in t.split(",") if x.strip()],
                   help="comma-separated labels, one per --generator (default: the folder names)")
    p.add_argument("--combine", nargs="+", metavar="OUT",
                   help="instead of running: one markdown page (--markdown) from study folders run separately")
    p.add_argument("--combine-command", help="with --combine: the command line(s) to print as 'Regenerate'")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--markdown", help="markdown page (default OUT/README.md)")
    p.add_argument("--smile-regressor", help="folder of a mouth.smile regressor (`edit train-assessor`)")
    p.add_argument("--n", type=_positive, default=500, help="evaluation samples per direction (default 500)")
    p.add_argument("--steps", type=_positive, default=300, help="optimisation steps (default %(default)s)")
    p.add_argument("--batch", type=_positive, default=8, help="batch size (default %(default)s)")
    p.add_argument("--lr", type=float, default=0.005, help="Adam learning rate (default %(default)s)")
    p.add_argument("--interfacegan-n", type=_positive, default=2000,
                   help="samples for the InterFaceGAN baseline (default %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default %(default)s)")
    judge_arguments(p)
    p.add_argument("--methods", type=lambda t: [x.strip() for x in t.split(",") if x.strip()],
                   default=list(STUDY_PARTS),
                   help=f"comma-separated parts of the study to run (default all: {','.join(STUDY_PARTS)})")
    add_device_argument(p)
    p.add_argument("--threads", type=_positive, help="torch CPU threads (default: from the idle cores)")
    from memorygan.editing.report import run_report_cli
    p.set_defaults(func=run_report_cli)


def _setup(args):
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
    from memorygan.editing.regressor import train_assessor

    rep = train_assessor(args.data, args.attribute, args.out, steps=args.steps, batch=args.batch, lr=args.lr,
                         seed=args.seed, device=args.device, flip=False if args.no_flip else None,
                         progress=not args.no_progress)
    print(f"{rep.attribute} ({rep.kind}): held-out {json.dumps(rep.heldout)}; {rep.seconds:.0f} s")
    print(f"wrote {rep.path} (use as --assessor regressor:{rep.path})")
    return 0


def run_learn(args) -> int:
    from memorygan.editing.directions import check_direction_out, learn_direction

    check_direction_out(args.out)                       # before the training, not after it
    G = _setup(args)
    d = learn_direction(G, _assessor(args, G), args.space, _parts(args), args.layers, args.steps, args.batch,
                        args.lr, args.seed, args.truncation, scale_n=args.scale_samples,
                        progress=not args.no_progress)
    return _save(d, args.out)


def run_interfacegan(args) -> int:
    from memorygan.editing.baselines import interfacegan
    from memorygan.editing.directions import check_direction_out

    check_direction_out(args.out)
    G = _setup(args)
    cond = _assessor(args, G, args.condition) if args.condition else None
    d = interfacegan(G, _assessor(args, G), args.space, _parts(args), args.layers, args.n, args.fraction, cond,
                     args.seed, args.truncation)
    return _save(d, args.out)


def run_sefa(args) -> int:
    from memorygan.editing.baselines import sefa
    from memorygan.errors import ConfigError

    from memorygan.editing.directions import check_direction_out

    if args.space != "parts":
        raise ConfigError("SeFa directions live in the parts space (--space parts)")
    check_direction_out(args.out)
    G = _setup(args)
    return _save(sefa(G, _assessor(args, G), _parts(args), args.layers, args.num, args.seed, args.truncation),
                 args.out)


def run_apply(args) -> int:
    from memorygan.editing.apply import write_apply
    from memorygan.editing.codes import load_codes
    from memorygan.editing.directions import codes_source, load_direction, seed_source

    G = _setup(args)
    d = load_direction(args.direction, G, allow_other_generator=args.allow_other_generator)
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
    d = load_direction(args.direction, G, allow_other_generator=args.allow_other_generator)
    A = get_assessor(d.assessor, G, probe=args.probe, data=args.data)
    targets = [p.strip() for p in args.target_parts.split(",")] if args.target_parts else None
    judges = _judges(args, G)
    if args.judge and judges is None:
        raise ConfigError("--judge needs --judges DIR (the folder of ground-truth regressors)")
    rec = evaluate_direction(G, d, A, args.n, args.alphas, args.seed, target_parts=targets,
                             progress=not args.no_progress, judges=judges, judge=args.judge)
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
    jd = rec.get("judged")
    if jd:
        line = ["  judged (took no part):"]
        if "slope" in jd:
            line.append(f"{args.judge} slope {jd['slope']:.3f}, spearman {jd['spearman']:.3f}, gain at alpha "
                        f"{at['alpha']:g} {jd['at']['score_gain']:.3f} spreads;")
        if "preserved_outside" in jd:
            line.append(f"probe masks: preserved outside {100 * jd['at']['preserved_outside']:.2f}%, non-target mIoU "
                        f"{jd['at']['seg_miou_nontarget']:.3f}")
        print(" ".join(line))
    print(f"wrote {out / 'evaluation.json'} and {out / 'evaluation.png'}")
    return 0
