"""Training an encoder for one generator (`memorygan encoder train`), resumable.

Every step draws `batch` samples of the generator (seeded by the step, so a resumed run draws the same ones) whose
codes are known, and, with a dataset, `real_batch` real images with their masks:

    samples:  code_weight * mean (u - u_true)^2            (pSp trained on real images only; samples give the
              + image losses                                 codes' answer, Tov et al.'s e4e uses them the same way)
    real:     image losses
    image losses = mse_weight * MSE(G(E(x)), x) + perceptual_weight * d(G(E(x)), x) + seg_weight * hinge(seg, mask)

with d the perceptual distance of `memorygan invert` and the mask hinge of `inversion.losses.seg_margin` (a sample's
mask is its own segmentation). Regularisers (options): `prior_weight` * mean(u^2) pulls the codes towards the mean;
`delta_weight` (e4e, SSG only) pulls every W+ code towards the image's mean W+ code, since a sample's W+ codes are
one w (e4e's delta regularisation, Tov et al. 2021, Eq. 4). With `passes` > 1 each step runs that many ReStyle
passes and the losses are averaged over them.

The folder OUT holds the encoder (encoder.safetensors, encoder.json), the optimiser state
(training.safetensors) and the log (log.jsonl: losses, and known-answer PSNR / mIoU every `eval_every` steps);
every checkpoint replaces the whole folder atomically, so an interruption loses at most the steps since the last
one and never the previous checkpoint. Running the same command again continues; more --steps extends the run.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from memorygan.encoder.model import META, Encoder, build_encoder, encode, load_encoder, render
from memorygan.errors import CheckpointError, ConfigError

STATE = "training.safetensors"
LOG = "log.jsonl"
EVAL_SEED = 1_000_000          # known-answer samples for the log: seeds EVAL_SEED.. (never drawn by training)
TRAIN_SEED = 2_000_000         # step s draws seed TRAIN_SEED + seed * 1e6 + s


@dataclass
class EncoderTrainOptions:
    level: str = "latents"
    steps: int = 3000
    batch: int = 8
    real_batch: int = 4
    lr: float = 5e-4
    code_weight: float = 1.0
    mse_weight: float = 1.0
    perceptual_weight: float = 0.5
    seg_weight: float = 1.0
    seg_margin: float = 0.1
    prior_weight: float = 0.0
    delta_weight: float = 0.0
    passes: int = 1
    truncation: float = 1.0
    seed: int = 0
    checkpoint_every: int = 250
    eval_every: int = 250
    eval_samples: int = 16

    def check(self) -> "EncoderTrainOptions":
        for name in ("steps", "batch", "passes", "checkpoint_every", "eval_every", "eval_samples"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if self.real_batch < 0:
            raise ConfigError(f"--real-batch must be >= 0, got {self.real_batch}")
        if not self.lr > 0:
            raise ConfigError(f"--lr must be > 0, got {self.lr}")
        for name in ("code_weight", "mse_weight", "perceptual_weight", "seg_weight", "seg_margin", "prior_weight",
                     "delta_weight"):
            v = getattr(self, name)
            if not (v >= 0 and math.isfinite(v)):
                raise ConfigError(f"--{name.replace('_', '-')} must be a finite number >= 0, got {v}")
        if not 0 < self.truncation <= 1:
            raise ConfigError(f"--truncation must be in (0, 1], got {self.truncation}")
        return self

    def to_dict(self) -> dict:
        return asdict(self)


# ---------------------------------------------------------------------------------------------------- losses

def image_losses(image, seg, target, ids, perceptual, opts: EncoderTrainOptions) -> dict:
    """Per-term means over the batch of the reconstruction losses."""
    from memorygan.inversion import losses

    terms = {"mse": losses.pixel_mse(image, target).mean()}
    if perceptual is not None and opts.perceptual_weight > 0:
        terms["perceptual"] = perceptual(image, target).mean()
    if ids is not None and opts.seg_weight > 0:
        terms["seg"] = losses.seg_margin(seg, ids, opts.seg_margin).mean()
    return terms


def delta_penalty(E: Encoder, u: torch.Tensor) -> torch.Tensor:
    """e4e's delta regulariser for SSG: mean squared distance of every W+ code to the image's mean W+ code (units)."""
    codes = E.codes(u)
    return ((codes - codes.mean(1, keepdim=True)) / E.std[None]).pow(2).mean()


def _weighted(terms: dict, opts: EncoderTrainOptions) -> torch.Tensor:
    w = {"code": opts.code_weight, "mse": opts.mse_weight, "perceptual": opts.perceptual_weight,
         "seg": opts.seg_weight, "prior": opts.prior_weight, "delta": opts.delta_weight}
    return sum(w[k] * v for k, v in terms.items())


@torch.no_grad()
def draw_samples(G, level: str, n: int, seed: int, truncation: float = 1.0) -> dict:
    """n samples of G (seeded): image, ids (argmax of its segmentation), codes at `level`."""
    z = G.sample_z(n, seed=seed).to(G.device)
    m = G.map_z(z)
    if truncation != 1:
        if level != "latents":
            raise ConfigError("--truncation < 1 needs --level latents (truncated latents have no query codes)")
        latents = codes = G.truncate(m["latents"], truncation)
    else:
        latents, codes = m["latents"], m[level]
    out = G.synthesize(G.expand(latents), noise_mode="const")
    return {"image": out["image"], "ids": out["seg"].argmax(1), "codes": codes}


def train_step(E: Encoder, G, batch: dict, real: dict | None, perceptual, opts: EncoderTrainOptions) -> dict:
    """Loss terms (means over passes) of one step; backpropagates into E. Returns floats."""
    level = E.config.level
    u_true = E.units(batch["codes"])
    totals: dict[str, torch.Tensor] = {}

    def add(terms, prefix=""):
        for k, v in terms.items():
            totals[prefix + k] = totals.get(prefix + k, 0) + v / opts.passes

    groups = [("", batch, u_true)] + ([("real_", real, None)] if real is not None else [])
    for prefix, data, target_u in groups:
        u, current = None, None
        for _ in range(opts.passes):
            du = E(data["image"], current)
            u = du if u is None else u + du
            terms = {}
            if target_u is not None and opts.code_weight > 0:
                terms["code"] = (u - target_u).pow(2).mean()
            if opts.prior_weight > 0:
                terms["prior"] = u.pow(2).mean()
            if opts.delta_weight > 0 and E.config.arch == "ssg":
                terms["delta"] = delta_penalty(E, u)
            need_image = opts.mse_weight > 0 or opts.perceptual_weight > 0 or opts.seg_weight > 0
            if need_image:
                out = render(G, level, E.codes(u))
                terms.update(image_losses(out["image"], out["seg"], data["image"], data.get("ids"), perceptual,
                                          opts))
                current = out["image"].detach()
            elif opts.passes > 1:
                with torch.no_grad():
                    current = render(G, level, E.codes(u))["image"]
            add(terms, prefix)
    loss = _weighted({k: v for k, v in totals.items() if not k.startswith("real_")}, opts)
    if real is not None:
        loss = loss + _weighted({k[5:]: v for k, v in totals.items() if k.startswith("real_")}, opts)
    loss.backward()
    return {k: float(v.detach()) for k, v in totals.items()} | {"loss": float(loss.detach())}


@torch.no_grad()
def known_answer_metrics(E: Encoder, G, n: int = 16, passes: int | None = None, seed: int = EVAL_SEED) -> dict:
    """Encoder alone on n samples (seeds seed..): PSNR (8-bit) of the render, mIoU of its segmentation against the
    sample's, RMS code error in units."""
    from memorygan.inversion.losses import psnr_uint8
    from memorygan.metrics.stats import IoUCounts
    from memorygan.visualize import to_uint8

    was = E.training
    E.eval()
    s = draw_samples(G, E.config.level, n, seed)
    enc = encode(E, G, s["image"], passes)
    E.train(was)
    a, b = to_uint8(enc.image), to_uint8(s["image"])
    psnr = float(np.mean([psnr_uint8(a[i], b[i]) for i in range(n)]))
    counts = IoUCounts(G.num_classes)
    ious = []
    for i in range(n):
        ious.append(IoUCounts(G.num_classes).update(enc.seg[i:i + 1].argmax(1).cpu(), s["ids"][i:i + 1].cpu()).miou)
        counts.update(enc.seg[i:i + 1].argmax(1).cpu(), s["ids"][i:i + 1].cpu())
    return {"psnr": psnr, "miou": float(np.mean(ious)),
            "code_rms": float((enc.units - E.units(s["codes"])).pow(2).mean().sqrt())}


# ---------------------------------------------------------------------------------------------------- state files

def _optimizer_tensors(opt: torch.optim.Adam) -> dict[str, torch.Tensor]:
    out = {}
    for i, st in enumerate(opt.state_dict()["state"].values()):
        out[f"{i}.exp_avg"] = st["exp_avg"].detach().cpu().contiguous()
        out[f"{i}.exp_avg_sq"] = st["exp_avg_sq"].detach().cpu().contiguous()
        out[f"{i}.step"] = torch.as_tensor(st["step"], dtype=torch.float64).reshape(1).cpu()
    return out


def _load_optimizer(opt: torch.optim.Adam, tensors: dict, where: str) -> None:
    sd = opt.state_dict()
    ids = [p for g in sd["param_groups"] for p in g["params"]]
    state = {}
    params = [p for g in opt.param_groups for p in g["params"]]
    for i, pid in enumerate(ids):
        try:
            ea, es, st = tensors[f"{i}.exp_avg"], tensors[f"{i}.exp_avg_sq"], tensors[f"{i}.step"]
        except KeyError:
            raise CheckpointError(f"{where}: optimiser state is incomplete (parameter {i})") from None
        if ea.shape != params[i].shape:
            raise CheckpointError(f"{where}: optimiser state of parameter {i} is {tuple(ea.shape)}, the encoder's is "
                                  f"{tuple(params[i].shape)}")
        state[pid] = {"exp_avg": ea.to(params[i].device), "exp_avg_sq": es.to(params[i].device),
                      "step": torch.tensor(float(st[0]))}
    sd["state"] = state
    opt.load_state_dict(sd)


def _settings(G, opts: EncoderTrainOptions, data, perceptual, init_from=None) -> dict:
    from memorygan.checkpoint import generator_fingerprint

    d = opts.to_dict()
    for k in ("steps", "checkpoint_every", "eval_every", "eval_samples"):     # change no weight: may differ on resume
        d.pop(k)
    return {"generator_fingerprint": generator_fingerprint(G), "options": d,
            "data": None if data is None else str(Path(data).resolve()),
            "perceptual": None if perceptual is None else perceptual.describe(),
            "init_from": None if init_from is None else str(Path(init_from).resolve())}


def _check_out(out: Path, settings: dict) -> dict | None:
    """The previous run's record in `out` (None: a new run). Refuses a folder of something else or of a run with
    other settings."""
    if not out.exists():
        return None
    if not out.is_dir():
        raise ConfigError(f"--out {out} is a file, not a folder")
    if not (out / META).is_file():
        if any(not p.name.startswith(".") for p in out.iterdir()):
            raise ConfigError(f"--out {out} exists and is not an encoder folder (no {META}); choose another")
        return None
    try:
        meta = json.loads((out / META).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{out / META}: unreadable ({e}); choose another --out") from None
    old = meta.get("training", {}).get("settings")
    new = json.loads(json.dumps(settings))
    if not isinstance(old, dict):
        raise CheckpointError(f"{out / META}: no training record; choose another --out")
    diff = [k for k in new if k != "options" and old.get(k) != new[k]]
    old_opts = old.get("options") or {}
    diff += [f"--{k.replace('_', '-')}" for k in new["options"] if old_opts.get(k) != new["options"][k]]
    if diff:
        raise ConfigError(f"--out {out} holds an encoder trained with other settings ({', '.join(diff)} differ); "
                          "choose another --out to start afresh")
    return meta


@dataclass
class EncoderRun:
    out: Path
    step: int
    resumed_from: int
    log: list
    final: dict


def train_encoder(G, out, opts: EncoderTrainOptions | None = None, data=None, perceptual=None,
                  progress: bool | None = True, generator_path: str = "", init_from=None) -> EncoderRun:
    """Train (or continue training) an encoder for G into the folder `out` (module docstring). G is not changed.
    `data`: a dataset folder of real images with masks (optional); `perceptual`: a PerceptualDistance or None;
    `progress`: True a progress bar, False one printed line per evaluation, None silent; `init_from`: an encoder
    folder of G to start from (e.g. to fine-tune a one-pass encoder with ReStyle passes), instead of new weights."""
    from safetensors.torch import load_file, save_file

    from memorygan.checkpoint import atomic_directory
    from memorygan.data.dataset import SegmentationDataset
    from memorygan.encoder.model import save_encoder

    opts = (opts or EncoderTrainOptions()).check()
    out = Path(out)
    ds = None
    if data is not None:
        ds = SegmentationDataset(data)
        if ds.info.num_classes != G.num_classes or list(ds.info.classes) != list(G.part_names):
            raise ConfigError(f"--data {data}: its classes {list(ds.info.classes)} are not the generator's parts "
                              f"{list(G.part_names)}")
        if ds.info.resolution != (G.config.resolution, G.config.resolution):
            raise ConfigError(f"--data {data}: {ds.info.resolution[1]}x{ds.info.resolution[0]} images, the generator "
                              f"draws {G.config.resolution} px")
    settings = _settings(G, opts, data, perceptual, init_from)
    previous = _check_out(out, settings)
    G.eval().requires_grad_(False)
    if previous is not None:
        E, _ = load_encoder(out, G)
        E.train().requires_grad_(True)
        start = int(previous["training"]["step"])
        log = [json.loads(line) for line in (out / LOG).read_text().splitlines() if line.strip()] \
            if (out / LOG).is_file() else []
    else:
        with torch.random.fork_rng(devices=[]):      # the initial weights follow --seed, not the global RNG
            torch.manual_seed(opts.seed)
            E = build_encoder(G, opts.level, passes=opts.passes).train()
        if init_from is not None:
            src, _ = load_encoder(init_from, G)
            if src.config.level != opts.level:
                raise ConfigError(f"--init-from {init_from}: an encoder of {src.config.level}, this run trains "
                                  f"--level {opts.level}")
            E.load_state_dict(src.state_dict())
            E.train().requires_grad_(True)
        start, log = 0, []
    opt = torch.optim.Adam(E.parameters(), lr=opts.lr, betas=(0.9, 0.999))
    if previous is not None and start > 0:
        if not (out / STATE).is_file():
            raise CheckpointError(f"{out}: {STATE} is missing; the run cannot be continued (choose another --out)")
        _load_optimizer(opt, load_file(str(out / STATE)), str(out / STATE))
    resumed_from = start

    def checkpoint(step: int, done: bool) -> None:
        meta = {"training": {"step": step, "steps": opts.steps, "done": done, "settings": settings,
                             "generator": str(generator_path), "final": log[-1] if log else None}}
        with atomic_directory(out) as tmp:
            save_encoder(E, tmp, meta)
            save_file(_optimizer_tensors(opt), str(tmp / STATE))
            (tmp / LOG).write_text("".join(json.dumps(r) + "\n" for r in log), encoding="utf-8")

    bar = None
    if progress is True and start < opts.steps:
        from tqdm import tqdm
        bar = tqdm(total=opts.steps, initial=start, desc="encoder", unit="step")
    rng_base = TRAIN_SEED + opts.seed * 1_000_000
    t0 = time.perf_counter()
    sums: dict[str, float] = {}
    count = 0
    try:
        for step in range(start, opts.steps):
            batch = draw_samples(G, opts.level, opts.batch, rng_base + step, opts.truncation)
            real = None
            if ds is not None and opts.real_batch > 0:
                rng = np.random.default_rng([opts.seed, step])
                idx = rng.choice(len(ds), size=min(opts.real_batch, len(ds)), replace=False)
                items = [ds[int(i)] for i in idx]
                real = {"image": torch.stack([it["image"] for it in items]).to(G.device),
                        "ids": torch.stack([it["ids"] for it in items]).to(G.device)}
            opt.zero_grad(set_to_none=True)
            terms = train_step(E, G, batch, real, perceptual, opts)
            if not math.isfinite(terms["loss"]):
                raise ConfigError(f"encoder training diverged at step {step} (loss {terms['loss']}); the last "
                                  f"checkpoint in {out} is kept: lower --lr")
            opt.step()
            for k, v in terms.items():
                sums[k] = sums.get(k, 0.0) + v
            count += 1
            s = step + 1
            if bar is not None:
                bar.update(1)
                bar.set_postfix({k: f"{v:.3f}" for k, v in terms.items() if k in ("code", "mse", "real_mse")},
                                refresh=False)
            if s % opts.eval_every == 0 or s == opts.steps:
                row = {"step": s, **{k: v / count for k, v in sums.items()},
                       "seconds": round(time.perf_counter() - t0, 1)}
                row["known"] = known_answer_metrics(E, G, opts.eval_samples)
                log.append(row)
                sums, count = {}, 0
                line = (f"step {s}: loss {row['loss']:.4f}  known answers: PSNR {row['known']['psnr']:.2f} dB"
                        f"  mIoU {row['known']['miou']:.3f}  code RMS {row['known']['code_rms']:.3f}")
                if bar is not None:
                    bar.write(line)
                elif progress is not None:
                    print(line, flush=True)
            if s % opts.checkpoint_every == 0 or s == opts.steps:
                checkpoint(s, s == opts.steps)
    finally:
        if bar is not None:
            bar.close()
    if previous is not None and start >= opts.steps:
        step = start
    else:
        step = opts.steps
    return EncoderRun(out, step, resumed_from, log, log[-1] if log else {})
