"""Command-line interface: `memorygan <command> ...`.

No logic lives here: each subcommand parses its arguments and calls one library function (which tests also call).
Subcommand groups register themselves through a `register(subparsers)` function in their own module, so a
feature's CLI sits next to its code and this file stays a table of contents.
"""
from __future__ import annotations

import argparse
import errno
import importlib
import os
import sys
import warnings

# module that defines `register(subparsers)`, in the order shown by `memorygan --help`
COMMAND_MODULES = [
    "memorygan.data.cli",         # memorygan data ...
    "memorygan.models.cli",       # memorygan complexity / generate
    "memorygan.interop.cli",      # memorygan import-ssg / export-ssg
    "memorygan.training.cli",     # memorygan train
    "memorygan.biggan.cli",       # memorygan biggan ...
    "memorygan.metrics.cli",      # memorygan probe / metrics
    "memorygan.analysis.cli",     # memorygan analyze ...
    "memorygan.editing.cli",      # memorygan edit ...
    "memorygan.encoder.cli",      # memorygan encoder train
    "memorygan.inversion.cli",    # memorygan invert
    "memorygan.demo.cli",         # memorygan demo
    "memorygan.pretrained.cli",   # memorygan pretrained list / show / export
    "memorygan.training.report_cli",  # memorygan report
    "memorygan.quickstart",       # memorygan quickstart
]


from memorygan.errors import MemoryGANError, MemoryGANWarning

DEBUG_ENV = "MEMORYGAN_DEBUG"      # set to 1 to get raw tracebacks instead of the one-line errors


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
    """Run one subcommand. Every failure is one line on stderr naming the file or argument: the project's errors
    and the operating system's (unwritable, read-only, full disk, missing folder) exit with 2; Ctrl-C with 130;
    anything else is a bug: it says so and where the full traceback was written (exit 1)."""
    from memorygan.allocator import tune_allocator
    from memorygan.devices import configure_backends

    tune_allocator()          # large temporaries reused instead of re-faulted every forward (memorygan.allocator)
    configure_backends()      # cuDNN's autotuner for the fixed shapes of these models (memorygan.devices)
    parser = build_parser()
    args = parser.parse_args(argv)
    prog = f"memorygan {args.command}"
    threads = getattr(args, "threads", None)
    if threads is not None:                  # --threads of any command, set here once
        if threads < 1:
            parser.error(f"--threads must be >= 1, got {threads}")
        import torch
        torch.set_num_threads(threads)
    if os.environ.get(DEBUG_ENV):
        return int(args.func(args) or 0)
    with warnings.catch_warnings():
        shown = warnings.showwarning

        def show(message, category, filename, lineno, file=None, line=None):
            if issubclass(category, MemoryGANWarning):
                print(f"{prog}: warning: {message}", file=sys.stderr)
            else:
                shown(message, category, filename, lineno, file, line)
        warnings.showwarning = show
        try:
            result = args.func(args)
        except MemoryGANError as e:
            print(f"{prog}: error: {e}", file=sys.stderr)
            return getattr(e, "exit_code", 2)
        except KeyboardInterrupt:
            print(f"{prog}: interrupted", file=sys.stderr)
            return 130
        except OSError as e:
            print(f"{prog}: error: {describe_os_error(e)}", file=sys.stderr)
            return 2
        except Exception as e:  # noqa: BLE001 - a bug: keep the traceback, but in a file
            path = write_traceback(prog)
            text = str(e).strip().splitlines()[0][:300] if str(e).strip() else ""
            print(f"{prog}: internal error ({type(e).__name__}: {text}); this is a bug in memorygan, not in your "
                  f"input; the full traceback is in {path} (set {DEBUG_ENV}=1 to see it here)", file=sys.stderr)
            return 1
    return int(result or 0)


def describe_os_error(e: OSError) -> str:
    """One line for an operating-system error: the path(s) and what is wrong, in words."""
    where = " -> ".join(str(f) for f in (e.filename, e.filename2) if f is not None) or "(no file named)"
    words = {errno.ENOSPC: "no space left on the device", errno.EROFS: "read-only file system",
             errno.EACCES: "permission denied", errno.EPERM: "operation not permitted",
             errno.ENOTDIR: "a part of this path is a file, not a folder",
             errno.ENOENT: "no such file or folder (or a link pointing nowhere)",
             errno.EEXIST: "already exists (a file, or a link pointing nowhere, where a folder is needed)",
             errno.EISDIR: "is a folder, not a file", errno.ENAMETOOLONG: "file name too long"}
    if hasattr(errno, "EDQUOT"):
        words[errno.EDQUOT] = "disk quota exceeded"
    return f"{where}: {words.get(e.errno, e.strerror or type(e).__name__)}"


def write_traceback(prog: str) -> str:
    """Write the current exception's traceback to a file in the temporary folder; returns its path."""
    import tempfile
    import time
    import traceback

    path = os.path.join(tempfile.gettempdir(), f"memorygan-error-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.txt")
    try:
        with open(path, "w", encoding="utf-8") as f:
            f.write(f"{prog} (argv: {sys.argv})\n\n")
            traceback.print_exc(file=f)
    except OSError:
        traceback.print_exc()
        return "(could not be written: printed above)"
    return path


if __name__ == "__main__":
    sys.exit(main())
