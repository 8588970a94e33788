"""CLI: `memorygan analyze compose|mix|interpolate|embed|correlate|dependencies|report` (MemoryGAN Sec. 4.5 analyses, DESIGN 5).

Each subcommand loads the generator and calls one `write_*` function of `memorygan.analysis`, which writes the
PNG(s) and a JSON/.npz of the numbers behind them into --out.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from memorygan.argtypes import positive_int as _positive
from memorygan.argtypes import seed_list as _seeds
from memorygan.devices import add_device_argument


def _names(text: str) -> list[str]:
    """Comma-separated part names or ids (checked against the generator by the library); "none" = no parts."""
    return [] if text.strip().lower() == "none" else [p.strip() for p in text.split(",") if p.strip()]


def _spaces(text: str) -> list[str]:
    return [p.strip() for p in text.split(",") if p.strip()]


PARTS_HELP = "comma-separated part names or ids, e.g. skin,hair or 1,7"


def register(subparsers) -> None:
    from memorygan.analysis.mix import LARGE_PARTS, MODES

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--generator", required=True,
                        help="generator folder, checkpoint folder or training run folder (newest checkpoint)")
    common.add_argument("--out", required=True, help="output folder for the PNG(s) and JSON/.npz")
    common.add_argument("--truncation", type=float, default=1.0, help="psi in latent space (default 1: none)")
    add_device_argument(common)
    common.add_argument("--threads", type=_positive, help="torch CPU threads (default: torch's choice)")

    rules = argparse.ArgumentParser(add_help=False)
    rules.add_argument("--mode", choices=MODES, default="both",
                       help="layers of a part that move: shape (plus the last base layer for small parts), texture, "
                            "or both (the paper's rule; default)")
    rules.add_argument("--large-parts", type=_names,
                       help=f"parts treated as large, whose base layers never move ({PARTS_HELP}; 'none': no large "
                            f"parts). "
                            f"Default: those of {', '.join(LARGE_PARTS)} the generator has")

    analyze = subparsers.add_parser(
        "analyze", help="analysis figures: composition, style mixing, interpolation, t-SNE, correlation",
        description="Analyses of a trained generator (MemoryGAN paper Sec. 4.5, Figs. 9, 11-14). Each writes "
                    "PNG(s) and the numbers behind them (JSON, .npz) into --out.")
    sub = analyze.add_subparsers(dest="analyze_command", metavar="ANALYSIS")
    sub.required = True

    p = sub.add_parser("compose", parents=[common], help="sequential composition (image, depth, mask rows)",
                       description="Render each sample with parts added one at a time (Fig. 9): per seed an image "
                                   "row, the coarse depth of the part just added, and the mask. Writes compose.png "
                                   "and compose.json (part areas, image change per added part).")
    p.add_argument("--seeds", type=_seeds, default=list(range(4)), help="e.g. 0-3 or 1,5,9 (default 0-3)")
    p.add_argument("--order", type=_names, help=f"order in which parts are added ({PARTS_HELP}; default: id order)")
    p.set_defaults(func=run_compose)

    p = sub.add_parser("mix", parents=[common, rules], help="part-level style mixing grid",
                       description="Each target sample takes one part's codes from each source sample (Fig. 11). "
                                   "Swap rules: background all layers; large parts shape + texture layers; small "
                                   "parts the last base layer + shape + texture. Writes mix-MODE-PART.png per part "
                                   "and mix-MODE.json (swapped layers, image change inside/outside the part).")
    p.add_argument("--target-seeds", type=_seeds, default=list(range(4)), help="rows (default 0-3)")
    p.add_argument("--source-seeds", type=_seeds, default=list(range(4, 8)), help="columns (default 4-7)")
    p.add_argument("--parts", type=_names, help=f"parts to mix ({PARTS_HELP}; default: all, one grid each)")
    p.add_argument("--together", action="store_true", help="one grid swapping all --parts at once")
    p.set_defaults(func=run_mix)

    p = sub.add_parser("interpolate", parents=[common, rules], help="whole-image and per-part interpolation",
                       description="Interpolate from the sample of seed A to that of seed B (Fig. 12): the whole "
                                   "image, and each part on its own over its swap layers (the mixing rules). "
                                   "Writes interpolate-A-B.png and interpolate-A-B.json (per-step image change).")
    p.add_argument("--seeds", type=int, nargs=2, metavar=("A", "B"), default=[0, 1], help="the two end samples")
    p.add_argument("--steps", type=_positive, default=7, help="images per row, end points included (default 7)")
    p.add_argument("--parts", type=_names, help=f"parts to interpolate ({PARTS_HELP}; default all; 'none': only "
                                                f"the whole image)")
    p.add_argument("--no-whole", action="store_true", help="leave out the whole-image row")
    p.set_defaults(func=run_interpolate)

    spaces_help = ("code spaces, comma-separated: query (MemoryGAN only), latent (default: every space the "
                   "generator has)")
    p = sub.add_parser("embed", parents=[common], help="t-SNE of per-part query and latent codes",
                       description="t-SNE of the per-part codes of --num samples, coloured by part (Fig. 13). "
                                   "Query codes exist only in MemoryGAN; SSG latent codes are the part's shape and "
                                   "texture W+ codes concatenated. Writes embed.png, embed.npz (2-D points, part "
                                   "and sample of each) and embed.json.")
    p.add_argument("--num", type=_positive, default=1000, help="samples (points = num x K; default 1000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random codes")
    p.add_argument("--spaces", type=_spaces, help=spaces_help)
    p.add_argument("--perplexity", type=float, default=30.0, help="t-SNE perplexity (default 30)")
    p.add_argument("--random-state", type=int, default=0, help="t-SNE random state (default 0)")
    p.set_defaults(func=run_embed)

    p = sub.add_parser("correlate", parents=[common], help="cosine similarity between parts' codes",
                       description="Per sample the K x K cosine similarity between the parts' codes; mean and "
                                   "std over --num samples (Fig. 14: means on top, stds below; query space left). "
                                   "Writes correlate.png and correlate.json.")
    p.add_argument("--num", type=_positive, default=10000, help="samples (default 10000, as the paper)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random codes")
    p.add_argument("--spaces", type=_spaces, help=spaces_help)
    p.set_defaults(func=run_correlate)

    p = sub.add_parser("dependencies", help="part dependencies (pigment, smile), real images vs samples",
                       description="Correlations between measures of parts (skin, hair and eye lightness, eye "
                                   "blueness, mouth width, eye height) over real images with their masks and over "
                                   "samples of each generator with their own masks, beside the ground truth of the "
                                   "dataset's attributes.jsonl: which dependencies between parts a model reproduces. "
                                   "Needs a portraits-like dataset (parts skin, hair, eyes, mouth). Writes "
                                   "dependencies.json and dependencies.md.")
    p.add_argument("--generator", action="append", required=True,
                   help="generator, checkpoint or run folder (repeat to compare several)")
    p.add_argument("--labels", type=_spaces, help="comma-separated labels, one per --generator")
    p.add_argument("--data", required=True, help="the real dataset folder")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--num", type=_positive, default=1000, help="real images and samples per model (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the samples")
    p.add_argument("--truncation", type=float, default=1.0, help="truncation psi (default %(default)s: none)")
    add_device_argument(p)
    p.add_argument("--threads", type=_positive, help="torch CPU threads (default: torch's choice)")
    p.set_defaults(func=run_dependencies)

    p = sub.add_parser("report", help="evaluation report comparing trained runs (Tables 2-3, Figs. 9-14)",
                       description="Evaluate each training run's newest checkpoint: domain FID/KID and mask "
                                   "consistency (plus Inception FID/KID/IS with --inception-weights), SMSE and "
                                   "leakage per part, and the composition / mixing / interpolation / t-SNE / "
                                   "correlation figures; writes OUT/<label>/, OUT/smse.png, OUT/leakage.png, "
                                   "OUT/evaluation.json and a markdown page.")
    p.add_argument("runs", nargs="+", metavar="RUN", help="training run folders")
    p.add_argument("--labels", type=_spaces, help="comma-separated labels, one per run (default: folder names)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--markdown", help="markdown page (default OUT/README.md)")
    p.add_argument("--data", help="dataset folder (default: each run's training data)")
    p.add_argument("--num", type=_positive, default=1000, help="samples for the fidelity metrics (default 1000)")
    p.add_argument("--num-smse", type=_positive, default=1000, help="samples for SMSE (default 1000; paper 10000)")
    p.add_argument("--num-leakage", type=_positive, default=500, help="samples for leakage (default 500)")
    p.add_argument("--num-embed", type=_positive, default=300, help="samples for t-SNE (default 300)")
    p.add_argument("--num-correlate", type=_positive, default=2000, help="samples for correlation (default 2000)")
    p.add_argument("--inception-weights", help="FID Inception weights file (adds fid, kid, is)")
    p.add_argument("--truncation", type=float, default=1.0, help="truncation psi (default %(default)s: none)")
    add_device_argument(p)
    p.add_argument("--threads", type=_positive, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run_report)


def _load(args):
    from memorygan import load

    return load(args.generator, device=args.device)[0]


def _report(paths) -> int:
    for path in paths:
        print(f"wrote {path}")
    return 0


def run_compose(args) -> int:
    from memorygan.analysis import write_composition

    rec = write_composition(_load(args), args.out, args.seeds, args.order, args.truncation)
    return _report([rec["png"], rec["json"]])


def run_mix(args) -> int:
    from memorygan.analysis import write_mixing

    rec = write_mixing(_load(args), args.out, args.target_seeds, args.source_seeds, args.parts, args.mode,
                       args.truncation, args.large_parts, args.together)
    return _report([f["png"] for f in rec["figures"]] + [rec["json"]])


def run_interpolate(args) -> int:
    from memorygan.analysis import write_interpolation

    rec = write_interpolation(_load(args), args.out, args.seeds[0], args.seeds[1], args.steps, args.parts,
                              not args.no_whole, args.mode, args.truncation, args.large_parts)
    return _report([rec["png"], rec["json"]])


def run_embed(args) -> int:
    from memorygan.analysis import write_embedding

    rec = write_embedding(_load(args), args.out, args.num, args.seed, args.spaces, args.truncation,
                          args.random_state, args.perplexity)
    return _report([rec["png"], rec["npz"], rec["json"]])


def run_correlate(args) -> int:
    from memorygan.analysis import write_correlation

    rec = write_correlation(_load(args), args.out, args.num, args.seed, args.spaces, args.truncation)
    return _report([rec["png"], rec["json"]])


def run_dependencies(args) -> int:
    from memorygan.analysis.dependencies import write_dependencies
    from memorygan.models import load_generators

    gens = load_generators(args.generator, args.labels, args.device)
    rec = write_dependencies(args.out, args.data, gens, args.num, args.seed, args.truncation)
    print((Path(args.out) / "dependencies.md").read_text(), end="")
    return _report([rec["json"]])


def run_report(args) -> int:
    import shlex
    import sys

    from memorygan.analysis.report import write_evaluation_report

    command = "memorygan " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:2] == ["analyze"] else None
    write_evaluation_report(args.runs, args.labels, args.out, args.markdown, args.data, args.num, args.num_smse,
                            args.num_leakage, args.num_embed, args.num_correlate, args.inception_weights,
                            args.truncation, progress=not args.no_progress, command=command,
                            device=args.device)
    return 0
