"""`memorygan report RUN [RUN ...]`: report folder of a run, or a comparison plot of several runs."""
from __future__ import annotations

from pathlib import Path

from memorygan.devices import add_device_argument


def register(subparsers) -> None:
    p = subparsers.add_parser("report", help="report of a training run (or comparison plot of several runs)")
    p.add_argument("runs", nargs="+", help="run folder(s)")
    p.add_argument("--out", default=None, help="output folder (default RUN/report; required for several runs)")
    p.add_argument("--labels", default=None, help="comma-separated labels for a comparison plot")
    p.add_argument("--evaluate", action="store_true",
                   help="first compute domain metrics of every checkpoint (rewrites RUN/metrics.jsonl)")
    p.add_argument("--probe", default=None, help="probe folder for --evaluate (default DATA/probe)")
    p.add_argument("--num", type=int, default=1000, help="generated images per checkpoint for --evaluate")
    p.add_argument("--x", choices=["minutes", "kimg", "step"], default="minutes",
                   help="x axis of the comparison plot: training minutes, images seen (kimg), or optimizer steps "
                        "(to compare runs at different batch sizes)")
    add_device_argument(p)
    p.set_defaults(func=run_report)


def run_report(args) -> int:
    from memorygan.errors import ConfigError
    from memorygan.training.report import evaluate_checkpoints, plot_runs, write_report

    if args.evaluate:
        for run in args.runs:
            evaluate_checkpoints(run, args.probe, args.num, device=args.device)

    if len(args.runs) == 1:
        out = write_report(args.runs[0], args.out)
        print(f"report written to {out}")
        return 0
    if not args.out:
        raise ConfigError("--out is required when comparing several runs")
    labels = args.labels.split(",") if args.labels else None
    if labels and len(labels) != len(args.runs):
        raise ConfigError(f"--labels has {len(labels)} entries for {len(args.runs)} runs")
    png = plot_runs(args.runs, Path(args.out) / "metrics.png", labels, x=args.x)
    print(f"comparison plot written to {png}")
    return 0
