"""Losses and regularisers on hand-computed cases, plus one run on the tiny models of each architecture."""
import math

import pytest
import torch
import torch.nn.functional as F

from memorygan.models import build_discriminator
from memorygan.training import (d_logistic_loss, d_r1_penalty, g_nonsaturating_loss, g_path_length, mask_loss,
                                path_length_loss, r1_loss)

from helpers import tiny_dconfig_obj, tiny_generator


# --------------------------------------------------------------------------------------------- logistic losses

def test_logistic_losses_at_zero_logits():
    zero = torch.zeros(5, 1)
    assert torch.allclose(d_logistic_loss(zero, zero), torch.tensor(2 * math.log(2)))
    assert torch.allclose(g_nonsaturating_loss(zero), torch.tensor(math.log(2)))


def test_logistic_losses_hand_values():
    real = torch.tensor([[1.0], [-2.0]])
    fake = torch.tensor([[3.0], [0.5], [-1.0]])  # a different batch size is allowed
    sp = lambda x: math.log1p(math.exp(x))
    want_d = (sp(-1.0) + sp(2.0)) / 2 + (sp(3.0) + sp(0.5) + sp(-1.0)) / 3
    want_g = (sp(-3.0) + sp(-0.5) + sp(1.0)) / 3
    assert d_logistic_loss(real, fake).item() == pytest.approx(want_d, rel=1e-6)
    assert g_nonsaturating_loss(fake).item() == pytest.approx(want_g, rel=1e-6)


def test_logistic_losses_gradients_have_the_right_sign():
    real = torch.zeros(4, 1, requires_grad=True)
    fake = torch.zeros(4, 1, requires_grad=True)
    d_logistic_loss(real, fake).backward()
    assert torch.allclose(real.grad, torch.full((4, 1), -0.5 / 4))  # D pushes real logits up
    assert torch.allclose(fake.grad, torch.full((4, 1), 0.5 / 4))   # and fake logits down
    fake.grad = None
    g_nonsaturating_loss(fake).backward()
    assert torch.allclose(fake.grad, torch.full((4, 1), -0.5 / 4))  # G pushes fake logits up


# -------------------------------------------------------------------------------------------------------- R1

def test_r1_penalty_matches_the_analytic_gradient():
    # pred_b = sum(a * x_b^2) -> grad_x = 2 a x_b, penalty = mean_b sum (2 a x_b)^2
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 2, 4, 4, generator=g, dtype=torch.float64, requires_grad=True)
    a = torch.randn(2, 4, 4, generator=g, dtype=torch.float64, requires_grad=True)
    pred = (a * x.pow(2)).flatten(1).sum(1, keepdim=True)  # (B, 1)
    pen = d_r1_penalty(pred, x)
    want = (2 * a * x).pow(2).flatten(1).sum(1).mean()
    assert torch.allclose(pen, want)
    # create_graph: the penalty is differentiable; d/da mean_b sum 4 a^2 x_b^2 = mean_b 8 a x_b^2
    (grad_a,) = torch.autograd.grad(pen, a)
    assert torch.allclose(grad_a, (8 * a * x.pow(2)).mean(0))


def test_r1_penalty_per_input_for_the_dual_branch():
    # pred = sum(a x^2) + sum(b s^3): image and mask penalties from one backward, each against its own input
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, 4, 4, generator=g, dtype=torch.float64, requires_grad=True)
    s = torch.randn(2, 5, 4, 4, generator=g, dtype=torch.float64, requires_grad=True)
    a, b = 0.7, -1.3
    pred = (a * x.pow(2)).flatten(1).sum(1) + (b * s.pow(3)).flatten(1).sum(1)
    pen_x, pen_s = d_r1_penalty(pred[:, None], (x, s))
    assert torch.allclose(pen_x, (2 * a * x).pow(2).flatten(1).sum(1).mean())
    assert torch.allclose(pen_s, (3 * b * s.pow(2)).pow(2).flatten(1).sum(1).mean())
    assert torch.allclose(r1_loss(pen_s, gamma=1000, interval=16), 1000 / 2 * pen_s * 16)
    assert torch.allclose(r1_loss(pen_x, gamma=10), 5 * pen_x)


def test_r1_errors_name_the_argument():
    x = torch.randn(2, 3)
    with pytest.raises(ValueError, match="real_input must have requires_grad"):
        d_r1_penalty(x.sum(1, keepdim=True), x)
    y = torch.randn(2, 3, requires_grad=True)
    with pytest.raises(ValueError, match=r"real_input\[1\]"):
        d_r1_penalty((y.sum(1) + x.sum(1))[:, None], (y, x))
    with pytest.raises(ValueError, match="gamma"):
        r1_loss(torch.tensor(1.0), gamma=-1)
    with pytest.raises(ValueError, match="interval"):
        r1_loss(torch.tensor(1.0), gamma=10, interval=0)


def test_r1_on_the_dual_branch_discriminator():
    D = build_discriminator(tiny_dconfig_obj())
    img = torch.randn(4, 3, 32, 32, requires_grad=True)
    seg = torch.randn(4, 4, 32, 32, requires_grad=True)
    pen_img, pen_seg = d_r1_penalty(D(img, seg), (img, seg))
    assert pen_img > 0 and pen_seg > 0
    # each equals the single-input penalty against the same prediction
    assert torch.allclose(pen_img, d_r1_penalty(D(img, seg), img))
    (r1_loss(pen_img, 10, 16) + r1_loss(pen_seg, 1000, 16)).backward()
    # the gradient wrt the inputs does not depend on the last bias, so only it may get no gradient
    no_grad = [n for n, p in D.named_parameters() if p.grad is None]
    assert set(no_grad) <= {"final_linear.1.bias"}
    grads = [p.grad for p in D.parameters() if p.grad is not None]
    assert all(torch.isfinite(gr).all() for gr in grads) and any(gr.abs().sum() > 0 for gr in grads)


# ----------------------------------------------------------------------------------------------- path length

def _scaled_identity_images(latents, scale):
    """images = scale_b * latents laid out as (B, 1, H, W) with H*W = K*L*D: the Jacobian is scale_b * I."""
    b = latents.shape[0]
    return (scale.reshape(b, 1) * latents.reshape(b, -1)).reshape(b, 1, 8, 8)


def test_path_length_hand_case():
    # K=2, L=2, D=16 -> 64 = 8x8 pixels. With noise y = 1: g = scale_b / sqrt(HW) everywhere, so
    # path length = sqrt(mean_{K*L} sum_D scale^2 / HW) = scale * sqrt(D / HW) = scale / sqrt(K*L) = scale / 2.
    scale = torch.tensor([1.0, 2.0, 6.0], dtype=torch.float64)
    latents = torch.randn(3, 2, 2, 16, dtype=torch.float64, requires_grad=True)
    images = _scaled_identity_images(latents, scale)
    penalty, new_mean, lengths = g_path_length(images, latents, 0.0, noise=torch.ones_like(images))
    assert torch.allclose(lengths, scale / 2)
    want_mean = 0.0 + 0.01 * ((scale / 2).mean() - 0.0)  # 0.01 * 1.5
    assert new_mean.item() == pytest.approx(0.015)
    assert torch.allclose(new_mean, want_mean) and not new_mean.requires_grad
    assert penalty.item() == pytest.approx(((scale / 2 - 0.015) ** 2).mean().item())
    # the running mean moves from the previous value
    _, new_mean2, _ = g_path_length(images, latents, new_mean, decay=0.5, noise=torch.ones_like(images))
    assert new_mean2.item() == pytest.approx(0.015 + 0.5 * (1.5 - 0.015))


def test_path_length_general_linear_map_and_flattening():
    # images = A w: grad = A^T y / sqrt(HW); (B, K, L, D) equals the (B, K*L, D) form of the same codes
    g = torch.Generator().manual_seed(2)
    w = torch.randn(2, 3, 2, 5, generator=g, dtype=torch.float64, requires_grad=True)
    A = torch.randn(2 * 4 * 4, 30, generator=g, dtype=torch.float64)
    images = (w.reshape(2, 30) @ A.T).reshape(2, 2, 4, 4)
    y = torch.randn(images.shape, generator=g, dtype=torch.float64)
    _, _, lengths = g_path_length(images, w, 0.0, noise=y)
    grad = (y.reshape(2, -1) @ A / 4.0).reshape(2, 6, 5)  # sqrt(H*W) = 4
    assert torch.allclose(lengths, grad.pow(2).sum(2).mean(1).sqrt())
    w3 = w.detach().reshape(2, 6, 5).requires_grad_(True)
    images3 = (w3.reshape(2, 30) @ A.T).reshape(2, 2, 4, 4)
    _, _, lengths3 = g_path_length(images3, w3, 0.0, noise=y)
    assert torch.allclose(lengths, lengths3)


def test_path_length_penalty_is_differentiable():
    # gradcheck d penalty / d scale through the create_graph gradient (fixed noise)
    latents = torch.randn(3, 2, 2, 16, dtype=torch.float64)
    y = torch.randn(3, 1, 8, 8, dtype=torch.float64)

    def penalty_of(scale):
        lat = latents.clone().requires_grad_(True)
        return g_path_length(_scaled_identity_images(lat, scale), lat, 0.3, noise=y)[0]

    scale = torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(penalty_of, (scale,))
    assert torch.allclose(path_length_loss(torch.tensor(2.0)), torch.tensor(0.5 * 4 * 2.0))


def test_path_length_noise_from_generator_is_reproducible():
    latents = torch.randn(2, 2, 2, 16, requires_grad=True)
    images = _scaled_identity_images(latents, torch.tensor([1.0, 3.0]))
    runs = [g_path_length(images, latents, 0.0, generator=torch.Generator().manual_seed(5))[2] for _ in range(2)]
    assert torch.equal(runs[0], runs[1])


def test_path_length_errors_name_the_argument():
    lat = torch.randn(2, 3, 4)
    with pytest.raises(ValueError, match="latents must require grad"):
        g_path_length(torch.randn(2, 1, 2, 2), lat, 0.0)
    lat.requires_grad_(True)
    img = lat.reshape(2, 1, 3, 4)
    with pytest.raises(ValueError, match="noise"):
        g_path_length(img, lat, 0.0, noise=torch.randn(2, 1, 4, 3))
    with pytest.raises(ValueError, match="images"):
        g_path_length(lat, lat, 0.0)
    with pytest.raises(ValueError, match="latents must be"):
        g_path_length(img, lat[:1], 0.0)


def test_path_length_on_the_expanded_codes_of_a_tiny_generator(arch):
    G = tiny_generator(arch)
    out = G(G.sample_z(2, seed=0))
    penalty, new_mean, lengths = g_path_length(out.image, out.expanded, 0.0,
                                               generator=torch.Generator().manual_seed(0))
    assert lengths.shape == (2,) and torch.all(lengths > 0) and torch.isfinite(penalty)
    path_length_loss(penalty).backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in G.parameters())


# --------------------------------------------------------------------------------------------------- mask loss

def test_mask_loss_zero_when_seg_is_the_upsampled_coarse_mask():
    coarse = torch.rand(2, 4, 8, 8) * 2 - 1
    seg = F.interpolate(coarse, scale_factor=4, mode="nearest")
    assert mask_loss(coarse, seg).item() == pytest.approx(0.0, abs=1e-12)


def test_mask_loss_hand_value():
    # one 2x2 coarse map, 4x4 fine map: block means [[1, 0], [-1, 0.5]] against coarse [[0, 0], [0, 0]] + 0.5
    fine = torch.tensor([[1.0, 1.0, 0.0, 2.0],
                         [1.0, 1.0, -1.0, -1.0],
                         [-1.0, -1.0, 0.5, 0.5],
                         [-1.0, -1.0, 0.5, 0.5]])[None, None]
    coarse = torch.full((1, 1, 2, 2), 0.5)
    want = ((0.5 - 1) ** 2 + (0.5 - 0) ** 2 + (0.5 + 1) ** 2 + (0.5 - 0.5) ** 2) / 4
    assert mask_loss(coarse, fine).item() == pytest.approx(want)


def test_mask_loss_errors_name_the_argument():
    with pytest.raises(ValueError, match="differ in"):
        mask_loss(torch.zeros(1, 3, 2, 2), torch.zeros(1, 4, 4, 4))
    with pytest.raises(ValueError, match="integer multiple"):
        mask_loss(torch.zeros(1, 3, 3, 3), torch.zeros(1, 3, 4, 4))


def test_r1_of_patch_logits_is_r1_of_their_per_sample_mean():
    """A patch discriminator's (B, N) logits count as one judgement per image: R1 of the per-sample mean."""
    torch.manual_seed(0)
    x = torch.randn(3, 2, 4, 4, requires_grad=True)
    w = torch.randn(5, 2 * 4 * 4)
    patches = x.flatten(1) @ w.T                                          # (3, 5) logits, linear in x
    pen = d_r1_penalty(patches, x)
    grad_of_mean = w.mean(0)                                              # d mean_n logit / dx, per sample
    assert pen.item() == pytest.approx(grad_of_mean.pow(2).sum().item(), rel=1e-5)
