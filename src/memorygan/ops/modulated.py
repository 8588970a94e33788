"""Modulated convolution with demodulation (StyleGAN2), its fixed-style variant, and the unmodulated 1x1 "ToRGB".

`modulated_conv2d` is the reference: it builds one weight per sample and runs a grouped conv, as the official
code does. `modulated_conv2d_fast` computes the same maths faster: for 1x1 kernels one batched matmul with the per-sample
(O, I) weights; otherwise it modulates the activations (x * s, one shared conv over the whole batch, * demod
coefficients), which needs no per-sample weights.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from memorygan.ops.activation import SQRT2, BiasedLeakyReLU, folded_leaky_relu
from memorygan.ops.equalized import EqualLinear
from memorygan.ops.noise import NoiseInjection
from memorygan.ops import winograd
from memorygan.ops.upfirdn import blur, make_kernel, upsample2x


def _modulate_weight(weight: torch.Tensor, styles: torch.Tensor, demodulate: bool) -> torch.Tensor:
    """weight: (O, I, k, k); styles: (N, I) -> per-sample weight (N, O, I, k, k), scaled by 1/sqrt(I k k)."""
    o, i, kh, kw = weight.shape
    w = weight[None] * (styles[:, None, :, None, None] / math.sqrt(i * kh * kw))
    if demodulate:
        w = w * torch.rsqrt(w.pow(2).sum(dim=[2, 3, 4], keepdim=True) + 1e-8)
    return w


def modulated_conv2d(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, demodulate: bool = True,
                     upsample: bool = False) -> torch.Tensor:
    """Reference modulated conv.

    x: (N, I, H, W); weight: (O, I, k, k); styles: (N, I) or (1, I) (shared). Returns (N, O, H, W), or
    (N, O, 2H+1, 2W+1) with `upsample` (transposed conv, stride 2, before the blur that follows it).
    """
    n, i, h, w_ = x.shape
    o, _, k, _ = weight.shape
    styles = styles.to(x.dtype).expand(n, i)
    w = _modulate_weight(weight.to(x.dtype), styles, demodulate)  # (N, O, I, k, k)
    if upsample:
        w = w.transpose(1, 2).reshape(n * i, o, k, k)
        out = F.conv_transpose2d(x.reshape(1, n * i, h, w_), w, stride=2, padding=0, groups=n)
    else:
        out = F.conv2d(x.reshape(1, n * i, h, w_), w.reshape(n * o, i, k, k), padding=k // 2, groups=n)
    return out.reshape(n, o, *out.shape[2:])


def modulated_1x1_matrices(weight: torch.Tensor, styles: torch.Tensor, demodulate: bool = True,
                           gain: float = 1.0) -> torch.Tensor:
    """The per-sample matrices of a modulated 1x1 conv, times `gain`: weight (O, I, 1, 1), styles (N, I) -> (N, O, I),
    in the styles' dtype. `out[n] = matrices[n] @ x[n]` over the pixels is the conv."""
    w = _modulate_weight(weight.to(styles.dtype), styles, demodulate)[..., 0, 0]
    return w * gain if gain != 1.0 else w


def fixed_style_weight(weight: torch.Tensor, styles: torch.Tensor, demodulate: bool = True,
                       gain: float = 1.0) -> torch.Tensor:
    """The one weight (O, I, k, k) of a modulated conv whose style (1, I) is shared by the whole batch: modulated,
    scaled by 1/sqrt(I k k), demodulated, times `gain`. `conv2d(x, fixed_style_weight(...))` is the modulated conv."""
    o, i, kh, kw = weight.shape
    w = weight * (styles.to(weight.dtype) * (1.0 / math.sqrt(i * kh * kw))).reshape(1, i, 1, 1)
    if demodulate:
        w = w * torch.rsqrt(w.pow(2).sum(dim=[1, 2, 3]) + 1e-8).reshape(o, 1, 1, 1)
    return w * gain if gain != 1.0 else w


def modulated_conv2d_fast(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, demodulate: bool = True,
                          upsample: bool = False, gain: float = 1.0,
                          bias: torch.Tensor | None = None) -> torch.Tensor:
    """Same result as `modulated_conv2d` (times `gain`, plus `bias` (O,) if given), computed by modulating
    activations (no per-sample weights). Gain and bias go into the convolution itself (its weight and bias), which
    is how a following `folded_leaky_relu` gets them for free. `bias` is refused with `upsample`: there the blur comes
    between the convolution and the bias."""
    n, i = x.shape[:2]
    o, _, k, _ = weight.shape
    if bias is not None and upsample:
        raise ValueError("modulated_conv2d_fast: bias with upsample=True would be added before the blur; add it after")
    weight = weight.to(x.dtype)
    styles = styles.to(x.dtype)
    bias = bias.to(x.dtype) if bias is not None else None
    if k == 1 and not upsample:
        # 1x1 (local generators): per-sample (O, I) weights are tiny; one batched matmul beats a shared conv
        # with modulated activations by ~4x on CPU (benchmarks/bench_generator.py, modulated_conv_1x1).
        w = modulated_1x1_matrices(weight, styles.expand(n, i), demodulate, gain)
        flat = x.reshape(n, i, -1)
        out = torch.bmm(w, flat) if bias is None else torch.baddbmm(bias.reshape(1, o, 1), w, flat)
        return out.reshape(n, o, *x.shape[2:])
    scale = 1.0 / math.sqrt(i * k * k)
    if styles.shape[0] == 1:
        # one style for the whole batch (the render net's learned constant): fold style and demodulation into the
        # weight instead of scaling the activations twice (two full passes over the largest tensors saved)
        w = fixed_style_weight(weight, styles, demodulate, gain)
        if upsample:
            return F.conv_transpose2d(x, w.transpose(0, 1), stride=2, padding=0)
        return F.conv2d(x, w, bias, padding=k // 2)
    x = x * (styles * scale).reshape(-1, i, 1, 1)
    if upsample:
        out = F.conv_transpose2d(x, weight.transpose(0, 1), stride=2, padding=0)
    else:
        out = F.conv2d(x, weight, padding=k // 2)
    if demodulate:
        # sum_{i,kh,kw} (W s scale)^2 = (s^2 scale^2) @ sum_{kh,kw} W^2
        d = torch.rsqrt((styles * scale).pow(2) @ weight.pow(2).sum(dim=[2, 3]).t() + 1e-8)  # (N or 1, O)
        out = out * (d * gain).reshape(-1, o, 1, 1)
    elif gain != 1.0:
        out = out * gain
    return out if bias is None else out + bias.reshape(1, o, 1, 1)


class ModulatedConv(nn.Module):
    """StyleGAN2 modulated conv whose style comes from a latent code via an equalized linear (bias init 1).

    Used (1x1, no noise) by the local generators. forward(x (N, I, H, W), w (N, D)) -> (N, O, H, W).
    """

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, latent_dim: int, demodulate: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, kernel_size, kernel_size))
        self.modulation = EqualLinear(latent_dim, in_ch, bias_init=1.0)
        self.demodulate = demodulate
        self.use_reference = False  # set True to route through the per-sample-weight reference

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        styles = self.modulation(w)
        fn = modulated_conv2d if self.use_reference else modulated_conv2d_fast
        return fn(x, self.weight, styles, demodulate=self.demodulate)


class StyledLayer(nn.Module):
    """Modulated conv + biased leaky ReLU (a local-generator layer)."""

    def __init__(self, in_ch: int, out_ch: int, latent_dim: int, kernel_size: int = 1):
        super().__init__()
        self.conv = ModulatedConv(in_ch, out_ch, kernel_size, latent_dim)
        self.activate = BiasedLeakyReLU(out_ch, inplace_inference=True)     # applied to its own conv output

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        conv = self.conv
        if conv.use_reference:
            return self.activate(conv(x, w))
        # gain and bias folded into the batched matmul (baddbmm), then one leaky ReLU pass: in place without autograd
        y = modulated_conv2d_fast(x, conv.weight, conv.modulation(w), demodulate=conv.demodulate, gain=SQRT2,
                                  bias=self.activate.folded_bias())
        return folded_leaky_relu(y, inplace=not torch.is_grad_enabled())


class FixedStyleConv(nn.Module):
    """Render-net conv: modulated conv whose per-input-channel style is a learned constant (init 1), with
    demodulation, optional 2x upsampling (transposed conv + blur [1,3,3,1]*4, pad (1,1)), noise and activation.

    forward(x (N, I, H, W), noise (N|1, 1, H', W') or None) -> (N, O, H', W'), H' = 2H with `upsample`.
    """

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int = 3, upsample: bool = False,
                 blur_kernel=(1, 3, 3, 1)):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, kernel_size, kernel_size))
        self.modulation = nn.Parameter(torch.ones(1, in_ch))
        self.upsample = upsample
        if upsample:
            self.register_buffer("blur_kernel", make_kernel(blur_kernel), persistent=False)
            p = (len(blur_kernel) - 2) - (kernel_size - 1)
            self.blur_pad = ((p + 1) // 2 + 1, p // 2 + 1)
        self.noise = NoiseInjection()
        self.activate = BiasedLeakyReLU(out_ch, inplace_inference=True)     # applied to its own conv output
        self.use_reference = False

    # CPU inference runs the stride-1 3x3 convs by Winograd F(4x4, 3x3) (ops/winograd.py): 4x fewer multiplications,
    # 1.3-2.7x faster per layer at fp32 on this project's reference CPU, where the layer is big enough for that
    # (`winograd.worthwhile`). fp32 only, no autograd. False: always direct.
    cpu_winograd: bool = True

    def _use_winograd(self, x: torch.Tensor) -> bool:
        return (self.cpu_winograd and x.device.type == "cpu" and self.weight.shape[-1] == 3
                and not torch.is_autocast_enabled("cpu") and self.weight.dtype == torch.float32
                and winograd.supports(x) and winograd.worthwhile(x, self.weight.shape[0]))

    def winograd_filters(self) -> torch.Tensor:
        """`winograd_weight` of the folded weight (style, demodulation and the activation's gain sqrt(2) in it):
        (36, I, O)."""
        with torch.no_grad():
            return winograd.winograd_weight(fixed_style_weight(self.weight, self.modulation, demodulate=True,
                                                               gain=SQRT2))

    def forward(self, x: torch.Tensor, noise: torch.Tensor | None) -> torch.Tensor:
        if self.use_reference:                 # the official order: conv, blur, + noise, + bias, lrelu * sqrt(2)
            out = modulated_conv2d(x, self.weight, self.modulation, demodulate=True, upsample=self.upsample)
            if self.upsample:
                out = blur(out, self.blur_kernel, self.blur_pad, gain=4.0)
            return self.activate(self.noise(out, noise))
        # the same sum with the gain sqrt(2) in the conv weight and the bias in the conv (or, after an upsampling
        # conv, in the blur): conv, [blur], + sqrt(2) * noise, lrelu. Each step after the conv works in its own fresh
        # output, in place when autograd is off.
        inplace = not torch.is_grad_enabled()
        bias = self.activate.folded_bias()
        if self.upsample:
            out = modulated_conv2d_fast(x, self.weight, self.modulation, demodulate=True, upsample=True, gain=SQRT2)
            out = blur(out, self.blur_kernel, self.blur_pad, gain=4.0, bias=bias)
        elif inplace and self._use_winograd(x):
            out = winograd.conv3x3_winograd(x, self.winograd_filters(), bias)
        else:
            out = modulated_conv2d_fast(x, self.weight, self.modulation, demodulate=True, gain=SQRT2, bias=bias)
        if noise is not None:
            n = noise.to(out.dtype) * (self.noise.weight * SQRT2).to(out.dtype)
            out = out.add_(n) if inplace else out + n
        return folded_leaky_relu(out, inplace)


class ToOutput(nn.Module):
    """Unmodulated 1x1 conv with a learned per-input-channel scale (init 1) and bias: `conv(x, W*scale/sqrt(I)) + b`.

    The official "ToRGB" without a style, used for to_feat, to_depth, to_rgb and to_seg. With `skip`, the previous
    skip output is 2x blur-upsampled and added. forward(x (N, I, H, W), skip (N, O, H/2, W/2) | None) -> (N, O, H, W).
    """

    def __init__(self, in_ch: int, out_ch: int, blur_kernel=(1, 3, 3, 1)):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, 1, 1))
        self.modulation = nn.Parameter(torch.ones(1, in_ch))
        self.bias = nn.Parameter(torch.zeros(out_ch))
        self.register_buffer("up_kernel", make_kernel(blur_kernel), persistent=False)
        self.scale = 1.0 / math.sqrt(in_ch)

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None = None,
                bias_scale: torch.Tensor | None = None) -> torch.Tensor:
        """`bias_scale` (N, 1, H, W) multiplies the bias: applying the layer to a weighted sum of inputs
        sum_k a_k x_k with bias_scale = sum_k a_k equals sum_k a_k * layer(x_k) (it is affine)."""
        w = self.weight * (self.modulation[:, :, None, None] * self.scale)
        if bias_scale is None:
            out = F.conv2d(x, w.to(x.dtype), self.bias.to(x.dtype))
        else:
            out = F.conv2d(x, w.to(x.dtype)) + self.bias.to(x.dtype)[None, :, None, None] * bias_scale
        if skip is not None:
            out = out + upsample2x(skip, self.up_kernel)
        return out
