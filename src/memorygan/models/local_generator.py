"""Local generator (DESIGN 2.2): the long-term memory of MemoryGAN (one, shared by all parts) and the
per-part generators of SemanticStyleGAN (K of them).

A local generator maps position features and one latent code per layer to a part's coarse feature map and
pseudo-depth. It holds no per-part parameter: which part it renders is decided only by the codes it is given.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn

from memorygan.config import GeneratorConfig
from memorygan.ops import SQRT2, StyledLayer, ToOutput, folded_leaky_relu
from memorygan.ops.autocast import autocast_dtype, autocast_off


class LocalGenerator(nn.Module):
    """L modulated 1x1 convs (width `local_channels`), `to_depth` after layer depth_layers-1, `to_feat` at the end.

    forward(pos (N|1, C_local, H, W), codes (N, L, D)) -> feat (N, C_coarse, H, W), depth (N, 1, H, W) or None.
    """

    # Inference on the CPU runs the samples in chunks of about this many bytes of activation per torch thread (a
    # core's L2 cache) through all layers, so a chunk stays in the cores' caches from layer to layer (see
    # `_hidden_chunked`). None: always one batched pass.
    cpu_chunk_bytes: int | None = 2 << 20

    def __init__(self, cfg: GeneratorConfig, has_depth: bool = True):
        super().__init__()
        self.num_layers = cfg.local_layers
        self.depth_layers = cfg.depth_layers
        c = cfg.local_channels
        self.layers = nn.ModuleList([StyledLayer(c, c, cfg.latent_dim) for _ in range(cfg.local_layers)])
        self.to_depth = ToOutput(c, 1) if has_depth else None
        self.to_feat = ToOutput(c, cfg.coarse_channels)

    def forward(self, pos: torch.Tensor, codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        hidden, depth = self.hidden(pos, codes)
        return self.to_feat(hidden), depth

    def hidden(self, pos: torch.Tensor, codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Activations of the last layer (N, C_local, H, W) and the depth; `to_feat` is left to the fusion,
        which can apply it after mixing the parts (it is a 1x1 affine map)."""
        n, num_layers, _ = codes.shape
        assert num_layers == self.num_layers, f"expected {self.num_layers} layer codes, got {num_layers}"
        if any(layer.conv.use_reference or layer.conv.weight.shape[-1] != 1 for layer in self.layers):
            return self._hidden_per_layer(pos, codes)
        x = pos.to(codes.dtype)
        dtype = autocast_dtype(x.device.type, x.dtype)
        mats, bias = self.layer_matrices(codes, dtype)
        chunk = self._cpu_chunk(x, n, dtype)
        if chunk is not None:
            return self._hidden_chunked(x.to(dtype), mats, bias, chunk)
        c, h, w = x.shape[1:]
        y = x.to(dtype).expand(n, c, h, w).reshape(n, c, h * w)
        depth = None
        for i, (m, b) in enumerate(zip(mats.unbind(0), bias.unbind(0))):
            y = folded_leaky_relu(torch.baddbmm(b, m, y), inplace=not torch.is_grad_enabled())
            if i == self.depth_layers - 1 and self.to_depth is not None:
                depth = self.to_depth(y.view(n, -1, h, w))
        return y.view(n, -1, h, w), depth

    def layer_matrices(self, codes: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """Every layer's per-sample matrices (L, N, O, I), modulated, demodulated and times the activation's gain
        sqrt(2), and the folded biases (L, 1, O, 1), in `dtype`: layer i is
        `folded_leaky_relu(baddbmm(bias[i], matrices[i], x))` over flattened pixels x (N, I, P).

        All layers have the same shape, so their styles are one batched matmul and the modulation and
        demodulation one pass over all of them: about 15 operations for the ten layers instead of 20 per layer
        (each a kernel launch on a GPU, in the forward and again in the backward pass). Computed in fp32 (float64
        for float64 codes) also under autocast, then cast: the demodulation's sum of squares is a reduction."""
        ct = torch.promote_types(codes.dtype, torch.float32)
        with autocast_off(codes.device.type):
            convs = [layer.conv for layer in self.layers]
            mod = convs[0].modulation
            weight = torch.stack([c.weight for c in convs])[..., 0, 0].to(ct)                 # (L, O, I)
            w_mod = torch.stack([c.modulation.weight for c in convs]).to(ct)                 # (L, I, D)
            b_mod = torch.stack([c.modulation.bias for c in convs]).to(ct)                   # (L, I)
            if mod.lr_mul != 1.0:
                b_mod = b_mod * mod.lr_mul
            # styles (L, N, I) = codes @ (W_mod * scale)^T + b, for every layer in one batched matmul
            styles = torch.baddbmm(b_mod[:, None], codes.to(ct).transpose(0, 1), w_mod.transpose(1, 2),
                                   alpha=mod.scale)
            mats = weight[:, None] * (styles * (1.0 / math.sqrt(weight.shape[-1])))[:, :, None, :]
            if convs[0].demodulate:
                mats = mats * (torch.rsqrt(mats.pow(2).sum(-1, keepdim=True) + 1e-8) * SQRT2)
            else:
                mats = mats * SQRT2
            bias = torch.stack([layer.activate.bias for layer in self.layers]).to(ct) * SQRT2
        return mats.to(dtype), bias[:, None, :, None].to(dtype)

    def _hidden_per_layer(self, pos: torch.Tensor, codes: torch.Tensor):
        """Layer by layer through `StyledLayer.forward`: the path for the reference ops (`use_reference`)."""
        n = codes.shape[0]
        x = pos.to(codes.dtype)
        if x.shape[0] != n:
            x = x.expand(n, *x.shape[1:])
        depth = None
        for i, layer in enumerate(self.layers):
            x = layer(x, codes[:, i])
            if i == self.depth_layers - 1 and self.to_depth is not None:
                depth = self.to_depth(x)
        return x, depth

    def _cpu_chunk(self, x: torch.Tensor, n: int, dtype: torch.dtype) -> int | None:
        """Samples per chunk for `_hidden_chunked`, or None for the batched pass: with autograd (the graph of many
        chunks costs more than it saves), off the CPU (a GPU wants one large batched matmul per layer), or when the
        whole batch is one chunk anyway."""
        if self.cpu_chunk_bytes is None or torch.is_grad_enabled() or x.device.type != "cpu":
            return None
        per_sample = max(x[0].numel(), self.layers[0].conv.weight.shape[0] * x[0, 0].numel()) * dtype.itemsize
        chunk = max(1, self.cpu_chunk_bytes * torch.get_num_threads() // per_sample)
        return chunk if chunk < n else None

    def _hidden_chunked(self, pos: torch.Tensor, mats: torch.Tensor, bias: torch.Tensor, chunk: int):
        """`hidden` without autograd on the CPU, `chunk` samples at a time through all the layers.

        The layers are 1x1 (a per-sample matrix times every pixel), so each sample's path through them is
        independent. MemoryGAN runs B*K samples as one batch (200 at K = 100, 256 px: 210 MB per layer): layer by layer
        every activation goes out to memory and back, and the small matmuls (inner dimension 64) wait on it (28 GMAC/s
        on one core, measured). A chunk of a few samples (64 x 64 x 64 floats, 1 MiB, each) stays in the cores' L2
        caches through all ten layers: 32-38 GMAC/s, against the render net's 45 (docs/performance.md). The maths is
        the batched pass's (`layer_matrices`), in the same order."""
        n = mats.shape[1]
        c, h, w = pos.shape[1:]
        hidden = depth = None
        for s in range(0, n, chunk):
            e = min(n, s + chunk)
            y = (pos[s:e] if pos.shape[0] == n else pos.expand(e - s, c, h, w)).reshape(e - s, c, h * w)
            for i in range(self.num_layers):
                if e - s == 1:   # one sample: a plain matmul (addmm is 10-20 % faster than a batch-of-one baddbmm)
                    y = torch.addmm(bias[i, 0], mats[i, s], y[0]).unsqueeze(0)
                else:
                    y = torch.baddbmm(bias[i], mats[i, s:e], y)
                y = folded_leaky_relu(y, inplace=True)
                if i == self.depth_layers - 1 and self.to_depth is not None:
                    d = self.to_depth(y.view(e - s, -1, h, w))
                    if depth is None:
                        depth = d.new_empty(n, *d.shape[1:])
                    depth[s:e] = d
            if hidden is None:
                hidden = y.new_empty(n, y.shape[1], h, w)
            hidden[s:e] = y.view(e - s, -1, h, w)
        return hidden, depth
