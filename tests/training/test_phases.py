"""The loss of each training phase (training/phases.py) against hand-computed values.

A linear discriminator D(img, seg) = a * sum(img) + b * sum(seg) + c has the constant input gradients a and b, so
every R1 term, adversarial loss and weight can be written out by hand; a generator output whose image is linear
in its expanded codes does the same for the path length.
"""
import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn as nn

from memorygan.errors import ConfigError
from memorygan.training import phases
from memorygan.training.options import TrainOptions

B, K, H = 2, 5, 4


class LinearD(nn.Module):
    def __init__(self, a: float, b: float, c: float = 0.0):
        super().__init__()
        self.a, self.b = nn.Parameter(torch.tensor(a)), nn.Parameter(torch.tensor(b))
        self.c = nn.Parameter(torch.tensor(c))

    def forward(self, img, seg):
        return (self.a * img.sum((1, 2, 3)) + self.b * seg.sum((1, 2, 3)) + self.c)[:, None]


def opts(**kw):
    # the paper's weights (DESIGN 3), given explicitly so the expected numbers below are self-contained
    base = dict(data="unused", out="unused", r1_gamma=10.0, r1_gamma_mask=1000.0, d_reg_every=16, lambda_mask=100.0,
                kl_weight=1e-4, pl_weight=0.5, g_reg_every=4)
    base.update(kw)
    return TrainOptions(**base)


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def test_paper_defaults_of_the_weights():
    o = TrainOptions(data="unused", out="unused").with_preset_defaults({"generator": {}})     # no recommendation
    assert (o.r1_gamma, o.lambda_mask, o.kl_weight, o.pl_weight, o.d_reg_every, o.g_reg_every) == \
        (10.0, 100.0, 1e-4, 0.5, 16, 4)


def test_d_main_is_the_logistic_loss_by_hand():
    D = LinearD(0.5, 0.1, c=0.2)
    real_img, real_mask = torch.full((B, 3, H, H), 0.1), -torch.ones(B, K, H, H)
    fake_img, fake_seg = torch.full((B, 3, H, H), -0.2), torch.zeros(B, K, H, H)
    res = phases.d_main(D, real_img, real_mask, fake_img, fake_seg)
    real = 0.5 * 0.1 * 3 * H * H - 0.1 * K * H * H + 0.2          # 2.4 - 8 + 0.2 = -5.4
    fake = 0.5 * -0.2 * 3 * H * H + 0.2                             # -4.6
    assert res.loss.item() == pytest.approx(softplus(-real) + softplus(fake), rel=1e-6)
    assert res.stats["score_real"].item() == pytest.approx(real, rel=1e-6)
    assert res.stats["score_fake"].item() == pytest.approx(fake, rel=1e-6)
    res.loss.backward()
    assert D.a.grad is not None                                      # trains D ...
    fake_img.requires_grad_(True)
    phases.d_main(D, real_img, real_mask, fake_img, fake_seg).loss.backward()
    assert fake_img.grad is None                                     # ... and never G


def test_hinge_loss_by_hand_for_d_and_g():
    """D: relu(1 - real) + relu(1 + fake), averaged; G: -fake. Logits beyond the margin contribute nothing."""
    D = LinearD(0.5, 0.1, c=0.2)
    real_img, real_mask = torch.full((B, 3, H, H), 0.1), -torch.ones(B, K, H, H)
    fake_img, fake_seg = torch.full((B, 3, H, H), -0.2), torch.zeros(B, K, H, H)
    res = phases.d_main(D, real_img, real_mask, fake_img, fake_seg, loss="hinge")
    real, fake = -5.4, -4.6                                          # as in the logistic case above
    assert res.loss.item() == pytest.approx((1 - real) + max(0.0, 1 + fake), rel=1e-6)     # 6.4 + 0
    res.loss.backward()
    assert D.c.grad.item() == pytest.approx(-1.0)                    # only the real term has a gradient
    D2 = LinearD(0.5, 0.1, c=-3.0)
    g = phases.g_main(D2, _fake(), None, opts(loss="hinge"))
    assert g.stats["loss_g"].item() == pytest.approx(-(0.1 * K * H * H - 3.0), rel=1e-6)
    with pytest.raises(ConfigError, match="--loss must be logistic or hinge, got 'wgan'"):
        TrainOptions(data="d", out="o", steps=1, loss="wgan").validate()


def test_d_reg_weights_image_and_mask_r1_separately():
    """R1 = gamma/2 * E||grad||^2 * interval; grad_img = a, grad_mask = b everywhere."""
    D = LinearD(0.5, 0.1)
    img, mask = torch.randn(B, 3, H, H), torch.randn(B, K, H, H)
    res = phases.d_reg(D, img, mask, opts())
    p_img, p_mask = 0.5 ** 2 * 3 * H * H, 0.1 ** 2 * K * H * H      # 12 and 0.8
    assert res.stats["r1_img"].item() == pytest.approx(p_img, rel=1e-6)
    assert res.stats["r1_mask"].item() == pytest.approx(p_mask, rel=1e-6)
    # 10/2 * 12 * 16 + 1000/2 * 0.8 * 16 = 960 + 6400; swapped gammas would give 96000 + 64
    assert res.loss.item() == pytest.approx(10 / 2 * p_img * 16 + 1000 / 2 * p_mask * 16, rel=1e-6)
    assert phases.d_reg(D, img, mask, opts(r1_gamma_mask=0.0)).loss.item() == pytest.approx(960, rel=1e-6)
    assert phases.d_reg(D, img, mask, opts(r1_gamma=0.0, d_reg_every=1)).loss.item() == \
        pytest.approx(1000 / 2 * p_mask, rel=1e-6)
    # the penalty is differentiable (it trains D's weights): d loss / d a = 10/2 * 16 * 2a * 48
    res.loss.backward()
    assert D.a.grad.item() == pytest.approx(10 / 2 * 16 * 2 * 0.5 * 3 * H * H, rel=1e-5)


def _fake(seg_value=1.0):
    """Generated output with a known mask loss: coarse mask 0, fine seg `seg_value` -> mask loss seg_value^2."""
    return SimpleNamespace(image=torch.zeros(B, 3, H, H), seg=torch.full((B, K, H, H), seg_value),
                           coarse_seg=torch.zeros(B, K, H // 2, H // 2))


def test_g_main_adds_mask_loss_and_kl_with_their_weights():
    D = LinearD(0.5, 0.1, c=-3.0)
    pred = 0.1 * K * H * H - 3.0                                     # 5.0
    kl = torch.tensor(5.0)
    res = phases.g_main(D, _fake(), kl, opts())
    assert res.stats["loss_g"].item() == pytest.approx(softplus(-pred), rel=1e-6)
    assert res.stats["loss_mask"].item() == pytest.approx(1.0, rel=1e-6)
    assert res.stats["kl"].item() == 5.0
    # softplus(-5) + 100 * 1 + 1e-4 * 5: without the mask weight it is off by 100, without the KL weight by 5e-4
    assert res.loss.item() == pytest.approx(softplus(-pred) + 100.0 + 1e-4 * 5.0, abs=2e-5)
    no_kl = phases.g_main(D, _fake(), None, opts()).loss.item()       # SSG: no KL term
    assert res.loss.item() - no_kl == pytest.approx(5e-4, abs=2e-5)
    assert phases.g_main(D, _fake(0.5), kl, opts(lambda_mask=10.0, kl_weight=0.1)).loss.item() == \
        pytest.approx(softplus(-(0.05 * K * H * H - 3.0)) + 10 * 0.25 + 0.1 * 5.0, rel=1e-6)


def test_g_reg_path_length_by_hand():
    """image = s * sum(codes) on every pixel: with noise 1, grad = s * 3HW / sqrt(HW) for every code entry, so the
    path length is 3 s sqrt(HW) sqrt(D) for every sample."""
    d, s = 2, 0.25
    codes = torch.randn(B, 3, 4, d, requires_grad=True)                 # (B, K, L, D)
    image = s * codes.sum((1, 2, 3))[:, None, None, None] * torch.ones(B, 3, H, H)
    fake = SimpleNamespace(image=image, expanded=codes)
    length = 3 * s * math.sqrt(H * H) * math.sqrt(d)
    res = phases.g_reg(fake, 0.0, opts(), noise=torch.ones(B, 3, H, H))
    assert res.path_lengths.tolist() == pytest.approx([length] * B, rel=1e-6)
    assert res.stats["pl_penalty"].item() == pytest.approx(length ** 2, rel=1e-6)
    assert res.loss.item() == pytest.approx(0.5 * 4 * length ** 2, rel=1e-6)
    res = phases.g_reg(fake, length, opts(), noise=torch.ones(B, 3, H, H))          # at the running mean: 0
    assert res.loss.item() == pytest.approx(0.0, abs=1e-6)
