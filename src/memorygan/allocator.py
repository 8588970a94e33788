"""Keep large CPU temporaries in the process instead of returning them to the system after every forward pass.

glibc serves allocations above its mmap threshold (128 KiB .. 32 MiB, adapting) with fresh mmap'ed pages and gives
them back on free; the next forward pass asks again and the kernel zeroes every page on first touch. A 256 px
generator forward allocates hundreds of MB of such temporaries (the B*K local-generator batch, the fused maps, the
render activations): measured on the 2-core machine, 0.41-0.43 million minor page faults per MemoryGAN forward at
K = 13 (batch 2) and about 2.9 million at K = 100, which cost 25-65 % of the forward time.

`tune_allocator()` raises glibc's mmap threshold and trim threshold (mallopt) so freed blocks stay in the heap and
are reused without faults (0 minor faults per forward after the first). The price is that the process keeps its peak
heap until it exits, which is what a training or evaluation job wants. The CLI entry point applies it; notebooks and
services call it themselves if they want it. `MEMORYGAN_DEFAULT_MALLOC=1` turns it off.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import resource

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 1 << 30              # allocations below 1 GiB come from the heap
TRIM_THRESHOLD = (1 << 31) - 1        # never give freed heap memory back while the process runs

_applied: bool | None = None


def tune_allocator() -> bool:
    """Apply the thresholds (once per process); False where glibc's mallopt is not available or it is turned off."""
    global _applied
    if _applied is not None:
        return _applied
    _applied = False
    if os.environ.get("MEMORYGAN_DEFAULT_MALLOC", "") not in ("", "0"):
        return False
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    _applied = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return _applied


def minor_faults() -> int:
    """Minor page faults of this process so far (for benchmarks: faults per forward = difference)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
