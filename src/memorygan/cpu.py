"""CPU threads for torch on a machine that other work may be using."""
from __future__ import annotations

import math
import os
import time
from typing import Callable

PROC_STAT = "/proc/stat"
SAMPLE_SECONDS = 0.25       # window over which the busy cores are measured


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS tells it, else the machine's count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _read_proc_stat() -> str:
    with open(PROC_STAT, encoding="ascii") as f:
        return f.read()


def cpu_times(stat: str) -> tuple[int, int]:
    """(idle, total) clock ticks from the aggregate `cpu` line of /proc/stat's text. Idle counts idle + iowait;
    total counts user, nice, system, idle, iowait, irq, softirq and steal (guest time is already inside user and
    nice, so it is left out). Raises ValueError when the text has no such line."""
    for line in stat.splitlines():
        fields = line.split()
        if fields and fields[0] == "cpu":
            ticks = [int(v) for v in fields[1:9]]
            if len(ticks) < 4:
                break
            idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)
            return idle, sum(ticks)
    raise ValueError("no aggregate 'cpu' line in /proc/stat")


def _load_average() -> float:
    try:
        return max(0.0, float(os.getloadavg()[0]))
    except (AttributeError, OSError):
        return 0.0


def busy_cores(cores: int | None = None, read_stat: Callable[[], str] | None = None,
               interval: float = SAMPLE_SECONDS) -> float:
    """How many of `cores` (default: `available_cores()`) other work keeps busy right now: the machine's busy
    fraction over the next `interval` seconds, measured from two reads of /proc/stat's aggregate `cpu` line
    (busy = 1 - (idle + iowait ticks) / all ticks between them), times `cores`. This process sleeps meanwhile, so
    its own share is negligible. `read_stat` returns /proc/stat's text (injectable for tests). Where /proc/stat
    cannot be read or parsed (not Linux), or no tick passed between the reads, the 1-minute load average (at most
    `cores`) stands in for it (it lags: just after `pip install` it reads ~1.3 on an idle machine)."""
    if cores is None:
        cores = available_cores()
    read = read_stat if read_stat is not None else _read_proc_stat
    try:
        idle0, total0 = cpu_times(read())
        if interval > 0:
            time.sleep(interval)
        idle1, total1 = cpu_times(read())
    except (OSError, ValueError):
        return min(float(cores), _load_average())        # a load average may count more than the cores
    d_total = total1 - total0
    if d_total <= 0:
        return min(float(cores), _load_average())        # a load average may count more than the cores
    busy_fraction = min(1.0, max(0.0, 1.0 - (idle1 - idle0) / d_total))
    return cores * busy_fraction


def auto_threads(cores: int | None = None, load: float | None = None, *,
                 read_stat: Callable[[], str] | None = None, interval: float = SAMPLE_SECONDS) -> int:
    """Torch threads for a machine that others may be using: the cores this process may run on minus those other
    work keeps busy now, rounded, at least 1 and at most `cores`. `load` is that busy figure (cores busy, as a
    load average counts them) when the caller already has it; when None it is measured by `busy_cores()` over
    `interval` seconds from /proc/stat (`read_stat` injects its reader), falling back to the 1-minute load
    average where /proc/stat is unreadable. The load average alone lagged: right after `pip install` it read
    1.3 on an idle 2-core machine, which gave 1 thread and a quickstart of 18.9 minutes instead of ~14. Two
    threads on two cores that another process keeps busy make every step wait for the slower one (the
    quickstart probe took 31 minutes instead of 1.5 that way)."""
    if cores is None:
        cores = available_cores()
    if load is None:
        load = busy_cores(cores, read_stat=read_stat, interval=interval)
    return max(1, min(cores, int(math.floor(cores - load + 0.5))))


def use_threads(threads: int | None = None, load: float | None = None) -> int:
    """Set torch's intra-op threads to `threads`; when None, to `auto_threads(load=load)` (measuring the busy
    cores now when `load` is None too) unless the user already chose with $OMP_NUM_THREADS (then torch's setting
    is kept). Returns the number in use."""
    import torch

    if threads is None and os.environ.get("OMP_NUM_THREADS"):
        return torch.get_num_threads()
    n = int(threads) if threads is not None else auto_threads(load=load)
    torch.set_num_threads(n)
    return n
