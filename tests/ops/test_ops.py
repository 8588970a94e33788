import math

import pytest
import torch
import torch.nn.functional as F

from memorygan.ops import (EqualLinear, FixedStyleConv, ModulatedConv, PixelNorm, bias_leaky_relu, coordinate_grid,
                           downsample2x, fourier_features, make_kernel, modulated_conv2d, modulated_conv2d_fast,
                           upfirdn2d, upsample2x)
from memorygan.ops.fourier import num_fourier_channels


def test_make_kernel_is_normalised_outer_product():
    k = make_kernel([1, 3, 3, 1])
    assert k.shape == (4, 4)
    assert torch.allclose(k, torch.tensor([1., 3, 3, 1])[:, None] * torch.tensor([1., 3, 3, 1])[None] / 64)


def test_upfirdn_impulse_upsample_gives_kernel():
    x = torch.zeros(1, 1, 3, 3)
    x[0, 0, 1, 1] = 1.0
    k = torch.arange(16, dtype=torch.float32).reshape(4, 4)  # asymmetric: catches a missing flip
    y = upfirdn2d(x, k, up=2, pad=(2, 1))
    assert y.shape == (1, 1, 6, 6)
    # impulse at upsampled position (2, 2) padded by 2 -> (4, 4); true convolution places kernel[i, j] at (4-? )
    # out[p, q] = sum_{a,b} xpad[p+a, q+b] * flip(k)[a, b] -> nonzero where p+a=4: out[4-a, 4-b] = k[3-a, 3-b]
    expect = torch.zeros(6, 6)
    for a in range(4):
        for b in range(4):
            if 0 <= 4 - a < 6 and 0 <= 4 - b < 6:
                expect[4 - a, 4 - b] = k[3 - a, 3 - b]
    assert torch.equal(y[0, 0], expect)


def test_upsample_and_downsample_keep_constants_and_shapes():
    k = make_kernel([1, 3, 3, 1])
    x = torch.full((2, 3, 8, 8), 0.7)
    up = upsample2x(x, k)
    assert up.shape == (2, 3, 16, 16)
    assert torch.allclose(up[..., 2:-2, 2:-2], torch.full_like(up[..., 2:-2, 2:-2], 0.7))
    down = downsample2x(x, k)
    assert down.shape == (2, 3, 4, 4)
    assert torch.allclose(down[..., 1:-1, 1:-1], torch.full((2, 3, 2, 2), 0.7))


def test_bias_leaky_relu_hand_values():
    x = torch.tensor([[-1.0, 2.0]])
    b = torch.tensor([0.5, -1.0])
    y = bias_leaky_relu(x, b)
    assert torch.allclose(y, torch.tensor([[-0.5 * 0.2, 1.0]]) * math.sqrt(2))


def test_equal_linear_formula():
    torch.manual_seed(0)
    lin = EqualLinear(4, 3, lr_mul=0.01, bias_init=0.5)
    x = torch.randn(2, 4)
    expect = x @ (lin.weight * 0.01 / 2).t() + 0.5 * 0.01
    assert torch.allclose(lin(x), expect, atol=1e-6)
    act = EqualLinear(4, 3, activation=True, lr_mul=0.5)
    with torch.no_grad():
        act.bias.copy_(torch.tensor([3.0, -2.0, 0.25]))      # with lr_mul: the effective bias is bias * 0.5
    want = F.leaky_relu(x @ (act.weight * 0.5 / 2).t() + act.bias * 0.5, 0.2) * math.sqrt(2)
    assert torch.allclose(act(x), want, atol=1e-6)


def _params_grads(module, *inputs, fn):
    for p in module.parameters():
        p.grad = None
    inputs = [t.detach().clone().requires_grad_(True) for t in inputs]
    out = fn(*inputs)
    (out * torch.linspace(-1, 1, out.numel()).reshape(out.shape)).sum().backward()
    return out.detach(), [t.grad for t in inputs], {n: p.grad.clone() for n, p in module.named_parameters()
                                                    if p.grad is not None}


def _assert_same(a, b, atol=1e-5):
    out_a, in_a, par_a = a
    out_b, in_b, par_b = b
    assert torch.allclose(out_a, out_b, atol=atol, rtol=1e-4)
    for ga, gb in zip(in_a, in_b):
        assert torch.allclose(ga, gb, atol=atol, rtol=1e-4)
    assert par_a.keys() == par_b.keys() and par_a
    for n in par_a:
        assert torch.allclose(par_a[n], par_b[n], atol=atol, rtol=1e-4), n


def test_modulated_conv_fast_gain_and_bias():
    torch.manual_seed(0)
    x, s, b = torch.randn(3, 5, 6, 6), torch.randn(3, 5), torch.randn(4)
    for k in (1, 3):
        w = torch.randn(4, 5, k, k)
        for styles in (s, s[:1]):                     # per-sample styles and the shared (render-net) style
            want = modulated_conv2d(x, w, styles.expand(3, 5)) * 1.5 + b[None, :, None, None]
            assert torch.allclose(modulated_conv2d_fast(x, w, styles, gain=1.5, bias=b), want, atol=1e-5)
    with pytest.raises(ValueError, match="bias with upsample=True"):
        modulated_conv2d_fast(x, torch.randn(4, 5, 3, 3), s, upsample=True, bias=b)


@pytest.mark.parametrize("upsample", [False, True])
def test_fixed_style_conv_folded_equals_the_official_order(upsample):
    """The fast path folds the gain into the conv and the bias into the conv (or the blur): values and every gradient
    equal the reference order conv, blur, + noise, + bias, lrelu * sqrt(2), with a non-zero bias and noise."""
    torch.manual_seed(0)
    layer = FixedStyleConv(6, 5, 3, upsample=upsample)
    with torch.no_grad():
        layer.modulation.copy_(torch.rand(1, 6) + 0.5)
        layer.activate.bias.copy_(torch.randn(5))
        layer.noise.weight.fill_(0.7)
    x = torch.randn(2, 6, 4, 4)
    size = 8 if upsample else 4
    noise = torch.randn(1, 1, size, size)
    fast = _params_grads(layer, x, fn=lambda x: layer(x, noise))
    layer.use_reference = True
    ref = _params_grads(layer, x, fn=lambda x: layer(x, noise))
    layer.use_reference = False
    _assert_same(fast, ref)
    assert set(fast[2]) == {"weight", "modulation", "activate.bias", "noise.weight"}
    with torch.no_grad():                             # inference: in place, same values
        assert torch.allclose(layer(x, noise), ref[0], atol=1e-5)
        assert torch.allclose(layer(x, None), _ref_no_noise(layer, x), atol=1e-5)


def _ref_no_noise(layer, x):
    layer.use_reference = True
    try:
        return layer(x, None)
    finally:
        layer.use_reference = False


def test_styled_layer_folded_equals_the_official_order():
    from memorygan.ops import StyledLayer
    torch.manual_seed(0)
    layer = StyledLayer(6, 5, latent_dim=8)
    with torch.no_grad():
        layer.activate.bias.copy_(torch.randn(5))
    x, w = torch.randn(3, 6, 4, 4), torch.randn(3, 8)
    fast = _params_grads(layer, x, w, fn=layer)
    layer.conv.use_reference = True
    ref = _params_grads(layer, x, w, fn=layer)
    layer.conv.use_reference = False
    _assert_same(fast, ref)
    with torch.no_grad():
        assert torch.allclose(layer(x, w), ref[0], atol=1e-5)


def test_discriminator_conv_layer_folded_equals_conv_then_biased_lrelu():
    from memorygan.models.discriminator import ConvLayer
    torch.manual_seed(0)
    for downsample in (False, True):
        layer = ConvLayer(4, 6, 3, downsample=downsample)
        with torch.no_grad():
            layer.act.bias.copy_(torch.randn(6))
        x = torch.randn(2, 4, 8, 8)

        def reference(x):
            y = upfirdn2d(x, layer.blur_kernel, pad=layer.blur_pad) if downsample else x
            return bias_leaky_relu(layer.conv(y), layer.act.bias)
        _assert_same(_params_grads(layer, x, fn=layer), _params_grads(layer, x, fn=reference))


def test_pixel_norm_unit_rms():
    x = torch.randn(5, 32) * 7
    y = PixelNorm()(x)
    assert torch.allclose(y.pow(2).mean(1), torch.ones(5), atol=1e-4)


def test_fourier_features_layout_and_values():
    coords = coordinate_grid(4)
    assert torch.allclose(coords[0, 0, 0], torch.linspace(-1, 1, 4))  # x varies along width
    assert torch.allclose(coords[0, 1, :, 0], torch.linspace(-1, 1, 4))  # y along height
    f = fourier_features(coords, 3)
    assert f.shape == (1, num_fourier_channels(3), 4, 4) == (1, 14, 4, 4)
    x, y = coords[0, 0], coords[0, 1]
    # per frequency: sin(fx), sin(fy), cos(fx), cos(fy); f = 4 is the third
    assert torch.allclose(f[0, 10], torch.sin(4 * x)) and torch.allclose(f[0, 11], torch.sin(4 * y))
    assert torch.allclose(f[0, 12], torch.cos(4 * x)) and torch.allclose(f[0, 13], torch.cos(4 * y))
    assert num_fourier_channels(8) == 34  # 256 px


@pytest.mark.parametrize("k,upsample", [(1, False), (3, False), (3, True)])
@pytest.mark.parametrize("demodulate", [False, True])
def test_modulated_conv_fast_equals_reference(upsample, demodulate, k):
    torch.manual_seed(0)
    x = torch.randn(6, 5, 7, 7)
    w = torch.randn(4, 5, k, k)
    s = torch.randn(6, 5)
    ref = modulated_conv2d(x, w, s, demodulate, upsample)
    fast = modulated_conv2d_fast(x, w, s, demodulate, upsample)
    assert ref.shape == fast.shape == (6, 4, 15 if upsample else 7, 15 if upsample else 7)
    assert torch.allclose(ref, fast, atol=1e-5, rtol=1e-4)
    # shared style (1, I) equals the same style repeated
    assert torch.allclose(modulated_conv2d_fast(x, w, s[:1], demodulate, upsample),
                          modulated_conv2d(x, w, s[:1].expand(6, 5), demodulate, upsample), atol=1e-5, rtol=1e-4)


def test_demodulated_weights_have_unit_norm_output_scale():
    """With demodulation, a 1x1 conv of a unit-variance iid input keeps unit variance per output channel."""
    torch.manual_seed(0)
    x = torch.randn(1, 64, 64, 64)
    w = torch.randn(8, 64, 1, 1)
    s = torch.rand(1, 64) * 3
    y = modulated_conv2d(x, w, s, demodulate=True)
    assert torch.allclose(y.std(dim=(0, 2, 3)), torch.ones(8), atol=0.05)


def test_modules_route_reference_and_fast_paths_equal():
    torch.manual_seed(0)
    conv = ModulatedConv(6, 5, 1, latent_dim=8)
    x, w = torch.randn(3, 6, 4, 4), torch.randn(3, 8)
    fast = conv(x, w)
    conv.use_reference = True
    assert torch.allclose(fast, conv(x, w), atol=1e-5)
    fixed = FixedStyleConv(6, 5, 3, upsample=True)
    with torch.no_grad():
        fixed.modulation.copy_(torch.rand(1, 6) + 0.5)
    a = fixed(x, None)
    fixed.use_reference = True
    assert a.shape == (3, 5, 8, 8)
    assert torch.allclose(a, fixed(x, None), atol=1e-5)


def test_biased_leaky_relu_in_place_without_autograd_is_bit_identical():
    from memorygan.ops import BiasedLeakyReLU

    act = BiasedLeakyReLU(4, inplace_inference=True)
    with torch.no_grad():
        act.bias.copy_(torch.randn(4))
    x = torch.randn(3, 4, 5, 5)
    want = BiasedLeakyReLU(4)
    want.bias = act.bias
    ref = want(x)                                                    # out of place (training path)
    y = x.clone()
    with torch.no_grad():
        out = act(y)
    assert torch.equal(out, ref) and out.data_ptr() == y.data_ptr()  # same values, in the caller's tensor
    g = x.clone().requires_grad_(True)
    out = act(g * 1.0)                                               # with autograd: out of place, differentiable
    out.sum().backward()
    assert torch.equal(out.detach(), ref) and g.grad is not None


@pytest.mark.parametrize("up,down,pad", [(1, 1, (1, 2)), (2, 1, (2, 1)), (1, 2, (1, 1)), (1, 2, (2, 2))])
def test_upfirdn_gradients_of_every_order(up, down, pad):
    """upfirdn2d's filter is a custom Function (the adjoint pair grouped conv / grouped transposed conv): first and
    second derivatives are checked numerically, with and without a bias, in float64."""
    torch.manual_seed(0)
    k = torch.arange(1.0, 17.0).reshape(4, 4).double()               # asymmetric: a wrong flip or adjoint shows
    x = torch.randn(2, 3, 7, 7, dtype=torch.float64, requires_grad=True)
    b = torch.randn(3, dtype=torch.float64, requires_grad=True)
    f = lambda x, b: upfirdn2d(x, k, up=up, down=down, pad=pad, bias=b)
    assert torch.autograd.gradcheck(f, (x, b))
    assert torch.autograd.gradgradcheck(f, (x, b))
    with torch.no_grad():                                            # the no-grad path: the same values
        assert torch.allclose(f(x, b), _upfirdn_by_loops(x, k, up, down, pad) + b[None, :, None, None])


def _upfirdn_by_loops(x, k, up, down, pad):
    """Definition by hand: zero-insert, pad, true convolution with k (a flipped correlation), keep every down-th."""
    n, c, h, w = x.shape
    z = torch.zeros(n, c, h * up, w * up, dtype=x.dtype)
    z[:, :, ::up, ::up] = x
    z = F.pad(z, [pad[0], pad[1], pad[0], pad[1]])
    kh, kw = k.shape
    out = torch.zeros(n, c, z.shape[2] - kh + 1, z.shape[3] - kw + 1, dtype=x.dtype)
    for i in range(out.shape[2]):
        for j in range(out.shape[3]):
            out[:, :, i, j] = (z[:, :, i:i + kh, j:j + kw] * k.flip(0, 1)).sum((2, 3))
    return out[:, :, ::down, ::down]


def test_upfirdn_double_backward_does_not_loop_over_channels():
    """PyTorch's own double backward of a grouped convolution runs a slice and a convolution per channel. A penalty
    on the input gradient (R1) through a blur must cost the same number of ops for 4 and for 64 channels."""
    from collections import Counter

    from torch.utils._python_dispatch import TorchDispatchMode

    class Count(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.n = Counter()

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.n[str(func.overloadpacket)] += 1
            return func(*args, **(kwargs or {}))

    def ops(c):
        x = torch.randn(2, c, 8, 8, requires_grad=True)
        w = torch.randn(c, c, 3, 3, requires_grad=True)
        with Count() as count:
            y = F.conv2d(downsample2x(F.conv2d(x, w, padding=1), make_kernel([1, 3, 3, 1])), w, padding=1)
            (g,) = torch.autograd.grad(y.square().sum(), x, create_graph=True)
            g.square().sum().backward()
        assert w.grad is not None and w.grad.abs().sum() > 0
        return sum(count.n.values())
    assert ops(4) == ops(64)
