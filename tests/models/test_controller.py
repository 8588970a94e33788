"""The working memory's hand-unrolled LSTM against the recurrence written with `nn.LSTMCell` (Eq. 10-12)."""
import pytest
import torch

from memorygan.models.controller import WorkingMemory

from helpers import CountOps


def reference(wm: WorkingMemory, eps: torch.Tensor, offsets: torch.Tensor | None = None):
    """MemoryGAN Eq. 10-12 step by step with the module's own nn.LSTMCell and heads."""
    b, n, d = eps.shape
    off = (lambda k: offsets[:, k]) if offsets is not None else (lambda k: 0.0)
    mu_base, lv_base = wm.base_mlp(wm.v_base[None])
    mu_bkg, lv_bkg = wm.bkg_mlp(wm.v_bkg[None])
    q_base = mu_base + (0.5 * lv_base).exp() * eps[:, 0] + off(0)
    q_prev = mu_bkg + (0.5 * lv_bkg).exp() * eps[:, 1] + off(1)
    qs, mus, lvs = [q_base, q_prev], [mu_base.expand(b, d), mu_bkg.expand(b, d)], [lv_base.expand(b, d),
                                                                                     lv_bkg.expand(b, d)]
    state = None
    for k in range(2, n):
        state = wm.lstm(torch.cat([q_base, q_prev], 1), state)
        mu, lv = wm.head(state[0])
        q_prev = mu + (0.5 * lv).exp() * eps[:, k] + off(k)
        qs.append(q_prev), mus.append(mu), lvs.append(lv)
    return torch.stack(qs, 1), torch.stack(mus, 1), torch.stack(lvs, 1)


def make(seed=0, d=16, hidden=20):
    torch.manual_seed(seed)
    wm = WorkingMemory(d, 24, 32, hidden)
    with torch.no_grad():
        for p in wm.parameters():     # non-trivial biases and gates (the defaults start some at 0)
            p.normal_(0, 0.5)
    return wm


@pytest.mark.parametrize("b,n", [(1, 2), (3, 3), (2, 7)])
@pytest.mark.parametrize("with_offsets", [False, True])
def test_unrolled_lstm_equals_lstm_cell(b, n, with_offsets):
    wm = make()
    eps = torch.randn(b, n, 16)
    offsets = torch.randn(1, n, 16) if with_offsets else None
    got, want = wm(eps, offsets), reference(wm, eps, offsets)
    for g, w in zip(got, want):
        assert g.shape == w.shape == (b, n, 16)
        torch.testing.assert_close(g, w, atol=2e-5, rtol=1e-5)


def test_unrolled_lstm_gradients_equal_lstm_cell():
    wm = make(1)
    eps = torch.randn(3, 6, 16, requires_grad=True)
    probe = [torch.randn(3, 6, 16) for _ in range(3)]

    def grads(fn):
        wm.zero_grad()
        eps.grad = None
        sum((o * p).sum() for o, p in zip(fn(wm, eps), probe)).backward()
        return [eps.grad.clone()] + [p.grad.clone() for p in wm.parameters()]

    got, want = grads(lambda m, e: m(e)), grads(reference)
    assert len(got) == len(want) == 1 + len(list(wm.parameters()))
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, atol=1e-4, rtol=1e-4)
    assert wm.lstm.weight_hh.grad.abs().sum() > 0


def test_controller_runs_in_fp32_under_autocast():
    """Under bf16 autocast the recurrence stays in fp32: the same numbers as without autocast."""
    wm = make(2)
    eps = torch.randn(2, 5, 16)
    plain = wm(eps)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        cast = wm(eps)
    for p, c in zip(plain, cast):
        assert c.dtype == torch.float32
        torch.testing.assert_close(c, p, atol=0, rtol=0)


def test_each_lstm_step_costs_what_the_recurrence_needs():
    """Every op is a kernel launch on a GPU, and the controller runs one LSTM step per part. With the per-call
    constants hoisted out of the loop (q_base's share of the gates, the biases, the gate order, the head's scaled
    weight), a step costs 66 ATen ops forward and backward (measured; `nn.LSTMCell` with the per-step head took
    98 on the CPU)."""
    def ops(n):
        wm = make(3)
        eps = torch.randn(3, n, 16)
        with CountOps() as count:
            sum(t.sum() for t in wm(eps)).backward()
        assert wm.lstm.weight_hh.grad.abs().sum() > 0
        return count.n
    per_step = (ops(9) - ops(5)) / 4
    assert 0 < per_step <= 75
