"""Thesis Algorithm 1: k accumulations of b give the gradients of one batch of k*b (to float precision)."""
import copy

import pytest
import torch

from memorygan.biggan.config import biggan_config
from memorygan.biggan.layers import set_bn_group
from memorygan.biggan.models import BigGANDiscriminator, BigGANGenerator
from memorygan.biggan.steps import adam, hinge_parts, standing_stats, train_iteration, update_ema


def tiny(arch="biggan", **kw):
    preset = "biggan-small" if arch == "biggan" else "biggan-deep-128"
    cfg = biggan_config(preset, resolution=64, g_ch=8, d_ch=8, num_classes=5, dim_z=20 if arch == "biggan" else 16,
                        shared_dim=8, g_attention=[32], d_attention=[32], **kw)
    torch.manual_seed(0)
    return BigGANGenerator(cfg), BigGANDiscriminator(cfg)


def micro_batches(k, b, cfg, seed=1):
    g = torch.Generator().manual_seed(seed)
    xs = [torch.rand(b, 3, 64, 64, generator=g) * 2 - 1 for _ in range(k)]
    ys = [torch.randint(0, cfg.num_classes, (b,), generator=g) for _ in range(k)]
    zd = [torch.randn(b, cfg.dim_z, generator=g) for _ in range(k)]
    yd = [torch.randint(0, cfg.num_classes, (b,), generator=g) for _ in range(k)]
    zg = [torch.randn(b, cfg.dim_z, generator=g) for _ in range(k)]
    yg = [torch.randint(0, cfg.num_classes, (b,), generator=g) for _ in range(k)]
    return xs, ys, zd, yd, zg, yg


def mismatches(ga, gb, rtol=1e-4):
    """Gradients that differ beyond float precision: ||a - b|| > rtol ||b|| + 1e-6 x (norm of that network's whole
    gradient). The absolute part covers gradients that are zero in exact arithmetic (a conv bias right before
    BatchNorm), whose float values are rounding noise. Different batch shapes sum in a different order, so bit
    equality is not expected (and not portable)."""
    scale = {net: sum(g.norm() ** 2 for n, g in gb.items() if n.startswith(net)) ** 0.5 for net in ("G.", "D.")}
    return [n for n in ga if (ga[n] - gb[n]).norm() > rtol * gb[n].norm() + 1e-6 * scale[n[:2]]]


def run(G, D, data, k, accumulate):
    xs, ys, zd, yd, zg, yg = data
    g_opt, d_opt = adam(G.parameters(), 1e-4, 0, 0.999, 1e-6), adam(D.parameters(), 4e-4, 0, 0.999, 1e-6)
    if accumulate:
        real = lambda s, a: (xs[a], ys[a])
        latent = lambda phase, s, a: (zd[a], yd[a]) if phase == "D" else (zg[a], yg[a])
        n = k
    else:
        cat = torch.cat
        real = lambda s, a: (cat(xs), cat(ys))
        latent = lambda phase, s, a: (cat(zd), cat(yd)) if phase == "D" else (cat(zg), cat(yg))
        n = 1
    grads = {}

    def keep(params, tag):
        for name, p in params:
            grads[tag + name] = p.grad.clone()
    # record gradients right before each optimizer step
    d_step, g_step = d_opt.step, g_opt.step
    d_opt.step = lambda: (keep(D.named_parameters(), "D."), d_step())[1]
    g_opt.step = lambda: (keep(G.named_parameters(), "G."), g_step())[1]
    stats = train_iteration(G, D, g_opt, d_opt, real, latent, d_steps=1, d_accum=n, g_accum=n)
    return grads, stats


@pytest.mark.parametrize("arch", ["biggan", "biggan-deep"])
def test_accumulation_equals_big_batch(arch):
    k, b = 3, 4
    G, D = tiny(arch)
    G2, D2 = copy.deepcopy(G), copy.deepcopy(D)
    data = micro_batches(k, b, G.config)
    ga, sa = run(G, D, data, k, accumulate=True)
    set_bn_group(G2, b)                      # BatchNorm statistics per micro-batch, as the thesis keeps them
    gb, sb = run(G2, D2, data, k, accumulate=False)
    assert ga.keys() == gb.keys() and len(ga) > 50
    assert mismatches(ga, gb) == []
    for key in ("d_loss", "g_loss"):
        assert torch.allclose(sa[key], sb[key], rtol=1e-5, atol=1e-6)
    # the updated weights and the buffers (spectral-norm vectors, BatchNorm running statistics) agree too
    for (n, a), (_, c) in zip(list(G.state_dict().items()) + list(D.state_dict().items()),
                              list(G2.state_dict().items()) + list(D2.state_dict().items())):
        assert torch.allclose(a, c, rtol=1e-4, atol=1e-5), n     # Adam's update is at most lr = 1e-4 per weight


def test_big_batch_without_groups_differs_only_through_batchnorm():
    """Without per-micro-batch BatchNorm statistics the big batch is a different computation: D's gradient differs
    (its fakes come from G with other statistics). This is what the grouping above accounts for."""
    k, b = 3, 4
    G, D = tiny()
    G2, D2 = copy.deepcopy(G), copy.deepcopy(D)
    data = micro_batches(k, b, G.config)
    ga, _ = run(G, D, data, k, accumulate=True)
    gb, _ = run(G2, D2, data, k, accumulate=False)
    assert len(mismatches(ga, gb)) > 10


def test_power_iteration_once_per_step():
    """Spectral norm's u moves on the first micro-batch only: with 3 accumulations u equals the u of one forward."""
    G, D = tiny()
    D2 = copy.deepcopy(D)
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    y = torch.tensor([0, 1])
    D2.train()
    D2(x, y)                                  # one forward: one power-iteration step
    data = micro_batches(3, 2, G.config)
    g_opt, d_opt = adam(G.parameters(), 0, 0, 0.999, 1e-6), adam(D.parameters(), 0, 0, 0.999, 1e-6)
    xs, ys, zd, yd, zg, yg = data
    train_iteration(G, D, g_opt, d_opt, lambda s, a: (xs[a], ys[a]), lambda p, s, a: (zd[a], yd[a]),
                    d_accum=3, step_g=False)
    assert torch.allclose(D.linear.u0, D2.linear.u0, atol=1e-6)


def test_hinge_parts_by_hand():
    real = torch.tensor([2.0, 0.5, -1.0])      # relu(1 - x): 0, 0.5, 2 -> mean 0.8333
    fake = torch.tensor([-3.0, 0.0])           # relu(1 + x): 0, 1 -> mean 0.5
    lr, lf = hinge_parts(real, fake)
    assert lr.item() == pytest.approx(2.5 / 3) and lf.item() == pytest.approx(0.5)


def test_ema_start_copies_then_decays():
    G, _ = tiny()
    ema = copy.deepcopy(G)
    with torch.no_grad():
        for p in G.parameters():
            p.add_(1.0)
    update_ema(ema, G, 0.0)
    assert all(torch.equal(a, b) for a, b in zip(ema.parameters(), G.parameters()))
    before = [p.clone() for p in ema.parameters()]
    with torch.no_grad():
        for p in G.parameters():
            p.add_(1.0)
    update_ema(ema, G, 0.9)
    for a, b0 in zip(ema.parameters(), before):
        assert torch.allclose(a, b0 + 0.1, atol=1e-6)


def test_standing_stats_are_the_average_of_batch_statistics():
    G, _ = tiny()
    standing_stats(G, batches=4, batch_size=6, seed=3)
    bn = G.output_layer[0]
    assert not G.training
    # recompute by hand: the output layer's input statistics over the same 4 batches
    from memorygan.biggan.models import truncated_z
    G2 = copy.deepcopy(G).train()
    from memorygan.biggan.layers import set_sn_update
    set_sn_update(G2, False)
    feats = []
    hook = G2.output_layer[0].register_forward_hook(lambda m, i, o: feats.append(i[0].detach()))
    gen = torch.Generator().manual_seed(3)
    for _ in range(4):
        z = truncated_z(6, G.config.dim_z, None, gen)
        y = torch.randint(0, G.config.num_classes, (6,), generator=gen)
        G2.generate(z, y)
    hook.remove()
    means = torch.stack([f.mean((0, 2, 3)) for f in feats]).mean(0)
    assert torch.allclose(bn.stored_mean, means, atol=1e-5)
    assert bn.momentum == 0.1


def test_mode_seeking_term_pairs_classes_and_spreads_the_samples():
    """MSGAN's term: G's batch is paired (i, i + b/2) within one class, its ratio is reported, and a G trained with
    a large weight (D frozen: only the term and the hinge move G) draws samples further apart per unit of z than
    the same G trained without it."""
    ratios = {}
    for w in (0.0, 5.0):
        G, D = tiny()
        seen = []
        gen = torch.Generator().manual_seed(3)
        real = lambda s, a: (torch.rand(8, 3, 64, 64, generator=gen) * 2 - 1, torch.randint(0, 5, (8,), generator=gen))

        def latent(phase, s, a):
            y = torch.arange(8) % 5
            return torch.randn(8, G.config.dim_z, generator=gen), y

        g_opt, d_opt = adam(G.parameters(), 1e-3, 0, 0.999, 1e-6), adam(D.parameters(), 0.0, 0, 0.999, 1e-6)
        real_generate = G.generate
        G.generate = lambda z, y: (seen.append(y.clone()), real_generate(z, y))[1]
        for _ in range(8):
            out = train_iteration(G, D, g_opt, d_opt, real, latent, ms_weight=w)
        g_batch = seen[-1]
        if w:
            assert torch.equal(g_batch[:4], g_batch[4:]) and "ms_ratio" in out
        else:
            assert not torch.equal(g_batch[:4], g_batch[4:]) and "ms_ratio" not in out
        G.eval()
        with torch.no_grad():
            z = torch.randn(16, G.config.dim_z, generator=torch.Generator().manual_seed(9))
            y = torch.zeros(16, dtype=torch.long)
            x = real_generate(z, y)
            ratios[w] = float((x[:8] - x[8:]).abs().mean() / (z[:8] - z[8:]).abs().mean())
    assert ratios[5.0] > 1.5 * ratios[0.0], ratios
