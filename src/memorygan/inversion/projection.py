"""Projection of images into a generator's codes by optimisation (DESIGN 6, Inversion).

The codes of one level are optimised from the mean codes, in units of their per-dimension spread
(`CodeSpace`: codes = mean + std * u, u starts at 0), so one learning rate fits every level and generator:

    expanded   (B, K, L, D)   one code per part and local layer (the richest space; what edits act on)
    latents    MemoryGAN (B, 1+K, D) per-part latents; SSG W+ (B, base+2K, D)  ("wplus" names the same level:
               SemanticStyleGAN's invert.py optimises W+)

Objective per image (summed over the batch, so images do not interact):

    w_mse MSE(G(c), x) + w_p d(G(c), x) + w_seg hinge(seg(c), mask) + w_code mean(u^2) [+ w_noise R(noise)]

with d the perceptual distance (`inversion.perceptual`), the mask term (a hinge on the segmentation's margin for
the mask's class, `losses.seg_margin`) only where a mask is given, and the render noise optionally optimised too
(StyleGAN2 projector regulariser R, maps renormalised after each step).
Adam with the StyleGAN2 projector's learning-rate ramp (SemanticStyleGAN invert.py: 400 steps, lr 0.1).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from memorygan.errors import ConfigError
from memorygan.inversion import losses

LEVELS = ("expanded", "latents", "wplus")


@dataclass
class InversionOptions:
    level: str = "expanded"
    steps: int = 400
    lr: float = 0.1
    lr_rampup: float = 0.05
    lr_rampdown: float = 0.25
    mse_weight: float = 1.0
    perceptual_weight: float = 0.1
    seg_weight: float = 1.0           # applies where a mask is given (0: masks only measured, never optimised)
    seg_margin: float = 0.1           # the mask loss is zero where seg agrees with the mask by this margin
    code_weight: float = 1e-4
    optimize_noise: bool = False
    noise_weight: float = 1e3
    stats_samples: int = 2000         # samples behind the per-dimension spread of the codes
    # pivotal tuning (Roich et al. 2022): fine-tune a copy of the generator around the found codes
    pti_steps: int = 0
    pti_lr: float = 3e-4
    pti_mse_weight: float = 1.0
    pti_perceptual_weight: float = 1.0
    pti_stop_psnr: float | None = 45.0        # stop early once the reconstruction reaches this PSNR (8-bit) ...
    pti_stop_distance: float | None = None    # ... or this perceptual distance (PTI: LPIPS 0.07)
    pti_locality_weight: float = 0.1          # PTI's locality regulariser (0: off)
    pti_locality_truncation: float = 0.5
    # start from an encoder's codes instead of the mean codes (`memorygan invert --encoder E`; issue 28)
    encoder: str | None = None                # the encoder folder (recorded; the caller loads it)
    encoder_passes: int | None = None         # ReStyle passes (None: the encoder's own setting)

    def check(self) -> "InversionOptions":
        if self.level not in LEVELS:
            raise ConfigError(f"--level must be one of {', '.join(LEVELS)}, got {self.level!r}")
        if self.steps < 0 or self.pti_steps < 0:
            raise ConfigError(f"--steps and --pti-steps must be >= 0, got {self.steps} and {self.pti_steps}")
        if self.steps == 0 and self.pti_steps == 0 and self.encoder is None:
            raise ConfigError("nothing to do: --steps and --pti-steps are both 0 (without --encoder)")
        if self.encoder_passes is not None and self.encoder_passes < 1:
            raise ConfigError(f"--passes must be >= 1, got {self.encoder_passes}")
        for name in ("lr", "pti_lr"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"--{name.replace('_', '-')} must be > 0, got {getattr(self, name)}")
        for name in ("mse_weight", "perceptual_weight", "seg_weight", "seg_margin", "code_weight", "noise_weight",
                     "pti_mse_weight", "pti_perceptual_weight", "pti_locality_weight"):
            if getattr(self, name) < 0:
                raise ConfigError(f"--{name.replace('_', '-')} must be >= 0, got {getattr(self, name)}")
        if self.stats_samples < 2:
            raise ConfigError(f"stats_samples must be >= 2, got {self.stats_samples}")
        return self

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def code_level(self) -> str:
        """The level as the codes files name it (wplus is the latents level)."""
        return "latents" if self.level in ("latents", "wplus") else "expanded"


# ---------------------------------------------------------------------------------------------------- code spaces

class CodeSpace:
    """Codes of one level as mean + std * u. mean, std: (M, D) latents or (K, L, D) expanded codes, on G's device.

    The mean is the generator's truncation centre `w_avg` (MemoryGAN: one per part and the base; SSG: one w for
    every W+ code) when it has been estimated, else the mean of `n` mapped samples (G's buffers are never
    changed, so its fingerprint stays the same); std is the per-dimension spread of those samples."""

    def __init__(self, G, level: str, n: int = 2000, seed: int = 0):
        self.level = "latents" if level in ("latents", "wplus") else "expanded"
        with torch.no_grad():
            g = torch.Generator().manual_seed(seed)
            lat = []
            for start in range(0, n, 500):
                lat.append(G.map_z(G.sample_z(min(500, n - start), generator=g))["latents"])
            lat = torch.cat(lat)                                               # (n, M, D)
            if G.num_avg_codes > 1:
                mean = lat.mean(0)
                std = lat.std(0)
            else:  # SSG: one mean/spread shared by every W+ code (the codes of a sample share one w)
                mean = lat.mean(dim=(0, 1)).expand(lat.shape[1], -1)
                std = lat.std(dim=(0, 1)).expand(lat.shape[1], -1)
            if int(G.w_avg_count) > 0:
                mean = G.w_avg.expand(lat.shape[1], -1) if G.num_avg_codes == 1 else G.w_avg
            std = std.clamp_min(1e-6 * float(std.mean().clamp_min(1e-12)))
            self.latent_mean = mean.detach().clone().float()                  # (M, D) at the latents level
            if self.level == "expanded":
                mean, std = G.expand(mean[None])[0], G.expand(std[None])[0]  # (K, L, D): expansion copies codes
        self.mean = mean.detach().clone().float()
        self.std = std.detach().clone().float()

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.mean.shape)

    def codes(self, u: torch.Tensor) -> torch.Tensor:
        """u (B, *shape) -> codes (B, *shape)."""
        return self.mean[None] + self.std[None] * u

    def units(self, codes: torch.Tensor) -> torch.Tensor:
        """codes (B, *shape) -> u."""
        return (codes - self.mean[None]) / self.std[None]

    def expanded(self, G, codes: torch.Tensor) -> torch.Tensor:
        """Codes of this level -> expanded codes (B, K, L, D)."""
        return codes if self.level == "expanded" else G.expand(codes)


def render(G, space: CodeSpace, codes: torch.Tensor, noise: list[torch.Tensor] | None):
    """(image (B, 3, H, W), seg (B, K, H, W)) of codes at the space's level; noise None: G's constant maps."""
    out = G.synthesize(space.expanded(G, codes), noise=noise, noise_mode="const")
    return out["image"], out["seg"]


# ---------------------------------------------------------------------------------------------------- projection

@dataclass
class Projection:
    codes: torch.Tensor                     # (B, *space.shape) at the space's level
    expanded: torch.Tensor                  # (B, K, L, D)
    noise: list[torch.Tensor] | None        # optimised maps (B, 1, H, W), or None (G's constant maps)
    image: torch.Tensor                     # (B, 3, H, W) final reconstruction
    seg: torch.Tensor                       # (B, K, H, W)
    history: list[dict]                     # per logged step: mean of each loss term over the batch


def objective(image, seg, target, ids, has_mask, u, noise, perceptual, opts: InversionOptions) -> dict:
    """The loss terms per image (B,) and their weighted sum `total` (B,)."""
    terms = {"mse": losses.pixel_mse(image, target)}
    total = opts.mse_weight * terms["mse"]
    if perceptual is not None and opts.perceptual_weight > 0:
        terms["perceptual"] = perceptual(image, target)
        total = total + opts.perceptual_weight * terms["perceptual"]
    if ids is not None and opts.seg_weight > 0:
        terms["seg"] = losses.seg_margin(seg, ids, opts.seg_margin) * has_mask
        total = total + opts.seg_weight * terms["seg"]
    if opts.code_weight > 0:
        terms["code"] = losses.code_prior(u)
        total = total + opts.code_weight * terms["code"]
    if noise is not None and opts.noise_weight > 0:
        terms["noise"] = losses.noise_regularizer(noise)
        total = total + opts.noise_weight * terms["noise"]
    terms["total"] = total
    return terms


def project(G, target: torch.Tensor, opts: InversionOptions, perceptual=None, ids: torch.Tensor | None = None,
            has_mask: torch.Tensor | None = None, space: CodeSpace | None = None, progress=None,
            init_units: torch.Tensor | None = None, init_noise: list[torch.Tensor] | None = None) -> Projection:
    """Optimise codes so G renders `target` (B, 3, H, W) in [-1, 1].

    ids: masks (B, H, W) class ids (rows without a mask: anything, with has_mask (B,) 0 there); progress: an
    optional tqdm bar advanced per step; init_units (B, *space.shape): start there instead of the mean codes;
    init_noise: noise maps (B, 1, H, W) to start from (optimised with opts.optimize_noise, otherwise kept as
    given). G is not changed (its parameters get no gradients)."""
    opts.check()
    device = G.device
    target = target.to(device)
    b = target.shape[0]
    if space is None:
        space = CodeSpace(G, opts.level, opts.stats_samples)
    if ids is not None:
        ids = ids.to(device)
        has_mask = (torch.ones(b, device=device) if has_mask is None else has_mask.to(device).float())
    u = (torch.zeros(b, *space.shape, device=device) if init_units is None
         else init_units.detach().clone().to(device))
    u.requires_grad_(True)
    params = [u]
    noise = None
    if init_noise is not None:
        noise = [n.detach().to(device).expand(b, -1, -1, -1).clone() for n in G.render_net.check_noise(init_noise, b)]
    if opts.optimize_noise:   # start from G's constant maps (what sampling uses), one copy per image
        if noise is None:
            noise = [getattr(G.render_net, f"noise_{j}").detach().expand(b, -1, -1, -1).clone()
                     for j in range(len(G.noise_shapes()))]
        for n in noise:
            n.requires_grad_(True)
        params += noise
    opt = torch.optim.Adam(params, lr=opts.lr, betas=(0.9, 0.999))
    history = []
    grads_before = [p.requires_grad for p in G.parameters()]
    G.requires_grad_(False)
    try:
        for step in range(opts.steps):
            for group in opt.param_groups:
                group["lr"] = losses.ramped_lr(step / opts.steps, opts.lr, opts.lr_rampdown, opts.lr_rampup)
            image, seg = render(G, space, space.codes(u), noise)
            terms = objective(image, seg, target, ids, has_mask, u, noise if opts.optimize_noise else None,
                              perceptual, opts)
            opt.zero_grad(set_to_none=True)
            terms["total"].sum().backward()
            opt.step()
            if opts.optimize_noise:
                losses.normalize_noise_(noise)
            if step % 10 == 0 or step == opts.steps - 1:
                history.append({"step": step, **{k: float(v.detach().mean()) for k, v in terms.items()}})
            if progress is not None:
                progress.update(1)
                progress.set_postfix({k: f"{float(v.detach().mean()):.4f}" for k, v in terms.items()
                                      if k in ("mse", "perceptual", "seg")}, refresh=False)
    finally:
        for p, g in zip(G.parameters(), grads_before):
            p.requires_grad_(g)
    with torch.no_grad():
        codes = space.codes(u.detach())
        image, seg = render(G, space, codes, noise)
        expanded = space.expanded(G, codes)
    return Projection(codes, expanded, None if noise is None else [n.detach() for n in noise], image, seg, history)
