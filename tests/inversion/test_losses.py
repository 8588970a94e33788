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


def test_seg_cross_entropy_weighs_every_present_class_alike():
    # 4 pixels: three of class 0, one of class 1; logits favour class 0 everywhere by 1
    seg = torch.zeros(1, 2, 2, 2)
    seg[:, 0] = 1.0
    ids = torch.tensor([[[0, 0], [0, 1]]])
    ce_right = math.log(1 + math.exp(-1))                  # -log softmax of the right class
    ce_wrong = math.log(1 + math.exp(1))
    # per class: class 0 mean ce_right, class 1 ce_wrong; mean over the two present classes (pixel mean would be
    # (3 ce_right + ce_wrong) / 4)
    assert losses.seg_cross_entropy(seg, ids).item() == pytest.approx((ce_right + ce_wrong) / 2, rel=1e-6)
    # classes absent from the mask do not count
    seg3 = torch.cat([seg, torch.full((1, 1, 2, 2), -5.0)], 1)
    ids0 = torch.zeros(1, 2, 2, dtype=torch.long)
    expect = math.log(1 + math.exp(-1) + math.exp(-6))
    assert losses.seg_cross_entropy(seg3, ids0).item() == pytest.approx(expect, rel=1e-6)
    # the {-1, 1} one-hot MSE form
    seg_pm = torch.tensor([[[[1.0]], [[-1.0]]]])
    assert losses.seg_mse(seg_pm, torch.zeros(1, 1, 1, dtype=torch.long)).item() == 0.0


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
