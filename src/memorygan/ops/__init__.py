"""Building blocks (StyleGAN2 family). Each op has a plain-PyTorch reference path."""
from memorygan.ops.activation import SQRT2, BiasedLeakyReLU, bias_leaky_relu, folded_leaky_relu
from memorygan.ops.equalized import EqualConv2d, EqualLinear, PixelNorm
from memorygan.ops.fourier import PositionEmbedding, coordinate_grid, fourier_features
from memorygan.ops.modulated import (FixedStyleConv, ModulatedConv, StyledLayer, ToOutput, modulated_conv2d,
                                     modulated_conv2d_fast)
from memorygan.ops.noise import NOISE_MODES, NoiseInjection
from memorygan.ops.upfirdn import blur, downsample2x, make_kernel, upfirdn2d, upsample2x

__all__ = [
    "SQRT2", "BiasedLeakyReLU", "bias_leaky_relu", "folded_leaky_relu", "EqualConv2d", "EqualLinear", "PixelNorm", "PositionEmbedding",
    "coordinate_grid", "fourier_features", "FixedStyleConv", "ModulatedConv", "StyledLayer", "ToOutput",
    "modulated_conv2d", "modulated_conv2d_fast", "NOISE_MODES", "NoiseInjection", "blur", "downsample2x",
    "make_kernel", "upfirdn2d", "upsample2x",
]
