"""Speed against the official SemanticStyleGAN code, reproducible by anyone with a checkout of it (DESIGN 9).

    python benchmarks/bench_vs_official.py --official PATH/TO/SemanticStyleGAN [--device cpu|cuda] [--ks 13,100]

The official code is never vendored or committed: the user points at their checkout. Its CUDA extensions
(models/op: fused_bias_act, upfirdn2d) are replaced at run time by their own pure-PyTorch fallbacks (the functions
the official code already uses on the CPU), so it runs anywhere. For each K the same architecture is built in both
(the official SemanticGenerator with seeded random weights, copied into memorygan with the checkpoint importer), the
outputs are checked to agree, and then

  - inference at `--size` (default 256) px, batch `--batch`, fp32 and bf16 autocast: seconds per image and minor page
    faults per forward of official SSG, memorygan's SSG and memorygan's MemoryGAN (same K, its own random weights);
  - a training step at the small configuration of DESIGN 9 (64 px, batch 8, R1 on image and mask every step, the
    official 512-wide discriminator), the same loss sequence for both implementations' networks;

each implementation alone in a fresh process (how users run it) and interleaved in one process. Prints one JSON
object with the times, the page faults and the ratios official / memorygan (> 1: memorygan is faster).
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import math
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
import types
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.nn.functional as F

IMPLS = ("official", "ssg", "memorygan")


# ----------------------------------------------------------------------------------------------- the official code
def load_official(path: str):
    """Import the official `models` package from a checkout with its CUDA ops replaced by the native fallbacks."""
    root = Path(path)
    if not (root / "models" / "semantic_stylegan.py").is_file():
        raise SystemExit(f"--official {path}: not a SemanticStyleGAN checkout (no models/semantic_stylegan.py)")
    import torch.utils.cpp_extension as cpp

    real_load = cpp.load
    cpp.load = lambda *a, **k: types.SimpleNamespace()        # the extensions are never compiled
    sys.path.insert(0, str(root))
    try:
        op = importlib.import_module("models.op")
        upf = importlib.import_module("models.op.upfirdn2d")
        act = importlib.import_module("models.op.fused_act")
        gradfix = importlib.import_module("models.op.conv2d_gradfix")
        utils = importlib.import_module("models.utils")
        ssg = importlib.import_module("models.semantic_stylegan")
    finally:
        cpp.load = real_load
    native_upf = upf.upfirdn2d_native

    def upfirdn2d(x, kernel, up=1, down=1, pad=(0, 0)):
        up = (up, up) if isinstance(up, int) else tuple(up)
        down = (down, down) if isinstance(down, int) else tuple(down)
        pad = (pad[0], pad[1], pad[0], pad[1]) if len(pad) == 2 else tuple(pad)
        return native_upf(x, kernel.to(x.dtype), *up, *down, *pad)

    def fused_leaky_relu(x, bias=None, negative_slope=0.2, scale=2 ** 0.5):
        if bias is not None:
            x = x + bias.to(x.dtype).view(1, bias.shape[0], *[1] * (x.ndim - 2))
        return F.leaky_relu(x, negative_slope=0.2) * scale

    for mod in (op, upf, utils):
        mod.upfirdn2d = upfirdn2d
    for mod in (op, act, utils):
        mod.fused_leaky_relu = fused_leaky_relu
    gradfix.enabled = False
    return ssg


def official_args(size, k, latent=512, local_channel=64, coarse_channel=512, coarse_size=64, min_feat_size=16):
    return argparse.Namespace(size=size, latent=latent, n_mlp=8, channel_multiplier=2, seg_dim=k, local_layers=10,
                              local_channel=local_channel, base_layers=2, depth_layers=6, coarse_size=coarse_size,
                              coarse_channel=coarse_channel, min_feat_size=min_feat_size, residual_refine=True,
                              detach_texture=False, transparent_dims=[])


def build_official(ssg, args, seed=0):
    torch.manual_seed(seed)
    with contextlib.redirect_stdout(sys.stderr):        # it prints its latent sizes; stdout is this script's JSON
        G = ssg.SemanticGenerator(args.size, args.latent, args.n_mlp, channel_multiplier=args.channel_multiplier,
                                  seg_dim=args.seg_dim, local_layers=args.local_layers,
                                  local_channel=args.local_channel, base_layers=args.base_layers,
                                  depth_layers=args.depth_layers, coarse_size=args.coarse_size,
                                  coarse_channel=args.coarse_channel, min_feat_size=args.min_feat_size,
                                  residual_refine=True, detach_texture=False, transparent_dims=())
    with torch.no_grad():                 # non-trivial modulation / biases / noise weights, as after training
        g = torch.Generator().manual_seed(seed + 1)
        for name, p in G.named_parameters():
            if name.endswith("noise.weight") or (name.endswith("bias") and "modulation" not in name):
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
    return G.eval()


def import_copy(G_official, args):
    """memorygan's SSG with the official weights (through the checkpoint importer)."""
    from memorygan.interop.ssg_official import load_official_generator

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "official.pt"
        torch.save({"g_ema": G_official.state_dict(), "args": args}, path)
        G, _ = load_official_generator(path)
    return G.eval()


def memorygan_like(args):
    from memorygan.config import generator_config
    from memorygan.models import build_generator

    torch.manual_seed(0)
    cfg = generator_config("memorygan-256", resolution=args.size, num_classes=args.seg_dim, class_names=None,
                           transparent_classes=[], latent_dim=args.latent, local_channels=args.local_channel,
                           coarse_channels=args.coarse_channel, coarse_size=args.coarse_size,
                           min_feat_size=args.min_feat_size)
    return build_generator(cfg).eval()


# ----------------------------------------------------------------------------------------------- inference
def forward_fn(impl, G, batch, device, bf16):
    z = torch.randn(batch, G.style_dim if impl == "official" else G.config.latent_dim,
                    generator=torch.Generator().manual_seed(0)).to(device)
    if impl == "memorygan":
        z = G.sample_z(batch, seed=0).to(device)
    ctx = (lambda: torch.autocast(device.split(":")[0], dtype=torch.bfloat16)) if bf16 else nullcontext

    def run():
        with torch.no_grad(), ctx():
            if impl == "official":
                G([z], randomize_noise=False)
            else:
                G(z, noise_mode="const")
        if device.startswith("cuda"):
            torch.cuda.synchronize()
    return run


def time_and_faults(fn, reps, warmup=1):
    from memorygan.allocator import minor_faults

    for _ in range(warmup):
        fn()
    times, faults = [], []
    for _ in range(reps):
        f0, t0 = minor_faults(), time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        faults.append(minor_faults() - f0)
    return statistics.median(times), int(statistics.median(faults))


def build(impl, ssg_mod, args, device):
    off = build_official(ssg_mod, args)
    if impl == "official":
        return off.to(device)
    if impl == "ssg":
        return import_copy(off, args).to(device)
    return memorygan_like(args).to(device)


@torch.no_grad()
def agreement(ssg_mod, args, device) -> dict:
    """max |official - memorygan| of image and seg from the same one-z-per-image input (fp32), without autograd:
    the path that is timed (on the CPU memorygan's render convolutions run by Winograd there)."""
    off = build_official(ssg_mod, args).to(device)
    ours = import_copy(off.cpu(), args).to(device)
    off = off.to(device)
    z = torch.randn(2, args.latent, generator=torch.Generator().manual_seed(5)).to(device)
    with torch.no_grad():
        rgb, seg = off([z], randomize_noise=False)
        out = ours(z, noise_mode="const")
    return {"image": float((rgb - out.image).abs().max()), "seg": float((seg - out.seg).abs().max())}


# ----------------------------------------------------------------------------------------------- training step
def train_step_fn(impl, ssg_mod, device, batch=8, k=13):
    """D main + R1 (image and mask) + G main (adversarial + mask loss) at DESIGN 9's small configuration."""
    args = official_args(64, k, latent=128, local_channel=32, coarse_channel=64, coarse_size=16, min_feat_size=8)
    if impl == "official":
        G = build_official(ssg_mod, args).train().to(device)
        torch.manual_seed(1)
        D = ssg_mod.DualBranchDiscriminator(64, 64, 3, k, channel_multiplier=2).to(device)
    else:
        from memorygan.config import DiscriminatorConfig
        from memorygan.models import build_discriminator
        G = (import_copy(build_official(ssg_mod, args), args) if impl == "ssg" else memorygan_like(args)).train()
        G = G.to(device).requires_grad_(True)
        torch.manual_seed(1)
        D = build_discriminator(DiscriminatorConfig(resolution=64, num_classes=k)).to(device)
    g_opt = torch.optim.Adam(G.parameters(), lr=2e-3, betas=(0.0, 0.99))
    d_opt = torch.optim.Adam(D.parameters(), lr=2e-3, betas=(0.0, 0.99))
    gen = torch.Generator().manual_seed(3)
    real = (torch.rand(batch, 3, 64, 64, generator=gen) * 2 - 1).to(device)
    ids = torch.randint(0, k, (batch, 64, 64), generator=gen)
    mask = (F.one_hot(ids, k).permute(0, 3, 1, 2).float() * 2 - 1).to(device)

    def generate():
        if impl == "official":
            z = torch.randn(batch, 128, device=device)
            rgb, seg, coarse, _, _ = G([z], return_all=True)
            return rgb, seg, coarse
        out = G(G.sample_z(batch).to(device))
        return out.image, out.seg, out.coarse_seg

    def step():
        G.requires_grad_(False)
        D.requires_grad_(True)
        with torch.no_grad():
            img, seg, _ = generate()
        loss = F.softplus(D(img, seg)).mean() + F.softplus(-D(real, mask)).mean()
        d_opt.zero_grad(set_to_none=True)
        loss.backward()
        d_opt.step()
        r_img, r_mask = real.detach().requires_grad_(True), mask.detach().requires_grad_(True)
        pred = D(r_img, r_mask)
        gi, gm = torch.autograd.grad(pred.sum(), (r_img, r_mask), create_graph=True)
        r1 = 5 * gi.pow(2).flatten(1).sum(1).mean() + 500 * gm.pow(2).flatten(1).sum(1).mean()
        d_opt.zero_grad(set_to_none=True)
        r1.backward()
        d_opt.step()
        G.requires_grad_(True)
        D.requires_grad_(False)
        img, seg, coarse = generate()
        loss = F.softplus(-D(img, seg)).mean() + 100 * F.mse_loss(coarse, F.adaptive_avg_pool2d(seg, coarse.shape[-1]))
        g_opt.zero_grad(set_to_none=True)
        loss.backward()
        g_opt.step()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
    return step


# ----------------------------------------------------------------------------------------------- modes
def worker(spec: str, a) -> dict:
    """One measurement in this (fresh) process: 'infer:IMPL:K:PREC' or 'train:IMPL'."""
    from memorygan.allocator import tune_allocator

    if not a.default_malloc:
        tune_allocator()
    ssg_mod = load_official(a.official)
    parts = spec.split(":")
    if parts[0] == "train":
        t, f = time_and_faults(train_step_fn(parts[1], ssg_mod, a.device), a.train_reps)
        return {"seconds_per_step": t, "faults_per_step": f, "threads": torch.get_num_threads()}
    impl, k, prec = parts[1], int(parts[2]), parts[3]
    args = official_args(a.size, k)
    G = build(impl, ssg_mod, args, a.device)
    t, f = time_and_faults(forward_fn(impl, G, a.batch, a.device, prec == "bf16"), a.reps)
    return {"seconds_per_image": t / a.batch, "faults_per_forward": f, "threads": torch.get_num_threads()}


def alone(specs, a) -> dict:
    out = {}
    for spec in specs:
        cmd = [sys.executable, __file__, "--official", a.official, "--device", a.device, "--size", str(a.size),
               "--batch", str(a.batch), "--reps", str(a.reps), "--train-reps", str(a.train_reps), "--worker", spec]
        if a.default_malloc:
            cmd.append("--default-malloc")
        if a.threads:               # before 2026-11-30 this was not passed on: "alone" ran at torch's default
            cmd += ["--threads", str(a.threads)]
        res = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ))
        if res.returncode:
            raise SystemExit(f"worker {spec} failed:\n{res.stderr[-3000:]}")
        out[spec] = json.loads(res.stdout.strip().splitlines()[-1])
    return out


def interleaved(specs, a) -> dict:
    """All inference specs in this process, round-robin over the repeats (training steps likewise)."""
    from memorygan.allocator import minor_faults, tune_allocator

    if not a.default_malloc:
        tune_allocator()
    ssg_mod = load_official(a.official)
    fns = {}
    for spec in specs:
        p = spec.split(":")
        if p[0] == "train":
            fns[spec] = (train_step_fn(p[1], ssg_mod, a.device), 1, a.train_reps)
        else:
            G = build(p[1], ssg_mod, official_args(a.size, int(p[2])), a.device)
            fns[spec] = (forward_fn(p[1], G, a.batch, a.device, p[3] == "bf16"), a.batch, a.reps)
    times = {s: [] for s in fns}
    faults = {s: [] for s in fns}
    for fn, _, _ in fns.values():
        fn()
    for r in range(max(v[2] for v in fns.values())):
        order = list(fns)
        random.Random(r).shuffle(order)
        for s in order:
            fn, per, reps = fns[s]
            if r >= reps:
                continue
            f0, t0 = minor_faults(), time.perf_counter()
            fn()
            times[s].append((time.perf_counter() - t0) / per)
            faults[s].append(minor_faults() - f0)
    key = lambda s: "seconds_per_step" if s.startswith("train") else "seconds_per_image"  # noqa: E731
    fkey = lambda s: "faults_per_step" if s.startswith("train") else "faults_per_forward"  # noqa: E731
    return {s: {key(s): statistics.median(times[s]), fkey(s): int(statistics.median(faults[s]))} for s in fns}


def ratios(results: dict, ks, precs) -> dict:
    out = {}
    for k in ks:
        for prec in precs:
            t = {impl: results.get(f"infer:{impl}:{k}:{prec}", {}).get("seconds_per_image") for impl in IMPLS}
            if t["official"] and t["ssg"] and t["memorygan"]:
                out[f"K{k}-{prec}"] = {"official/ssg": t["official"] / t["ssg"],
                                       "official/memorygan": t["official"] / t["memorygan"]}
    tr = {impl: results.get(f"train:{impl}", {}).get("seconds_per_step") for impl in IMPLS}
    if all(tr.values()):
        out["train-step"] = {"official/ssg": tr["official"] / tr["ssg"],
                             "official/memorygan": tr["official"] / tr["memorygan"]}
    mg = {k: results.get(f"infer:memorygan:{k}:fp32", {}).get("seconds_per_image") for k in ks}
    if len(ks) > 1 and all(mg.values()):
        out["memorygan K/K_min cost"] = {f"K{k}": mg[k] / mg[min(ks)] for k in ks}
    return {k: {kk: round(vv, 3) for kk, vv in v.items()} for k, v in out.items()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--official", required=True, help="a checkout of the official SemanticStyleGAN code")
    ap.add_argument("--device", default="auto", help="cpu, cuda, cuda:N, auto (default: the GPU when there is one)")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--ks", default="13,100")
    ap.add_argument("--precisions", default="fp32,bf16")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--train-reps", type=int, default=3)
    ap.add_argument("--modes", default="alone,interleaved")
    ap.add_argument("--no-train", action="store_true", help="inference only")
    ap.add_argument("--threads", type=int)
    ap.add_argument("--default-malloc", action="store_true", help="without memorygan.allocator's tuning")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    from memorygan.devices import resolve_device
    a.device = resolve_device(a.device, announce=not a.worker)
    if a.threads:
        torch.set_num_threads(a.threads)
    if a.worker:
        print(json.dumps(worker(a.worker, a)))
        return 0
    ks = [int(k) for k in a.ks.split(",")]
    precs = a.precisions.split(",")
    specs = [f"infer:{impl}:{k}:{p}" for k in ks for p in precs for impl in IMPLS]
    if not a.no_train:
        specs += [f"train:{impl}" for impl in IMPLS]
    report = {"benchmark": "memorygan vs official SemanticStyleGAN", "device": a.device, "torch": torch.__version__,
              "threads": torch.get_num_threads(), "machine": platform.machine(), "size": a.size, "batch": a.batch,
              "allocator_tuned": not a.default_malloc, "official": str(Path(a.official).resolve())}
    ssg_mod = load_official(a.official)
    report["agreement_max_abs_diff"] = {f"K{k}": agreement(ssg_mod, official_args(a.size, k), a.device) for k in ks}
    for mode in a.modes.split(","):
        res = alone(specs, a) if mode == "alone" else interleaved(specs, a)
        report[mode] = {"results": res, "ratios": ratios(res, ks, precs)}
    print(json.dumps(report, indent=2))
    return 0 if all(math.isfinite(v["image"]) for v in report["agreement_max_abs_diff"].values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
