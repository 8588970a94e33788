"""Command-line interface: `memorygan <command> ...`.

No logic lives here: each subcommand parses its arguments and calls one library function (which tests also call).
Subcommand groups register themselves through a `register(subparsers)` function in their own module, so a
feature's CLI sits next to its code and this file stays a table of contents.
"""
from __future__ import annotations

import argparse
import importlib
import sys

# module that defines `register(subparsers)`, in the order shown by `memorygan --help`
COMMAND_MODULES = [
    "memorygan.data.cli",         # memorygan data ...
    "memorygan.models.cli",       # memorygan complexity / generate
    "memorygan.interop.cli",      # memorygan import-ssg / export-ssg
    "memorygan.training.cli",     # memorygan train
    "memorygan.metrics.cli",      # memorygan probe / metrics
    "memorygan.analysis.cli",     # memorygan analyze ...
    "memorygan.editing.cli",      # memorygan edit ...
    "memorygan.inversion.cli",    # memorygan invert
    "memorygan.demo.cli",         # memorygan demo
    "memorygan.training.report_cli",  # memorygan report
    "memorygan.quickstart",       # memorygan quickstart
]


from memorygan.errors import MemoryGANError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="memorygan",
        description="Compositional image synthesis: MemoryGAN and SemanticStyleGAN.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:  # a feature package not present in this checkout
            if e.name and name.startswith(e.name):
                continue
            raise
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    from memorygan.allocator import tune_allocator

    tune_allocator()          # large temporaries reused instead of re-faulted every forward (memorygan.allocator)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result = args.func(args)
    except MemoryGANError as e:
        print(f"memorygan {args.command}: error: {e}", file=sys.stderr)
        return getattr(e, "exit_code", 2)
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
