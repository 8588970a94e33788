"""CLI: `memorygan import-ssg` / `memorygan export-ssg` (official SemanticStyleGAN checkpoints)."""
from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser("import-ssg", help="convert an official SemanticStyleGAN checkpoint",
                              description="Convert the g_ema of an official SemanticStyleGAN checkpoint (.pt) into a "
                                          "memorygan generator folder (config.json + generator.safetensors). The "
                                          "file is loaded with weights_only=True (only tensors, containers and "
                                          "argparse.Namespace are accepted).")
    p.add_argument("checkpoint", help="official checkpoint file (torch.save dict with g_ema and args)")
    p.add_argument("--out", required=True, help="output folder (written atomically)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing non-empty --out")
    p.add_argument("--w-avg-samples", type=int, default=4096,
                   help="samples used to estimate the truncation centre (default 4096; 0 to skip)")
    p.set_defaults(func=run_import)

    p = subparsers.add_parser("export-ssg", help="export an SSG generator to the official checkpoint layout",
                              description="Write an official-layout SemanticStyleGAN checkpoint (g, g_ema, args) "
                                          "from a memorygan 'ssg' generator folder.")
    p.add_argument("generator", help="memorygan generator folder (or a shipped name, `memorygan pretrained list`)")
    p.add_argument("--out", required=True, help="output .pt file")
    p.set_defaults(func=run_export)


def run_import(args) -> int:
    from memorygan.interop.ssg_official import import_ssg

    G, cfg = import_ssg(args.checkpoint, args.out, w_avg_samples=args.w_avg_samples, overwrite=args.overwrite)
    print(f"imported {args.checkpoint} -> {args.out}: SemanticStyleGAN {cfg.resolution} px, K={cfg.num_classes}, "
          f"{G.num_params() / 1e6:.2f} M parameters")
    return 0


def run_export(args) -> int:
    from memorygan import load
    from memorygan.interop.ssg_official import export_ssg_checkpoint

    G, _ = load(args.generator)
    export_ssg_checkpoint(G, args.out)
    print(f"exported {args.generator} -> {args.out}")
    return 0
