"""A CPU-side check for device-placement mistakes (a tensor created without `device=` in code that runs on the
model's device): on a GPU such a tensor lands on the CPU and the next op mixing it with CUDA tensors fails
("Expected all tensors to be on the same device"); on a CPU-only machine nothing fails, so the bug ships.

`wrong_device_check()` is a TorchFunctionMode that puts every tensor made by a factory function (torch.tensor,
zeros, ones, full, empty, arange, linspace, rand*, eye, ...) called from memorygan's own code without a `device=` (and
without a `generator=`, which fixes the device itself) on the "meta" device instead of the CPU. The model and the data
stay on the CPU, so any such tensor that meets them raises exactly the GPU's error, naming the op; tensors that never
meet model tensors (pure bookkeeping) go unnoticed, as they would on a GPU. Code outside memorygan (torch's own
optimizers, numpy conversions) is not affected.
"""
from __future__ import annotations

import sys

import torch
from torch.overrides import TorchFunctionMode

FACTORIES = {torch.tensor, torch.as_tensor, torch.zeros, torch.ones, torch.full, torch.empty, torch.arange,
             torch.linspace, torch.logspace, torch.randn, torch.rand, torch.randint, torch.randperm, torch.eye,
             torch.scalar_tensor}


# torch's own dispatch frames between a factory call and its caller (not callers themselves)
_DISPATCH = ("torch.overrides", "torch.utils._python_dispatch", "torch.utils._device")


def _caller_module() -> str:
    """The module of the code that called the factory: the first frame outside this file and torch's dispatch
    machinery. A factory called inside torch (an optimizer creating its step counters, even when memorygan called
    `opt.step()`) belongs to torch, which places its own tensors."""
    f = sys._getframe(2)
    while f is not None:
        name = f.f_globals.get("__name__", "")
        if name != __name__ and name not in _DISPATCH:
            return name
        f = f.f_back
    return ""


class wrong_device_check(TorchFunctionMode):
    """Within the block, memorygan's device-less factory tensors are created on "meta" (module docstring)."""

    def __init__(self, package: str = "memorygan"):
        super().__init__()
        self.package = package
        self.moved: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        if func in FACTORIES and kwargs.get("device") is None and kwargs.get("generator") is None:
            if func is torch.as_tensor and args and torch.is_tensor(args[0]):
                return func(*args, **kwargs)            # as_tensor of a tensor keeps its device
            mod = _caller_module()
            if mod == self.package or mod.startswith(self.package + "."):
                kwargs["device"] = "meta"
                self.moved.append(f"{mod}: {getattr(func, '__name__', func)}")
        return func(*args, **kwargs)
