"""upfirdn2d: upsample (zero insertion), FIR filter, downsample -- the resampling primitive of StyleGAN2.

Reference path in plain PyTorch with the semantics of rosinality's `upfirdn2d_native` (which the official
SemanticStyleGAN code falls back to): pad is `(pad0, pad1)` applied before/after on both axes, the kernel is
flipped (true convolution), and it is applied per channel.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def make_kernel(taps) -> torch.Tensor:
    """Separable 2-D FIR kernel from 1-D taps, normalised to sum 1: `outer(k, k) / sum`."""
    k = torch.as_tensor(taps, dtype=torch.float32)
    if k.ndim == 1:
        k = k[None, :] * k[:, None]
    return k / k.sum()


def upfirdn2d(x: torch.Tensor, kernel: torch.Tensor, up: int = 1, down: int = 1, pad: tuple[int, int] = (0, 0)) -> torch.Tensor:
    """x: (N, C, H, W); kernel: (kh, kw). Returns (N, C, (H*up + p0 + p1 - kh)//down + 1, ...)."""
    n, c, h, w = x.shape
    kh, kw = kernel.shape
    p0, p1 = pad
    if up > 1:  # zero insertion
        x = x.reshape(n, c, h, 1, w, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])
        x = x.reshape(n, c, h * up, w * up)
    x = F.pad(x, [max(p0, 0), max(p1, 0), max(p0, 0), max(p1, 0)])
    if p0 < 0 or p1 < 0:
        x = x[:, :, max(-p0, 0): x.shape[2] - max(-p1, 0), max(-p0, 0): x.shape[3] - max(-p1, 0)]
    weight = torch.flip(kernel, [0, 1]).to(x.dtype).reshape(1, 1, kh, kw).expand(c, 1, kh, kw)
    x = F.conv2d(x, weight, groups=c)
    if down > 1:
        x = x[:, :, ::down, ::down]
    return x


def blur(x: torch.Tensor, kernel: torch.Tensor, pad: tuple[int, int], gain: float = 1.0) -> torch.Tensor:
    """FIR filter with padding, kernel scaled by `gain` (StyleGAN2 `Blur`, which scales by up-factor^2)."""
    return upfirdn2d(x, kernel * gain, pad=pad)


def upsample2x(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """StyleGAN2 `Upsample(factor=2)` for a 4-tap kernel: up 2, pad (2, 1), kernel * 4. (N,C,H,W)->(N,C,2H,2W)."""
    k = kernel.shape[0]
    p = k - 2
    return upfirdn2d(x, kernel * 4, up=2, pad=((p + 1) // 2 + 1, p // 2))


def downsample2x(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """StyleGAN2 `Downsample(factor=2)`: blur then keep every 2nd pixel. (N,C,H,W)->(N,C,H/2,W/2)."""
    k = kernel.shape[0]
    p = k - 2
    return upfirdn2d(x, kernel, down=2, pad=((p + 1) // 2, p // 2))
