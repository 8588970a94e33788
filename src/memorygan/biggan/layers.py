"""The layers of BigGAN (Brock et al. 2019) and BigGAN-deep, as the thesis trains them (chapter 2).

Names and state-dict keys follow the authors' PyTorch code (ajbrock/BigGAN-PyTorch, `layers.py`): spectral norm
keeps its left singular vector in `u0` and the estimate of the weight's first singular value in `sv0`, which is
what thesis Fig. 2-2b plots; conditional BatchNorm keeps `stored_mean` / `stored_var`. So weights saved by that
code load here (`biggan.interop`).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


# ------------------------------------------------------------------------------------------------ spectral norm

def power_iteration(W: torch.Tensor, u: torch.Tensor, eps: float = 1e-12) -> tuple[torch.Tensor, torch.Tensor,
                                                                                      torch.Tensor]:
    """One step of the power method on W (O, I) from u (1, O) (Miyato et al. 2018, Alg. 1).

    Returns (sigma, u', v'): sigma = v' W^T u'^T, differentiable in W (u' and v' are constants), the estimate of
    W's first singular value; u' (1, O) and v' (1, I) the updated singular vectors."""
    with torch.no_grad():
        v = F.normalize(u @ W, eps=eps)
        u = F.normalize(v @ W.t(), eps=eps)
    sigma = (v @ W.t() @ u.t()).squeeze()
    return sigma, u, v


class SpectralNorm:
    """Mixin: `weight / sigma` with one power iteration per training forward.

    `sn_update` (default True) lets a caller freeze the power iteration: gradient accumulation updates u on the
    first micro-batch of a step only, so k micro-batches see the same normalised weight as one batch of k x b
    (thesis Algorithm 1 made exact; `biggan.train.accumulation_step`)."""

    def _init_sn(self, num_outputs: int, eps: float) -> None:
        self.sn_eps = eps
        self.sn_update = True
        self._sn_last: tuple | None = None       # (weight version, u, v) of the last update
        self.register_buffer("u0", torch.randn(1, num_outputs))
        self.register_buffer("sv0", torch.ones(1))

    def sn_weight(self) -> torch.Tensor:
        W = self.weight.view(self.weight.size(0), -1)
        last = self._sn_last
        if self.training and not self.sn_update and last is not None and last[0] == self.weight._version:
            # frozen within a step: the singular vectors of this step's first forward, so sigma is the same
            u, v = last[1], last[2]
            sigma = (v @ W.t() @ u.t()).squeeze()
        else:
            sigma, u, v = power_iteration(W, self.u0, self.sn_eps)
        if self.training and self.sn_update:
            with torch.no_grad():
                self.u0.copy_(u)
                self.sv0.copy_(sigma.detach().reshape(1))
            self._sn_last = (self.weight._version, u, v)
        return self.weight / sigma


class SNConv2d(nn.Conv2d, SpectralNorm):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, padding: int = 1,
                 bias: bool = True, eps: float = 1e-6):
        nn.Conv2d.__init__(self, in_channels, out_channels, kernel_size, padding=padding, bias=bias)
        self._init_sn(out_channels, eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.sn_weight(), self.bias, self.stride, self.padding)


class SNLinear(nn.Linear, SpectralNorm):
    def __init__(self, in_features: int, out_features: int, bias: bool = True, eps: float = 1e-6):
        nn.Linear.__init__(self, in_features, out_features, bias)
        self._init_sn(out_features, eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.sn_weight(), self.bias)


class SNEmbedding(nn.Embedding, SpectralNorm):
    """The projection discriminator's class embedding, spectrally normalised over (classes, channels)."""

    def __init__(self, num_embeddings: int, embedding_dim: int, eps: float = 1e-6):
        nn.Embedding.__init__(self, num_embeddings, embedding_dim)
        self._init_sn(num_embeddings, eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.embedding(x, self.sn_weight())


def sn_layers(module: nn.Module) -> dict[str, SpectralNorm]:
    """{qualified name: layer} of every spectrally normalised layer in `module`."""
    return {name: m for name, m in module.named_modules() if isinstance(m, SpectralNorm)}


def set_sn_update(module: nn.Module, update: bool) -> None:
    for m in sn_layers(module).values():
        m.sn_update = update


# ------------------------------------------------------------------------------------------------ batch norm

def batch_norm(x: torch.Tensor, mean: torch.Tensor, var: torch.Tensor, training: bool, eps: float,
               group: int | None, momentum: float = 0.1) -> torch.Tensor:
    """BatchNorm without affine of x (B, C, H, W), updating the running `mean` / `var` (C,) in training.

    `group` (ghost batches): statistics over consecutive groups of `group` samples, each group updating the running
    statistics in turn, exactly as `B / group` separate forwards of `group` samples would. The thesis keeps
    BatchNorm statistics per device and per accumulation micro-batch (Sec. 2.3.2); a group equal to the
    micro-batch reproduces that in one forward (used to test accumulation, `tests/biggan`)."""
    if not training or group is None or group >= x.shape[0]:
        return F.batch_norm(x, mean, var, None, None, training, momentum, eps)
    if x.shape[0] % group:
        raise ValueError(f"batch of {x.shape[0]} is not a multiple of the BatchNorm group {group}")
    return torch.cat([F.batch_norm(c, mean, var, None, None, True, momentum, eps) for c in x.split(group)])


class ConditionalBatchNorm(nn.Module):
    """Class-conditional BatchNorm (de Vries et al. 2017; BigGAN): shared statistics, per-sample gain 1 + W_g y and
    bias W_b y from the conditioning vector y (B, input_size) = [shared class embedding, z chunk] (hierarchical
    latents). The authors' code calls it `ccbn`; W_g and W_b are spectrally normalised linear maps without bias."""

    def __init__(self, output_size: int, input_size: int, eps: float = 1e-5, sn_eps: float = 1e-6):
        super().__init__()
        self.output_size, self.input_size, self.eps = output_size, input_size, eps
        self.gain = SNLinear(input_size, output_size, bias=False, eps=sn_eps)
        self.bias = SNLinear(input_size, output_size, bias=False, eps=sn_eps)
        self.register_buffer("stored_mean", torch.zeros(output_size))
        self.register_buffer("stored_var", torch.ones(output_size))
        self.group: int | None = None
        self.momentum = 0.1                      # of the running statistics (standing statistics change it)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        gain = (1 + self.gain(y))[:, :, None, None]
        bias = self.bias(y)[:, :, None, None]
        out = batch_norm(x, self.stored_mean, self.stored_var, self.training, self.eps, self.group, self.momentum)
        return out * gain + bias


class BatchNorm(nn.Module):
    """Unconditional BatchNorm with learned gain / bias (G's output layer)."""

    def __init__(self, output_size: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.gain = nn.Parameter(torch.ones(output_size))
        self.bias = nn.Parameter(torch.zeros(output_size))
        self.register_buffer("stored_mean", torch.zeros(output_size))
        self.register_buffer("stored_var", torch.ones(output_size))
        self.group: int | None = None
        self.momentum = 0.1                      # of the running statistics (standing statistics change it)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        out = batch_norm(x, self.stored_mean, self.stored_var, self.training, self.eps, self.group, self.momentum)
        return out * self.gain[:, None, None] + self.bias[:, None, None]


def batch_norms(module: nn.Module) -> list[nn.Module]:
    return [m for m in module.modules() if isinstance(m, (ConditionalBatchNorm, BatchNorm))]


def set_bn_group(module: nn.Module, group: int | None) -> None:
    for m in batch_norms(module):
        m.group = group


# ------------------------------------------------------------------------------------------------ attention

class Attention(nn.Module):
    """The self-attention block of SA-GAN as its authors' code computes it (not as the paper writes it): keys and
    values max-pooled 2x2, channels C/8 for queries and keys, C/2 for values, a learned gain gamma starting at 0."""

    def __init__(self, ch: int, sn_eps: float = 1e-6):
        super().__init__()
        if ch % 8:
            raise ValueError(f"attention needs a channel count divisible by 8, got {ch}")
        self.ch = ch
        self.theta = SNConv2d(ch, ch // 8, 1, padding=0, bias=False, eps=sn_eps)
        self.phi = SNConv2d(ch, ch // 8, 1, padding=0, bias=False, eps=sn_eps)
        self.g = SNConv2d(ch, ch // 2, 1, padding=0, bias=False, eps=sn_eps)
        self.o = SNConv2d(ch // 2, ch, 1, padding=0, bias=False, eps=sn_eps)
        self.gamma = nn.Parameter(torch.tensor(0.0))

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        b, c, h, w = x.shape
        theta = self.theta(x).view(b, c // 8, h * w)                              # (B, C/8, N)
        phi = F.max_pool2d(self.phi(x), 2).view(b, c // 8, h * w // 4)            # (B, C/8, N/4)
        g = F.max_pool2d(self.g(x), 2).view(b, c // 2, h * w // 4)                # (B, C/2, N/4)
        beta = F.softmax(theta.transpose(1, 2) @ phi, -1)                          # (B, N, N/4)
        o = self.o((g @ beta.transpose(1, 2)).view(b, c // 2, h, w))
        return self.gamma * o + x


# ------------------------------------------------------------------------------------------------ residual blocks

def upsample(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2)                                        # nearest, as the authors


class GBlock(nn.Module):
    """BigGAN's up block: BN-ReLU-up-conv3-BN-ReLU-conv3, shortcut up + conv1 (BigGAN Fig. 15b)."""

    def __init__(self, cin: int, cout: int, cond: int, up: bool = True, bn_eps: float = 1e-5, sn_eps: float = 1e-6):
        super().__init__()
        self.up = up
        self.conv1 = SNConv2d(cin, cout, eps=sn_eps)
        self.conv2 = SNConv2d(cout, cout, eps=sn_eps)
        self.learnable_sc = cin != cout or up
        if self.learnable_sc:
            self.conv_sc = SNConv2d(cin, cout, 1, padding=0, eps=sn_eps)
        self.bn1 = ConditionalBatchNorm(cin, cond, bn_eps, sn_eps)
        self.bn2 = ConditionalBatchNorm(cout, cond, bn_eps, sn_eps)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.bn1(x, y))
        if self.up:
            h, x = upsample(h), upsample(x)
        h = self.conv2(F.relu(self.bn2(self.conv1(h), y)))
        if self.learnable_sc:
            x = self.conv_sc(x)
        return h + x


class GBlockDeep(nn.Module):
    """BigGAN-deep's bottleneck up block (BigGAN Fig. 16b): 1x1 down to C/4, two 3x3, 1x1 up; the shortcut drops
    channels instead of a learned conv."""

    def __init__(self, cin: int, cout: int, cond: int, up: bool, bn_eps: float = 1e-5, sn_eps: float = 1e-6,
                 channel_ratio: int = 4):
        super().__init__()
        hidden = cin // channel_ratio
        self.cin, self.cout, self.up = cin, cout, up
        self.conv1 = SNConv2d(cin, hidden, 1, padding=0, eps=sn_eps)
        self.conv2 = SNConv2d(hidden, hidden, eps=sn_eps)
        self.conv3 = SNConv2d(hidden, hidden, eps=sn_eps)
        self.conv4 = SNConv2d(hidden, cout, 1, padding=0, eps=sn_eps)
        self.bn1 = ConditionalBatchNorm(cin, cond, bn_eps, sn_eps)
        self.bn2 = ConditionalBatchNorm(hidden, cond, bn_eps, sn_eps)
        self.bn3 = ConditionalBatchNorm(hidden, cond, bn_eps, sn_eps)
        self.bn4 = ConditionalBatchNorm(hidden, cond, bn_eps, sn_eps)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.relu(self.bn1(x, y)))
        h = F.relu(self.bn2(h, y))
        if self.cin != self.cout:
            x = x[:, :self.cout]
        if self.up:
            h, x = upsample(h), upsample(x)
        h = self.conv3(F.relu(self.bn3(self.conv2(h), y)))
        h = self.conv4(F.relu(self.bn4(h, y)))
        return h + x


class DBlock(nn.Module):
    """BigGAN's down block (Fig. 15c): [ReLU]-conv3-ReLU-conv3-avgpool, shortcut conv1 + avgpool (the first block
    pools before its shortcut conv and has no pre-activation)."""

    def __init__(self, cin: int, cout: int, down: bool = True, preactivation: bool = True, sn_eps: float = 1e-6):
        super().__init__()
        self.down, self.preactivation = down, preactivation
        self.conv1 = SNConv2d(cin, cout, eps=sn_eps)                               # wide D: hidden = out channels
        self.conv2 = SNConv2d(cout, cout, eps=sn_eps)
        self.learnable_sc = cin != cout or down
        if self.learnable_sc:
            self.conv_sc = SNConv2d(cin, cout, 1, padding=0, eps=sn_eps)

    def shortcut(self, x: torch.Tensor) -> torch.Tensor:
        if self.preactivation:
            if self.learnable_sc:
                x = self.conv_sc(x)
            return F.avg_pool2d(x, 2) if self.down else x
        if self.down:
            x = F.avg_pool2d(x, 2)
        return self.conv_sc(x) if self.learnable_sc else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(x) if self.preactivation else x
        h = self.conv2(F.relu(self.conv1(h)))
        if self.down:
            h = F.avg_pool2d(h, 2)
        return h + self.shortcut(x)


class DBlockDeep(nn.Module):
    """BigGAN-deep's bottleneck down block (Fig. 16c); the shortcut concatenates a learned 1x1 conv's channels."""

    def __init__(self, cin: int, cout: int, down: bool, sn_eps: float = 1e-6, channel_ratio: int = 4):
        super().__init__()
        hidden = cout // channel_ratio
        self.down = down
        self.conv1 = SNConv2d(cin, hidden, 1, padding=0, eps=sn_eps)
        self.conv2 = SNConv2d(hidden, hidden, eps=sn_eps)
        self.conv3 = SNConv2d(hidden, hidden, eps=sn_eps)
        self.conv4 = SNConv2d(hidden, cout, 1, padding=0, eps=sn_eps)
        self.learnable_sc = cin != cout
        if self.learnable_sc:
            self.conv_sc = SNConv2d(cin, cout - cin, 1, padding=0, eps=sn_eps)

    def shortcut(self, x: torch.Tensor) -> torch.Tensor:
        if self.down:
            x = F.avg_pool2d(x, 2)
        return torch.cat([x, self.conv_sc(x)], 1) if self.learnable_sc else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.relu(x))
        h = F.relu(self.conv3(F.relu(self.conv2(F.relu(h)))))
        if self.down:
            h = F.avg_pool2d(h, 2)
        return self.conv4(h) + self.shortcut(x)
