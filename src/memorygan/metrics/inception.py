"""The standard FID feature network: the 2015-12-05 TensorFlow InceptionV3 graph as our own PyTorch module.

Facts: `reference/fid_inception_v3.md` and the key list `reference/fid_inception_v3_keys.tsv`. `state_dict()` has
exactly the layout of the usual `pt_inception-2015-12-05-6726825d.pth` weights file (about 23.9 M parameters).
The weights are loaded **only** from a local file the user supplies (`load_inception`); nothing is ever downloaded.

What differs from an ImageNet InceptionV3 and changes FID values (all reproduced here):
  * every average-pool branch excludes the padding from the average (`count_include_pad=False`);
  * Mixed_7c pools its pool branch with a 3x3 stride-1 *max* pool;
  * input: uint8 RGB -> float -> bilinear resize to 299x299 with TF1 semantics (`tf_bilinear_resize`) ->
    `(x - 128) / 128`;
  * 1008 output classes.

Pixel conventions (shapes (B, 3, H, W), any H, W):
  * `FIDInceptionV3.forward` takes *pixel values*: uint8 in [0, 255] or float in [0, 255].
  * `FIDInceptionV3.features` takes the project's conventions: uint8 in [0, 255] as is, or float in [-1, 1]
    (generator outputs), which is first quantised to uint8 exactly as StyleGAN2-ADA does (`float_to_uint8`).
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from memorygan.errors import CheckpointError
from memorygan.featurenets import read_state_dict as _read_state_dict
from memorygan.featurenets import short_reason as _short_reason

ENV_VAR = "MEMORYGAN_INCEPTION_WEIGHTS"
INPUT_SIZE = 299
FEATURE_DIM = 2048
NUM_CLASSES = 1008
BN_EPS = 1e-3


# ----------------------------------------------------------------------------------------------------------------------
# Preprocessing


def _tf_source_indices(in_size: int, out_size: int, device: torch.device):
    """TF1 `resize_bilinear` (align_corners=False, half_pixel_centers=False) source positions for one axis.

    src = dst * (in / out) in float32 as TF computes it (no half-pixel offset); returns (lo, hi, frac) with
    lo = floor(src), hi = min(lo + 1, in - 1) (neighbours clamped at the border), frac = src - floor(src).
    """
    # computed on the CPU in float32 exactly as TF does, then moved
    scale = (torch.tensor(float(in_size), dtype=torch.float32, device="cpu")
             / torch.tensor(float(out_size), dtype=torch.float32, device="cpu"))
    src = torch.arange(out_size, dtype=torch.float32, device="cpu") * scale
    lo_f = torch.floor(src)
    frac = src - lo_f
    lo = lo_f.long().clamp(0, in_size - 1)
    hi = (lo + 1).clamp(max=in_size - 1)
    return lo.to(device), hi.to(device), frac.to(device)


def tf_bilinear_resize(x: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    """Bilinear resize with TensorFlow 1.x `tf.image.resize_bilinear` semantics (the FID graph's `ResizeBilinear`).

    Differs from `F.interpolate(mode="bilinear", align_corners=False)`, which uses half-pixel centres: here the
    source coordinate of output index i is `i * (in / out)` (float32), the two neighbours are `floor(src)` and
    `floor(src) + 1` clamped to the last row/column, and the value is
    `top + (bottom - top) * y_frac` with `top = tl + (tr - tl) * x_frac` (TF's evaluation order).

    x: (B, C, H, W), any real dtype (integers are converted to float32). size: out (h, w) or one int for both.
    Returns (B, C, h, w); float input keeps its dtype, integer input becomes float32.
    """
    if x.ndim != 4:
        raise ValueError(f"tf_bilinear_resize expects (B, C, H, W), got shape {tuple(x.shape)}")
    out_h, out_w = (size, size) if isinstance(size, int) else size
    if not x.is_floating_point():
        x = x.float()
    in_h, in_w = x.shape[-2:]
    if (in_h, in_w) == (out_h, out_w):
        return x  # scale 1: src == dst, frac == 0, TF returns the input unchanged
    y_lo, y_hi, y_frac = _tf_source_indices(in_h, out_h, x.device)
    x_lo, x_hi, x_frac = _tf_source_indices(in_w, out_w, x.device)
    y_frac = y_frac.to(x.dtype)[:, None]  # (h, 1)
    x_frac = x_frac.to(x.dtype)  # (w,)
    top_rows = x.index_select(2, y_lo)  # (B, C, h, W)
    bottom_rows = x.index_select(2, y_hi)
    tl, tr = top_rows.index_select(3, x_lo), top_rows.index_select(3, x_hi)  # (B, C, h, w)
    bl, br = bottom_rows.index_select(3, x_lo), bottom_rows.index_select(3, x_hi)
    top = tl + (tr - tl) * x_frac
    bottom = bl + (br - bl) * x_frac
    return top + (bottom - top) * y_frac


def tf_resize_299(x: torch.Tensor) -> torch.Tensor:
    """The FID graph's input pipeline: pixels -> float -> TF1 bilinear resize to 299x299 -> (x - 128) / 128.

    x: (B, 3, H, W) pixel values, uint8 in [0, 255] or float in [0, 255] (values are not rounded or clamped).
    Returns the network input (B, 3, 299, 299) float32, in [-1, 0.9921875] for valid pixels.
    """
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"expected RGB images (B, 3, H, W), got shape {tuple(x.shape)}")
    x = tf_bilinear_resize(x.to(torch.float32), INPUT_SIZE)
    return (x - 128) / 128


def float_to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Generator images in [-1, 1] -> uint8 pixels, as StyleGAN2-ADA's metrics do: `(x * 127.5 + 128).clamp(0, 255)`
    then truncation to uint8 (so -1 -> 0, 0 -> 128, 1 -> 255). Shape unchanged."""
    return (x.float() * 127.5 + 128).clamp(0, 255).to(torch.uint8)


# ----------------------------------------------------------------------------------------------------------------------
# Network


class BasicConv2d(nn.Module):
    """conv (no bias) -> BatchNorm (eps 0.001) -> ReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(out_channels, eps=BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def _avg_pool(x: torch.Tensor) -> torch.Tensor:
    # FID graph: the padded border is not part of the average (torchvision's Inception3 counts it).
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class InceptionA(nn.Module):
    """35x35 block: 1x1 | 1x1 -> 5x5 | 1x1 -> 3x3 -> 3x3 | avg-pool -> 1x1. Out: 224 + pool_features channels."""

    def __init__(self, in_channels: int, pool_features: int):
        super().__init__()
        self.branch1x1 = BasicConv2d(in_channels, 64, 1)
        self.branch5x5_1 = BasicConv2d(in_channels, 48, 1)
        self.branch5x5_2 = BasicConv2d(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, padding=1)
        self.branch_pool = BasicConv2d(in_channels, pool_features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = self.branch_pool(_avg_pool(x))
        return torch.cat([b1, b5, b3, bp], dim=1)


class InceptionB(nn.Module):
    """35 -> 17 reduction: 3x3/2 | 1x1 -> 3x3 -> 3x3/2 | max-pool 3/2. Out: 480 + in_channels channels."""

    def __init__(self, in_channels: int):
        super().__init__()
        self.branch3x3 = BasicConv2d(in_channels, 384, 3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3(x)
        b3d = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = F.max_pool2d(x, kernel_size=3, stride=2)
        return torch.cat([b3, b3d, bp], dim=1)


class InceptionC(nn.Module):
    """17x17 block with factorised 7x7 convolutions (c7 = width of the inner layers). Out: 768 channels."""

    def __init__(self, in_channels: int, channels_7x7: int):
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = BasicConv2d(in_channels, 192, 1)
        self.branch7x7_1 = BasicConv2d(in_channels, c7, 1)
        self.branch7x7_2 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(in_channels, c7, 1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(in_channels, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        b7d = x
        for layer in (self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4,
                      self.branch7x7dbl_5):
            b7d = layer(b7d)
        bp = self.branch_pool(_avg_pool(x))
        return torch.cat([b1, b7, b7d, bp], dim=1)


class InceptionD(nn.Module):
    """17 -> 8 reduction: 1x1 -> 3x3/2 | 1x1 -> 1x7 -> 7x1 -> 3x3/2 | max-pool 3/2. Out: 512 + in_channels."""

    def __init__(self, in_channels: int):
        super().__init__()
        self.branch3x3_1 = BasicConv2d(in_channels, 192, 1)
        self.branch3x3_2 = BasicConv2d(192, 320, 3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(in_channels, 192, 1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        bp = F.max_pool2d(x, kernel_size=3, stride=2)
        return torch.cat([b3, b7, bp], dim=1)


class InceptionE(nn.Module):
    """8x8 block with split 1x3/3x1 heads. `pool="avg"` for Mixed_7b, `pool="max"` for Mixed_7c (FID graph).

    Out: 320 + 768 + 768 + 192 = 2048 channels.
    """

    def __init__(self, in_channels: int, pool: str):
        super().__init__()
        if pool not in ("avg", "max"):
            raise ValueError(f"pool must be 'avg' or 'max', got {pool!r}")
        self.pool = pool
        self.branch1x1 = BasicConv2d(in_channels, 320, 1)
        self.branch3x3_1 = BasicConv2d(in_channels, 384, 1)
        self.branch3x3_2a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 448, 1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(in_channels, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], dim=1)
        b3d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        b3d = torch.cat([self.branch3x3dbl_3a(b3d), self.branch3x3dbl_3b(b3d)], dim=1)
        if self.pool == "avg":
            pooled = _avg_pool(x)
        else:
            pooled = F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
        bp = self.branch_pool(pooled)
        return torch.cat([b1, b3, b3d, bp], dim=1)


class FIDInceptionV3(nn.Module):
    """InceptionV3 of the FID graph; `state_dict()` matches `pt_inception-2015-12-05-6726825d.pth` key for key.

    Build it with random weights only for tests; for metrics use `load_inception`.
    """

    def __init__(self):
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, 1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3)
        self.Mixed_5b = InceptionA(192, pool_features=32)
        self.Mixed_5c = InceptionA(256, pool_features=64)
        self.Mixed_5d = InceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, channels_7x7=128)
        self.Mixed_6c = InceptionC(768, channels_7x7=160)
        self.Mixed_6d = InceptionC(768, channels_7x7=160)
        self.Mixed_6e = InceptionC(768, channels_7x7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280, pool="avg")
        self.Mixed_7c = InceptionE(2048, pool="max")
        self.fc = nn.Linear(FEATURE_DIM, NUM_CLASSES)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def pool_features(self, x: torch.Tensor) -> torch.Tensor:
        """Network input (B, 3, 299, 299) from `tf_resize_299` -> pooled features (B, 2048) (the graph's pool_3).

        Any size from 75x75 up runs (tests use 75x75 to save time); FID features are only defined at 299.
        """
        if x.ndim != 4 or x.shape[1] != 3 or min(x.shape[-2:]) < 75:
            raise ValueError(f"expected a network input (B, 3, 299, 299), got shape {tuple(x.shape)}")
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))  # (B, 64, 147, 147)
        x = F.max_pool2d(x, kernel_size=3, stride=2)  # (B, 64, 73, 73)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))  # (B, 192, 71, 71)
        x = F.max_pool2d(x, kernel_size=3, stride=2)  # (B, 192, 35, 35)
        x = self.Mixed_5d(self.Mixed_5c(self.Mixed_5b(x)))  # (B, 288, 35, 35)
        x = self.Mixed_6a(x)  # (B, 768, 17, 17)
        x = self.Mixed_6e(self.Mixed_6d(self.Mixed_6c(self.Mixed_6b(x))))  # (B, 768, 17, 17)
        x = self.Mixed_7a(x)  # (B, 1280, 8, 8)
        x = self.Mixed_7c(self.Mixed_7b(x))  # (B, 2048, 8, 8)
        return x.mean(dim=(2, 3))  # global average pool -> (B, 2048)

    def logits(self, features: torch.Tensor, bias: bool = False) -> torch.Tensor:
        """Pooled features (B, 2048) -> class logits (B, 1008).

        Without `bias` (the default) these are the logits the Inception Score uses: torch-fidelity
        (`logits_unbiased`) and StyleGAN2-ADA (`no_output_bias=True`) both drop the fc bias, matching the
        original TF implementation.
        """
        return F.linear(features, self.fc.weight, self.fc.bias if bias else None)

    def forward(self, images: torch.Tensor, return_logits: bool = False, logits_bias: bool = False):
        """images: (B, 3, H, W) pixel values, uint8 in [0, 255] or float in [0, 255] (any H, W: resized to 299).

        Returns features (B, 2048); with `return_logits`, (features, logits (B, 1008)) where the logits omit the
        fc bias unless `logits_bias` (see `logits`).
        """
        x = tf_resize_299(images.to(self.fc.weight.device)).to(self.fc.weight.dtype)
        feats = self.pool_features(x)
        assert feats.shape == (images.shape[0], FEATURE_DIM)
        if return_logits:
            return feats, self.logits(feats, bias=logits_bias)
        return feats

    @torch.no_grad()
    def features(self, images: torch.Tensor, return_logits: bool = False):
        """Metric entry point, in the project's conventions, without gradients.

        images: (B, 3, H, W) uint8 in [0, 255], or float in [-1, 1] (generator outputs; quantised to uint8 with
        `float_to_uint8` first, as StyleGAN2-ADA does). Returns what `forward` returns (IS logits without bias).
        """
        if images.dtype != torch.uint8:
            if not images.is_floating_point():
                raise ValueError(f"images must be uint8 in [0, 255] or float in [-1, 1], got dtype {images.dtype}")
            peak = float(images.detach().abs().max()) if images.numel() else 0.0
            if peak > 16:  # clearly [0, 255] pixels, which float_to_uint8 would clamp to white without a word
                raise ValueError(f"features() expects float images in [-1, 1], got values up to {peak:.4g}; pass "
                                 "uint8 pixels, or call the model itself with float pixels in [0, 255]")
            images = float_to_uint8(images)
        return self(images, return_logits=return_logits)


# ----------------------------------------------------------------------------------------------------------------------
# Loading


def _is_running_count(key: str) -> bool:
    return key.endswith("num_batches_tracked")


def load_inception(path: str | os.PathLike | None = None, device: str | torch.device = "cpu") -> FIDInceptionV3:
    """Load the FID InceptionV3 from a local weights file; nothing is ever downloaded.

    path: a state dict saved with `torch.save` (e.g. `pt_inception-2015-12-05-6726825d.pth`, loaded with
    `weights_only=True`) or a safetensors file with the same keys. Falls back to the environment variable
    `MEMORYGAN_INCEPTION_WEIGHTS`. `num_batches_tracked` entries may be present or absent.
    Returns the model on `device`, in eval mode, without gradients. Raises CheckpointError naming the file.
    """
    if path is None or str(path) == "":
        path = os.environ.get(ENV_VAR) or None
    if path is None:
        raise CheckpointError(
            f"no Inception weights: pass --inception-weights or set {ENV_VAR} to the path of "
            "pt_inception-2015-12-05-6726825d.pth (or a safetensors copy); weights are never downloaded")
    path = Path(path).expanduser()
    if path.is_dir():
        raise CheckpointError(f"{path}: is a folder; expected the Inception weights file itself")
    if not path.is_file():
        raise CheckpointError(f"{path}: Inception weights file not found (weights are never downloaded)")
    try:
        state = _read_state_dict(path)
    except Exception as e:  # noqa: BLE001 - any reader failure means "not a weights file"; keep it short
        raise CheckpointError(f"{path}: not a readable state dict or safetensors file ({_short_reason(e)})") from None
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: expected a state dict (name -> tensor), got {type(state).__name__}")

    model = FIDInceptionV3()
    expected = model.state_dict()
    state = dict(state)
    missing = sorted(k for k in expected if k not in state and not _is_running_count(k))
    unexpected = sorted(k for k in state if k not in expected)
    shapes = [f"{k}: expected {tuple(expected[k].shape)}, got {tuple(state[k].shape)}"
              for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)]
    problems = []
    for label, items in (("missing", missing), ("unexpected", unexpected), ("mis-shaped", shapes)):
        if items:
            more = f" ... (+{len(items) - 5})" if len(items) > 5 else ""
            problems.append(f"{len(items)} {label} tensor(s): {', '.join(items[:5])}{more}")
    if problems:
        raise CheckpointError(f"{path}: not FID InceptionV3 weights; " + "; ".join(problems))
    for k in expected:
        if _is_running_count(k) and k not in state:
            state[k] = torch.zeros((), dtype=torch.long)  # only counts BN training steps; unused in eval mode
    model.load_state_dict(state, strict=True)
    return model.eval().requires_grad_(False).to(device)


# ----------------------------------------------------------------------------------------------------------------------
# Inception Score


def inception_score(logits_or_probs: torch.Tensor, splits: int = 10, probs: bool = False) -> tuple[float, float]:
    """Inception Score (Salimans et al. 2016): IS = exp(E_x KL(p(y|x) || p(y))), per split; returns (mean, std).

    logits_or_probs: (N, C) unbiased logits (`FIDInceptionV3.logits`, C = 1008), or class probabilities when
    `probs`. The N samples are cut into `splits` consecutive parts (`part k = [k N // s, (k + 1) N // s)`, as
    the original TF code and StyleGAN2-ADA do); p(y) is the mean prediction of each part. std has ddof = 0.
    Computed in float64.
    """
    if logits_or_probs.ndim != 2:
        raise ValueError(f"inception_score expects (N, C), got shape {tuple(logits_or_probs.shape)}")
    n = logits_or_probs.shape[0]
    if not 1 <= splits <= n:
        raise ValueError(f"inception_score needs 1 <= splits <= N samples, got splits={splits}, N={n}")
    x = logits_or_probs.detach().double()
    if probs:
        if (x < 0).any() or not torch.allclose(x.sum(dim=1), torch.ones(n, dtype=x.dtype, device=x.device), atol=1e-4):
            raise ValueError("inception_score(probs=True) expects rows of non-negative values summing to 1")
        p = x / x.sum(dim=1, keepdim=True)
    else:
        p = torch.softmax(x, dim=1)
    scores = []
    for k in range(splits):
        part = p[k * n // splits:(k + 1) * n // splits]  # (n_k, C)
        p_y = part.mean(dim=0, keepdim=True)  # (1, C)
        kl = torch.special.xlogy(part, part) - torch.special.xlogy(part, p_y)  # 0 log 0 = 0
        scores.append(torch.exp(kl.sum(dim=1).mean()))
    scores = torch.stack(scores)
    return float(scores.mean()), float(scores.std(correction=0))
