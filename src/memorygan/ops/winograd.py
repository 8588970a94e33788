"""3x3 convolution by Winograd's minimal filtering F(4x4, 3x3) (Lavin & Gray, "Fast Algorithms for Convolutional
Neural Networks", CVPR 2016), for the render net's stride-1 convolutions in CPU inference.

Each 4x4 output tile is `A^T [(G g G^T) * (B^T d B)] A` of its 6x6 input tile d: 36 multiplications per input and
output channel instead of the direct 144, i.e. 4x fewer multiply-accumulates. The 36 elementwise products over the
channels are 36 matrix products (tiles x C_in) @ (C_in x C_out), which run at the CPU's GEMM rate. The transforms
(B, A: coefficients 0, +-1, +-2, +-4, -5, +-8) are adds over strided views of NHWC tensors. They are done band by band
of tile rows, so each band's transformed tiles stay in the cache between the transform, the GEMM and the inverse.

Direct convolutions (oneDNN) already run at this CPU's fp32 peak, so only fewer multiplications make them faster.
Numbers: `benchmarks/bench_winograd.py`, docs/performance.md.

Precision: the interpolation points 0, +-1, +-2, inf amplify fp32 rounding. The max abs error is 6e-5 to 1e-4 on
outputs of std 1.4 (the memorygan-256 layers), against 2e-6 for a direct convolution (`tests/ops/test_winograd.py`).
That is far below an 8-bit image's 4e-3 step, but bfloat16 inputs would make it 15x worse than a direct bfloat16
convolution (measured), so it is fp32-only.
"""
from __future__ import annotations

import torch

TILE = 4          # output tile m
ALPHA = TILE + 2  # input tile m + r - 1
# F(4, 3) with the points 0, 1, -1, 2, -2, inf (Lavin & Gray, Sec. 4.2); G is the only matrix with fractions
_G = ((1 / 4, 0, 0), (-1 / 6, -1 / 6, -1 / 6), (-1 / 6, 1 / 6, -1 / 6), (1 / 24, 1 / 12, 1 / 6),
      (1 / 24, -1 / 12, 1 / 6), (0, 0, 1))
BT = ((4, 0, -5, 0, 1, 0), (0, -4, -4, 1, 1, 0), (0, 4, -4, -1, 1, 0), (0, -2, -1, 2, 1, 0), (0, 2, -1, -2, 1, 0),
      (0, 4, 0, -5, 0, 1))
AT = ((1, 1, 1, 1, 1, 0), (0, 1, -1, 2, -2, 0), (0, 1, 1, 4, 4, 0), (0, 1, -1, 8, -8, 1))


def winograd_weight(weight: torch.Tensor) -> torch.Tensor:
    """The transformed filters `G g G^T` of a 3x3 conv weight (O, I, 3, 3): (36, I, O), entry [6p + q, i, o], in the
    weight's dtype. One (36, 9) @ (9, I*O) product: 15-30 ms for 512 x 512 channels, so it is recomputed on every
    call rather than cached (a cache keyed on parameter versions would miss fused-Adam and `.data` updates)."""
    if weight.ndim != 4 or tuple(weight.shape[2:]) != (3, 3):
        raise ValueError(f"winograd_weight: expected a 3x3 conv weight (O, I, 3, 3), got {tuple(weight.shape)}")
    o, i = weight.shape[:2]
    g = torch.tensor(_G, dtype=weight.dtype, device=weight.device)
    # (36, 9) @ (9, I*O): contiguous (36, I, O) for the band GEMMs. Different band sizes are different GEMM shapes,
    # whose blocking (the order of the channel sums) the BLAS chooses per shape and CPU: equal to ~1e-6 relative, not
    # bit-identical on every CPU (tests/ops/test_winograd.py bounds it)
    u = torch.mm(torch.kron(g, g), weight.detach().permute(2, 3, 1, 0).reshape(9, i * o))
    return u.reshape(ALPHA * ALPHA, i, o)


def _input_1d(d: list[torch.Tensor], o: list[torch.Tensor], tmp: torch.Tensor) -> None:
    """o[p] = sum_k BT[p][k] d[k], into the preallocated views o, with the shared sub-expressions: 14 passes."""
    torch.add(d[4], d[0], alpha=4, out=o[0]).add_(d[2], alpha=-5)
    torch.add(d[5], d[1], alpha=4, out=o[5]).add_(d[3], alpha=-5)
    torch.add(d[1], d[2], out=tmp)
    torch.add(d[3], d[4], out=o[1]).add_(tmp, alpha=-4)
    torch.sub(d[1], d[2], out=tmp)
    torch.sub(d[4], d[3], out=o[2]).add_(tmp, alpha=4)
    torch.sub(d[3], d[1], out=tmp)
    torch.sub(d[4], d[2], out=o[3])
    torch.add(o[3], tmp, alpha=-2, out=o[4])
    o[3].add_(tmp, alpha=2)


def _output_1d(m: list[torch.Tensor], y: list[torch.Tensor], t: list[torch.Tensor]) -> None:
    """y[i] = sum_p AT[i][p] m[p], into the views y (may be strided), with three scratch tensors t."""
    s12, d12, s34 = t
    torch.add(m[1], m[2], out=s12)
    torch.sub(m[1], m[2], out=d12)
    torch.add(m[3], m[4], out=s34)
    torch.add(s12, s34, out=y[0]).add_(m[0])
    torch.add(s12, s34, alpha=4, out=y[2])
    torch.sub(m[3], m[4], out=s34)
    torch.add(d12, s34, alpha=2, out=y[1])
    torch.add(d12, s34, alpha=8, out=y[3]).add_(m[5])


def supports(x: torch.Tensor) -> bool:
    """Whether `conv3x3_winograd` takes this input: (N, C, H, W) with H and W multiples of 4, fp32."""
    return x.ndim == 4 and x.dtype == torch.float32 and x.shape[2] % TILE == 0 and x.shape[3] % TILE == 0 \
        and x.shape[2] > 0 and x.shape[3] > 0


# Below these a layer is faster direct (benchmarks/bench_winograd.py, 1 thread, fp32): 128 -> 128 channels at 32 x 32,
# batch 8 (1.2 GMAC) ran 0.67x and 64 -> 64 at 64 x 64, batch 8, 0.76x; the same shapes at 2.4 GMAC 1.12-1.25x,
# and the memorygan-256 layers (4.8-19 GMAC per batch of 2, 128-512 channels) 1.3-2.7x. The per-call Python work
# (~400 small ops) and the GEMM's efficiency at small channel counts set the threshold.
MIN_CHANNELS = 128
MIN_MACS = 2e9


def worthwhile(x: torch.Tensor, out_channels: int) -> bool:
    """Whether a 3x3 conv of `x` (N, C, H, W) to `out_channels` is measured faster by Winograd than direct: at least
    `MIN_CHANNELS` in and out, and `MIN_MACS` direct multiply-accumulates."""
    n, c, h, w = x.shape
    return min(c, out_channels) >= MIN_CHANNELS and n * 9 * c * out_channels * h * w >= MIN_MACS


def _band_rows(tile_rows: int, bytes_per_row: int, band_bytes: int) -> int:
    """The largest divisor of `tile_rows` whose band of transformed tiles fits in `band_bytes` (at least 1)."""
    best = 1
    for r in range(1, tile_rows + 1):
        if tile_rows % r == 0 and r * bytes_per_row <= band_bytes:
            best = r
    return best


def conv3x3_winograd(x: torch.Tensor, u: torch.Tensor, bias: torch.Tensor | None = None,
                     band_bytes: int = 16 << 20) -> torch.Tensor:
    """`F.conv2d(x, weight, bias, padding=1)` by F(4x4, 3x3), for `u = winograd_weight(weight)`.

    x: (N, C, H, W) fp32, H and W multiples of 4 (`supports`), any memory format; u: (36, C, O); bias: (O,) or None.
    Returns (N, O, H, W) in channels_last memory format. No autograd (it writes into preallocated buffers).
    `band_bytes`: the size of one band of transformed input tiles (16 MiB measured best on a 1 MiB-L2, 32 MiB-L3
    CPU, within noise from 4 to 32 MiB)."""
    if not supports(x):
        raise ValueError(f"conv3x3_winograd: expected fp32 (N, C, H, W) with H, W multiples of {TILE}, got "
                         f"{x.dtype} {tuple(x.shape)}")
    n, c, h, w = x.shape
    if u.shape[:2] != (ALPHA * ALPHA, c):
        raise ValueError(f"conv3x3_winograd: filters {tuple(u.shape)} do not match {c} input channels "
                         f"(expected (36, {c}, O) from winograd_weight)")
    if torch.is_grad_enabled() and (x.requires_grad or u.requires_grad):
        raise RuntimeError("conv3x3_winograd has no autograd; use F.conv2d where gradients are needed")
    o = u.shape[2]
    th, tw = h // TILE, w // TILE
    xh = x.permute(0, 2, 3, 1)                                      # NHWC view (a copy-free one for channels_last)
    u = u.to(x.dtype)
    bias = bias.to(x.dtype) if bias is not None else None
    out = x.new_empty(n, h, w, o)
    rows = _band_rows(th, ALPHA * ALPHA * n * tw * c * x.element_size(), band_bytes)
    # the band's input rows, zero-padded, in NHWC: the padding and the layout change happen band by band, so the
    # extra memory stays at the band's size (a padded copy of the whole input would double a large batch's)
    xb = x.new_empty(n, TILE * rows + 2, w + 2, c)
    xb[:, :, 0].zero_()
    xb[:, :, w + 1].zero_()
    t_h = x.new_empty(ALPHA, n, rows, w + 2, c)
    tmp_h = x.new_empty(n, rows, w + 2, c)
    v = x.new_empty(ALPHA * ALPHA, n, rows, tw, c)
    tmp_v = x.new_empty(n, rows, tw, c)
    m = x.new_empty(ALPHA * ALPHA, n * rows * tw, o)
    m6 = m.view(ALPHA, ALPHA, n, rows, tw, o)
    y4 = x.new_empty(TILE, ALPHA, n, rows, tw, o)
    scratch = [x.new_empty(n, rows, tw, o) for _ in range(3)]
    span = TILE * (rows - 1) + 1
    cspan = TILE * (tw - 1) + 1
    for r0 in range(0, th, rows):
        top = TILE * r0
        lo, hi = max(top - 1, 0), min(top + TILE * rows + 1, h)      # input rows top-1 .. top+4 rows, inside x
        xb[:, lo - top + 1: hi - top + 1, 1: w + 1] = xh[:, lo:hi]
        if lo > top - 1:
            xb[:, 0].zero_()
        if hi < top + TILE * rows + 1:
            xb[:, -1].zero_()
        _input_1d([xb[:, k: k + span: TILE] for k in range(ALPHA)], list(t_h), tmp_h)
        for p in range(ALPHA):
            _input_1d([t_h[p, :, :, k: k + cspan: TILE] for k in range(ALPHA)],
                      [v[ALPHA * p + q] for q in range(ALPHA)], tmp_v)
        torch.bmm(v.view(ALPHA * ALPHA, -1, c), u, out=m)
        if bias is not None:       # A^T's column 1 is all ones: a constant at tile entry (1, 1) reaches every output
            m6[1, 1].add_(bias)
        for q in range(ALPHA):
            _output_1d([m6[p, q] for p in range(ALPHA)], [y4[i, q] for i in range(TILE)], scratch)
        for i in range(TILE):
            _output_1d([y4[i, q] for q in range(ALPHA)],
                       [out[:, top + i: top + TILE * rows: TILE, j::TILE] for j in range(TILE)], scratch)
    return out.permute(0, 3, 1, 2)
