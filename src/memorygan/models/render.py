"""Render net (DESIGN 2.4, SemanticStyleGAN Sec. 3.2): a StyleGAN2-like synthesis network with no latent input
that turns the fused coarse feature map into the image and the fine segmentation (to_rgb / to_seg skips)."""
from __future__ import annotations


import torch
import torch.nn as nn
import torch.nn.functional as F

from memorygan.config import GeneratorConfig
from memorygan.ops import NOISE_MODES, FixedStyleConv, ToOutput
from memorygan.ops.autocast import under_autocast


class RenderNet(nn.Module):
    """forward(fused (B, C_coarse, Hc, Wc), coarse_seg (B, K, Hc, Wc) in [-1,1], noise_mode)
    -> image (B, 3, H, W), seg (B, K, H, W)."""

    def __init__(self, cfg: GeneratorConfig):
        super().__init__()
        self.coarse_size = cfg.coarse_size
        self.min_feat_size = cfg.min_feat_size
        self.residual_refine = cfg.residual_refine
        self.convs = nn.ModuleList()
        self.to_rgbs = nn.ModuleList()
        self.to_segs = nn.ModuleList()
        in_ch = cfg.coarse_channels
        res = cfg.min_feat_size
        j = 0
        while res < cfg.resolution:
            if res == cfg.coarse_size:  # this block also sees the full-resolution fused map
                in_ch += cfg.coarse_channels
            res *= 2
            out_ch = cfg.render_channels(res)
            self.convs.append(FixedStyleConv(in_ch, out_ch, 3, upsample=True))
            self.convs.append(FixedStyleConv(out_ch, out_ch, 3))
            for _ in range(2):
                self.register_buffer(f"noise_{j}", torch.randn(1, 1, res, res))
                j += 1
            self.to_rgbs.append(ToOutput(out_ch, 3))
            self.to_segs.append(ToOutput(out_ch, cfg.num_classes))
            in_ch = out_ch
        self.num_blocks = len(self.to_rgbs)
        # NHWC activations. None (default): under autocast, where they measured 12% faster on the CPU in bf16 (and
        # are what tensor-core convolutions want), and in CPU fp32 inference, where the Winograd convolutions
        # (ops/winograd.py) work and return NHWC anyway (2-4% faster than starting in NCHW). Direct fp32 convolutions
        # gained nothing from NHWC (docs/performance.md). True / False force.
        self.channels_last: bool | None = None

    def noise_shapes(self) -> list[tuple[int, int, int, int]]:
        """(1, 1, H, W) of each noise map, two per block, in the order the convs use them."""
        return [tuple(getattr(self, f"noise_{j}").shape) for j in range(2 * self.num_blocks)]

    def check_noise(self, noise, batch: int) -> list[torch.Tensor]:
        shapes = self.noise_shapes()
        if not isinstance(noise, (list, tuple)) or len(noise) != len(shapes):
            raise ValueError(f"noise must be a list of {len(shapes)} maps shaped (1|B, 1, H, W) for H, W in "
                             f"{[s[2] for s in shapes]}, got {type(noise).__name__} of length "
                             f"{len(noise) if isinstance(noise, (list, tuple)) else '-'}")
        for j, (n, s) in enumerate(zip(noise, shapes)):
            if n.ndim != 4 or n.shape[0] not in (1, batch) or tuple(n.shape[1:]) != s[1:]:
                raise ValueError(f"noise[{j}] must be (1 or B={batch}, 1, {s[2]}, {s[3]}), got {tuple(n.shape)}")
        return list(noise)

    def noises(self, batch: int, mode: str, device, dtype) -> list[torch.Tensor | None]:
        if mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {mode!r}")
        out = []
        for j in range(2 * self.num_blocks):
            buf = getattr(self, f"noise_{j}")
            if mode == "const":
                out.append(buf)
            elif mode == "random":
                out.append(torch.randn(batch, 1, *buf.shape[2:], device=device, dtype=dtype))
            else:
                out.append(None)
        return out

    def forward(self, fused: torch.Tensor, coarse_seg: torch.Tensor, noise_mode: str = "const",
                noise: list[torch.Tensor] | None = None, mix=None):
        """`noise`: explicit maps (see `noise_shapes`), e.g. optimised by an inversion; otherwise `noise_mode`.
        `mix(i, t) -> t`, if given, sees (and may replace) every activation in order: for block b, i = 4b and 4b+1
        the two conv outputs, 4b+2 the rgb skip, 4b+3 the seg skip (`mix_points` of them). Region edits use it to
        record a source's activations and to blend an edit with them at every layer (`editing.region`)."""
        if noise is not None:
            noises = self.check_noise(noise, fused.shape[0])
        else:
            noises = self.noises(fused.shape[0], noise_mode, fused.device, fused.dtype)
        channels_last = self.channels_last
        if channels_last is None:
            channels_last = under_autocast(fused.device.type) or (
                fused.device.type == "cpu" and fused.dtype == torch.float32 and not torch.is_grad_enabled()
                and FixedStyleConv.cpu_winograd)
        if channels_last:
            fused = fused.contiguous(memory_format=torch.channels_last)
        x = F.adaptive_avg_pool2d(fused, self.min_feat_size) if fused.shape[-1] != self.min_feat_size else fused
        rgb = None
        seg = coarse_seg if (self.residual_refine and self.min_feat_size == self.coarse_size) else None
        for b in range(self.num_blocks):
            if x.shape[-1] == self.coarse_size:
                x = torch.cat([x, fused], dim=1)
            x = self.convs[2 * b](x, noises[2 * b])
            if mix is not None:
                x = mix(4 * b, x)
            x = self.convs[2 * b + 1](x, noises[2 * b + 1])
            if mix is not None:
                x = mix(4 * b + 1, x)
            rgb = self.to_rgbs[b](x, rgb)
            seg = self.to_segs[b](x, seg)
            if self.residual_refine and x.shape[-1] == self.coarse_size:  # residual refine of the coarse mask
                seg = seg + coarse_seg.to(seg.dtype)
            if mix is not None:
                rgb, seg = mix(4 * b + 2, rgb), mix(4 * b + 3, seg)
        if channels_last:
            rgb, seg = rgb.contiguous(), seg.contiguous()
        return rgb, seg

    @property
    def mix_points(self) -> int:
        return 4 * self.num_blocks
