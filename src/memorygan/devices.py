"""Which device a command runs on.

Every command with `--device` takes `auto` (the default), `cpu`, `cuda`, `cuda:N` (or `mps` where torch has it).
`auto` is the GPU when torch sees one, which is where users of StyleGAN-family code train and evaluate, and the CPU
otherwise; when it picks a GPU the command says so on stderr (once per process), so that nobody trains on a GPU, or
on the CPU, without knowing. Under `torchrun`, `auto` and a bare `cuda` mean this process's GPU
(`cuda:LOCAL_RANK`), as NCCL needs one GPU per process.

An explicit device that this torch cannot use is refused before any work, naming the argument: `--device cuda`
on a CPU build says that the build has no CUDA, instead of failing deep inside the first forward pass.
"""
from __future__ import annotations

import argparse
import os
import sys

import torch

from memorygan.errors import ConfigError

AUTO = "auto"
HELP = "cpu, cuda, cuda:N or auto (default auto: the GPU when torch sees one, else the CPU)"

_announced: set[str] = set()


def _local_rank() -> tuple[int, int]:
    return int(os.environ.get("LOCAL_RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def resolve_device(name: str | torch.device | None = AUTO, arg: str = "--device", announce: bool = True) -> str:
    """The device string a command should use for `name` (None/"auto": GPU if available, else CPU).

    Raises ConfigError naming `arg` for a device this torch cannot use."""
    if isinstance(name, torch.device):
        name = str(name)
    text = (name or AUTO).strip().lower()
    local_rank, world = _local_rank()
    if text == AUTO:
        if torch.cuda.is_available():
            dev = f"cuda:{local_rank}" if world > 1 else "cuda"
            if announce and dev not in _announced:
                _announced.add(dev)
                idx = torch.device(dev).index or 0
                print(f"memorygan: using {dev} ({torch.cuda.get_device_name(idx)}); {arg} cpu to stay on the CPU",
                      file=sys.stderr)
            return dev
        return "cpu"
    try:
        dev = torch.device(text)
    except (RuntimeError, ValueError):
        raise ConfigError(f"{arg} {name!r}: not a device (expected {HELP})") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
            raise ConfigError(f"{arg} {name}: torch {torch.__version__} ({build}) sees no CUDA device; "
                              f"use {arg} cpu or {arg} auto")
        count = torch.cuda.device_count()
        if dev.index is None:
            return f"cuda:{local_rank}" if world > 1 else "cuda"
        if dev.index >= count:
            raise ConfigError(f"{arg} {name}: there {'is' if count == 1 else 'are'} only {count} CUDA device"
                              f"{'' if count == 1 else 's'} (cuda:0..cuda:{count - 1})")
        return f"cuda:{dev.index}"
    if dev.type == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise ConfigError(f"{arg} {name}: this torch has no MPS device")
        return "mps"
    if dev.type != "cpu":
        raise ConfigError(f"{arg} {name!r}: unsupported device type {dev.type!r} (expected {HELP})")
    return "cpu"


def device_arg(text: str) -> str:
    """argparse type for --device (argparse also converts the string default through it)."""
    try:
        return resolve_device(text)
    except ConfigError as e:
        raise argparse.ArgumentTypeError(str(e).split(": ", 1)[-1]) from None


def add_device_argument(parser, default: str = AUTO) -> None:
    parser.add_argument("--device", type=device_arg, default=default, help=HELP)


def to_device(t: torch.Tensor, device: torch.device | str | None) -> torch.Tensor:
    """`t` on `device` without making the host wait for the device's queue.

    A plain `t.to("cuda")` of a CPU tensor copies from pageable memory, and CUDA then waits until every kernel
    already queued on the stream has finished before the copy starts: a host sync per copy, which keeps the host
    from queueing the next kernels while the GPU works. A CPU tensor bound for CUDA is therefore staged in pinned
    memory and copied with `non_blocking=True` (torch's caching host allocator keeps the pinned block until the copy
    is done). Everything else (same device, CPU targets, other devices) is `t.to(device)`. Code that runs in the
    training step moves tensors only through this function (tests/training/test_host_syncs.py)."""
    if device is None:
        return t
    device = torch.device(device)
    if device.type == "cuda" and t.device.type == "cpu":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


CUDNN_BENCHMARK_ENV = "MEMORYGAN_CUDNN_BENCHMARK"


def configure_backends() -> bool:
    """cuDNN's autotuner on (`torch.backends.cudnn.benchmark`), as StyleGAN2-ADA's training sets it: the model's
    shapes are fixed, so each convolution's fastest algorithm is timed once per shape instead of taken from cuDNN's
    heuristics, which pick poorly for some layers (grouped blur convolutions, bf16). $MEMORYGAN_CUDNN_BENCHMARK=0
    leaves torch's default (off), e.g. to compare. No effect on the CPU. Called at the CLI entry point and by the
    trainer; returns the setting."""
    on = os.environ.get(CUDNN_BENCHMARK_ENV, "1").strip() != "0"
    torch.backends.cudnn.benchmark = on
    return on
