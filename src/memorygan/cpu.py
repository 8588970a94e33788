"""CPU threads for torch on a machine that other work may be using."""
from __future__ import annotations

import math
import os


def auto_threads(cores: int | None = None, load: float | None = None) -> int:
    """Torch threads for a machine that others may be using: the cores this process may run on minus the current
    load (1-minute load average), at least 1. Two threads on two cores that another process keeps busy make every
    step wait for the slower one (the quickstart probe took 31 minutes instead of 1.5 that way)."""
    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if load is None:
        try:
            load = os.getloadavg()[0]
        except (AttributeError, OSError):
            load = 0.0
    return max(1, min(cores, int(math.floor(cores - load + 0.5))))


def use_threads(threads: int | None = None) -> int:
    """Set torch's intra-op threads to `threads`; when None, to `auto_threads()` unless the user already chose
    with $OMP_NUM_THREADS (then torch's setting is kept). Returns the number in use."""
    import torch

    if threads is None and os.environ.get("OMP_NUM_THREADS"):
        return torch.get_num_threads()
    n = int(threads) if threads is not None else auto_threads()
    torch.set_num_threads(n)
    return n
