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
import signal
import time
import warnings
import weakref
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from memorygan.checkpoint import (atomic_directory, check_finite, check_state_dict, save_generator,
                                  state_dict_for_saving)
from memorygan.config import DiscriminatorConfig, GeneratorConfig, load_preset
from memorygan.data.dataset import SegmentationDataset
from memorygan.devices import configure_backends, resolve_device, to_device
from memorygan.errors import CheckpointError, ConfigError, DatasetError, MemoryGANError, MemoryGANWarning
from memorygan.fileio import append_line, read_lines, write_text_atomic
from memorygan.runs import (CKPT_DIR, GENERATOR_DIR, LOCK_FILE, METRICS_LOG, RUN_CONFIG, RUN_FORMAT, STATE_FILE,
                            STATS_LOG, RunLock, checkpoint_name, clean_leftovers, latest_checkpoint, list_checkpoints,
                            read_run_config, read_training_state, remove_checkpoint, truncate_logs)
from memorygan.training import distributed as dist
from memorygan.training.augment import AugmentPipe, parse_ops
from memorygan.training.ema import ema_beta, ema_copy, update_ema
from memorygan.training import phases
from memorygan.training.mixing import mixing_coin, random_partwise_mix
from memorygan.training.optim import make_discriminator_optimizer, make_generator_optimizer, total_norm
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
    """Preset architecture + the dataset's classes (names, count, transparent ids) + explicit overrides. The dataset
    decides the class count: a preset made for another count gets a warning, an override that contradicts the
    dataset an error."""
    preset = load_preset(opts.preset)
    g = dict(preset["generator"])
    k = info.num_classes
    fixed = sorted({"num_classes", "class_names", "transparent_classes"} & set(opts.generator_overrides))
    if fixed:
        raise ConfigError(f"--set {', '.join(fixed)}: the classes come from the dataset {opts.data} ({k} classes: "
                          f"{', '.join(info.classes[:6])}{', ...' if k > 6 else ''}); import the dataset with the "
                          f"classes you want instead")
    if isinstance(g.get("num_classes"), int) and g["num_classes"] != k:
        warnings.warn(f"preset {opts.preset} is configured for {g['num_classes']} classes but the dataset "
                      f"{opts.data} has {k}: the generator is built for the dataset's {k} classes (the dataset "
                      f"decides the class count)", MemoryGANWarning, stacklevel=3)
    g.update(num_classes=k, class_names=list(info.classes), transparent_classes=list(info.transparent_ids))
    unknown = sorted(set(opts.generator_overrides) - set(GeneratorConfig.__dataclass_fields__))
    if unknown:
        raise ConfigError(f"unknown generator field(s) in overrides: {', '.join(unknown)}")
    g.update(opts.generator_overrides)
    gcfg = GeneratorConfig.from_dict(g)
    d = dict(preset.get("discriminator", {}))
    d.update(resolution=gcfg.resolution, num_classes=gcfg.num_classes)
    bad = sorted({"resolution", "num_classes"} & set(opts.discriminator_overrides))
    if bad:
        raise ConfigError(f"--set-d {', '.join(bad)}: the discriminator takes these from the generator")
    unknown = sorted(set(opts.discriminator_overrides) - set(DiscriminatorConfig.__dataclass_fields__))
    if unknown:
        raise ConfigError(f"unknown discriminator field(s) in --set-d: {', '.join(unknown)} (known: "
                          f"{', '.join(sorted(DiscriminatorConfig.__dataclass_fields__))})")
    d.update(opts.discriminator_overrides)
    dcfg = DiscriminatorConfig.from_dict(d)
    return gcfg, dcfg


def open_dataset(opts: TrainOptions, resolution: int | None = None) -> SegmentationDataset:
    return SegmentationDataset(opts.data, mirror=opts.mirror, resolution=resolution)


def _recorded_configs(run: Path, gcfg: GeneratorConfig, dcfg: DiscriminatorConfig):
    """The generator and discriminator configs recorded in a run's config.json (runs before they were recorded:
    the preset's)."""
    cfg = read_run_config(run)
    try:
        g = GeneratorConfig.from_dict(cfg["generator"]) if isinstance(cfg.get("generator"), dict) else gcfg
        d = DiscriminatorConfig.from_dict(cfg["discriminator"]) if isinstance(cfg.get("discriminator"), dict) else dcfg
    except ConfigError as e:
        raise CheckpointError(f"{run / RUN_CONFIG}: invalid network config ({e})") from None
    return g, d


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

    def perm(self, epoch: int) -> list[int]:
        if epoch not in self._perms:
            if len(self._perms) > 4:
                self._perms.clear()
            g = torch.Generator().manual_seed(seed_for(self.seed, PHASES["data"], epoch))
            self._perms[epoch] = torch.randperm(self.n, generator=g).tolist()     # a CPU draw, read once
        return self._perms[epoch]

    def indices(self, start: int, count: int) -> list[int]:
        return [self.perm(p // self.n)[p % self.n] for p in range(start, start + count)]

    def _item(self, i: int):
        if self.cache is not None and i in self.cache:
            return self.cache[i]
        item = self.ds[i]
        entry = (((item["image"] + 1) * 127.5).round().clamp(0, 255).to(torch.uint8), item["ids"].to(torch.uint8))
        if self.cache is not None:
            self.cache[i] = entry
        return entry

    def batch(self, indices: list[int], device) -> tuple[torch.Tensor, torch.Tensor]:
        """The images (B, 3, H, W) in [-1, 1] and one-hot masks (B, K, H, W) in {-1, 1} of `indices`, on `device`.
        They cross to the device as uint8 (a quarter of the bytes) without a host sync (`to_device`); the one-hot
        comparison runs there (the ids were range-checked when the dataset read them)."""
        items = [self._item(i) for i in indices]
        image = to_device(torch.stack([a for a, _ in items]), device).float() / 127.5 - 1
        ids = to_device(torch.stack([b for _, b in items]), device)
        classes = torch.arange(self.k, device=ids.device, dtype=ids.dtype)
        mask = (ids[..., None] == classes).permute(0, 3, 1, 2).float() * 2 - 1
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


# ----------------------------------------------------------------------------------------------------------------

class Trainer:
    """One training run. The main process holds the run folder's lock (`runs.RunLock`) from construction to the end
    of `fit` (or `close()`), so a second process is refused instead of writing into the same folder.

    `resume=True` continues the newest complete checkpoint; a run that stopped before its first checkpoint is
    restarted in place from step 0. `more_steps` / `more_minutes` (resume only) set the duration to that much
    beyond the checkpoint's step / training time, instead of a total."""

    def __init__(self, opts: TrainOptions, resume: bool = False, more_steps: int | None = None,
                 more_minutes: float | None = None):
        self.opts = opts.with_preset_defaults(load_preset(opts.preset)).validate()
        self.resumed = resume
        device = resolve_device(opts.device, announce=dist.env_world()[0] == 0)
        self.rank, self.world = dist.init(device)
        self.device = torch.device(device)
        if self.device.type == "cuda":
            configure_backends()                     # cuDNN's autotuner (memorygan.devices)
        self.run = Path(opts.out)
        self.is_main = self.rank == 0
        self._lock: RunLock | None = None
        # --- everything that can be refused is checked before any work
        preset = load_preset(opts.preset)
        dataset = open_dataset(opts, opts.generator_overrides.get("resolution", preset["generator"].get("resolution")))
        self.gcfg, self.dcfg = resolve_configs(opts, dataset.info)
        if resume:             # the run's own architecture, as recorded: a preset edited since does not change it
            self.gcfg, self.dcfg = _recorded_configs(self.run, self.gcfg, self.dcfg)
        if dataset.info.resolution[0] != dataset.info.resolution[1]:
            raise DatasetError(f"{opts.data}: training needs square images, dataset.json says {dataset.info.resolution}")
        per = self.world * opts.accum
        if opts.batch % per:
            raise ConfigError(f"--batch {opts.batch} must be divisible by processes x --accum = {per}")
        self.chunk = opts.batch // per
        from memorygan.models import build_discriminator, build_generator, check_model_size
        check_model_size(self.gcfg, self.dcfg, where=f"preset {opts.preset}")
        if self.is_main:                             # (other processes of a torchrun job leave the folder to rank 0)
            RunLock(self.run).check_free()           # a busy run is named as such, not as "not empty"
            if not resume:
                self._check_new_out()
            self._lock = RunLock(self.run, "train").acquire()
            weakref.finalize(self, self._lock.release)      # a Trainer dropped without fit() frees the run
        try:
            run_cfg = None
            if resume:
                run_cfg = read_run_config(self.run)
                if self.is_main:
                    removed = clean_leftovers(self.run)
                    if removed:
                        warnings.warn(f"{self.run}: removed what an interrupted run left behind: {', '.join(removed)}",
                                      MemoryGANWarning, stacklevel=2)
            elif self.is_main:
                self._check_new_out()                        # again under the lock: a racing process may have won
            self.dataset_fingerprint = dataset.fingerprint()
            if resume:
                self._check_dataset(run_cfg)
            if opts.threads:
                torch.set_num_threads(opts.threads)
            self.data = RealData(dataset, opts.seed)

            torch.manual_seed(seed_for(opts.seed, 1000))
            self.G = build_generator(self.gcfg).to(self.device).train()
            self.D = build_discriminator(self.dcfg).to(self.device).train()
            self.G_ema = ema_copy(self.G)
            ops = parse_ops(opts.augment_ops, opts.augment)
            p0 = opts.augment_p if opts.augment_p is not None else (1.0 if opts.augment == "diffaug" else 0.0)
            self.augment = AugmentPipe(ops, p0, adaptive=opts.augment == "ada", target=opts.ada_target,
                                       ada_kimg=opts.ada_kimg, interval=opts.ada_interval, device=self.device)
            betas = (opts.beta1, opts.beta2)
            self.g_opt = make_generator_optimizer(self.G, opts.lr, opts.lstm_lr, betas, opts.g_reg_every)
            self.d_opt = make_discriminator_optimizer(self.D, opts.lr, betas, opts.d_reg_every)
            self.step = 0
            self.images = 0
            self.pl_mean = 0.0
            self.train_seconds = 0.0
            self.nonfinite_streak = 0
            self.nonfinite_total = 0
            self._nonfinite_phase: str | None = None
            self._pending_bad: list[tuple[int, tuple[str, ...], torch.Tensor]] = []   # (step, phases, 0/1 flags)
            self._param_lists: dict[int, list] = {}
            self._trainable: dict[str, bool] = {}    # requires_grad of G's / D's parameters, as last set
            self.last_checkpoint: Path | None = None
            self.metrics_log: list[dict] = []
            self._acc: dict[str, list] = {}          # stat -> floats or device scalars (`_record`)
            self._interrupted = False
            self._tb = None
            self._bar = None
            self._domain = None
            self._grid_z = self.G.sample_z(opts.num_samples_grid,
                                           generator=torch.Generator().manual_seed(10_000 + opts.seed))
            if resume and latest_checkpoint(self.run, resumable=True) is not None:
                self._load_latest()
            elif resume:
                self._restart(dataset)
            elif self.is_main:
                self._init_run_dir(dataset)
            if more_steps is not None or more_minutes is not None:
                self._extend(more_steps, more_minutes)
            dist.barrier()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Release the run folder (also done at the end of `fit`)."""
        if self._lock is not None:
            self._lock.release()

    # ------------------------------------------------------------------ run dir / checkpoints
    def _check_new_out(self) -> None:
        """A new run needs a missing or empty folder (its own lock file aside)."""
        if self.run.exists() and not self.run.is_dir():
            raise ConfigError(f"--out {self.run} exists and is not a folder")
        if not self.run.is_dir() or not [p for p in self.run.iterdir() if p.name != LOCK_FILE]:
            return
        if (self.run / RUN_CONFIG).is_file() and not list_checkpoints(self.run):
            raise ConfigError(f"--out {self.run} holds a run that stopped before its first checkpoint; "
                              f"`memorygan train --resume {self.run}` restarts it in place from step 0 with its "
                              f"recorded options, or choose a new folder")
        raise ConfigError(f"--out {self.run} already exists and is not empty; use `--resume {self.run}` to "
                          f"continue it or choose a new folder")

    def _check_dataset(self, run_cfg: dict) -> None:
        """Resume only on the data the run started with (same fingerprint); record a moved dataset's new path."""
        rec = run_cfg.get("dataset", {})
        now = self.dataset_fingerprint
        if not isinstance(rec.get("fingerprint"), str):
            warnings.warn(f"{self.run / RUN_CONFIG} records no dataset fingerprint (a run from an older version): "
                          f"cannot check that {self.opts.data} is the data it started with", MemoryGANWarning,
                          stacklevel=3)
        elif rec["fingerprint"] != now["fingerprint"]:
            raise DatasetError(
                f"dataset {self.opts.data} is not the data run {self.run} started with: it holds "
                f"{now['num_images']} images (fingerprint {now['fingerprint']}), the run was started on "
                f"{rec.get('num_images')} (fingerprint {rec['fingerprint']}); resuming on other data would not "
                f"continue the same run: restore the data, or start a new run")
        here = str(Path(self.opts.data).resolve())
        if self.is_main and rec.get("path") != here:
            run_cfg = dict(run_cfg, dataset=dict(rec, path=here, **now))
            run_cfg["options"] = dict(run_cfg["options"], data=here)
            write_text_atomic(self.run / RUN_CONFIG, json.dumps(run_cfg, indent=2))

    def _init_run_dir(self, dataset) -> None:
        self.run.mkdir(parents=True, exist_ok=True)
        (self.run / "samples").mkdir(exist_ok=True)
        options = self.opts.to_dict()
        # paths that survive a change of directory: the run can be resumed and evaluated from anywhere
        options["data"] = str(Path(self.opts.data).resolve())
        if self.opts.probe:
            options["probe"] = str(Path(self.opts.probe).resolve())
        cfg = {"format": RUN_FORMAT, "version": 1, "options": options,
               "generator": self.gcfg.to_dict(), "discriminator": self.dcfg.to_dict(),
               "dataset": {"path": options["data"], "num_images": len(dataset.names),
                           "classes": dataset.classes, "resolution": list(dataset.info.resolution),
                           **self.dataset_fingerprint},
               "world_size": self.world, "chunk": self.chunk, "threads": torch.get_num_threads(),
               "params": {"G": self.G.num_params(), "D": sum(p.numel() for p in self.D.parameters())}}
        write_text_atomic(self.run / RUN_CONFIG, json.dumps(cfg, indent=2))

    def _restart(self, dataset) -> None:
        """Resume of a run without any checkpoint: start it again in place, from step 0."""
        if list_checkpoints(self.run):
            raise CheckpointError(f"{self.run}: its checkpoints lack the training state (state.pt, G.safetensors, "
                                  f"D.safetensors): it cannot be resumed; its generators still load with "
                                  f"memorygan.load")
        warnings.warn(f"{self.run} has no checkpoint (it stopped before its first one): restarting it in place "
                      f"from step 0 with its recorded options", MemoryGANWarning, stacklevel=3)
        if self.is_main:
            truncate_logs(self.run, -1)
            import shutil
            shutil.rmtree(self.run / "tensorboard", ignore_errors=True)
            self._init_run_dir(dataset)

    def _extend(self, more_steps: int | None, more_minutes: float | None) -> None:
        """Duration relative to the resumed state: N more steps or M more training minutes (replaces the totals)."""
        o = self.opts
        if more_steps is not None:
            if not isinstance(more_steps, int) or isinstance(more_steps, bool) or more_steps < 1:
                raise ConfigError(f"--more-steps must be an integer >= 1, got {more_steps!r}")
            o.steps, o.kimg, o.minutes = self.step + more_steps, None, None
        if more_minutes is not None:
            if not (isinstance(more_minutes, (int, float)) and math.isfinite(more_minutes) and more_minutes > 0):
                raise ConfigError(f"--more-minutes must be > 0, got {more_minutes!r}")
            o.minutes = self.train_seconds / 60 + more_minutes
            if more_steps is None:
                o.steps, o.kimg = None, None

    def save_checkpoint(self) -> Path | None:
        self._flush_nonfinite()                      # the skipped-step count goes into the checkpoint
        if not self.is_main:
            return None
        for name, module in (("G", self.G), ("D", self.D)):
            bad = [n for n, p in module.named_parameters() if not torch.isfinite(p).all()]
            if bad:
                raise TrainingError(f"refusing to checkpoint non-finite weights ({name}: {bad[:3]})")
        final = self.run / CKPT_DIR / checkpoint_name(self.step)
        with torch.no_grad():
            self.G_ema.update_w_avg()
        with atomic_directory(final) as tmp:        # fsync'ed, then renamed into place
            save_generator(self.G_ema, tmp / GENERATOR_DIR,
                           extra={"training": {"step": self.step, "kimg": self.images / 1000, "run": str(self.run)}})
            save_file(state_dict_for_saving(self.G), str(tmp / "G.safetensors"))
            save_file(state_dict_for_saving(self.D), str(tmp / "D.safetensors"))
            torch.save(self._training_state(), tmp / STATE_FILE)
        self.last_checkpoint = final
        ckpts = list_checkpoints(self.run)
        for old in ckpts[:-self.opts.keep]:
            remove_checkpoint(old)                  # renamed away first: never a half-deleted step-N
        return final

    def _training_state(self) -> dict:
        return {"step": self.step, "images": self.images, "pl_mean": float(self.pl_mean),
                "train_seconds": float(self.train_seconds), "nonfinite_total": self.nonfinite_total,
                "g_opt": self.g_opt.state_dict(), "d_opt": self.d_opt.state_dict(),
                "torch_rng": torch.get_rng_state(), "world_size": self.world, "augment": self.augment.state()}

    def _load_latest(self) -> None:
        ckpt = latest_checkpoint(self.run, resumable=True)
        if ckpt is None:
            raise CheckpointError(f"{self.run}: no checkpoint to resume from (no {CKPT_DIR}/step-*)")
        state = read_training_state(ckpt)
        for name, module, path in (("G", self.G, ckpt / "G.safetensors"), ("D", self.D, ckpt / "D.safetensors"),
                                   ("G_ema", self.G_ema, ckpt / GENERATOR_DIR / "generator.safetensors")):
            try:
                sd = load_file(str(path))
            except Exception as e:  # noqa: BLE001
                raise CheckpointError(f"{path}: unreadable ({e})") from None
            check_state_dict(module.state_dict(), sd, str(path))
            check_finite(sd, str(path))
            module.load_state_dict(sd)
        try:
            self.g_opt.load_state_dict(state["g_opt"])
            self.d_opt.load_state_dict(state["d_opt"])
            torch.set_rng_state(state["torch_rng"])
        except (ValueError, KeyError, TypeError, RuntimeError, IndexError) as e:
            raise CheckpointError(f"{ckpt / STATE_FILE}: its optimizer or RNG state does not fit this run "
                                  f"({type(e).__name__}: {str(e)[:200]})") from None
        self.step, self.images = int(state["step"]), int(state["images"])
        self.pl_mean = float(state["pl_mean"])
        self.train_seconds = float(state["train_seconds"])
        self.nonfinite_total = int(state["nonfinite_total"])
        aug = state.get("augment")
        if isinstance(aug, dict):
            self.augment.load_state(aug)         # ADA's p and its running sign sums (a known gap of the reference code)
        self.last_checkpoint = ckpt
        if self.is_main:
            truncate_logs(self.run, self.step)          # also repairs a torn last line
            self.metrics_log = read_lines(self.run / METRICS_LOG)

    # ------------------------------------------------------------------ logging
    def _record(self, **values) -> None:
        """Accumulate stats for the next log line. Tensors stay where they are (no host sync per step); they are
        read back together in `_stats_means`."""
        for k, v in values.items():
            if v is not None:
                self._acc.setdefault(k, []).append(v.detach().float().reshape(()) if torch.is_tensor(v) else float(v))

    def _stats_means(self) -> dict[str, float]:
        """The mean of every accumulated stat, the device tensors read back in one transfer."""
        means, pending = {}, {}
        for k, vals in self._acc.items():
            if all(not torch.is_tensor(v) for v in vals):
                means[k] = float(np.mean(vals))
            else:
                pending[k] = torch.stack([to_device(v, self.device) if torch.is_tensor(v)
                                          else torch.full((), v, device=self.device) for v in vals]).mean()
        if pending:
            means.update(zip(pending, torch.stack(list(pending.values())).tolist()))
        return means

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
        row.update(sorted(self._stats_means().items()))
        row["lr"] = self.g_opt.param_groups[0]["lr"]
        row["sec_per_step"] = step_seconds
        row["sec_per_kimg"] = step_seconds / (self.opts.batch / 1000)
        row["images_per_sec"] = self.opts.batch / max(step_seconds, 1e-9)
        self._acc = {}
        if not self.is_main:
            return
        self._append_jsonl(STATS_LOG, row)
        tb = self._tensorboard()
        if tb:
            for k, v in row.items():
                if k != "step":
                    tb.add_scalar(f"train/{k}", v, self.images)
        return row

    def _append_jsonl(self, name: str, row: dict) -> None:
        append_line(self.run / name, row)           # one write: a crash leaves at most a torn last line

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
            # on the training device: a probe left on the CPU beside a CUDA generator evaluated 1,000 samples and
            # the real set on the CPU, silently, for minutes (issue 11)
            self._domain = DomainMetrics(probe, self.opts.data, device=self.device)
        t0 = time.perf_counter()
        if self._bar is not None:
            self._bar.set_postfix_str(f"computing domain metrics on {self.opts.metrics_samples} samples")
            self._bar.refresh()
        m = self._domain.evaluate(self.G_ema, num_samples=self.opts.metrics_samples, seed=123,
                                  progress=self._bar is not None)
        row = {"step": self.step, "kimg": self.images / 1000, "train_minutes": self.train_seconds / 60}
        row.update({k: v for k, v in m.items() if isinstance(v, (int, float))})
        row["eval_seconds"] = time.perf_counter() - t0
        self.metrics_log.append(row)
        self._append_jsonl(METRICS_LOG, row)
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

    def _augment(self, gen: torch.Generator):
        """The augmentation of this chunk (drawing from its generator `gen`), or None when off."""
        if not self.augment.active:
            return None
        return lambda image, seg: self.augment(image, seg, gen)

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

    def _finish_phase(self, name: str, module: torch.nn.Module, opt, losses: list[torch.Tensor]) -> torch.Tensor:
        """Average gradients over processes and step, unless some loss or gradient is non-finite anywhere.

        Returns the phase's flag, 1.0 where the step was skipped, 0.0 where it was taken (a scalar on the device).
        Whether to step is decided on the device, without a host read: fused Adam skips the whole update (and its
        step count) where its `found_inf` is 1, the mechanism torch's GradScaler uses. The flags are read back
        together every few steps (`_flush_nonfinite`). An Adam without a fused kernel for the device reads the flag
        back here."""
        params = self._parameters(module)
        finite = torch.stack([torch.isfinite(l).all() for l in losses]).all()
        dist.average_gradients(params)
        grads = [p.grad for p in params if p.grad is not None]
        norm = total_norm(grads) if grads else torch.zeros((), device=self.device)
        bad = (dist.all_sum((~(finite & torch.isfinite(norm))).float()) > 0).float()  # on the device (NCCL: the GPU)
        self._bad_flags[name] = bad
        self._record(**{f"grad_norm_{name}": norm})
        if self.opts.clip_grad is not None:
            torch.nn.utils.clip_grad_norm_(params, self.opts.clip_grad)
        if opt.param_groups[0].get("fused"):
            opt.found_inf = bad
            opt.step()
        elif not bad.item():                       # no fused Adam here: the one host read of the phase
            opt.step()
        opt.zero_grad(set_to_none=True)
        return bad

    def _parameters(self, module: torch.nn.Module) -> list[torch.nn.Parameter]:
        """`module`'s parameters (G or D), listed once: `Module.parameters()` walks the module tree on every call,
        Python work on every phase of every step."""
        key = id(module)
        if key not in self._param_lists:
            self._param_lists[key] = list(module.parameters())
        return self._param_lists[key]

    def _set_trainable(self, **flags: bool) -> None:
        """requires_grad of G's and/or D's parameters, flipped only where it changes (`_set_trainable(G=True, D=False)`)."""
        for name, flag in flags.items():
            if self._trainable.get(name) is not flag:
                for p in self._parameters(getattr(self, name)):
                    p.requires_grad_(flag)
                self._trainable[name] = flag

    def train_step(self) -> None:
        o, G, D = self.opts, self.G, self.D
        acc = o.accum
        self._bad_flags: dict[str, torch.Tensor] = {}
        real_idx = self.data.indices(self.images, o.batch)

        # --- D main
        self._set_trainable(G=False, D=True)
        losses, mix = [], self._mixing("D")
        for g, sl in self._chunks():
            real_img, real_mask = self.data.batch(real_idx[sl], self.device)
            gen = self._rng("D", g)
            with torch.no_grad(), self._autocast():
                fake, _ = self._generate(self.chunk, gen, mix)
            with self._autocast():
                res = phases.d_main(D, real_img, real_mask, fake.image, fake.seg, augment=self._augment(gen),
                                     loss=o.loss)
            (res.loss / acc).backward()
            losses.append(res.loss.detach())
            self._record(**res.stats)
            self.augment.accumulate(res.real_logits)
        self._finish_phase("D", D, self.d_opt, losses)

        # --- D reg: lazy R1 on image and mask
        if self.step % o.d_reg_every == 0 and (o.r1_gamma > 0 or o.r1_gamma_mask > 0):
            losses = []
            for g, sl in self._chunks():
                real_img, real_mask = self.data.batch(real_idx[sl], self.device)
                aug = self._augment(self._rng("Dreg", g)) if self.augment.active else None
                res = phases.d_reg(D, real_img, real_mask, o, augment=aug)
                (res.loss / acc).backward()
                losses.append(res.loss.detach())
                self._record(**res.stats)
            self._finish_phase("Dreg", D, self.d_opt, losses)

        # --- G main
        self._set_trainable(G=True, D=False)
        losses, mix = [], self._mixing("G")
        for g, _ in self._chunks():
            gen = self._rng("G", g)
            with self._autocast():
                fake, kl = self._generate(self.chunk, gen, mix)
                res = phases.g_main(D, fake, kl, o, augment=self._augment(gen))
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
            bad = self._finish_phase("Greg", G, self.g_opt, losses)
            lengths = torch.cat(lengths).float()
            total = lengths.sum()
            tot = dist.all_sum(torch.stack([total, torch.full_like(total, lengths.numel())]))
            # the running mean stays on the device (a tensor from here on; a float in checkpoints), and keeps its
            # value where the step was skipped
            new_mean = self.pl_mean + o.pl_decay * (tot[0] / tot[1] - self.pl_mean)
            self.pl_mean = torch.where(bad > 0, self.pl_mean, new_mean)
            self._record(pl_mean=self.pl_mean)
        self._set_trainable(G=False)

        # --- EMA
        beta = ema_beta(o.batch, o.ema_kimg, o.ema_rampup, images_seen=self.images)
        update_ema(self.G_ema, G, beta)
        self.images += o.batch
        self.step += 1
        if self.augment.active:
            if self.augment.adaptive and self.step % o.ada_interval == 0:
                self.augment.adjust(o.batch, dist.all_sum)
            self._record(augment_p=self.augment.p)
            if self.augment.adaptive:
                self._record(ada_rt=self.augment.rt)
        names = tuple(self._bad_flags)
        self._pending_bad.append((self.step, names, torch.stack([self._bad_flags[n] for n in names])))

    def _flush_nonfinite(self) -> None:
        """Read back the skipped-phase flags of the steps since the last flush (one transfer), log a `nonfinite`
        event per step that skipped a phase, keep the streak of such steps, and stop training with TrainingError once
        the streak reaches --max-nonfinite. Called every --log-every steps, at least every --max-nonfinite steps,
        before each checkpoint and at the end, so a run of bad steps is caught at most --max-nonfinite steps late
        (its steps change nothing: they are skipped on the device)."""
        if not self._pending_bad:
            return
        pending, self._pending_bad = self._pending_bad, []
        values = torch.cat([flags for _, _, flags in pending]).tolist()
        i = 0
        for step, names, _ in pending:
            flags, i = values[i:i + len(names)], i + len(names)
            phase = next((n for n, v in zip(names, flags) if v > 0), None)
            if phase is None:
                self.nonfinite_streak = 0
                continue
            self.nonfinite_streak += 1
            self.nonfinite_total += 1
            self._nonfinite_phase = phase
            if self.is_main:
                self._append_jsonl(STATS_LOG, {"step": step, "event": "nonfinite", "phase": phase,
                                               "streak": self.nonfinite_streak})
            if self.nonfinite_streak >= self.opts.max_nonfinite:
                self._pending_bad = []
                last = self.last_checkpoint
                raise TrainingError(
                    f"stopped after {self.nonfinite_streak} consecutive steps with non-finite losses or gradients "
                    f"(step {step}, phase {phase}); the last good checkpoint is "
                    f"{last if last else '(none written yet)'}; try a lower --lr, --clip-grad, or fp32")

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

    def _nothing_to_train(self) -> str | None:
        """Why a resumed run has nothing left to train (its limits are already met), or None."""
        reason = self._done()
        if not (self.resumed and reason and self.step > 0):
            return None
        o = self.opts
        met = [f"--{name} {v}" for name, v, now in (("steps", o.steps, self.step), ("kimg", o.kimg, self.images / 1000),
                                                  ("minutes", o.minutes, self.train_seconds / 60))
               if v is not None and now >= v]
        return (f"{self.run} is already at step {self.step} ({self.images / 1000:.2f} kimg, "
                f"{self.train_seconds / 60:.1f} training minutes), which meets {' and '.join(met)}: nothing to train. "
                f"On --resume, --steps/--kimg/--minutes are totals for the whole run, not additions: give a larger "
                f"total, or --more-steps N / --more-minutes M to continue")

    def fit(self) -> TrainResult:
        try:
            return self._fit()
        finally:
            self.close()

    def _fit(self) -> TrainResult:
        o = self.opts
        why = self._nothing_to_train()
        if why:
            raise ConfigError(why)
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
            self._bar = bar
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
                stop = bool(stopped_by or self._interrupted)
                if dist.world_size() > 1 and stopped_by not in ("steps", "kimg"):
                    # every process stops at the same step. The step and image limits are the same everywhere; an
                    # interrupt or the time limit is agreed on at log steps only (a collective and a host read)
                    stop = self.step % o.log_every == 0 and float(
                        dist.all_sum(torch.full((), float(stop), device=self.device))) > 0
                if stop:
                    stopped_by = stopped_by or "interrupt"
                    break
                t0 = time.perf_counter()
                self.train_step()
                dt = time.perf_counter() - t0
                self.train_seconds += dt
                step_seconds = 0.9 * step_seconds + 0.1 * dt if step_seconds else dt
                checkpoint_due = bool(o.checkpoint_every) and self.step % o.checkpoint_every == 0
                if (self.step % o.log_every == 0 or checkpoint_due
                        or len(self._pending_bad) >= o.max_nonfinite):
                    self._flush_nonfinite()              # may stop the run (TrainingError)
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
                if checkpoint_due and not self.nonfinite_streak:
                    self.save_checkpoint()           # never during a run of non-finite steps
            # end of training (or Ctrl-C): final artefacts at a step boundary
            self._flush_nonfinite()
            if self._acc:
                self._write_stats(step_seconds)
            if not (o.sample_every and self.step % o.sample_every == 0):
                self.save_samples()
            logged = bool(self.metrics_log) and self.metrics_log[-1].get("step") == self.step
            if stopped_by != "interrupt" and not logged:
                self.run_metrics()                   # one row per step: never a duplicate of the last one
            if self.last_checkpoint is None or self.last_checkpoint.name != checkpoint_name(self.step):
                self.save_checkpoint()
            dist.barrier()
        except KeyboardInterrupt:
            last = self.last_checkpoint
            raise TrainingInterrupted(
                f"stopped at once by a second Ctrl-C at step {self.step}, without a checkpoint of that step; the "
                f"newest checkpoint is {last if last else '(none written yet)'}; continue with "
                f"`memorygan train --resume {self.run}`") from None
        finally:
            if bar is not None:
                bar.close()
            self._bar = None
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


def resume(run_dir, data=None, more_steps: int | None = None, more_minutes: float | None = None,
           **overrides) -> TrainResult:
    """Continue a run from its latest checkpoint (same step counter, data order and random streams). Only the
    duration and bookkeeping options may change (`RESUME_OVERRIDABLE`); `steps`/`kimg`/`minutes` are totals for
    the whole run and, when any is given, replace all the recorded ones; `more_steps`/`more_minutes` are additions
    to the checkpoint's. `data` points at a dataset that
    moved (its fingerprint must match the one recorded). Without `threads`, the run's recorded thread count is used
    (another count changes float reductions: the result would not be bit-exact)."""
    run_dir = Path(run_dir)
    opts = read_run_options(run_dir)
    cfg = read_run_config(run_dir)
    bad = sorted(set(overrides) - RESUME_OVERRIDABLE)
    if bad:
        raise ConfigError(f"cannot change {', '.join(bad)} when resuming (allowed: {', '.join(sorted(RESUME_OVERRIDABLE))})")
    totals = sorted(k for k in ("steps", "kimg", "minutes") if overrides.get(k) is not None)
    if totals and (more_steps is not None or more_minutes is not None):
        raise ConfigError(f"give either totals (--{', --'.join(totals)}) or --more-steps/--more-minutes, not both")
    if totals:                   # durations given on resume replace the run's recorded ones (all of them)
        for name in ("steps", "kimg", "minutes"):
            overrides.setdefault(name, None)
    recorded_threads = cfg.get("threads")
    if overrides.get("threads") is not None and isinstance(recorded_threads, int) \
            and overrides["threads"] != recorded_threads:
        warnings.warn(f"--threads {overrides['threads']} differs from the {recorded_threads} thread(s) run "
                      f"{run_dir} was trained with: training continues correctly but is no longer bit-exact "
                      f"with an uninterrupted run", MemoryGANWarning, stacklevel=2)
    for k, v in overrides.items():
        setattr(opts, k, v)
    if overrides.get("threads") is None and isinstance(recorded_threads, int):
        opts.threads = recorded_threads
    opts.out = str(run_dir)
    opts.data = _resume_data(run_dir, cfg, opts, data)
    if opts.probe and not Path(opts.probe).is_dir() and "probe" not in overrides:
        raise DatasetError(f"probe folder {opts.probe} (recorded in {run_dir / RUN_CONFIG}) does not exist; "
                           f"pass --probe with its new location")
    return Trainer(opts, resume=True, more_steps=more_steps, more_minutes=more_minutes).fit()


def _resume_data(run_dir: Path, cfg: dict, opts: TrainOptions, data) -> str:
    """The dataset folder of a resume: `data` when given, else the recorded (absolute) path."""
    if data is not None:
        if not Path(data).is_dir():
            raise DatasetError(f"--data {data}: no such folder")
        return str(Path(data).resolve())
    recorded = cfg.get("dataset", {}).get("path") or opts.data
    if isinstance(recorded, str) and Path(recorded).is_dir():
        return recorded
    raise DatasetError(f"dataset folder {recorded} (recorded in {run_dir / RUN_CONFIG}) does not exist; if it moved, "
                       f"pass its new location with `memorygan train --resume {run_dir} --data NEW_PATH` (its "
                       f"content must be the same: the fingerprint is checked)")
