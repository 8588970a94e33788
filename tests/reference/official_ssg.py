"""Independent re-implementation of the official SemanticStyleGAN generator, in the official checkpoint layout.

Test-only parity reference for the checkpoint importer. Written from DESIGN.md sections 1, 2 and 7.1, the released
`g_ema` key list (shared/reference/ssg_official_g_ema_keys_512_K13.tsv) and rosinality's stylegan2-pytorch ops
(native paths only). It deliberately does not import anything from `memorygan`.

Choices on points the key list cannot settle (the importer must match these):
- Fourier features are grouped per frequency: `[x, y]`, then for f = 1, 2, ..., 2^(N-1):
  `sin(f x), sin(f y), cos(f x), cos(f y)` (NeRF-style embedder over the 2-channel `[x, y]` input). Channel 0 (x)
  varies along the width, channel 1 (y) along the height.
- Official calling convention (`SemanticGenerator.forward`): `styles` is a list of one or two tensors; one z (B, D)
  per image is mapped once and repeated over every W+ code, two are mixed part-wise by `mix_styles` (Python's
  `random`); a (B, n_latent, D) tensor has its codes mapped one by one.
- With a composition mask, the masked and renormalised softmax is used both for fusion and for the returned coarse
  mask (`coarse_seg = 2 m_c - 1`), and hence also for residual refine. Without one, `m_c` is the plain softmax.
- Transparent classes: opaque weights `m_o = m * (1 - t) / (sum_k m * (1 - t) + 1e-8)`; fused weights are
  `m_o + m * t` (t = 1 on transparent channels). They affect the fused feature only, never the coarse mask.
- Residual refine: added right after the `to_segs` skip of the first render block whose OUTPUT resolution equals
  `coarse_size` (so the running seg at coarse_size becomes `skip + (2 m_c - 1)`), then upsampled onward as usual.
  The block whose INPUT resolution equals `coarse_size` concatenates the full-resolution fused map.

Checkpoint `args` (argparse.Namespace) field names written by `make_official_checkpoint`. Fairly sure these match
the official train.py: `size`, `latent`, `n_mlp`, `channel_multiplier`, `seg_dim`, `mixing`, `batch`, `iter`, `lr`.
Guessed (official names not verifiable offline): `local_layers`, `base_layers`, `depth_layers`, `local_channel`,
`coarse_channel`, `coarse_size`, `min_feat_size`, `residual_refine`, `detach_texture`, `transparent_dims`.
The test-only `channel_max` (render widths capped for tiny models) is not written to `args`: widths must be read
from the tensor shapes.
"""
import argparse
import math
import random

import torch
import torch.nn.functional as F
from torch import nn

STYLEGAN2_CHANNELS = {4: 512, 8: 512, 16: 512, 32: 512, 64: 256, 128: 128, 256: 64, 512: 32, 1024: 16}


# ----------------------------------------------------------------------------------------------- rosinality ops
def upfirdn2d_native(x, kernel, up=1, down=1, pad=(0, 0, 0, 0)):
    """rosinality's upfirdn2d_native; x (B, C, H, W), kernel (kh, kw), pad (x0, x1, y0, y1) or (p0, p1) for both."""
    if len(pad) == 2:
        pad = (pad[0], pad[1], pad[0], pad[1])
    pad_x0, pad_x1, pad_y0, pad_y1 = pad
    _, channel, in_h, in_w = x.shape
    kernel_h, kernel_w = kernel.shape
    out = x.reshape(-1, in_h, 1, in_w, 1, 1)
    out = F.pad(out, [0, 0, 0, up - 1, 0, 0, 0, up - 1])  # zero insertion
    out = out.view(-1, in_h * up, in_w * up, 1)
    out = F.pad(out, [0, 0, max(pad_x0, 0), max(pad_x1, 0), max(pad_y0, 0), max(pad_y1, 0)])
    out = out[:, max(-pad_y0, 0): out.shape[1] - max(-pad_y1, 0), max(-pad_x0, 0): out.shape[2] - max(-pad_x1, 0), :]
    out = out.permute(0, 3, 1, 2)
    out = out.reshape(-1, 1, in_h * up + pad_y0 + pad_y1, in_w * up + pad_x0 + pad_x1)
    w = torch.flip(kernel, [0, 1]).view(1, 1, kernel_h, kernel_w).to(out)
    out = F.conv2d(out, w)
    out = out.reshape(-1, 1, in_h * up + pad_y0 + pad_y1 - kernel_h + 1, in_w * up + pad_x0 + pad_x1 - kernel_w + 1)
    out = out.permute(0, 2, 3, 1)[:, ::down, ::down, :]
    out_h = (in_h * up + pad_y0 + pad_y1 - kernel_h + down) // down
    out_w = (in_w * up + pad_x0 + pad_x1 - kernel_w + down) // down
    return out.reshape(-1, channel, out_h, out_w)


def make_kernel(k):
    k = torch.tensor(k, dtype=torch.float32)
    if k.ndim == 1:
        k = k[None, :] * k[:, None]
    return k / k.sum()


class Blur(nn.Module):
    def __init__(self, kernel, pad, upsample_factor=1):
        super().__init__()
        self.register_buffer("kernel", make_kernel(kernel) * upsample_factor ** 2)
        self.pad = pad

    def forward(self, x):
        return upfirdn2d_native(x, self.kernel, pad=self.pad)


class Upsample(nn.Module):
    def __init__(self, kernel, factor=2):
        super().__init__()
        self.factor = factor
        self.register_buffer("kernel", make_kernel(kernel) * factor ** 2)
        p = self.kernel.shape[0] - factor
        self.pad = ((p + 1) // 2 + factor - 1, p // 2)  # (2, 1) for [1,3,3,1], factor 2

    def forward(self, x):
        return upfirdn2d_native(x, self.kernel, up=self.factor, pad=self.pad)


def fused_leaky_relu(x, bias, negative_slope=0.2, scale=2 ** 0.5):
    rest = [1] * (x.ndim - 2)
    return F.leaky_relu(x + bias.view(1, -1, *rest), negative_slope) * scale


class FusedLeakyReLU(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x):
        return fused_leaky_relu(x, self.bias)


class PixelNorm(nn.Module):
    def forward(self, x):
        return x * torch.rsqrt(torch.mean(x ** 2, dim=1, keepdim=True) + 1e-8)


class EqualLinear(nn.Module):
    def __init__(self, in_dim, out_dim, bias=True, bias_init=0.0, lr_mul=1.0, activation=None):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim).div_(lr_mul))
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init))) if bias else None
        self.scale, self.lr_mul, self.activation = lr_mul / math.sqrt(in_dim), lr_mul, activation

    def forward(self, x):
        if self.activation == "fused_lrelu":
            return fused_leaky_relu(F.linear(x, self.weight * self.scale), self.bias * self.lr_mul)
        bias = None if self.bias is None else self.bias * self.lr_mul
        return F.linear(x, self.weight * self.scale, bias)


class NoiseInjection(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x, noise=None):
        if noise is None:
            noise = x.new_empty(x.shape[0], 1, x.shape[2], x.shape[3]).normal_()
        return x + self.weight * noise


def demodulate(w):
    """w (..., out, in, kh, kw): scale every output filter to unit L2 norm (eps 1e-8)."""
    return w * torch.rsqrt(w.pow(2).sum(dim=(-3, -2, -1), keepdim=True) + 1e-8)


# ----------------------------------------------------------------------------------------------- SSG modules
class ModulatedConv2d(nn.Module):
    """Style-modulated conv of the local nets (`linears.i.conv`): weight (1, out, in, k, k), style linear."""

    def __init__(self, in_ch, out_ch, kernel_size, style_dim, demod=True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(1, out_ch, in_ch, kernel_size, kernel_size))
        self.modulation = EqualLinear(style_dim, in_ch, bias_init=1)
        self.scale, self.demod, self.padding = 1 / math.sqrt(in_ch * kernel_size ** 2), demod, kernel_size // 2

    def effective_weight(self, style):  # style (B, D) -> (B, out, in, k, k)
        s = self.modulation(style)[:, None, :, None, None]
        w = self.scale * self.weight * s
        return demodulate(w) if self.demod else w

    def forward(self, x, style):
        b, c, h, wd = x.shape
        w = self.effective_weight(style)
        out = F.conv2d(x.reshape(1, b * c, h, wd), w.reshape(-1, c, *w.shape[-2:]), padding=self.padding, groups=b)
        return out.reshape(b, -1, *out.shape[-2:])


class LocalLayer(nn.Module):
    def __init__(self, in_ch, out_ch, style_dim):
        super().__init__()
        self.conv = ModulatedConv2d(in_ch, out_ch, 1, style_dim)
        self.activate = FusedLeakyReLU(out_ch)

    def forward(self, x, style):
        return self.activate(self.conv(x, style))


class FixedModConv(nn.Module):
    """Conv whose per-input-channel style is a learned constant `modulation (1, in, 1, 1)`; optional 2x transposed
    upsampling followed by blur (`blur.kernel`)."""

    def __init__(self, in_ch, out_ch, kernel_size, demod=True, upsample=False, blur_kernel=(1, 3, 3, 1)):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, kernel_size, kernel_size))
        self.modulation = nn.Parameter(torch.ones(1, in_ch, 1, 1))
        self.scale, self.demod, self.upsample = 1 / math.sqrt(in_ch * kernel_size ** 2), demod, upsample
        if upsample:
            p = (len(blur_kernel) - 2) - (kernel_size - 1)
            self.blur = Blur(list(blur_kernel), pad=((p + 1) // 2 + 1, p // 2 + 1), upsample_factor=2)

    def effective_weight(self):  # (out, in, k, k)
        w = self.scale * self.weight * self.modulation
        return demodulate(w) if self.demod else w

    def forward(self, x):
        w = self.effective_weight()
        if self.upsample:
            return self.blur(F.conv_transpose2d(x, w.transpose(0, 1), stride=2, padding=0))
        return F.conv2d(x, w, padding=w.shape[-1] // 2)


class RenderConv(FixedModConv):
    """Render-net StyledConv: fixed-style conv -> noise -> fused lrelu (keys weight/modulation/blur/noise/activate)."""

    def __init__(self, in_ch, out_ch, kernel_size, upsample=False):
        super().__init__(in_ch, out_ch, kernel_size, demod=True, upsample=upsample)
        self.noise = NoiseInjection()
        self.activate = FusedLeakyReLU(out_ch)

    def forward(self, x, noise=None):
        return self.activate(self.noise(super().forward(x), noise))


class ToRGB(nn.Module):
    """Official ToRGB variant: 1x1 conv `W * modulation / sqrt(in)` (no demod) + bias, plus upsampled skip."""

    def __init__(self, in_ch, out_ch, blur_kernel=(1, 3, 3, 1)):
        super().__init__()
        self.upsample = Upsample(list(blur_kernel))
        self.conv = FixedModConv(in_ch, out_ch, 1, demod=False)
        self.bias = nn.Parameter(torch.zeros(1, out_ch, 1, 1))

    def forward(self, x, skip=None):
        out = self.conv(x) + self.bias
        return out if skip is None else out + self.upsample(skip)


class PositionEmbedding(nn.Module):
    def __init__(self, size, out_ch):
        super().__init__()
        self.n_freq = int(math.log2(size))
        self.weights = nn.Parameter(torch.randn(out_ch, 2 * (2 * self.n_freq + 1), 1, 1))

    def features(self, h, w, device=None):  # (1, 2(2N+1), h, w)
        y, x = torch.meshgrid(torch.linspace(-1, 1, h, device=device), torch.linspace(-1, 1, w, device=device),
                              indexing="ij")
        xy = torch.stack([x, y])  # channel order [x, y]
        feats = [xy]
        for k in range(self.n_freq):
            feats += [torch.sin(2.0 ** k * xy), torch.cos(2.0 ** k * xy)]
        return torch.cat(feats)[None]

    def forward(self, h, w):
        return F.conv2d(self.features(h, w, self.weights.device), self.weights / math.sqrt(self.weights.shape[1]))


class LocalNet(nn.Module):
    def __init__(self, style_dim, channels, n_layers, depth_layers, coarse_channels, has_depth):
        super().__init__()
        self.depth_layers = depth_layers
        self.linears = nn.ModuleList([LocalLayer(channels, channels, style_dim) for _ in range(n_layers)])
        self.to_feat = ToRGB(channels, coarse_channels)
        if has_depth:
            self.to_depth = ToRGB(channels, 1)

    def forward(self, x, styles):  # x (B, C, Hc, Wc), styles (B, L, D) -> feat (B, Cc, Hc, Wc), depth (B, 1, Hc, Wc)
        depth = None
        for i, layer in enumerate(self.linears):
            x = layer(x, styles[:, i])
            if i == self.depth_layers - 1 and hasattr(self, "to_depth"):
                depth = self.to_depth(x)
        if depth is None:  # background: constant 0 logit
            depth = x.new_zeros(x.shape[0], 1, *x.shape[2:])
        return self.to_feat(x), depth


def fuse(feats, depths, composition_mask=None, transparent=()):
    """feats (B, K, C, H, W), depths (B, K, H, W), composition_mask (B, K) -> fused (B, C, H, W), m (B, K, H, W)."""
    m = torch.softmax(depths, dim=1)
    if composition_mask is not None:
        c = composition_mask.to(m)[:, :, None, None]
        m = m * c / ((m * c).sum(1, keepdim=True) + 1e-8)
    weights = m
    if len(transparent):
        t = torch.zeros(m.shape[1], device=m.device, dtype=m.dtype)
        t[list(transparent)] = 1
        t = t[None, :, None, None]
        opaque = m * (1 - t)
        weights = opaque / (opaque.sum(1, keepdim=True) + 1e-8) + m * t
    return (feats * weights[:, :, None]).sum(1), m


class RenderNet(nn.Module):
    def __init__(self, size, num_classes, coarse_channels, coarse_size, min_feat_size, channel_multiplier,
                 residual_refine=True, channel_max=512):
        super().__init__()
        self.coarse_size, self.min_feat_size, self.residual_refine = coarse_size, min_feat_size, residual_refine
        channels = {r: min(c * (channel_multiplier if r >= 64 else 1), channel_max)
                    for r, c in STYLEGAN2_CHANNELS.items()}
        self.convs, self.to_rgbs, self.to_segs = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        self.noises = nn.Module()
        in_ch, res, j = coarse_channels, min_feat_size, 0
        while res < size:
            if res == coarse_size:
                in_ch += coarse_channels  # concatenate the full-resolution fused map
            out_ch, res = channels[res * 2], res * 2
            self.convs.append(RenderConv(in_ch, out_ch, 3, upsample=True))
            self.convs.append(RenderConv(out_ch, out_ch, 3))
            for _ in range(2):
                self.noises.register_buffer(f"noise_{j}", torch.randn(1, 1, res, res))
                j += 1
            self.to_rgbs.append(ToRGB(out_ch, 3))
            self.to_segs.append(ToRGB(out_ch, num_classes))
            in_ch = out_ch

    def forward(self, fused, coarse_seg, randomize_noise=True):  # fused (B, Cc, Hc, Wc), coarse_seg (B, K, Hc, Wc)
        x = F.adaptive_avg_pool2d(fused, self.min_feat_size)
        rgb = seg = None
        for b in range(len(self.to_rgbs)):
            if x.shape[-1] == self.coarse_size:
                x = torch.cat([x, fused], 1)
            for j in (2 * b, 2 * b + 1):
                x = self.convs[j](x, None if randomize_noise else getattr(self.noises, f"noise_{j}"))
            rgb, seg = self.to_rgbs[b](x, rgb), self.to_segs[b](x, seg)
            if self.residual_refine and x.shape[-1] == self.coarse_size:
                seg = seg + coarse_seg  # final seg = upsampled coarse mask + learned residual
        return rgb, seg


class OfficialSSGGenerator(nn.Module):
    def __init__(self, size, num_classes, style_dim=512, n_mlp=8, local_layers=10, base_layers=2, depth_layers=6,
                 local_channels=64, coarse_channels=512, coarse_size=64, min_feat_size=16, channel_multiplier=2,
                 transparent_classes=(), residual_refine=True, lr_mlp=0.01, channel_max=512):
        """`channel_max` (not an official option; official = 512) caps the render-net widths for tiny test models."""
        super().__init__()
        assert 0 < base_layers < depth_layers <= local_layers, "need 0 < base_layers < depth_layers <= local_layers"
        assert min_feat_size < coarse_size <= size, "need min_feat_size < coarse_size <= size"
        self.size, self.num_classes, self.style_dim = size, num_classes, style_dim
        self.local_layers, self.base_layers, self.depth_layers = local_layers, base_layers, depth_layers
        self.coarse_size, self.transparent_classes = coarse_size, tuple(transparent_classes)
        self.n_latent = base_layers + 2 * num_classes
        self.style = nn.Sequential(PixelNorm(), *[EqualLinear(style_dim, style_dim, lr_mul=lr_mlp,
                                                              activation="fused_lrelu") for _ in range(n_mlp)])
        self.pos_embed = PositionEmbedding(size, local_channels)
        self.local_nets = nn.ModuleList([
            LocalNet(style_dim, local_channels, local_layers, depth_layers, coarse_channels, has_depth=k > 0)
            for k in range(num_classes)])
        self.render_net = RenderNet(size, num_classes, coarse_channels, coarse_size, min_feat_size,
                                    channel_multiplier, residual_refine, channel_max)

    def mapping(self, z):  # z (..., D) -> w (..., D), one z at a time
        return self.style(z.reshape(-1, self.style_dim)).reshape(z.shape)

    @torch.no_grad()
    def mean_latent(self, n_latent):
        z = torch.randn(n_latent, self.style_dim, device=self.pos_embed.weights.device)
        return self.style(z).mean(0, keepdim=True)  # (1, D)

    def expand_latents(self, w_plus):  # (B, base + 2K, D) -> (B, K, L, D)
        assert w_plus.shape[1] == self.n_latent, f"expected {self.n_latent} W+ codes, got {w_plus.shape[1]}"
        parts = []
        for k in range(self.num_classes):
            shape, texture = w_plus[:, self.base_layers + 2 * k], w_plus[:, self.base_layers + 2 * k + 1]
            codes = [texture if i >= self.depth_layers else shape if (k == 0 or i >= self.base_layers)
                     else w_plus[:, i] for i in range(self.local_layers)]
            parts.append(torch.stack(codes, 1))
        return torch.stack(parts, 1)

    def synthesis(self, expanded, randomize_noise=True, composition_mask=None):
        b = expanded.shape[0]
        assert expanded.shape[1:3] == (self.num_classes, self.local_layers), f"bad expanded codes {expanded.shape}"
        pos = self.pos_embed(self.coarse_size, self.coarse_size).expand(b, -1, -1, -1)
        feats, depths = zip(*[net(pos, expanded[:, k]) for k, net in enumerate(self.local_nets)])
        depths = torch.cat(depths, 1)  # (B, K, Hc, Wc)
        fused, m = fuse(torch.stack(feats, 1), depths, composition_mask, self.transparent_classes)
        coarse_seg = 2 * m - 1
        image, seg = self.render_net(fused, coarse_seg, randomize_noise)
        return {"image": image, "seg": seg, "coarse_seg": coarse_seg, "depths": depths}

    def mix_styles(self, styles):
        """Official `mix_styles`: one style (B, D) repeated over every W+ code, or W+ (B, n_latent, D) as given; two
        styles mixed part-wise with Python's `random.randint(0, 2)` drawn for each part (outer loop) and sample
        (inner loop): 0 -> (shape, texture) from (1, 1), 1 -> (1, 2), 2 -> (2, 2); base codes from the first."""
        if len(styles) == 1:
            s = styles[0]
            return s[:, None].repeat(1, self.n_latent, 1) if s.ndim < 3 else s
        assert len(styles) == 2, "official mix_styles takes one or two styles"
        latent = [styles[0][:, None].repeat(1, self.base_layers, 1)]
        for _ in range(self.num_classes):
            first, second = [], []
            for j in range(styles[0].shape[0]):
                inject = random.randint(0, 2)
                if inject == 0:
                    a = b = styles[0][j]
                elif inject == 1:
                    a, b = styles[0][j], styles[1][j]
                else:
                    a = b = styles[1][j]
                first.append(a)
                second.append(b)
            latent += [torch.stack(first)[:, None], torch.stack(second)[:, None]]
        return torch.cat(latent, 1)

    def forward(self, styles, input_is_latent=False, truncation=1.0, truncation_latent=None, randomize_noise=True,
                composition_mask=None):
        """Official calling convention: `styles` is a list of one or two tensors (a single tensor is taken as a
        list of one). z (B, D) is mapped once per image; (B, n_latent, D) code by code (the per-code form)."""
        if torch.is_tensor(styles):
            styles = [styles]
        if not input_is_latent:
            styles = [self.mapping(s) for s in styles]
        if truncation != 1.0:
            assert truncation_latent is not None, "truncation needs truncation_latent (see mean_latent)"
            styles = [truncation_latent + truncation * (s - truncation_latent) for s in styles]
        w_plus = self.mix_styles(styles)
        out = self.synthesis(self.expand_latents(w_plus), randomize_noise, composition_mask)
        out["w_plus"] = w_plus
        return out


@torch.no_grad()
def randomize_parameters_(gen, seed=0):
    """Give every parameter and buffer (except blur/upsample kernels) a non-trivial random value."""
    g = torch.Generator().manual_seed(seed)

    def rnd(t, mean=0.0, std=1.0):
        t.copy_(mean + std * torch.randn(t.shape, generator=g))

    for name, p in list(gen.named_parameters()) + list(gen.named_buffers()):
        leaf = name.split(".")[-1]
        if leaf == "kernel":
            continue
        if name.startswith("style.") and leaf == "weight":
            rnd(p, 0.0, 1.0 / 0.01)  # as the official init (randn / lr_mul): with N(0, 1), w would not depend on z
        elif name.startswith("style.") and leaf == "bias":
            rnd(p)  # multiplied by lr_mul 0.01 at run time
        elif leaf == "modulation" or (".modulation." in name and leaf == "bias"):
            rnd(p, 1.0, 0.1)
        elif leaf == "bias" or name.endswith("noise.weight"):
            rnd(p, 0.0, 0.1)
        else:  # conv / linear weights, pos-embed weights, noise buffers
            rnd(p)
    return gen


def official_args(gen_kwargs):
    """The architecture part of the official training `args` for OfficialSSGGenerator(**gen_kwargs)."""
    k = dict(style_dim=512, n_mlp=8, local_layers=10, base_layers=2, depth_layers=6, local_channels=64,
             coarse_channels=512, coarse_size=64, min_feat_size=16, channel_multiplier=2, transparent_classes=(),
             residual_refine=True, channel_max=512)
    k.update(gen_kwargs)
    return argparse.Namespace(
        size=k["size"], seg_dim=k["num_classes"], latent=k["style_dim"], n_mlp=k["n_mlp"],
        channel_multiplier=k["channel_multiplier"], local_layers=k["local_layers"], base_layers=k["base_layers"],
        depth_layers=k["depth_layers"], local_channel=k["local_channels"], coarse_channel=k["coarse_channels"],
        coarse_size=k["coarse_size"], min_feat_size=k["min_feat_size"], residual_refine=k["residual_refine"],
        detach_texture=False, transparent_dims=list(k["transparent_classes"]),
        mixing=0.3, batch=16, iter=150000, lr=0.002)


def make_official_checkpoint(path, size, num_classes, seed=0, **arch):
    """Build, randomise and `torch.save` an official-layout checkpoint; return the (eval-mode) generator."""
    gen = randomize_parameters_(OfficialSSGGenerator(size, num_classes, **arch), seed).eval()
    g_state = {k: v.clone() for k, v in gen.state_dict().items()}
    d_state = {"convs.0.0.weight": torch.ones(8, 3, 1, 1), "final_linear.1.bias": torch.zeros(1)}

    def optim_state(n):
        group = {"lr": 0.002, "betas": (0.0, 0.99), "eps": 1e-8, "weight_decay": 0, "amsgrad": False,
                 "params": list(range(n))}
        return {"state": {}, "param_groups": [group]}

    args = official_args(dict(size=size, num_classes=num_classes, **arch))
    torch.save({"g": g_state, "d": d_state, "g_ema": gen.state_dict(), "args": args,
                "g_optim": optim_state(len(list(gen.parameters()))), "d_optim": optim_state(len(d_state))}, path)
    return gen
