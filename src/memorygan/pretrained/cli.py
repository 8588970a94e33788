"""CLI: `memorygan pretrained list | show NAME | export GENERATOR --out DIR` (the generators shipped by name)."""
from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "pretrained", help="generators shipped with the package (list, model cards, export your own)",
        description="The generators shipped with the package load by name wherever a generator is asked for "
                    "(`--generator portraits-memorygan`, `memorygan.load(\"portraits-ssg\")`); a path on disk always "
                    "wins over a name.")
    sub = p.add_subparsers(dest="pretrained_command", required=True, metavar="{list,show,export}")
    q = sub.add_parser("list", help="the shipped generators: name, model, size, first measured numbers")
    q.set_defaults(func=run_list)
    q = sub.add_parser("show", help="print a shipped generator's model card")
    q.add_argument("name", help="a shipped generator's name (see `memorygan pretrained list`)")
    q.set_defaults(func=run_show)
    q = sub.add_parser("export", help="write a generator as a shippable fp16 folder with a model card",
                       description="Write GENERATOR (a generator, checkpoint or run folder) to --out as fp16 "
                                   "safetensors + config.json + MODEL_CARD.md. The card records the run's training "
                                   "options, the numbers in --metrics and the measured cost of fp16 storage "
                                   "(PSNR of fp16 against fp32 renders). This is how the shipped pair was made.")
    q.add_argument("generator", help="generator, checkpoint or training run folder")
    q.add_argument("--out", required=True, help="output folder (written atomically)")
    q.add_argument("--name", help="the name in the card (default: the --out folder's name)")
    q.add_argument("--metrics", help="JSON file of measured metrics (`memorygan metrics ... --out FILE`)")
    q.add_argument("--notes", help="markdown file appended to the card under 'Notes'")
    q.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    q.set_defaults(func=run_export)


def run_list(args) -> int:
    from memorygan import pretrained
    from memorygan.checkpoint import read_config

    found = pretrained.names()
    if not found:
        print("no generators are shipped with this installation")
        return 0
    for name in found:
        folder = pretrained.folder(name)
        cfg, meta = read_config(folder)
        mb = (folder / "generator.safetensors").stat().st_size / 2**20
        m = meta.get("model_card", {}).get("metrics", {})
        facts = ", ".join(f"{k} {m[k]:.3g}" for k in ("domain_fid", "mask_miou") if k in m)
        print(f"{name}: {cfg.arch}, {cfg.resolution} px, K={cfg.num_classes}, {mb:.1f} MiB"
              + (f"; {facts}" if facts else ""))
    return 0


def run_show(args) -> int:
    from memorygan import pretrained

    print(pretrained.card(args.name))
    return 0


def run_export(args) -> int:
    from memorygan import pretrained

    metrics = pretrained.read_metrics_file(args.metrics) if args.metrics else None
    notes = ""
    if args.notes:
        from pathlib import Path

        from memorygan.errors import ConfigError
        try:
            notes = Path(args.notes).read_text()
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"--notes {args.notes}: cannot read ({e})") from None
    out = pretrained.export(args.generator, args.out, name=args.name, metrics=metrics, notes=notes,
                            overwrite=args.overwrite)
    print((out / pretrained.CARD).read_text())
    print(f"wrote {out}")
    return 0
