"""The inversion objective's terms (inversion/losses.py) against hand-computed values."""
import math

import pytest
import torch

from memorygan.inversion import losses


def test_pixel_mse_and_psnr():
    a = torch.zeros(2, 3, 2, 2)
    b = a.clone()
    b[1, 0, 0, 0] = 1.2                                   # 1.44 / 12 values
    assert torch.allclose(losses.pixel_mse(a, b), torch.tensor([0.0, 0.12]))
    x = torch.zeros(4, dtype=torch.uint8)
    y = torch.tensor([0, 0, 0, 10], dtype=torch.uint8)    # mse 25 -> 10 log10(255^2 / 25)
    assert losses.psnr_uint8(x, y) == pytest.approx(10 * math.log10(255 ** 2 / 25))
    assert losses.psnr_uint8(x, x) == float("inf")


def test_seg_margin_by_hand():
    # 4 pixels: three of class 0, one of class 1; logits (class 0, class 1, class 2)
    seg = torch.zeros(1, 3, 2, 2)
    seg[0, 0] = torch.tensor([[1.0, 0.05], [-1.0, 0.0]])
    seg[0, 1] = torch.tensor([[0.0, 0.0], [0.0, 0.3]])
    seg[0, 2] = torch.tensor([[-1.0, -1.0], [0.5, -1.0]])
    ids = torch.tensor([[[0, 0], [0, 1]]])
    # class-0 pixels: margins 1 - 0 = 1 (hinge 0), 0.05 - 0 = 0.05 (hinge 0.05), -1 - 0.5 = -1.5 (hinge 1.6)
    # -> class-0 mean 1.65 / 3 = 0.55; class-1 pixel: margin 0.3 - 0 = 0.3 (hinge 0); mean over classes 0.275
    assert losses.seg_margin(seg, ids, margin=0.1).item() == pytest.approx(0.275, rel=1e-6)
    # a larger margin: class 0: 0 + 0.45 + 2.0 = 2.45 / 3; class 1: 0.2 -> (0.81667 + 0.2) / 2
    assert losses.seg_margin(seg, ids, margin=0.5).item() == pytest.approx((2.45 / 3 + 0.2) / 2, rel=1e-6)
    # zero once every pixel agrees by the margin; classes absent from the mask do not count
    assert losses.seg_margin(seg * 0 + torch.tensor([1.0, -1.0, -1.0]).view(1, 3, 1, 1), torch.zeros(1, 2, 2,
                             dtype=torch.long)).item() == 0.0
    # differentiable: the gradient pushes the mask's class up and the best other class down
    x = seg.clone().requires_grad_(True)
    losses.seg_margin(x, ids).backward()
    assert x.grad[0, 0, 1, 0] < 0 and x.grad[0, 2, 1, 0] > 0 and x.grad[0, 0, 0, 0] == 0


def test_code_prior_and_noise_regularizer():
    u = torch.tensor([[1.0, -3.0], [0.0, 0.0]])
    assert torch.allclose(losses.code_prior(u), torch.tensor([5.0, 0.0]))
    ones = torch.ones(1, 1, 8, 8)                          # autocorrelation 1 both ways: 1^2 + 1^2
    assert losses.noise_regularizer([ones]).item() == pytest.approx(2.0)
    checker = (torch.arange(8)[:, None] + torch.arange(8)[None]).remainder(2).float().mul(2).sub(1).view(1, 1, 8, 8)
    assert losses.noise_regularizer([checker]).item() == pytest.approx(2.0)     # (-1)^2 + (-1)^2
    # 16x16 map of ones: levels 16 and 8 -> 4; two maps add up
    assert losses.noise_regularizer([torch.ones(1, 1, 16, 16), ones]).item() == pytest.approx(6.0)
    g = torch.Generator().manual_seed(0)
    white = torch.randn(1, 1, 64, 64, generator=g)
    assert losses.noise_regularizer([white]).item() < 0.01
    n = [torch.randn(2, 1, 8, 8, generator=g) * 3 + 1]
    losses.normalize_noise_(n)
    assert torch.allclose(n[0].mean((1, 2, 3)), torch.zeros(2), atol=1e-6)
    assert torch.allclose(n[0].std((1, 2, 3)), torch.ones(2), atol=1e-6)


def test_learning_rate_ramp():
    lr = 0.1
    assert losses.ramped_lr(0.0, lr) == 0.0                               # warm-up starts at 0
    assert losses.ramped_lr(0.025, lr) == pytest.approx(0.05)              # half-way through the 5% warm-up
    assert losses.ramped_lr(0.5, lr) == pytest.approx(lr)
    assert losses.ramped_lr(0.875, lr) == pytest.approx(0.05)              # cosine: half-way down the last 25%
    assert losses.ramped_lr(1.0, lr) == pytest.approx(0.0)
