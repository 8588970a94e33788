"""CLI: `memorygan complexity` (and model utilities)."""
from __future__ import annotations

import argparse
import json


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"part counts must be integers >= 1, got {text!r}")
    return values


def register(subparsers) -> None:
    p = subparsers.add_parser("complexity", help="parameters and true MACs of generators vs number of parts",
                              description="Parameters and true multiply-accumulates (FlopCounterMode FLOPs / 2) of "
                                          "the generator for each preset and number of parts K.")
    p.add_argument("--preset", action="append", required=True, help="preset name or JSON path (repeatable)")
    p.add_argument("--parts", type=_int_list, default=[1, 10, 100, 1000], help="comma-separated K values")
    p.add_argument("--json", action="store_true", help="print a JSON list instead of a markdown table")
    p.add_argument("--plot", metavar="FILE.png", help="also plot parameters and MACs vs K (log scale)")
    p.set_defaults(func=run_complexity)


def run_complexity(args) -> int:
    from memorygan.complexity import complexity_table, format_markdown, plot_complexity

    rows = complexity_table(args.preset, args.parts)
    print(json.dumps(rows, indent=2) if args.json else format_markdown(rows))
    if args.plot:
        plot_complexity(rows, args.plot)
    return 0
