"""Autocast queries that also work on device types without autocast ("meta", used to count MACs)."""
from __future__ import annotations

from contextlib import nullcontext

import torch


def under_autocast(device_type: str) -> bool:
    """Whether autocast is on for `device_type` (False where that device type has none)."""
    return torch.amp.is_autocast_available(device_type) and torch.is_autocast_enabled(device_type)


def autocast_dtype(device_type: str, default: torch.dtype) -> torch.dtype:
    """The dtype autocast computes in on `device_type`, or `default` when autocast is off there."""
    return torch.get_autocast_dtype(device_type) if under_autocast(device_type) else default


def autocast_off(device_type: str):
    """A context that runs its block in the tensors' own dtypes (autocast off on `device_type`)."""
    if torch.amp.is_autocast_available(device_type):
        return torch.autocast(device_type, enabled=False)
    return nullcontext()
