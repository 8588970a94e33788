"""Generator EMA (DESIGN 3; StyleGAN2-ADA's batch-aware half-life with ramp-up)."""
import pytest
import torch
import torch.nn as nn

from memorygan.training import ema_beta, ema_copy, update_ema

from helpers import tiny_generator


def test_beta_without_rampup_is_ssgs_value():
    assert ema_beta(32, half_life_kimg=10, rampup=None) == pytest.approx(0.5 ** (32 / 10000), rel=1e-12)
    # batch-aware: the same half-life in images whatever the batch
    assert ema_beta(8, rampup=None) ** 4 == pytest.approx(ema_beta(32, rampup=None), rel=1e-12)


def test_beta_with_rampup():
    # early on the half-life is 5% of the images seen
    assert ema_beta(8, rampup=0.05, images_seen=800) == pytest.approx(0.5 ** (8 / 40), rel=1e-12)
    # later it is capped at half_life_kimg
    assert ema_beta(8, rampup=0.05, images_seen=10 ** 7) == pytest.approx(0.5 ** (8 / 10000), rel=1e-12)
    # the switch is at images_seen = 10000 / 0.05
    assert ema_beta(8, rampup=0.05, images_seen=200_000) == pytest.approx(0.5 ** (8 / 10000), rel=1e-12)
    assert ema_beta(8, rampup=0.05, images_seen=0) == 0.0  # first step copies the weights


def test_beta_errors_name_the_argument():
    with pytest.raises(ValueError, match="images_seen is required"):
        ema_beta(32)
    with pytest.raises(ValueError, match="batch_size"):
        ema_beta(0, rampup=None)
    with pytest.raises(ValueError, match="half_life_kimg"):
        ema_beta(8, half_life_kimg=0, rampup=None)
    with pytest.raises(ValueError, match="images_seen"):
        ema_beta(8, images_seen=-1)


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 2)
        self.bn = nn.BatchNorm1d(2)


def test_update_is_the_hand_lerp_and_copies_buffers():
    torch.manual_seed(0)
    model = _Net()
    ema = ema_copy(model)
    assert not any(p.requires_grad for p in ema.parameters()) and not ema.training
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p))
    model.bn.running_mean.fill_(3.0)
    model.bn.num_batches_tracked.fill_(7)
    before = {n: p.clone() for n, p in ema.named_parameters()}
    beta = 0.9
    update_ema(ema, model, beta)
    for n, p in model.named_parameters():
        assert torch.allclose(dict(ema.named_parameters())[n], beta * before[n] + (1 - beta) * p)
    assert torch.equal(ema.bn.running_mean, torch.full((2,), 3.0))
    assert int(ema.bn.num_batches_tracked) == 7
    update_ema(ema, model, 0.0)  # beta 0 copies
    assert all(torch.equal(a, b) for a, b in zip(ema.parameters(), model.parameters()))


def test_update_on_a_generator_copies_the_truncation_buffers():
    G = tiny_generator("memorygan")
    G_ema = ema_copy(G)
    G.update_w_avg(n=16, batch=16)
    update_ema(G_ema, G, ema_beta(8, rampup=0.05, images_seen=1000))
    assert torch.equal(G_ema.w_avg, G.w_avg) and int(G_ema.w_avg_count) == 16


def test_update_errors():
    with pytest.raises(ValueError, match="beta"):
        update_ema(_Net(), _Net(), 1.5)
    with pytest.raises(ValueError, match="differ in parameters"):
        update_ema(nn.Linear(2, 2, bias=False), nn.Linear(2, 2), 0.5)
    with pytest.raises(ValueError, match="parameter weight"):
        update_ema(nn.Linear(2, 3), nn.Linear(3, 3), 0.5)
