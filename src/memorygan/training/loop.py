"""The training loop of both models (DESIGN 3), after SemanticStyleGAN's `train.py` (rosinality's StyleGAN2 loop)
with StyleGAN2-ADA's bookkeeping (kimg, batch-aware EMA with ramp-up, explicit gradient averaging).

One step = four phases, each over `accum` chunks of the process's share of the global batch:

  D main  logistic loss on real (image, one-hot mask) vs generated (image, seg)
  D reg   every `d_reg_every` steps: lazy R1 on the real image (gamma 10) and on the real mask (gamma 1000)
  G main  non-saturating loss + lambda_mask * mask loss (+ kl_weight * KL for MemoryGAN)
  G reg   every `g_reg_every` steps: path-length penalty on the expanded codes, `1/pl_batch_shrink` of the batch
  EMA     of the generator, half-life `ema_kimg` with ramp-up

Determinism: every random draw of a chunk (codes, mixing choices, render noise, path-length noise) comes from a
generator seeded by (seed, step, phase, global chunk index), and the data order is a per-epoch permutation seeded
by (seed, epoch). So a resumed run continues the same streams, and P processes x A accumulation rounds see the
same global batch as one process with P*A rounds (the DDP equivalence test relies on this).

The path-length running mean is updated once per G-reg step from the path lengths of the whole global batch, and
the penalty of that step is taken against the mean before the update (rosinality uses the freshly updated mean,
a 1% difference in the centre that makes the result depend on how the batch is split across processes).
"""
from __future__ import annotations

import json
import math
import shutil
import signal
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from memorygan.checkpoint import atomic_directory, check_state_dict, save_generator, state_dict_for_saving
from memorygan.config import DiscriminatorConfig, GeneratorConfig, load_preset
from memorygan.data.dataset import SegmentationDataset
from memorygan.errors import CheckpointError, ConfigError, DatasetError, MemoryGANError
from memorygan.runs import (CKPT_DIR, GENERATOR_DIR, RUN_FORMAT, STATE_FILE, checkpoint_name, latest_checkpoint,
                            list_checkpoints, read_run_config)
from memorygan.training import distributed as dist
from memorygan.training.ema import ema_beta, ema_copy, update_ema
from memorygan.training import phases
from memorygan.training.mixing import mixing_coin, random_partwise_mix
from memorygan.training.optim import make_discriminator_optimizer, make_generator_optimizer
from memorygan.training.options import TrainOptions

PHASES = {"D": 0, "Dreg": 1, "G": 2, "Greg": 3, "data": 4}
MIXING_STREAM = 1 << 20      # chunk index of the per-step mixing coin (real chunks are numbered from 0)


class TrainingError(MemoryGANError):
    """Training stopped (repeated non-finite losses)."""


class TrainingInterrupted(MemoryGANError):
    """Ctrl-C: a checkpoint was written at the end of the current step."""
    exit_code = 130


@dataclass
class TrainResult:
    run_dir: Path
    step: int
    images: int
    train_seconds: float
    checkpoint: Path | None
    metrics: list[dict] = field(default_factory=list)
    stopped_by: str = ""


def seed_for(*values: int) -> int:
    """A 63-bit seed from integers (numpy SeedSequence: well mixed, platform independent)."""
    lo, hi = (int(x) for x in np.random.SeedSequence([int(v) for v in values]).generate_state(2, dtype=np.uint32))
    return (lo | hi << 32) & ((1 << 63) - 1)


# ----------------------------------------------------------------------------------------------------------------
# configuration

def resolve_configs(opts: TrainOptions, info) -> tuple[GeneratorConfig, DiscriminatorConfig]:
    """Preset architecture + the dataset's classes (names, count, transparent ids) + explicit overrides."""
    preset = load_preset(opts.preset)
    g = dict(preset["generator"])
    g.update(num_classes=info.num_classes, class_names=list(info.classes),
             transparent_classes=list(info.transparent_ids))
    unknown = sorted(set(opts.generator_overrides) - set(GeneratorConfig.__dataclass_fields__))
    if unknown:
        raise ConfigError(f"unknown generator field(s) in overrides: {', '.join(unknown)}")
    g.update(opts.generator_overrides)
    gcfg = GeneratorConfig.from_dict(g)
    d = dict(preset.get("discriminator", {}))
    d.update(resolution=gcfg.resolution, num_classes=gcfg.num_classes)
    dcfg = DiscriminatorConfig.from_dict(d)
    return gcfg, dcfg


def open_dataset(opts: TrainOptions, resolution: int | None = None) -> SegmentationDataset:
    return SegmentationDataset(opts.data, mirror=opts.mirror, resolution=resolution)


class RealData:
    """Deterministic real-batch stream: position p of the stream is item perm_e[p % N] with e = p // N and perm_e a
    permutation seeded by (seed, epoch). Items are cached in memory (uint8) when the dataset is small."""

    def __init__(self, dataset: SegmentationDataset, seed: int, cache_bytes: int = 2 << 30):
        self.ds, self.seed = dataset, seed
        self.n = len(dataset)
        first = dataset[0]
        per_item = first["image"].numel() + first["ids"].numel()
        self.cache = {} if per_item * self.n <= cache_bytes else None
        self._perms: dict[int, torch.Tensor] = {}
        self.k = dataset.num_classes

    def perm(self, epoch: int) -> torch.Tensor:
        if epoch not in self._perms:
            if len(self._perms) > 4:
                self._perms.clear()
            g = torch.Generator().manual_seed(seed_for(self.seed, PHASES["data"], epoch))
            self._perms[epoch] = torch.randperm(self.n, generator=g)
        return self._perms[epoch]

    def indices(self, start: int, count: int) -> list[int]:
        return [int(self.perm(p // self.n)[p % self.n]) for p in range(start, start + count)]

    def _item(self, i: int):
        if self.cache is not None and i in self.cache:
            return self.cache[i]
        item = self.ds[i]
        entry = (((item["image"] + 1) * 127.5).round().clamp(0, 255).to(torch.uint8), item["ids"].to(torch.uint8))
        if self.cache is not None:
            self.cache[i] = entry
        return entry

    def batch(self, indices: list[int], device) -> tuple[torch.Tensor, torch.Tensor]:
        items = [self._item(i) for i in indices]
        image = torch.stack([a for a, _ in items]).to(device).float() / 127.5 - 1
        ids = torch.stack([b for _, b in items]).to(device).long()
        mask = torch.nn.functional.one_hot(ids, self.k).permute(0, 3, 1, 2).float() * 2 - 1
        return image, mask


# ----------------------------------------------------------------------------------------------------------------
# run directory

def read_run_options(run_dir) -> TrainOptions:
    """The TrainOptions a run was started with (its config.json)."""
    path = Path(run_dir) / "config.json"
    try:
        return TrainOptions.from_dict(read_run_config(run_dir)["options"])
    except (ConfigError, TypeError, ValueError) as e:
        if isinstance(e, CheckpointError):
            raise
        raise CheckpointError(f"{path}: invalid options ({e})") from None


def _truncate_jsonl(path: Path, step: int) -> None:
    """Drop lines logged after `step` (written after the checkpoint a run resumes from)."""
    if not path.is_file():
        return
    keep = [line for line in path.read_text().splitlines() if line.strip() and json.loads(line).get("step", 0) <= step]
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(line + "\n" for line in keep))
    tmp.replace(path)


# ----------------------------------------------------------------------------------------------------------------

class Trainer:
    def __init__(self, opts: TrainOptions, resume: bool = False):
        self.opts = opts.with_preset_defaults(load_preset(opts.preset)).validate()
        self.rank, self.world = dist.init(opts.device)
        if opts.threads:
            torch.set_num_threads(opts.threads)
        self.device = torch.device(opts.device)
        self.run = Path(opts.out)
        self.is_main = self.rank == 0
        # --- everything that can be refused is checked before any work
        preset = load_preset(opts.preset)
        dataset = open_dataset(opts, opts.generator_overrides.get("resolution", preset["generator"].get("resolution")))
        self.gcfg, self.dcfg = resolve_configs(opts, dataset.info)
        if dataset.info.resolution[0] != dataset.info.resolution[1]:
            raise DatasetError(f"{opts.data}: training needs square images, dataset.json says {dataset.info.resolution}")
        per = self.world * opts.accum
        if opts.batch % per:
            raise ConfigError(f"--batch {opts.batch} must be divisible by processes x --accum = {per}")
        self.chunk = opts.batch // per
        if not resume and self.run.exists() and any(self.run.iterdir()):
            raise ConfigError(f"--out {self.run} already exists and is not empty; use `--resume {self.run}` to "
                              f"continue it or choose a new folder")
        self.data = RealData(dataset, opts.seed)

        from memorygan.models import build_discriminator, build_generator
        torch.manual_seed(seed_for(opts.seed, 1000))
        self.G = build_generator(self.gcfg).to(self.device).train()
        self.D = build_discriminator(self.dcfg).to(self.device).train()
        self.G_ema = ema_copy(self.G)
        betas = (opts.beta1, opts.beta2)
        self.g_opt = make_generator_optimizer(self.G, opts.lr, opts.lstm_lr, betas, opts.g_reg_every)
        self.d_opt = make_discriminator_optimizer(self.D, opts.lr, betas, opts.d_reg_every)
        self.step = 0
        self.images = 0
        self.pl_mean = 0.0
        self.train_seconds = 0.0
        self.nonfinite_streak = 0
        self.nonfinite_total = 0
        self.last_checkpoint: Path | None = None
        self.metrics_log: list[dict] = []
        self._acc: dict[str, list[float]] = {}
        self._interrupted = False
        self._tb = None
        self._domain = None
        self._grid_z = self.G.sample_z(opts.num_samples_grid, generator=torch.Generator().manual_seed(10_000 + opts.seed))
        if resume:
            self._load_latest()
        elif self.is_main:
            self._init_run_dir(dataset)
        dist.barrier()

    # ------------------------------------------------------------------ run dir / checkpoints
    def _init_run_dir(self, dataset) -> None:
        self.run.mkdir(parents=True, exist_ok=True)
        (self.run / "samples").mkdir(exist_ok=True)
        cfg = {"format": RUN_FORMAT, "version": 1, "options": self.opts.to_dict(),
               "generator": self.gcfg.to_dict(), "discriminator": self.dcfg.to_dict(),
               "dataset": {"path": str(Path(self.opts.data).resolve()), "num_images": len(dataset.names),
                           "classes": dataset.classes, "resolution": list(dataset.info.resolution)},
               "world_size": self.world, "chunk": self.chunk,
               "params": {"G": self.G.num_params(), "D": sum(p.numel() for p in self.D.parameters())}}
        tmp = self.run / ".config.json.tmp"
        tmp.write_text(json.dumps(cfg, indent=2))
        tmp.replace(self.run / "config.json")

    def save_checkpoint(self) -> Path | None:
        if not self.is_main:
            return None
        for name, module in (("G", self.G), ("D", self.D)):
            bad = [n for n, p in module.named_parameters() if not torch.isfinite(p).all()]
            if bad:
                raise TrainingError(f"refusing to checkpoint non-finite weights ({name}: {bad[:3]})")
        final = self.run / CKPT_DIR / checkpoint_name(self.step)
        with torch.no_grad():
            self.G_ema.update_w_avg()
        with atomic_directory(final) as tmp:
            save_generator(self.G_ema, tmp / GENERATOR_DIR,
                           extra={"training": {"step": self.step, "kimg": self.images / 1000, "run": str(self.run)}})
            save_file(state_dict_for_saving(self.G), str(tmp / "G.safetensors"))
            save_file(state_dict_for_saving(self.D), str(tmp / "D.safetensors"))
            torch.save(self._training_state(), tmp / STATE_FILE)
        self.last_checkpoint = final
        ckpts = list_checkpoints(self.run)
        for old in ckpts[:-self.opts.keep]:
            shutil.rmtree(old, ignore_errors=True)
        return final

    def _training_state(self) -> dict:
        return {"step": self.step, "images": self.images, "pl_mean": float(self.pl_mean),
                "train_seconds": float(self.train_seconds), "nonfinite_total": self.nonfinite_total,
                "g_opt": self.g_opt.state_dict(), "d_opt": self.d_opt.state_dict(),
                "torch_rng": torch.get_rng_state(), "world_size": self.world}

    def _load_latest(self) -> None:
        ckpt = latest_checkpoint(self.run, resumable=True)
        if ckpt is None:
            raise CheckpointError(f"{self.run}: no checkpoint to resume from (no {CKPT_DIR}/step-*)")
        try:
            state = torch.load(ckpt / STATE_FILE, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001 - any unreadable file is reported the same way
            raise CheckpointError(f"{ckpt / STATE_FILE}: unreadable training state ({e})") from None
        for name, module, path in (("G", self.G, ckpt / "G.safetensors"), ("D", self.D, ckpt / "D.safetensors"),
                                   ("G_ema", self.G_ema, ckpt / GENERATOR_DIR / "generator.safetensors")):
            try:
                sd = load_file(str(path))
            except Exception as e:  # noqa: BLE001
                raise CheckpointError(f"{path}: unreadable ({e})") from None
            check_state_dict(module.state_dict(), sd, str(path))
            module.load_state_dict(sd)
        self.g_opt.load_state_dict(state["g_opt"])
        self.d_opt.load_state_dict(state["d_opt"])
        self.step, self.images = int(state["step"]), int(state["images"])
        self.pl_mean = float(state["pl_mean"])
        self.train_seconds = float(state["train_seconds"])
        self.nonfinite_total = int(state["nonfinite_total"])
        torch.set_rng_state(state["torch_rng"])
        self.last_checkpoint = ckpt
        if self.is_main:
            for name in ("stats.jsonl", "metrics.jsonl"):
                _truncate_jsonl(self.run / name, self.step)
            self.metrics_log = [json.loads(x) for x in (self.run / "metrics.jsonl").read_text().splitlines()
                                if x.strip()] if (self.run / "metrics.jsonl").is_file() else []

    # ------------------------------------------------------------------ logging
    def _record(self, **values) -> None:
        for k, v in values.items():
            if v is not None:
                self._acc.setdefault(k, []).append(float(v.detach()) if torch.is_tensor(v) else float(v))

    def _tensorboard(self):
        if self._tb is None and self.is_main:
            try:
                from torch.utils.tensorboard import SummaryWriter
                self._tb = SummaryWriter(str(self.run / "tensorboard"))
            except ImportError:
                self._tb = False
        return self._tb or None

    def _write_stats(self, step_seconds: float) -> None:
        row = {"step": self.step, "kimg": self.images / 1000, "train_minutes": self.train_seconds / 60}
        row.update({k: float(np.mean(v)) for k, v in sorted(self._acc.items())})
        row["lr"] = self.g_opt.param_groups[0]["lr"]
        row["sec_per_step"] = step_seconds
        row["sec_per_kimg"] = step_seconds / (self.opts.batch / 1000)
        row["images_per_sec"] = self.opts.batch / max(step_seconds, 1e-9)
        self._acc = {}
        if not self.is_main:
            return
        self._append_jsonl("stats.jsonl", row)
        tb = self._tensorboard()
        if tb:
            for k, v in row.items():
                if k != "step":
                    tb.add_scalar(f"train/{k}", v, self.images)
        return row

    def _append_jsonl(self, name: str, row: dict) -> None:
        with open(self.run / name, "a") as f:
            f.write(json.dumps(row) + "\n")

    @torch.no_grad()
    def save_samples(self) -> Path | None:
        if not self.is_main:
            return None
        from PIL import Image

        from memorygan.visualize import depth_to_gray, grid, sample_grid
        out = self.G_ema(self._grid_z, noise_mode="const")
        path = self.run / "samples" / f"step-{self.step:08d}.png"
        path.parent.mkdir(exist_ok=True)
        Image.fromarray(sample_grid(out)).save(path)
        depth = depth_to_gray(out.depths[:4], self.gcfg.resolution)            # (4, K, H, W)
        rows = [np.repeat(d[..., None], 3, axis=-1) for d in depth]            # each (K, H, W, 3)
        Image.fromarray(grid(rows)).save(self.run / "samples" / f"depth-{self.step:08d}.png")
        return path

    def _probe_dir(self) -> Path | None:
        if self.opts.probe:
            return Path(self.opts.probe)
        default = Path(self.opts.data) / "probe"
        return default if (default / "probe.json").is_file() else None

    def run_metrics(self) -> dict | None:
        if not self.is_main:
            return None
        probe = self._probe_dir()
        if probe is None:
            return None
        if self._domain is None:
            from memorygan.metrics.domain import DomainMetrics
            self._domain = DomainMetrics(probe, self.opts.data)
        t0 = time.perf_counter()
        m = self._domain.evaluate(self.G_ema, num_samples=self.opts.metrics_samples, seed=123)
        row = {"step": self.step, "kimg": self.images / 1000, "train_minutes": self.train_seconds / 60}
        row.update({k: v for k, v in m.items() if isinstance(v, (int, float))})
        row["eval_seconds"] = time.perf_counter() - t0
        self.metrics_log.append(row)
        self._append_jsonl("metrics.jsonl", row)
        tb = self._tensorboard()
        if tb:
            for k, v in row.items():
                if k not in ("step",):
                    tb.add_scalar(f"metrics/{k}", v, self.images)
        return row

    # ------------------------------------------------------------------ one step
    def _chunks(self):
        for a in range(self.opts.accum):
            g = self.rank * self.opts.accum + a
            yield g, slice(g * self.chunk, (g + 1) * self.chunk)

    def _rng(self, phase: str, chunk: int) -> torch.Generator:
        s = seed_for(self.opts.seed, self.step, PHASES[phase], chunk)
        torch.manual_seed(s)                       # render noise and anything else drawn from the global RNG
        return torch.Generator().manual_seed(s)

    def _autocast(self):
        if not self.opts.bf16:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    def _mixing(self, phase: str) -> bool:
        """Whether this step's batch of `phase` is style-mixed: one coin per global batch (the official
        `mixing_noise`), drawn from a stream of its own so it does not depend on how the batch is split."""
        if self.opts.mixing <= 0:
            return False
        return mixing_coin(self.opts.mixing, torch.Generator().manual_seed(
            seed_for(self.opts.seed, self.step, PHASES[phase], MIXING_STREAM)))

    def _generate(self, n: int, gen: torch.Generator, mix: bool):
        """n samples (one random source per image; with `mix` a second one mixed part-wise on the expanded codes);
        returns (output, kl or None)."""
        G = self.G
        latents, kl = G.latents_from_z(G.sample_z(n, generator=gen))
        expanded = G.expand(latents)
        if mix:
            expanded = random_partwise_mix(expanded, G.expand(G.latents_from_z(G.sample_z(n, generator=gen))[0]),
                                           G.layer_roles, gen)
        out = G(expanded=expanded, noise_mode=self.opts.noise_mode)
        return out, kl

    def _finish_phase(self, name: str, module: torch.nn.Module, opt, losses: list[torch.Tensor]) -> bool:
        """Average gradients over processes and step, unless some loss or gradient is non-finite anywhere."""
        params = [p for p in module.parameters()]
        ok = all(bool(torch.isfinite(l).all()) for l in losses)
        dist.average_gradients(params)
        grads = [p.grad for p in params if p.grad is not None]
        norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g.float()) for g in grads])) \
            if grads else torch.zeros((), device=self.device)
        ok = ok and bool(torch.isfinite(norm))
        bad = float(dist.all_sum(torch.tensor(0.0 if ok else 1.0, device=self.device)))  # NCCL: on the GPU
        if bad > 0:
            opt.zero_grad(set_to_none=True)
            self._nonfinite_phase = self._nonfinite_phase or name
            return False
        self._record(**{f"grad_norm_{name}": float(norm)})
        if self.opts.clip_grad is not None:
            torch.nn.utils.clip_grad_norm_(params, self.opts.clip_grad)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return True

    def train_step(self) -> None:
        o, G, D = self.opts, self.G, self.D
        acc = o.accum
        self._nonfinite_phase = None
        real_idx = self.data.indices(self.images, o.batch)

        # --- D main
        G.requires_grad_(False)
        D.requires_grad_(True)
        losses, mix = [], self._mixing("D")
        for g, sl in self._chunks():
            real_img, real_mask = self.data.batch(real_idx[sl], self.device)
            gen = self._rng("D", g)
            with torch.no_grad(), self._autocast():
                fake, _ = self._generate(self.chunk, gen, mix)
            with self._autocast():
                res = phases.d_main(D, real_img, real_mask, fake.image, fake.seg)
            (res.loss / acc).backward()
            losses.append(res.loss.detach())
            self._record(**res.stats)
        self._finish_phase("D", D, self.d_opt, losses)

        # --- D reg: lazy R1 on image and mask
        if self.step % o.d_reg_every == 0 and (o.r1_gamma > 0 or o.r1_gamma_mask > 0):
            losses = []
            for g, sl in self._chunks():
                real_img, real_mask = self.data.batch(real_idx[sl], self.device)
                res = phases.d_reg(D, real_img, real_mask, o)
                (res.loss / acc).backward()
                losses.append(res.loss.detach())
                self._record(**res.stats)
            self._finish_phase("Dreg", D, self.d_opt, losses)

        # --- G main
        G.requires_grad_(True)
        D.requires_grad_(False)
        losses, mix = [], self._mixing("G")
        for g, _ in self._chunks():
            gen = self._rng("G", g)
            with self._autocast():
                fake, kl = self._generate(self.chunk, gen, mix)
                res = phases.g_main(D, fake, kl, o)
            (res.loss / acc).backward()
            losses.append(res.loss.detach())
            self._record(**res.stats)
        self._finish_phase("G", G, self.g_opt, losses)

        # --- G reg: path length on the expanded codes
        if self.step % o.g_reg_every == 0 and o.pl_weight > 0:
            n = max(1, self.chunk // o.pl_batch_shrink)
            losses, lengths, mix = [], [], self._mixing("Greg")
            for g, _ in self._chunks():
                gen = self._rng("Greg", g)
                fake, _ = self._generate(n, gen, mix)
                res = phases.g_reg(fake, self.pl_mean, o, generator=gen)
                (res.loss / acc).backward()
                losses.append(res.loss.detach())
                lengths.append(res.path_lengths)
                self._record(**res.stats)
            if self._finish_phase("Greg", G, self.g_opt, losses):
                lengths = torch.cat(lengths).float()
                tot = dist.all_sum(torch.stack([lengths.sum(), lengths.new_tensor(float(lengths.numel()))]))
                self.pl_mean = self.pl_mean + o.pl_decay * (float(tot[0] / tot[1]) - self.pl_mean)
                self._record(pl_mean=self.pl_mean)
        G.requires_grad_(False)

        # --- EMA
        beta = ema_beta(o.batch, o.ema_kimg, o.ema_rampup, images_seen=self.images)
        update_ema(self.G_ema, G, beta)
        self.images += o.batch
        self.step += 1
        if self._nonfinite_phase is not None:
            self.nonfinite_streak += 1
            self.nonfinite_total += 1
            if self.is_main:
                self._append_jsonl("stats.jsonl", {"step": self.step, "event": "nonfinite",
                                                   "phase": self._nonfinite_phase, "streak": self.nonfinite_streak})
        else:
            self.nonfinite_streak = 0

    # ------------------------------------------------------------------ main loop
    def _done(self) -> str:
        o = self.opts
        if o.steps is not None and self.step >= o.steps:
            return "steps"
        if o.kimg is not None and self.images >= o.kimg * 1000:
            return "kimg"
        if o.minutes is not None and self.train_seconds >= o.minutes * 60:
            return "minutes"
        return ""

    def _total_steps(self) -> int | None:
        o = self.opts
        cands = [o.steps] if o.steps is not None else []
        if o.kimg is not None:
            cands.append(math.ceil(o.kimg * 1000 / o.batch))
        return min(cands) if cands and o.minutes is None else None

    def fit(self) -> TrainResult:
        o = self.opts
        prev_handler = None

        def on_sigint(signum, frame):
            if self._interrupted:               # second Ctrl-C: stop at once
                raise KeyboardInterrupt
            self._interrupted = True
        try:
            prev_handler = signal.signal(signal.SIGINT, on_sigint)
        except ValueError:                      # not in the main thread
            prev_handler = None
        bar = None
        if o.progress and self.is_main:
            from tqdm import tqdm
            bar = tqdm(total=self._total_steps(), initial=self.step, unit="step", dynamic_ncols=True)
        stopped_by = ""
        try:
            if self.step == 0:
                self.save_samples()
                self.run_metrics()
                if o.checkpoint_every:
                    self.save_checkpoint()       # the initialisation, for metrics over time computed later
            step_seconds = 0.0
            while True:
                stopped_by = self._done()
                flag = dist.all_sum(torch.tensor(1.0 if (stopped_by or self._interrupted) else 0.0, device=self.device))
                if float(flag) > 0:
                    stopped_by = stopped_by or "interrupt"
                    break
                t0 = time.perf_counter()
                self.train_step()
                dt = time.perf_counter() - t0
                self.train_seconds += dt
                step_seconds = 0.9 * step_seconds + 0.1 * dt if step_seconds else dt
                if self.nonfinite_streak >= o.max_nonfinite:
                    last = self.last_checkpoint
                    raise TrainingError(
                        f"stopped after {self.nonfinite_streak} consecutive steps with non-finite losses or gradients "
                        f"(step {self.step}, phase {self._nonfinite_phase}); the last good checkpoint is "
                        f"{last if last else '(none written yet)'}; try a lower --lr, --clip-grad, or fp32")
                if self.step % o.log_every == 0:
                    row = self._write_stats(step_seconds)
                    if bar is not None and row:
                        bar.set_postfix_str(self._postfix(row), refresh=False)
                if bar is not None:
                    bar.update(1)
                if o.sample_every and self.step % o.sample_every == 0:
                    self.save_samples()
                if o.metrics_every and self.step % o.metrics_every == 0:
                    self.run_metrics()
                if o.checkpoint_every and self.step % o.checkpoint_every == 0 and not self.nonfinite_streak:
                    self.save_checkpoint()           # never during a run of non-finite steps
            # end of training (or Ctrl-C): final artefacts at a step boundary
            if self._acc:
                self._write_stats(step_seconds)
            if not (o.sample_every and self.step % o.sample_every == 0):
                self.save_samples()
            if stopped_by != "interrupt" and not (o.metrics_every and self.step % o.metrics_every == 0):
                self.run_metrics()
            if self.last_checkpoint is None or self.last_checkpoint.name != checkpoint_name(self.step):
                self.save_checkpoint()
            dist.barrier()
        finally:
            if bar is not None:
                bar.close()
            if self._tb:
                self._tb.close()
            if prev_handler is not None:
                signal.signal(signal.SIGINT, prev_handler)
        result = TrainResult(self.run, self.step, self.images, self.train_seconds, self.last_checkpoint,
                             self.metrics_log, stopped_by)
        if stopped_by == "interrupt":
            raise TrainingInterrupted(f"interrupted at step {self.step}; checkpoint written to {self.last_checkpoint}; "
                                      f"continue with `memorygan train --resume {self.run}`")
        return result

    def _postfix(self, row: dict) -> str:
        parts = [f"kimg {row['kimg']:.2f}", f"{row['sec_per_kimg']:.0f} s/kimg"]
        for k in ("loss_d", "loss_g", "loss_mask", "r1_img", "pl_penalty"):
            if k in row:
                parts.append(f"{k.replace('loss_', '')} {row[k]:.3f}")
        if self.opts.minutes:
            left = max(0.0, self.opts.minutes * 60 - self.train_seconds)
            parts.append(f"ETA {left / 60:.1f} min")
        return " | ".join(parts)


def train(opts: TrainOptions | None = None, **kwargs) -> TrainResult:
    """Train a new run. `train(TrainOptions(...))` or `train(data=..., preset=..., out=..., steps=...)`."""
    if opts is None:
        opts = TrainOptions(**kwargs)
    elif kwargs:
        raise TypeError("pass either TrainOptions or keyword arguments, not both")
    return Trainer(opts).fit()


RESUME_OVERRIDABLE = {"kimg", "steps", "minutes", "progress", "threads", "device", "sample_every", "checkpoint_every",
                      "metrics_every", "metrics_samples", "keep", "log_every", "max_nonfinite", "probe"}


def resume(run_dir, **overrides) -> TrainResult:
    """Continue a run from its latest checkpoint (same step counter, data order and random streams). Only the
    duration and bookkeeping options may change (`RESUME_OVERRIDABLE`)."""
    opts = read_run_options(run_dir)
    bad = sorted(set(overrides) - RESUME_OVERRIDABLE)
    if bad:
        raise ConfigError(f"cannot change {', '.join(bad)} when resuming (allowed: {', '.join(sorted(RESUME_OVERRIDABLE))})")
    for k, v in overrides.items():
        setattr(opts, k, v)
    opts.out = str(run_dir)
    return Trainer(opts, resume=True).fit()
