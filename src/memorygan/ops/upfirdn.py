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


def upfirdn2d(x: torch.Tensor, kernel: torch.Tensor, up: int = 1, down: int = 1, pad: tuple[int, int] = (0, 0),
              bias: torch.Tensor | None = None) -> torch.Tensor:
    """x: (N, C, H, W); kernel: (kh, kw). Returns (N, C, (H*up + p0 + p1 - kh)//down + 1, ...), plus `bias` (C,)
    per channel if given (added by the filter's own convolution, no extra pass)."""
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
    bias = bias.to(x.dtype) if bias is not None else None
    if torch.is_grad_enabled():
        return _FIR.apply(x, weight, bias, down, False, None)
    return F.conv2d(x, weight, bias, stride=down, groups=c)     # stride = keep every down-th output, not computed


class _FIR(torch.autograd.Function):
    """Per-channel filter with a constant kernel (C, 1, kh, kw): a grouped convolution (stride `down`; `transpose`:
    its adjoint, the grouped transposed convolution back to `size`). The gradient of each is the other, at every
    order, built from this Function again: R1 and the path-length penalty differentiate through the blurs twice,
    and PyTorch's generic double backward of a grouped convolution loops over the groups (a slice and a convolution
    per channel): before this, a quarter of the ops of a step with every regulariser (docs/performance.md). `bias` (C,),
    only without `transpose`, is added by the convolution."""

    @staticmethod
    def forward(ctx, x, weight, bias, stride: int, transpose: bool, size):
        ctx.save_for_backward(weight)
        ctx.conf = (stride, transpose, tuple(x.shape[-2:]), bias is not None)
        c = x.shape[1]
        if transpose:
            out_pad = [size[i] - ((x.shape[2 + i] - 1) * stride + weight.shape[2 + i]) for i in range(2)]
            return F.conv_transpose2d(x, weight.to(x.dtype), stride=stride, output_padding=out_pad, groups=c)
        return F.conv2d(x, weight.to(x.dtype), bias, stride=stride, groups=c)

    @staticmethod
    def backward(ctx, grad):
        (weight,) = ctx.saved_tensors
        stride, transpose, size, has_bias = ctx.conf
        grad_x = _FIR.apply(grad, weight, None, stride, not transpose, None if transpose else size)
        grad_bias = grad.sum(dim=(0, 2, 3)) if has_bias else None
        return grad_x, None, grad_bias, None, None, None


def blur(x: torch.Tensor, kernel: torch.Tensor, pad: tuple[int, int], gain: float = 1.0,
         bias: torch.Tensor | None = None) -> torch.Tensor:
    """FIR filter with padding, kernel scaled by `gain` (StyleGAN2 `Blur`, which scales by up-factor^2), plus an
    optional per-channel `bias` (C,)."""
    return upfirdn2d(x, kernel * gain if gain != 1.0 else kernel, pad=pad, bias=bias)


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
