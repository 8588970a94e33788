"""Winograd F(4x4, 3x3) convolution (ops/winograd.py) and its use by the render net's FixedStyleConv."""
import pytest
import torch
import torch.nn.functional as F

from memorygan.ops import FixedStyleConv, winograd
from memorygan.ops.winograd import conv3x3_winograd, winograd_weight


def _ref(x, w, b=None):
    return F.conv2d(x.double(), w.double(), None if b is None else b.double(), padding=1)


@pytest.mark.parametrize("shape", [(1, 3, 4, 4), (2, 5, 8, 12), (3, 16, 16, 8)])
@pytest.mark.parametrize("with_bias", [False, True])
def test_equals_the_direct_convolution(shape, with_bias):
    torch.manual_seed(0)
    x = torch.randn(shape)
    w = torch.randn(7, shape[1], 3, 3) / (9 * shape[1]) ** 0.5
    b = torch.randn(7) if with_bias else None
    y = conv3x3_winograd(x, winograd_weight(w), b)
    want = _ref(x, w, b)
    assert y.shape == want.shape == (shape[0], 7, shape[2], shape[3])
    assert y.is_contiguous(memory_format=torch.channels_last)
    # fp32 Winograd F(4,3) rounding: ~1e-5 relative on unit-scale outputs (a direct fp32 conv: ~1e-6)
    assert (y.double() - want).abs().max() < 1e-4


@pytest.mark.parametrize("band_bytes", [1, 1 << 30])
def test_borders_and_every_tile_position_hit(band_bytes):
    """An impulse at each input position gives the (flipped) kernel around it: border tiles, padding (with one band
    per tile row too, where the padding rows are band by band) and the interleaving of the 16 positions of a tile
    into the output are all exact."""
    w = torch.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    u = winograd_weight(w)
    for i in range(12):
        for j in range(8):
            x = torch.zeros(1, 1, 12, 8)
            x[0, 0, i, j] = 1.0
            y = conv3x3_winograd(x, u, band_bytes=band_bytes)
            assert torch.allclose(y, F.conv2d(x, w, padding=1), atol=1e-4), (i, j)   # taps up to 9


@pytest.mark.parametrize("band_bytes", [1, 40_000, 1 << 30])
def test_band_size_does_not_change_the_result(band_bytes):
    """One tile row per band, a few rows, and the whole image in one band give the same output, to rounding."""
    torch.manual_seed(1)
    x = torch.randn(2, 6, 16, 16)
    u = winograd_weight(torch.randn(4, 6, 3, 3))
    whole = conv3x3_winograd(x, u, band_bytes=1 << 30)
    banded = conv3x3_winograd(x, u, band_bytes=band_bytes)
    # Not torch.equal: each band size is a different GEMM shape ((36 x) n*rows*tw tiles by C_in by C_out), and the
    # BLAS picks its blocking, hence the order of the channel sums, by shape, CPU and ISA. On the development
    # machines they happened to be bit-identical; on a user's AVX-512 machine they were not. Summing the 6 channels
    # in every order moves the output by at most 2.6e-6 of max|whole| (300 orders measured); a misplaced or
    # unpadded band row moves it by O(max|whole|).
    assert (banded - whole).abs().max() <= 1e-5 * whole.abs().max()


def test_band_rows_are_the_largest_fitting_divisor():
    assert winograd._band_rows(16, 10, 45) == 4
    assert winograd._band_rows(12, 10, 100) == 6    # 10 rows fit, 6 is the largest divisor of 12 that does
    assert winograd._band_rows(7, 10, 5) == 1
    assert winograd._band_rows(8, 1, 1 << 20) == 8


def test_channels_last_input_and_transformed_weight_layout():
    torch.manual_seed(2)
    x = torch.randn(2, 4, 8, 8)
    w = torch.randn(3, 4, 3, 3)
    u = winograd_weight(w)
    assert u.shape == (36, 4, 3) and u.dtype == torch.float32
    g = torch.tensor(winograd._G, dtype=torch.float64)
    assert torch.allclose(u.double(), torch.einsum("pk,oikl,ql->pqio", g, w.double(), g).reshape(36, 4, 3), atol=1e-6)
    a = conv3x3_winograd(x, u)
    b = conv3x3_winograd(x.contiguous(memory_format=torch.channels_last), u)
    # exact: either layout is first copied into the same NHWC band buffer, after which both run the same ops on
    # the same shapes (a layout change that reached the GEMMs would need a tolerance, as the band sizes above do)
    assert torch.equal(a, b)


def test_bad_inputs_are_refused_with_the_reason():
    u = winograd_weight(torch.randn(3, 4, 3, 3))
    with pytest.raises(ValueError, match="multiples of 4"):
        conv3x3_winograd(torch.randn(1, 4, 6, 8), u)
    with pytest.raises(ValueError, match="fp32"):
        conv3x3_winograd(torch.randn(1, 4, 8, 8, dtype=torch.float64), u)
    with pytest.raises(ValueError, match="do not match 5 input channels"):
        conv3x3_winograd(torch.randn(1, 5, 8, 8), u)
    with pytest.raises(ValueError, match="3x3 conv weight"):
        winograd_weight(torch.randn(3, 4, 1, 1))
    with pytest.raises(RuntimeError, match="no autograd"):
        conv3x3_winograd(torch.randn(1, 4, 8, 8, requires_grad=True), u)


class _Spy:
    def __init__(self, monkeypatch):
        self.calls = 0
        real = winograd.conv3x3_winograd

        def spy(*a, **k):
            self.calls += 1
            return real(*a, **k)
        monkeypatch.setattr(winograd, "conv3x3_winograd", spy)


@pytest.fixture(autouse=True)
def _any_size_pays_off(monkeypatch, request):
    """The layers here are tiny: let FixedStyleConv take Winograd at any size (except where a test checks the
    thresholds themselves)."""
    if "thresholds" not in request.node.name:
        monkeypatch.setattr(winograd, "MIN_CHANNELS", 0)
        monkeypatch.setattr(winograd, "MIN_MACS", 0)


def test_thresholds_of_worthwhile_follow_the_measured_boundary(monkeypatch):
    assert winograd.MIN_CHANNELS == 128 and winograd.MIN_MACS == 2e9
    big = torch.empty(1, 512, 32, 32)
    assert winograd.worthwhile(big, 512)                               # memorygan-256's 32 x 32 layer, batch 1
    assert not winograd.worthwhile(torch.empty(8, 128, 32, 32), 128)   # 1.2 GMAC: measured 0.67x
    assert not winograd.worthwhile(torch.empty(64, 64, 64, 64), 64)    # 64 channels: too narrow at any size
    assert not winograd.worthwhile(torch.empty(8, 512, 64, 64), 64)    # a narrow output too (9.7 GMAC)
    assert winograd.worthwhile(torch.empty(4, 128, 64, 64), 128)       # 2.4 GMAC: measured 1.25x


def test_fixed_style_conv_skips_winograd_below_the_thresholds(monkeypatch):
    spy = _Spy(monkeypatch)
    monkeypatch.setattr(winograd, "MIN_CHANNELS", 128)
    monkeypatch.setattr(winograd, "MIN_MACS", 0)
    with torch.no_grad():
        _layer()(torch.randn(2, 6, 8, 8), None)
    assert spy.calls == 0


def _layer(upsample=False):
    torch.manual_seed(0)
    layer = FixedStyleConv(6, 5, 3, upsample=upsample)
    with torch.no_grad():
        layer.modulation.copy_(torch.rand(1, 6) + 0.5)
        layer.activate.bias.copy_(torch.randn(5))
        layer.noise.weight.fill_(0.7)
    return layer


def _reference(layer, x, noise):
    layer.use_reference = True
    try:
        with torch.no_grad():
            return layer(x, noise)
    finally:
        layer.use_reference = False


def test_fixed_style_conv_uses_winograd_in_cpu_inference_with_the_official_values(monkeypatch):
    spy = _Spy(monkeypatch)
    layer = _layer()
    x, noise = torch.randn(2, 6, 8, 8), torch.randn(1, 1, 8, 8)
    with torch.no_grad():
        y = layer(x, noise)
    assert spy.calls == 1
    assert torch.allclose(y, _reference(layer, x, noise), atol=1e-4)
    assert not torch.equal(y, _reference(layer, x, None))      # the noise is in it


def test_fixed_style_conv_keeps_the_direct_conv_where_winograd_does_not_apply(monkeypatch):
    spy = _Spy(monkeypatch)
    layer = _layer()
    x = torch.randn(2, 6, 8, 8)
    layer(x, None).sum().backward()                          # autograd
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        layer(x, None)                                       # bf16 autocast
    with torch.no_grad():
        layer(torch.randn(2, 6, 6, 6), None)                 # 6 is not a multiple of 4
        _layer(upsample=True)(x, None)                       # the upsampling conv
        layer.cpu_winograd = False
        layer(x, None)                                       # switched off on the instance
    assert spy.calls == 0


def test_filters_follow_every_kind_of_weight_update():
    """The transformed filters are rebuilt on every call, so no update can leave stale ones behind: in place,
    through `.data` and by fused Adam (the last two do not bump the parameters' version counters)."""
    layer = _layer()
    x = torch.randn(1, 6, 8, 8)
    with torch.no_grad():
        layer(x, None)
        layer.weight.mul_(-1.0)
        assert torch.allclose(layer(x, None), _reference(layer, x, None), atol=1e-4)
    layer.modulation.data.mul_(2.0)
    with torch.no_grad():
        assert torch.allclose(layer(x, None), _reference(layer, x, None), atol=1e-4)
    opt = torch.optim.Adam(layer.parameters(), lr=0.5, fused=True)
    layer(x, None).square().sum().backward()
    opt.step()
    with torch.no_grad():
        assert torch.allclose(layer(x, None), _reference(layer, x, None), atol=1e-4)


@pytest.mark.parametrize("arch", ["memorygan", "ssg"])
def test_generators_sample_with_winograd_within_its_error_of_the_direct_path(arch, monkeypatch):
    from helpers import tiny_generator

    spy = _Spy(monkeypatch)
    G = tiny_generator(arch).eval()
    wino = G.sample(2, seed=0)
    n_stride1 = sum(1 for c in G.render_net.convs if not c.upsample)
    assert spy.calls == n_stride1 > 0
    monkeypatch.setattr(FixedStyleConv, "cpu_winograd", False)
    direct = G.sample(2, seed=0)
    assert spy.calls == n_stride1
    assert not torch.equal(wino.image, direct.image)
    assert torch.allclose(wino.image, direct.image, atol=1e-4) and torch.allclose(wino.seg, direct.seg, atol=1e-4)
