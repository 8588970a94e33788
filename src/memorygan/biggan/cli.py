"""`memorygan biggan ...`: train, resume, sample, evaluate and sweep a class-conditional BigGAN; train its domain
classifier; list presets. Each handler parses arguments and calls one library function."""
from __future__ import annotations

import argparse
import json
import sys

from memorygan.argtypes import non_negative_int, positive_float, positive_int, seed_list
from memorygan.devices import add_device_argument


def _numbers(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None
    if not values:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}")
    return values


def _floats(text: str) -> list[float]:
    values = _numbers(text)
    if min(values) <= 0:
        raise argparse.ArgumentTypeError(f"truncations must be > 0, got {text!r}")
    return values


def _alphas(text: str) -> list[float]:
    values = _numbers(text)
    if any(v == 0 for v in values):
        raise argparse.ArgumentTypeError(f"alphas must be non-zero numbers (0 is the source), got {text!r}")
    return values


def _override(text: str) -> tuple[str, object]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected FIELD=VALUE, got {text!r}")
    k, v = text.split("=", 1)
    try:
        return k.strip(), json.loads(v)
    except json.JSONDecodeError:
        return k.strip(), v


def register(subparsers) -> None:
    bg = subparsers.add_parser(
        "biggan", help="class-conditional BigGAN / BigGAN-deep: train, sample, evaluate (thesis ch. 2)",
        description="The thesis's own generator: a class-conditional BigGAN trained on image-level classes "
                    "(datasets with 'categories': `memorygan data synth categories`, `memorygan data import-classes`)."
                    " See docs/biggan.md.")
    sub = bg.add_subparsers(dest="biggan_command", metavar="BIGGAN_COMMAND")
    sub.required = True

    p = sub.add_parser("presets", help="list the presets with their sizes")
    p.set_defaults(func=cmd_presets)

    t = sub.add_parser("train", help="train a BigGAN (thesis Algorithm 1: accumulation, EMA, monitors)",
                       description="Train on a labelled dataset. Options left out come from the preset "
                                   "(`memorygan biggan presets`). With --resume RUN, continue a run.")
    t.add_argument("--data", help="labelled dataset folder")
    t.add_argument("--out", help="new run folder")
    t.add_argument("--resume", metavar="RUN", help="continue this run from its newest checkpoint")
    t.add_argument("--more-steps", type=positive_int, help="with --resume: train this many steps further")
    t.add_argument("--preset", default="biggan-small", help="preset name (default biggan-small)")
    t.add_argument("--set", dest="overrides", type=_override, action="append", default=[], metavar="FIELD=VALUE",
                   help="override a BigGANConfig field, e.g. --set g_ch=32 (repeatable)")
    t.add_argument("--steps", type=positive_int, help="iterations of Algorithm 1")
    t.add_argument("--kimg", type=positive_float, help="thousands of real images shown to D")
    t.add_argument("--minutes", type=positive_float, help="training time limit")
    t.add_argument("--batch", type=positive_int, help="micro-batch per process")
    t.add_argument("--accum", type=positive_int, help="accumulations for D and G (nDa = nGa)")
    t.add_argument("--d-accum", type=positive_int, help="D accumulations nDa")
    t.add_argument("--g-accum", type=positive_int, help="G accumulations nGa")
    t.add_argument("--d-steps", type=positive_int, help="D steps per G step nDs (thesis: 1 or 2)")
    t.add_argument("--lr-g", type=float, help="G learning rate (thesis 1e-4)")
    t.add_argument("--lr-d", type=float, help="D learning rate (thesis 4e-4)")
    t.add_argument("--ema-decay", type=float, help="EMA decay per step (thesis 0.9999)")
    t.add_argument("--ema-start", type=non_negative_int, help="EMA copies G until this step")
    t.add_argument("--ms-weight", type=float, default=0.0,
                   help="MSGAN's mode-seeking term in G's loss against one image per class (Mao et al. 2019; not "
                        "in the thesis; default 0: off)")
    t.add_argument("--no-mirror", dest="mirror", action="store_false", help="no x-flips")
    t.add_argument("--unconditional", action="store_true",
                   help="ignore the labels (one class): the unconditional baseline of a conditional model")
    t.add_argument("--seed", type=int, default=0, help="random seed (default %(default)s)")
    t.add_argument("--log-every", type=positive_int, default=20,
                   help="a stats.jsonl / sv.jsonl row every N steps (default %(default)s)")
    t.add_argument("--sample-every", type=non_negative_int, default=500,
                   help="a sample grid every N steps, 0: never (default %(default)s)")
    t.add_argument("--checkpoint-every", type=non_negative_int, default=500,
                   help="a checkpoint every N steps, 0: only the last (default %(default)s)")
    t.add_argument("--metrics-every", type=non_negative_int, default=0,
                   help="domain IS / FID / accuracy every N steps (0: never; trains DATA/classifier first if missing)")
    t.add_argument("--metrics-per-class", type=positive_int, default=50,
                   help="samples per class for the in-run metrics (default %(default)s)")
    t.add_argument("--classifier", help="domain classifier folder (default DATA/classifier)")
    t.add_argument("--keep", type=positive_int, default=5, help="checkpoints kept")
    t.add_argument("--threads", type=positive_int, help="torch CPU threads")
    t.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    add_device_argument(t)
    t.set_defaults(func=cmd_train)

    c = sub.add_parser("classifier", help="train the domain classifier of a labelled dataset (IS, FID, accuracy)",
                       description="Train the small CNN whose p(y|x) and pooled features give domain IS, FID, "
                                   "per-class accuracy and precision/recall; saved to DATA/classifier by default.")
    c.add_argument("--data", required=True, help="the labelled dataset folder")
    c.add_argument("--out", help="classifier folder (default DATA/classifier)")
    c.add_argument("--steps", type=positive_int, default=1500, help="optimisation steps (default %(default)s)")
    c.add_argument("--batch", type=positive_int, default=32, help="batch size (default %(default)s)")
    c.add_argument("--seed", type=int, default=0, help="random seed (default %(default)s)")
    c.add_argument("--quiet", action="store_true", help="no progress bar")
    add_device_argument(c)
    c.set_defaults(func=cmd_classifier)

    g = sub.add_parser("generate", help="a grid of samples: one row per class",
                       description="Sample a BigGAN generator (folder, checkpoint or run): one row per class, "
                                   "one column per seed.")
    g.add_argument("generator", help="BigGAN generator, checkpoint or run folder")
    g.add_argument("--out", required=True, help="output PNG")
    g.add_argument("--classes", help="comma-separated class names or indices (default: all, up to 16)")
    g.add_argument("--seeds", type=seed_list, default=list(range(8)), help="seeds, e.g. 0-7 or 1,5,9 (default 0-7)")
    g.add_argument("--truncation", type=float, default=None, help="truncation threshold (default: none)")
    add_device_argument(g)
    g.set_defaults(func=cmd_generate)

    e = sub.add_parser("evaluate", help="accuracy, IS, FID per class, precision/recall; --truncations for a sweep",
                       description="Evaluate with the dataset's domain classifier. With several --truncations, "
                                   "a sweep (thesis Figs. 2-4, 2-5), plotted with --plot.")
    e.add_argument("generator", help="BigGAN generator, checkpoint or run folder")
    e.add_argument("--data", required=True, help="the labelled dataset (real features)")
    e.add_argument("--classifier", help="classifier folder (default DATA/classifier)")
    e.add_argument("--per-class", type=positive_int, default=100, help="samples per class")
    e.add_argument("--truncations", type=_floats, default=None, help="e.g. 2,1,0.5,0.04 (default: none)")
    e.add_argument("--seed", type=int, default=123, help="random seed (default %(default)s)")
    e.add_argument("--plot", metavar="FILE.png", help="also write a figure (PNG)")
    e.add_argument("--out", metavar="FILE.json", help="write the results as JSON")
    add_device_argument(e)
    e.set_defaults(func=cmd_evaluate)

    d = sub.add_parser("direction", help="learn a GANalyze direction in z with the class held fixed (thesis ch. 3)",
                       description="Learn theta so that G(z + alpha theta, y) changes the assessor by alpha (in "
                                   "units of 2 std inside the classes, --scale), then judge it on held-out seeds: "
                                   "slope, Spearman, and how often the domain classifier keeps the class.")
    d.add_argument("generator", help="BigGAN generator, checkpoint or run folder")
    d.add_argument("--assessor", required=True, choices=["brightness", "colourfulness"],
                   help="what the direction or the edit changes")
    d.add_argument("--out", required=True, help="direction folder")
    d.add_argument("--steps", type=positive_int, default=300, help="optimisation steps (default %(default)s)")
    d.add_argument("--batch", type=positive_int, default=16, help="batch size (default %(default)s)")
    d.add_argument("--lr", type=positive_float, default=0.05,
                   help="Adam learning rate (default %(default)s; at 0.01 theta still grows after 300 steps)")
    d.add_argument("--scale", choices=["within-class", "all"], default="within-class",
                   help="the unit of alpha: 2 std of the assessor inside the classes (default: the spread a "
                        "class-keeping edit can use) or over all samples (adds the differences between classes)")
    d.add_argument("--scale-from", metavar="DATA",
                   help="measure that unit on the real images of this labelled dataset (recommended: the same "
                        "for every generator; default: on the generator's samples, which a collapsed generator "
                        "makes small)")
    d.add_argument("--seed", type=int, default=0, help="random seed (default %(default)s)")
    d.add_argument("--classifier", help="judge the class kept with this classifier (a folder or dataset folder)")
    d.add_argument("--eval-seeds", type=seed_list, default=list(range(100000, 100500)),
                   help="held-out seeds for the judgement (default 100000-100499; the class of seed i is i %% C)")
    d.add_argument("--alphas", type=_alphas, default=[-0.5, -0.25, 0.25, 0.5],
                   help="alphas of the judgement (default -0.5,-0.25,0.25,0.5; the thesis's test set, Sec. 3.2.2: "
                        "-0.2,-0.1,0.1,0.2)")
    add_device_argument(d)
    d.set_defaults(func=cmd_direction)

    de = sub.add_parser("direction-eval", help="judge a learned direction again (other seeds, alphas, classifier)",
                        description="Slope, Spearman and class kept of a `biggan direction` folder on held-out seeds, "
                                    "as JSON (stdout and --out).")
    de.add_argument("generator", help="the BigGAN generator the direction was learned on")
    de.add_argument("direction", help="direction folder")
    de.add_argument("--classifier", help="judge the class kept with this classifier (a folder or dataset folder)")
    de.add_argument("--eval-seeds", type=seed_list, default=list(range(100000, 100500)),
                    help="held-out seeds (default 100000-100499; the class of seed i is i %% C)")
    de.add_argument("--alphas", type=_alphas, default=[-0.5, -0.25, 0.25, 0.5],
                    help="alphas (default -0.5,-0.25,0.25,0.5; the thesis's test set: -0.2,-0.1,0.1,0.2)")
    de.add_argument("--out", metavar="FILE.json", help="also write the result here")
    add_device_argument(de)
    de.set_defaults(func=cmd_direction_eval)

    pw = sub.add_parser("paint", help="Paint-by-Word region edit on the split first feature map (thesis ch. 4)",
                        description="Change a region of a sample towards an assessor target (e.g. brightness 0.9) "
                                    "by optimising a second latent that draws the first block's feature map inside "
                                    "the mask (CMA-ES, then Adam); outside the mask the source's features are kept.")
    pw.add_argument("generator", help="BigGAN generator, checkpoint or run folder")
    pw.add_argument("--class", dest="cls", required=True, help="class name or index")
    pw.add_argument("--seed", type=int, default=0, help="seed of the source latent")
    pw.add_argument("--mask", help="mask PNG at the generator's size (white = edit)")
    pw.add_argument("--box", help="instead of --mask: x0,y0,x1,y1 in pixels")
    pw.add_argument("--assessor", default="brightness", choices=["brightness", "colourfulness"],
                   help="what the direction or the edit changes")
    pw.add_argument("--target", type=float, required=True, help="assessor value wanted inside the region")
    pw.add_argument("--lambda-img", type=float, default=30.0,
                   help="weight of the image-consistency loss outside the region, thesis Eq. 4.10 "
                        "(default %(default)s)")
    pw.add_argument("--iterations", type=positive_int, default=20, help="CMA-ES iterations")
    pw.add_argument("--popsize", type=positive_int, default=16, help="CMA-ES population (default %(default)s)")
    pw.add_argument("--adam-steps", type=non_negative_int, default=30,
                   help="Adam steps after CMA-ES (default %(default)s)")
    pw.add_argument("--out", required=True, help="before | after strip (PNG); numbers go to OUT.json")
    add_device_argument(pw)
    pw.set_defaults(func=cmd_paint)

    r = sub.add_parser("report", help="the run's monitors (thesis Fig. 2-2) as JSON and a figure",
                       description="Losses, first singular values of every G and D layer, domain IS/FID and "
                                   "accuracy over training, collapse warnings.")
    r.add_argument("run", help="BigGAN run folder")
    r.add_argument("--out", metavar="FILE.png", help="write the figure")
    r.set_defaults(func=cmd_report)


def cmd_direction(args) -> int:
    from memorygan.biggan.checkpoint import load_biggan
    from memorygan.biggan.edits import evaluate_direction, learn_direction, save_direction
    from memorygan.devices import resolve_device

    from pathlib import Path

    from memorygan.errors import ConfigError
    out = Path(args.out)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / "direction.json").is_file())):
        raise ConfigError(f"--out {out} exists and is not a direction folder; refusing to replace it")
    device = resolve_device(args.device)
    G, _ = load_biggan(args.generator, device)
    clf = _classifier(args.classifier, device)
    d = learn_direction(G, args.assessor, args.steps, args.batch, args.lr, args.seed, args.scale, args.scale_from)
    d.info["evaluation"] = evaluate_direction(G, d, clf, args.eval_seeds, args.alphas)
    save_direction(d, args.out)
    print(json.dumps(d.info["evaluation"], indent=2))
    return 0


def _classifier(path, device):
    if not path:
        return None
    from memorygan.biggan.classifier import load_classifier
    return load_classifier(path, device)[0]


def cmd_direction_eval(args) -> int:
    from memorygan.analysis.figures import write_json
    from memorygan.biggan.checkpoint import load_biggan
    from memorygan.biggan.edits import evaluate_direction, load_direction
    from memorygan.devices import resolve_device

    device = resolve_device(args.device)
    G, _ = load_biggan(args.generator, device)
    d = load_direction(args.direction, G)
    res = evaluate_direction(G, d, _classifier(args.classifier, device), args.eval_seeds, args.alphas)
    if args.out:
        write_json(res, args.out)
    print(json.dumps(res, indent=2))
    return 0


def _box_mask(text: str, res: int):
    import torch

    from memorygan.errors import ConfigError
    try:
        x0, y0, x1, y1 = (int(v) for v in text.split(","))
    except ValueError:
        raise ConfigError(f"--box {text!r}: expected x0,y0,x1,y1 in pixels") from None
    if not (0 <= x0 < x1 <= res and 0 <= y0 < y1 <= res):
        raise ConfigError(f"--box {text!r}: needs 0 <= x0 < x1 <= {res} and 0 <= y0 < y1 <= {res}")
    m = torch.zeros(res, res)
    m[y0:y1, x0:x1] = 1
    return m


def cmd_paint(args) -> int:
    from pathlib import Path

    import torch
    from PIL import Image

    from memorygan.biggan.checkpoint import load_biggan
    from memorygan.biggan.edits import paint_by_word, region_score
    from memorygan.biggan.models import truncated_z
    from memorygan.devices import resolve_device
    from memorygan.editing.region import read_mask
    from memorygan.errors import ConfigError
    from memorygan.fileio import write_text_atomic
    from memorygan.visualize import grid, to_uint8

    if not args.out.lower().endswith(".png"):
        raise ConfigError(f"--out {args.out}: expected a .png file name")
    if bool(args.mask) == bool(args.box):
        raise ConfigError("give one of --mask PNG or --box x0,y0,x1,y1")
    G, cfg = load_biggan(args.generator, resolve_device(args.device))
    names = cfg.class_names or [str(i) for i in range(cfg.num_classes)]
    cls = _class_indices(args.cls, names)[0]
    mask = read_mask(args.mask, cfg.resolution) if args.mask else _box_mask(args.box, cfg.resolution)
    z0 = truncated_z(1, cfg.dim_z, None, torch.Generator().manual_seed(args.seed))
    r = paint_by_word(G, z0, cls, mask, region_score(args.assessor, args.target), args.lambda_img, args.iterations,
                      args.popsize, adam_steps=args.adam_steps, seed=args.seed)
    Image.fromarray(grid([to_uint8(torch.cat([r.source, r.image]).cpu())])).save(args.out)
    res = {"class": names[cls], "seed": args.seed, "assessor": args.assessor, "target": args.target,
           "loss_before": r.score_before, "loss_after": r.score_after, "psnr_outside": r.psnr_outside}
    write_text_atomic(Path(args.out).with_suffix(".json"), json.dumps(res, indent=2))
    print(json.dumps(res, indent=2))
    return 0


def cmd_report(args) -> int:
    from memorygan.biggan.report import plot_monitors, summarize

    if args.out:
        plot_monitors(args.run, args.out)
        print(f"wrote {args.out}")
    print(json.dumps(summarize(args.run), indent=2))
    return 0


def cmd_presets(args) -> int:
    import torch

    from memorygan.biggan.config import biggan_config, preset_names, read_preset
    from memorygan.biggan.models import BigGANDiscriminator, BigGANGenerator

    for name in preset_names():
        cfg = biggan_config(name)
        with torch.device("meta"):
            G, D = BigGANGenerator(cfg, skip_init=True), BigGANDiscriminator(cfg, skip_init=True)
        t = read_preset(name)["training"]
        print(f"{name:17s} {cfg.arch:12s} {cfg.resolution:4d} px  G {G.num_params() / 1e6:6.1f} M  "
              f"D {D.num_params() / 1e6:6.1f} M  (at {cfg.num_classes} classes)  batch {t['batch']} x {t['accum']}")
    return 0


def cmd_train(args) -> int:
    from memorygan.biggan.train import BigGANTrainOptions, resume, train
    from memorygan.errors import ConfigError

    if args.resume:
        if args.out:
            raise ConfigError("--resume RUN continues RUN in place; leave out --out")
        res = resume(args.resume, more_steps=args.more_steps, threads=args.threads, progress=args.progress,
                     data=args.data)
    else:
        if args.more_steps:
            raise ConfigError("--more-steps goes with --resume")
        opts = BigGANTrainOptions(
            data=args.data or "", out=args.out or "", preset=args.preset, generator_overrides=dict(args.overrides),
            steps=args.steps, kimg=args.kimg, minutes=args.minutes, batch=args.batch,
            d_accum=args.d_accum or args.accum, g_accum=args.g_accum or args.accum, d_steps=args.d_steps,
            lr_g=args.lr_g, lr_d=args.lr_d, ema_decay=args.ema_decay, ema_start=args.ema_start,
            mirror=args.mirror, unconditional=args.unconditional, ms_weight=args.ms_weight, seed=args.seed,
            log_every=args.log_every, sample_every=args.sample_every,
            checkpoint_every=args.checkpoint_every, metrics_every=args.metrics_every,
            metrics_per_class=args.metrics_per_class, classifier=args.classifier, keep=args.keep,
            device=args.device, threads=args.threads, progress=args.progress)
        res = train(opts)
    print(f"trained {res.steps} steps ({res.kimg:.2f} kimg, {res.minutes:.1f} min); checkpoint {res.checkpoint}")
    for w in res.warnings:
        print(f"warning: {w}", file=sys.stderr)
    return 0


def cmd_classifier(args) -> int:
    from memorygan.biggan.classifier import train_classifier

    r = train_classifier(args.data, args.out, steps=args.steps, batch_size=args.batch, seed=args.seed,
                         progress=not args.quiet, device=args.device if args.device != "auto" else "cpu")
    print(f"classifier {r.path}: held-out accuracy {r.heldout_accuracy:.3f} over {len(r.categories)} categories "
          f"({r.seconds:.0f} s)")
    return 0


def _class_indices(text: str | None, names: list[str], limit: int = 16) -> list[int]:
    from memorygan.errors import ConfigError

    if not text:
        return list(range(min(len(names), limit)))
    out = []
    for tok in (t.strip() for t in text.split(",") if t.strip()):
        if tok in names:
            out.append(names.index(tok))
        elif tok.isdigit() and int(tok) < len(names):
            out.append(int(tok))
        else:
            raise ConfigError(f"--classes: {tok!r} is not a class of this generator ({', '.join(names[:12])}"
                              f"{', ...' if len(names) > 12 else ''})")
    return out


def cmd_generate(args) -> int:
    import torch
    from PIL import Image

    from memorygan.biggan.checkpoint import load_biggan
    from memorygan.biggan.models import truncated_z
    from memorygan.devices import resolve_device
    from memorygan.errors import ConfigError
    from memorygan.visualize import grid, to_uint8

    if not args.out.lower().endswith((".png", ".jpg", ".jpeg")):
        raise ConfigError(f"--out {args.out}: expected a .png or .jpg file name")
    G, cfg = load_biggan(args.generator, resolve_device(args.device))
    names = cfg.class_names or [str(i) for i in range(cfg.num_classes)]
    classes = _class_indices(args.classes, names)
    z = torch.cat([truncated_z(1, cfg.dim_z, args.truncation, torch.Generator().manual_seed(s)) for s in args.seeds])
    rows = []
    with torch.no_grad():
        for c in classes:
            y = torch.full((len(args.seeds),), c, dtype=torch.int64)
            rows.append(to_uint8(G.generate(z.to(G.device), y.to(G.device))))
    Image.fromarray(grid(rows)).save(args.out)
    print(f"wrote {args.out}: {len(classes)} classes x {len(args.seeds)} seeds")
    return 0


def cmd_evaluate(args) -> int:
    from pathlib import Path

    from memorygan.biggan.checkpoint import load_biggan
    from memorygan.biggan.classifier import load_classifier
    from memorygan.biggan.evaluate import evaluate_generator, evaluate_unconditional, plot_sweep, real_features
    from memorygan.devices import resolve_device
    from memorygan.fileio import write_text_atomic

    device = resolve_device(args.device)
    G, cfg = load_biggan(args.generator, device)
    clf, meta = load_classifier(args.classifier or args.data, device)
    real = real_features(clf, args.data)
    if cfg.num_classes == 1 and clf.num_classes > 1:          # an unconditional baseline: classes by the classifier
        rows = [evaluate_unconditional(G, clf, real, args.per_class * clf.num_classes, t, args.seed,
                                       categories=meta["categories"]) for t in (args.truncations or [None])]
    else:
        rows = [evaluate_generator(G, clf, real, args.per_class, t, args.seed, categories=cfg.class_names)
                for t in (args.truncations or [None])]
    for r in rows:
        acc = f"accuracy {r['accuracy']:.3f}" if "accuracy" in r else f"classes {r['classes_with_samples']}"
        print(f"truncation {r['truncation'] if r['truncation'] is not None else 'none':>5}: {acc}  IS "
              f"{r['inception_score']:.2f}  FID {r['fid']:.2f}  per-class FID {r['fid_per_class_mean']:.2f}  "
              f"precision {r['precision']:.3f}  recall {r['recall']:.3f}")
    if args.out:
        write_text_atomic(Path(args.out), json.dumps(rows, indent=2))
    if args.plot:
        plot_sweep(rows, args.plot, title=str(args.generator))
    return 0
