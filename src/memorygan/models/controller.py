"""Working memory (MemoryGAN Sec. 3.2, Eq. 10-13; DESIGN 2.6): an LSTM controller that samples one query code
per part, each conditioned on the base query and the previous part's query.

Its parameters do not depend on K: the number of parts is the number of steps it is run for.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from memorygan.ops import EqualLinear
from memorygan.ops.autocast import autocast_off


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, sigma^2) || N(0, I)) summed over the last dim, averaged over all other dims (Eq. 13, minimised)."""
    return (0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)).sum(-1).mean()


class GaussianHead(nn.Module):
    """(N, in) -> mu (N, D), logvar (N, D)."""

    def __init__(self, in_dim: int, latent_dim: int, hidden_dim: int | None = None):
        super().__init__()
        layers = []
        if hidden_dim is not None:
            layers.append(EqualLinear(in_dim, hidden_dim, activation=True))
            in_dim = hidden_dim
        layers.append(EqualLinear(in_dim, 2 * latent_dim))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.net(x).chunk(2, dim=-1)
        return mu, logvar


class WorkingMemory(nn.Module):
    """Controller of MemoryGAN.

    forward(eps (B, 1+K, D), offsets (B|1, 1+K, D) or None) with eps[:, 0] the base noise and eps[:, 1+k] part
    k's noise (k = 0 background) -> queries (B, 1+K, D) = mu + sigma * eps (+ offsets), mu, logvar (B, 1+K, D).
      q_base from V_base through a two-layer MLP; q_bkg likewise from V_bkg (Eq. 10-11);
      q_k = head(LSTM(concat(q_base, q_{k-1}))) for k = 1..K-1 (Eq. 12), hidden state carried.
    `offsets` is added to each query as it is drawn, before the LSTM reads it: an edit of one part's query is
    carried on to the parts drawn after it (query-space editing, DESIGN 6).
    """

    def __init__(self, latent_dim: int, const_dim: int, mlp_dim: int, hidden_dim: int):
        super().__init__()
        self.latent_dim = latent_dim
        self.v_bkg = nn.Parameter(torch.randn(const_dim))
        self.v_base = nn.Parameter(torch.randn(const_dim))
        self.bkg_mlp = GaussianHead(const_dim, latent_dim, mlp_dim)
        self.base_mlp = GaussianHead(const_dim, latent_dim, mlp_dim)
        self.lstm = nn.LSTMCell(2 * latent_dim, hidden_dim)
        self.head = GaussianHead(hidden_dim, latent_dim)

    def forward(self, eps: torch.Tensor, offsets: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b, n, d = eps.shape
        assert n >= 2 and d == self.latent_dim, f"eps must be (B, 1+K, {self.latent_dim}), got {tuple(eps.shape)}"
        if offsets is not None and (offsets.ndim != 3 or offsets.shape[0] not in (1, b) or offsets.shape[1:] != (n, d)):
            raise ValueError(f"query offsets must be (1 or B={b}, {n}, {d}), got {tuple(offsets.shape)}")
        # fp32 throughout, also under autocast: a K-step recurrence of tiny matmuls, where bf16 buys no time
        with autocast_off(eps.device.type):
            return self._draw(eps.float(), offsets.float() if offsets is not None else None)

    def _draw(self, eps: torch.Tensor, offsets: torch.Tensor | None):
        """`forward`, with `self.lstm` (an nn.LSTMCell, whose parameters and checkpoint keys it keeps) unrolled by
        hand. Every query is a step of a recurrence, so a GPU runs this as a chain of tiny kernels, one launch each:
        what does not change from step to step is computed once per call instead of once per step: the LSTM input's
        q_base half and both biases (one `base` matrix), the gate rows reordered so that the three sigmoid gates are
        one slice (one sigmoid, one tanh per step), the q_prev and h weights as one matrix (one addmm per step), the
        head's scaled weight. Same maths as `nn.LSTMCell` (tests/models/test_controller.py)."""
        b, n, d = eps.shape
        off = (lambda k: offsets[:, k]) if offsets is not None else None
        mu_base, lv_base = self.base_mlp(self.v_base[None])
        mu_bkg, lv_bkg = self.bkg_mlp(self.v_bkg[None])
        q_base = torch.addcmul(mu_base, (0.5 * lv_base).exp(), eps[:, 0])
        q_prev = torch.addcmul(mu_bkg, (0.5 * lv_bkg).exp(), eps[:, 1])
        if off is not None:
            q_base, q_prev = q_base + off(0), q_prev + off(1)
        queries, mus, logvars = [q_base, q_prev], [mu_base.expand(b, d), mu_bkg.expand(b, d)], \
            [lv_base.expand(b, d), lv_bkg.expand(b, d)]
        if n > 2:
            lstm, hd = self.lstm, self.lstm.hidden_size
            # rows of [W_ih | W_hh | b_ih + b_hh] reordered from PyTorch's (i, f, g, o) to (i, f, o, g)
            full = torch.cat([lstm.weight_ih, lstm.weight_hh, (lstm.bias_ih + lstm.bias_hh)[:, None]], 1)
            full = torch.cat([full[:2 * hd], full[3 * hd:], full[2 * hd:3 * hd]])
            base = torch.addmm(full[:, -1], q_base, full[:, :d].t())          # (B, 4H): q_base's part and biases
            w_step = full[:, d:-1].t()                                         # (D + H, 4H): [q_prev, h] -> gates
            w_q = w_step[:d]
            head = self.head.net[0]                                            # one EqualLinear (2D outputs)
            w_head, b_head = (head.weight * head.scale).t(), head.bias * head.lr_mul
            h = c = None
            eps_k = eps.unbind(1)
            for k in range(2, n):
                if h is None:                                                  # zero state: no h term, c = i * g
                    gates = torch.addmm(base, q_prev, w_q)
                else:
                    gates = torch.addmm(base, torch.cat([q_prev, h], 1), w_step)
                # one split, not slices: a slice's backward writes a zero-filled copy of the whole input
                sig, g = gates.split([3 * hd, hd], 1)
                i, f, o = sig.sigmoid().chunk(3, 1)
                g = g.tanh()
                c = i * g if c is None else torch.addcmul(f * c, i, g)
                h = o * c.tanh()
                mu, lv = torch.addmm(b_head, h, w_head).chunk(2, dim=-1)
                q_prev = torch.addcmul(mu, (0.5 * lv).exp(), eps_k[k])
                if off is not None:
                    q_prev = q_prev + off(k)
                queries.append(q_prev)
                mus.append(mu)
                logvars.append(lv)
        return torch.stack(queries, 1), torch.stack(mus, 1), torch.stack(logvars, 1)
