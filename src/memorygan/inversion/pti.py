"""Pivotal tuning (PTI, Roich et al., ACM TOG 2022): fine-tune a COPY of the generator so the codes found by the
projection (the pivot) render the target exactly; the source generator is never modified.

Per step (Sec. 3.2): L = w_mse ||G'(c) - x||^2 + w_p d(G'(c), x), Adam lr 3e-4, at most `pti_steps` steps, stopping
once the reconstruction is close enough (PTI: LPIPS <= 0.07; here a PSNR and/or a perceptual-distance threshold,
since the scale of a distance depends on its network). Locality regulariser (Sec. 3.3): codes of random
samples (truncation 0.5, as PTI) moved towards the pivot must keep rendering what the source generator renders:
+ w_loc (||G'(c_r) - G(c_r)||^2 + d(G'(c_r), G(c_r))), with c_r = c + alpha (c_s - c) / ||c_s - c||, alpha the
distance from the pivot to a typical sample (PTI uses a fixed alpha = 30 in StyleGAN's W; in the codes' own units
a fixed fraction keeps the meaning across generators). Its seeds (`LOCALITY_SEED` onwards) are disjoint from
the seeds `sample_drift` measures with.
"""
from __future__ import annotations

import copy

import torch

from memorygan.inversion import losses
from memorygan.inversion.projection import InversionOptions
from memorygan.visualize import to_uint8

LOCALITY_SEED = 1_000_000
LOCALITY_FRACTION = 0.5      # c_r lies this fraction of the way from the pivot to the random sample


def _locality_codes(G, pivot: torch.Tensor, step: int, truncation: float, center: torch.Tensor) -> torch.Tensor:
    """Expanded codes (1, K, L, D) between the pivot and a random sample truncated towards `center` (M, D), the
    mean latents (a new sample every step)."""
    with torch.no_grad():
        z = G.sample_z(1, seed=LOCALITY_SEED + step)
        lat = G.map_z(z)["latents"]
        sample = G.expand(center[None] + truncation * (lat - center[None]))
        return pivot + LOCALITY_FRACTION * (sample - pivot)


def pivotal_tuning(G, expanded: torch.Tensor, target: torch.Tensor, opts: InversionOptions, perceptual=None,
                   noise: list[torch.Tensor] | None = None, progress=None, center: torch.Tensor | None = None):
    """-> (tuned copy of G (eval mode, no gradients), history list). expanded (1, K, L, D) the pivot, target
    (1, 3, H, W), center (M, D) the mean latents for the locality samples' truncation (`CodeSpace.latent_mean`;
    default G.w_avg). G itself is left exactly as it was (its parameters and buffers are never written)."""
    if expanded.shape[0] != 1 or target.shape[0] != 1:
        raise ValueError("pivotal tuning tunes one generator per image: pass one image and its codes")
    device = G.device
    if center is None:
        center = G.w_avg.expand(G.num_latents, -1) if G.num_avg_codes == 1 else G.w_avg
    tuned = copy.deepcopy(G).train(False)
    tuned.requires_grad_(True)
    params = [p for p in tuned.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=opts.pti_lr)
    pivot = expanded.detach().to(device)
    target = target.to(device)
    target_u8 = to_uint8(target)
    history = []
    stopped_at = None
    for step in range(opts.pti_steps):
        out = tuned.synthesize(pivot, noise=noise, noise_mode="const")
        mse = losses.pixel_mse(out["image"], target)
        dist = perceptual(out["image"], target) if perceptual is not None else None
        # stopping rule on the current reconstruction, before this step's update (as PTI)
        psnr = losses.psnr_uint8(to_uint8(out["image"]), target_u8)
        if ((opts.pti_stop_psnr is not None and psnr >= opts.pti_stop_psnr)
                or (opts.pti_stop_distance is not None and dist is not None
                    and float(dist.detach()) <= opts.pti_stop_distance)):
            stopped_at = step
            break
        loss = opts.pti_mse_weight * mse
        if dist is not None and opts.pti_perceptual_weight > 0:
            loss = loss + opts.pti_perceptual_weight * dist
        record = {"step": step, "mse": float(mse.detach()), "psnr": psnr}
        if dist is not None:
            record["perceptual"] = float(dist.detach())
        if opts.pti_locality_weight > 0:
            codes_r = _locality_codes(G, pivot, step, opts.pti_locality_truncation, center)
            with torch.no_grad():
                ref = G.synthesize(codes_r, noise_mode="const")["image"]
            new = tuned.synthesize(codes_r, noise_mode="const")["image"]
            loc = losses.pixel_mse(new, ref)
            if perceptual is not None:
                loc = loc + perceptual(new, ref)
            loss = loss + opts.pti_locality_weight * loc
            record["locality"] = float(loc.detach())
        opt.zero_grad(set_to_none=True)
        loss.sum().backward()
        opt.step()
        if step % 10 == 0 or step == opts.pti_steps - 1:
            history.append(record)
        if progress is not None:
            progress.update(1)
            progress.set_postfix({"psnr": f"{psnr:.2f}"}, refresh=False)
    tuned.requires_grad_(False)
    history.append({"stopped_at": stopped_at if stopped_at is not None else opts.pti_steps})
    return tuned.eval(), history


@torch.no_grad()
def sample_drift(G, tuned, seeds, truncation: float = 1.0) -> dict:
    """How much tuning changed the generator elsewhere: samples of `seeds` (unrelated to any inverted image)
    from both generators, compared in 8-bit: mean PSNR (dB) and mean MSE on the [-1, 1] scale."""
    psnrs, mses = [], []
    for s in seeds:
        z = G.sample_z(1, seed=int(s))
        a = G(z, truncation=truncation).image
        b = tuned(z, truncation=truncation).image
        psnrs.append(losses.psnr_uint8(to_uint8(a), to_uint8(b)))
        mses.append(float(losses.pixel_mse(a, b)))
    finite = [p for p in psnrs if p != float("inf")]
    return {"seeds": [int(s) for s in seeds], "psnr": (sum(finite) / len(finite)) if finite else float("inf"),
            "mse": sum(mses) / len(mses)}
