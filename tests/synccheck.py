"""A CPU-side check for host syncs: what would make the host wait for a GPU's queue, found on a CPU-only machine.

On a GPU the host queues kernels and runs ahead of the device, unless it has to wait:
- a **read**: `float(t)`, `bool(t)`, `int(t)`, `t.item()`, `t.tolist()`, `t.numpy()`, `t.cpu()` of a device tensor, also
  inside torch (an op that checks a value, `_local_scalar_dense` in the dispatcher);
- an op whose **output shape depends on values** (`nonzero`, `masked_select`, `unique`, indexing with a boolean mask);
- a **blocking copy to the device**: `t.to(device)` of a CPU tensor copies from pageable memory after every queued
  kernel has finished, and so do `torch.tensor(data, device=...)` and `t.new_tensor(data)`.

On the CPU none of these costs anything, so they ship unnoticed. `host_sync_check()` records them while memorygan's
code runs: a TorchFunctionMode sees the Python-level calls (reads, moves, tensors made from host data) and a
TorchDispatchMode the reads and data-dependent shapes inside torch. Each event names the innermost memorygan frame.

Allowed, because they cost no sync on a GPU either:
- reads of tensors that live on the CPU whatever the training device: the data order and loading (`memorygan.data`,
  `RealData.perm`), the mixing coin and the mixing choice's range check (drawn from CPU generators);
- device moves through `memorygan.devices.to_device`, which stages CPU tensors in pinned memory and copies them with
  `non_blocking=True`.
Device moves of any other kind are reported even where they would be no-ops on the GPU (the rule is simple to keep:
move through `to_device`).
"""
from __future__ import annotations

import sys

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

CPU_SIDE_FUNCTIONS = {"perm", "mixing_coin", "check_mix_choice"}
CPU_SIDE_MODULES = ("memorygan.data",)
MOVER = "memorygan.devices"

READS = {torch.Tensor.tolist, torch.Tensor.numpy, torch.Tensor.cpu}
MOVES = {torch.Tensor.to, torch.Tensor.cuda}
FROM_HOST = {torch.tensor, torch.as_tensor, torch.asarray}
DATA_DEPENDENT = {"aten::nonzero", "aten::nonzero_static", "aten::masked_select", "aten::_unique",
                  "aten::_unique2", "aten::unique_dim", "aten::unique_consecutive", "aten::repeat_interleave"}


def _memorygan_frame(start: int = 2, direct: bool = False):
    """(module, function, line) of the innermost frame in memorygan's code, or None. With `direct`, only if that is
    the caller (memorygan called the function itself, not through torch's code)."""
    f = sys._getframe(start)
    while f is not None:
        mod = f.f_globals.get("__name__", "")
        if mod == "memorygan" or mod.startswith("memorygan."):
            return mod, f.f_code.co_name, f.f_lineno
        if direct and mod != __name__ and not mod.startswith("torch.overrides"):
            return None
        f = f.f_back
    return None


def _cpu_side(where) -> bool:
    mod, fn, _ = where
    return fn in CPU_SIDE_FUNCTIONS or mod.startswith(CPU_SIDE_MODULES)


def _is_device(x) -> bool:
    return isinstance(x, (torch.device, str)) or torch.is_tensor(x)


class _Functions(TorchFunctionMode):
    def __init__(self, events):
        super().__init__()
        self.events = events

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        kind = None
        if func in READS:
            kind = "read"
        elif func in MOVES and (func is torch.Tensor.cuda or kwargs.get("device") is not None
                                or any(_is_device(a) for a in args[1:])):
            kind = "move"
        elif func is torch.Tensor.new_tensor or (func in FROM_HOST and kwargs.get("device") is not None
                                                 and not (args and torch.is_tensor(args[0]))):
            kind = "from host"
        if kind is not None:
            where = _memorygan_frame(direct=kind != "read")   # torch's own moves (fused Adam's flag) are its business
            if where is not None and not _cpu_side(where) and not (kind == "move" and where[0] == MOVER):
                self.events.append(f"{where[0]}:{where[2]} ({where[1]}) {kind}: {getattr(func, '__name__', func)}")
        return func(*args, **kwargs)


class _Dispatch(TorchDispatchMode):
    def __init__(self, events):
        super().__init__()
        self.events = events

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = func._schema.name
        kind = None
        if name == "aten::_local_scalar_dense":
            kind = "read"
        elif name in DATA_DEPENDENT and not (name == "aten::repeat_interleave" and not torch.is_tensor(
                kwargs.get("repeats", args[1] if len(args) > 1 else None))):
            kind = "data-dependent shape"
        elif name in ("aten::index", "aten::index_put", "aten::index_put_") and any(
                torch.is_tensor(i) and i.dtype == torch.bool for i in (args[1] if len(args) > 1 else []) or []):
            kind = "data-dependent shape"
        if kind is not None:
            where = _memorygan_frame()
            if where is not None and not _cpu_side(where):
                self.events.append(f"{where[0]}:{where[2]} ({where[1]}) {kind}: {name}")
        return func(*args, **kwargs)


class host_sync_check:
    """Within the block, `events` lists every host sync memorygan's code would make on a GPU (module docstring)."""

    def __init__(self):
        self.events: list[str] = []
        self._modes = (_Functions(self.events), _Dispatch(self.events))

    def __enter__(self):
        for m in self._modes:
            m.__enter__()
        return self

    def __exit__(self, *exc):
        for m in reversed(self._modes):
            m.__exit__(*exc)
        return False
