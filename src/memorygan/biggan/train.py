"""Training a class-conditional BigGAN (thesis Sec. 2.3): Algorithm 1 (`biggan.steps`), EMA of G with a start
step, the monitors of Fig. 2-2 (`biggan.monitors`) and domain IS / FID over time (`biggan.evaluate`).

The run folder follows `memorygan.runs` (config.json with "kind": "biggan", stats.jsonl, metrics.jsonl,
sv.jsonl, samples/, checkpoints/step-N/ with the EMA generator in generator/, G, D and state.pt), under the run
lock, with atomic checkpoints. Every random draw of step t is seeded from (seed, t, phase, ...) and the data order
from (seed, epoch), so a resumed run continues exactly as an uninterrupted one (tested). Under torchrun each process
takes its own slice of every micro-batch; gradients are averaged, BatchNorm statistics stay per process as in the
thesis.
"""
from __future__ import annotations

import dataclasses
import json
import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from memorygan.biggan.checkpoint import save_biggan
from memorygan.biggan.config import BigGANConfig, biggan_config, read_preset
from memorygan.biggan.models import BigGANDiscriminator, BigGANGenerator, truncated_z
from memorygan.biggan.monitors import CollapseMonitor, singular_values
from memorygan.biggan.steps import adam, standing_stats, train_iteration, update_ema
from memorygan.checkpoint import atomic_directory, check_finite, check_state_dict, state_dict_for_saving
from memorygan.errors import CheckpointError, ConfigError, MemoryGANError, MemoryGANWarning
from memorygan.fileio import append_line, read_lines
from memorygan.runs import (
    CKPT_DIR, GENERATOR_DIR, METRICS_LOG, RUN_CONFIG, RUN_FORMAT, STATE_FILE, STATS_LOG, RunLock, checkpoint_name,
    clean_leftovers, latest_checkpoint, list_checkpoints, read_run_config, remove_checkpoint, truncate_logs,
)
from memorygan.training import distributed
from memorygan.training.loop import seed_for

RUN_KIND = "biggan"
SV_LOG = "sv.jsonl"
PHASE = {"data": 1, "D": 2, "G": 3, "grid": 4}
FROM_PRESET = ("batch", "d_accum", "g_accum", "d_steps", "lr_g", "lr_d", "beta1", "beta2", "adam_eps", "ema_decay",
               "ema_start")


class TrainingError(MemoryGANError):
    pass


@dataclass
class BigGANTrainOptions:
    data: str = ""
    out: str = ""
    preset: str = "biggan-small"
    generator_overrides: dict = field(default_factory=dict)
    kimg: float | None = None            # real images shown to D, thousands
    steps: int | None = None             # iterations of Algorithm 1
    minutes: float | None = None
    batch: int | None = None             # micro-batch per process (the preset's when None)
    d_accum: int | None = None           # nDa
    g_accum: int | None = None           # nGa
    d_steps: int | None = None           # nDs
    lr_g: float | None = None
    lr_d: float | None = None
    beta1: float | None = None
    beta2: float | None = None
    adam_eps: float | None = None
    ema_decay: float | None = None
    ema_start: int | None = None         # steps before which the EMA copies G
    mirror: bool = True
    unconditional: bool = False          # one class for every image: the baseline of a conditional model
    ms_weight: float = 0.0               # MSGAN's mode-seeking term in G's loss (steps.py; not in the thesis)
    seed: int = 0
    log_every: int = 20
    sample_every: int = 500
    checkpoint_every: int = 500
    metrics_every: int = 0               # 0: no IS / FID during training
    metrics_per_class: int = 50
    classifier: str | None = None        # default DATA/classifier (trained first when missing)
    standing_batches: int = 8            # BatchNorm standing statistics of the EMA G before sampling / saving
    keep: int = 5
    monitor_window: int = 10
    sv_ratio: float = 4.0
    d_floor: float = 0.05
    recall_ratio: float = 0.5            # variety collapse: recall below this times its best (with metrics_every)
    device: str = "auto"
    threads: int | None = None
    progress: bool = True

    def resolve(self) -> "BigGANTrainOptions":
        """Fill the options left to the preset; validate every option once."""
        t = read_preset(self.preset).get("training", {})
        o = dataclasses.replace(self)
        o.d_accum = o.d_accum if o.d_accum is not None else t.get("accum", 1)
        o.g_accum = o.g_accum if o.g_accum is not None else t.get("accum", 1)
        for name in FROM_PRESET:
            if getattr(o, name) is None:
                if name not in t:
                    raise ConfigError(f"preset {self.preset} gives no default for {name}; pass it")
                setattr(o, name, t[name])
        o.check()
        return o

    def check(self) -> None:
        def bad(flag, why):
            raise ConfigError(f"--{flag.replace('_', '-')}: {why}")
        if not self.data:
            bad("data", "a labelled dataset folder is required")
        if not self.out:
            bad("out", "an output run folder is required")
        if self.kimg is None and self.steps is None and self.minutes is None:
            bad("steps", "give --steps, --kimg or --minutes")
        for name in ("batch", "d_accum", "g_accum", "d_steps", "log_every", "keep", "standing_batches",
                     "monitor_window", "metrics_per_class"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                bad(name, f"must be an integer >= 1, got {v!r}")
        for name in ("sample_every", "checkpoint_every", "metrics_every", "ema_start"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                bad(name, f"must be an integer >= 0, got {v!r}")
        for name in ("lr_g", "lr_d", "adam_eps"):
            if not (isinstance(getattr(self, name), (int, float)) and getattr(self, name) >= 0):
                bad(name, f"must be >= 0, got {getattr(self, name)!r}")
        for name in ("beta1", "beta2", "ema_decay"):
            if not 0 <= getattr(self, name) < 1:
                bad(name, f"must be in [0, 1), got {getattr(self, name)!r}")
        if not (isinstance(self.ms_weight, (int, float)) and self.ms_weight >= 0):
            bad("ms_weight", f"must be >= 0, got {self.ms_weight!r}")
        if not 0 < self.recall_ratio <= 1:
            bad("recall_ratio", f"must be in (0, 1], got {self.recall_ratio!r}")
        if self.steps is not None and self.steps < 1:
            bad("steps", f"must be >= 1, got {self.steps}")
        if self.kimg is not None and not self.kimg > 0:
            bad("kimg", f"must be > 0, got {self.kimg}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


class RealStream:
    """Position p of the stream is item perm_e[p % N] with e = p // N, perm_e seeded by (seed, epoch). Items are
    kept in memory as uint8."""

    def __init__(self, dataset, seed: int, unconditional: bool = False):
        self.ds, self.seed, self.n, self.unconditional = dataset, seed, len(dataset), unconditional
        self._cache: dict[int, tuple[torch.Tensor, int]] = {}
        self._perms: dict[int, list[int]] = {}

    def perm(self, epoch: int) -> list[int]:
        if epoch not in self._perms:
            if len(self._perms) > 4:
                self._perms.clear()
            g = torch.Generator().manual_seed(seed_for(self.seed, PHASE["data"], epoch))
            self._perms[epoch] = torch.randperm(self.n, generator=g).tolist()
        return self._perms[epoch]

    def batch(self, start: int, count: int, device) -> tuple[torch.Tensor, torch.Tensor]:
        items = []
        for p in range(start, start + count):
            i = self.perm(p // self.n)[p % self.n]
            if i not in self._cache:
                it = self.ds[i]
                self._cache[i] = (((it["image"] + 1) * 127.5).round().clamp(0, 255).to(torch.uint8),
                                  0 if self.unconditional else int(it["label"]))
            items.append(self._cache[i])
        x = torch.stack([a for a, _ in items]).to(device).float() / 127.5 - 1
        y = torch.tensor([b for _, b in items], dtype=torch.int64, device=device)
        return x, y


@dataclass
class TrainResult:
    run: Path
    steps: int
    kimg: float
    minutes: float
    checkpoint: Path | None
    warnings: list[str]


class BigGANTrainer:
    def __init__(self, opts: BigGANTrainOptions, resume: bool = False):
        from memorygan.cpu import use_threads
        from memorygan.data.labelled import LabelledDataset
        from memorygan.devices import resolve_device

        self.opts = opts = opts.resolve()
        self.run = Path(opts.out)
        self.device = torch.device(resolve_device(opts.device))
        self.rank, self.world = distributed.init(str(self.device))
        self.is_main = self.rank == 0
        use_threads(opts.threads)
        self.dataset = LabelledDataset(opts.data, mirror=opts.mirror)
        info = self.dataset.info
        classes = ["all"] if opts.unconditional else list(self.dataset.categories)
        self.cfg: BigGANConfig = biggan_config(opts.preset, num_classes=len(classes), class_names=classes,
                                               **opts.generator_overrides)
        if info.resolution != (self.cfg.resolution, self.cfg.resolution):
            raise ConfigError(f"dataset {opts.data} is {info.resolution[1]}x{info.resolution[0]} px, preset "
                              f"{opts.preset} makes {self.cfg.resolution} px: import the data at that size or "
                              f"pick another preset")
        self._lock = RunLock(self.run, "biggan train") if self.is_main else None
        if self.is_main:
            if not resume and self.run.exists() and any(p.name != "lock.json" for p in self.run.iterdir()):
                raise ConfigError(f"--out {self.run} exists and is not empty; choose a new folder or resume with "
                                  f"`memorygan biggan train --resume {self.run}`")
            self._lock.acquire()
            clean_leftovers(self.run)
        torch.manual_seed(seed_for(opts.seed, 0))
        self.G = BigGANGenerator(self.cfg).to(self.device)
        self.D = BigGANDiscriminator(self.cfg).to(self.device)
        self.G_ema = BigGANGenerator(self.cfg, skip_init=True).to(self.device)
        self.G_ema.load_state_dict(self.G.state_dict())
        self.G_ema.eval().requires_grad_(False)
        self.g_opt = adam(self.G.parameters(), opts.lr_g, opts.beta1, opts.beta2, opts.adam_eps)
        self.d_opt = adam(self.D.parameters(), opts.lr_d, opts.beta1, opts.beta2, opts.adam_eps)
        self.monitor = CollapseMonitor(opts.monitor_window, opts.sv_ratio, opts.d_floor, opts.recall_ratio)
        self.stream = RealStream(self.dataset, opts.seed, opts.unconditional)
        self.step, self.images, self.train_seconds = 0, 0, 0.0
        self.warnings: list[str] = []
        self.last_checkpoint: Path | None = None
        self._acc: dict[str, list[float]] = {}
        self._classifier = None
        self._real_feats = None
        if resume:
            self._load_latest()
        elif self.is_main:
            self._init_run()

    # ------------------------------------------------------------------ run folder
    def _init_run(self) -> None:
        self.run.mkdir(parents=True, exist_ok=True)
        cfg = {"format": RUN_FORMAT, "kind": RUN_KIND, "options": self.opts.to_dict(),
               "generator": self.cfg.to_dict(), "world_size": self.world,
               "dataset": {"path": str(Path(self.opts.data).resolve()), **self.dataset.fingerprint()}}
        (self.run / RUN_CONFIG).write_text(json.dumps(cfg, indent=2))

    def close(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    @property
    def images_per_step(self) -> int:
        o = self.opts
        return o.d_steps * o.d_accum * o.batch * self.world

    def _total_steps(self) -> int | None:
        o = self.opts
        limits = [o.steps] if o.steps is not None else []
        if o.kimg is not None:
            limits.append(math.ceil(o.kimg * 1000 / self.images_per_step))
        return min(limits) if limits else None

    # ------------------------------------------------------------------ one step
    def _latent(self, phase: str, s: int, a: int) -> tuple[torch.Tensor, torch.Tensor]:
        # keyed by the micro-batch's global index a * world + rank: one process with k accumulations draws what
        # k processes draw (tested against torchrun)
        g = torch.Generator(device=self.device).manual_seed(
            seed_for(self.opts.seed, PHASE[phase], self.step, s, a * self.world + self.rank))
        z = torch.randn(self.opts.batch, self.cfg.dim_z, generator=g, device=self.device)
        y = torch.randint(0, self.cfg.num_classes, (self.opts.batch,), generator=g, device=self.device)
        return z, y

    def _real(self, s: int, a: int) -> tuple[torch.Tensor, torch.Tensor]:
        o = self.opts
        micro = ((self.step * o.d_steps + s) * o.d_accum + a) * self.world + self.rank
        return self.stream.batch(micro * o.batch, o.batch, self.device)

    def train_step(self) -> dict[str, float]:
        o = self.opts
        t0 = time.perf_counter()
        sync = distributed.average_gradients if self.world > 1 else None
        out = train_iteration(self.G, self.D, self.g_opt, self.d_opt, self._real, self._latent, o.d_steps,
                              o.d_accum, o.g_accum, sync, ms_weight=o.ms_weight)
        self.step += 1
        self.images += self.images_per_step
        update_ema(self.G_ema, self.G, 0.0 if self.step <= o.ema_start else o.ema_decay)
        values = {k: float(v) for k, v in out.items()}
        if not all(math.isfinite(v) for v in values.values()):
            raise TrainingError(f"step {self.step}: non-finite losses {values}; lower the learning rates or resume "
                                f"from the last checkpoint ({self.last_checkpoint})")
        self.train_seconds += time.perf_counter() - t0
        for k, v in values.items():
            self._acc.setdefault(k, []).append(v)
        return values

    # ------------------------------------------------------------------ logs, monitors, samples, metrics
    def _log(self) -> dict:
        row = {"step": self.step, "kimg": self.images / 1000, "train_minutes": self.train_seconds / 60,
               **{k: float(np.mean(v)) for k, v in self._acc.items()}}
        self._acc.clear()
        svs = {**singular_values(self.G, "G"), **singular_values(self.D, "D")}
        for w in self.monitor.update(self.step, row.get("d_loss", float("nan")), svs):
            self.warnings.append(w)
            row.setdefault("warnings", []).append(w)
            warnings.warn(w, MemoryGANWarning, stacklevel=2)
        g = [v for k, v in svs.items() if k.startswith("G/")]
        d = [v for k, v in svs.items() if k.startswith("D/")]
        row.update({"sv_g_max": max(g), "sv_g_median": float(np.median(g)), "sv_d_max": max(d),
                    "sv_d_median": float(np.median(d))})
        if self.is_main:
            append_line(self.run / STATS_LOG, row)
            append_line(self.run / SV_LOG, {"step": self.step, **svs})
        return row

    def _ema_for_eval(self) -> BigGANGenerator:
        standing_stats(self.G_ema, self.opts.standing_batches, self.opts.batch, seed=self.opts.seed)
        return self.G_ema

    @torch.no_grad()
    def save_samples(self) -> Path:
        from PIL import Image

        from memorygan.visualize import grid, to_uint8
        G = self._ema_for_eval()
        classes = min(self.cfg.num_classes, 12)
        g = torch.Generator(device=self.device).manual_seed(seed_for(self.opts.seed, PHASE["grid"]))
        z = torch.randn(8, self.cfg.dim_z, generator=g, device=self.device)
        rows = [to_uint8(G.generate(z, torch.full((8,), c, device=self.device))) for c in range(classes)]
        path = self.run / "samples" / f"step-{self.step:08d}.png"
        path.parent.mkdir(exist_ok=True)
        Image.fromarray(grid(rows)).save(path)
        return path

    def run_metrics(self) -> dict:
        from memorygan.biggan.classifier import DIR, load_classifier, train_classifier
        from memorygan.biggan.evaluate import evaluate_generator, evaluate_unconditional, real_features

        if self._classifier is None:
            path = self.opts.classifier or str(Path(self.opts.data) / DIR)
            if self.opts.classifier is None and not (Path(path) / "classifier.json").is_file():
                print(f"training the domain classifier for IS / FID into {path} (once per dataset)")
                train_classifier(self.opts.data, path, progress=self.opts.progress)
            self._classifier, meta = load_classifier(path, self.device)
            if meta["categories"] != list(self.dataset.categories):
                raise ConfigError(f"classifier {path} knows categories {meta['categories'][:5]}..., the dataset "
                                  f"{list(self.dataset.categories)[:5]}...")
            self._real_feats = real_features(self._classifier, self.opts.data)
        G = self._ema_for_eval()
        t0 = time.perf_counter()
        cats = list(self.dataset.categories)
        if self.opts.unconditional:
            res = evaluate_unconditional(G, self._classifier, self._real_feats,
                                         self.opts.metrics_per_class * len(cats), categories=cats)
        else:
            res = evaluate_generator(G, self._classifier, self._real_feats, self.opts.metrics_per_class,
                                     categories=cats)
        row = {"step": self.step, "kimg": self.images / 1000, "train_minutes": self.train_seconds / 60,
               **{k: v for k, v in res.items() if k != "per_class"},
               "per_class_fid": {k: v["fid"] for k, v in res["per_class"].items()},
               "seconds": time.perf_counter() - t0}
        if "accuracy" in res:
            row["per_class_accuracy"] = {k: v["accuracy"] for k, v in res["per_class"].items()}
        else:
            row["class_share"] = {k: v["share"] for k, v in res["per_class"].items()}
        for w in self.monitor.update_recall(self.step, float(res.get("recall", math.nan))):
            self.warnings.append(w)
            row.setdefault("warnings", []).append(w)
            warnings.warn(w, MemoryGANWarning, stacklevel=2)
        append_line(self.run / METRICS_LOG, row)
        return row

    # ------------------------------------------------------------------ checkpoints
    def save_checkpoint(self) -> Path | None:
        if not self.is_main:
            return None
        final = self.run / CKPT_DIR / checkpoint_name(self.step)
        G = self._ema_for_eval()
        with atomic_directory(final) as tmp:
            save_biggan(G, tmp / GENERATOR_DIR, extra={"training": {"step": self.step, "kimg": self.images / 1000,
                                                                   "run": str(self.run)}})
            save_file(state_dict_for_saving(self.G), str(tmp / "G.safetensors"))
            save_file(state_dict_for_saving(self.D), str(tmp / "D.safetensors"))
            torch.save({"step": self.step, "images": self.images, "train_seconds": self.train_seconds,
                        "g_opt": self.g_opt.state_dict(), "d_opt": self.d_opt.state_dict(),
                        "monitor": self.monitor.state(), "world_size": self.world}, tmp / STATE_FILE)
        self.last_checkpoint = final
        for old in list_checkpoints(self.run)[:-self.opts.keep]:
            remove_checkpoint(old)
        return final

    def _load_latest(self) -> None:
        ckpt = latest_checkpoint(self.run, resumable=True)
        if ckpt is None:
            raise CheckpointError(f"{self.run}: no checkpoint to resume from (no {CKPT_DIR}/step-*)")
        path = ckpt / STATE_FILE
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001 - a refused pickle or a truncated file are both "unreadable"
            raise CheckpointError(f"{path}: unreadable training state ({type(e).__name__})") from None
        for name, module, file in (("G", self.G, ckpt / "G.safetensors"), ("D", self.D, ckpt / "D.safetensors"),
                                   ("G_ema", self.G_ema, ckpt / GENERATOR_DIR / "generator.safetensors")):
            try:
                sd = load_file(str(file))
            except Exception as e:  # noqa: BLE001
                raise CheckpointError(f"{file}: unreadable ({e})") from None
            check_state_dict(module.state_dict(), sd, str(file))
            check_finite(sd, str(file))
            module.load_state_dict(sd)
        try:
            self.g_opt.load_state_dict(state["g_opt"])
            self.d_opt.load_state_dict(state["d_opt"])
            self.step, self.images = int(state["step"]), int(state["images"])
            self.train_seconds = float(state["train_seconds"])
            self.monitor.load_state(state.get("monitor", {}))
        except (KeyError, TypeError, ValueError, RuntimeError) as e:
            raise CheckpointError(f"{path}: does not fit this run ({type(e).__name__}: {str(e)[:200]})") from None
        self.last_checkpoint = ckpt
        if self.is_main:
            truncate_logs(self.run, self.step)
            for name in (SV_LOG,):
                from memorygan.fileio import rewrite_lines
                if (self.run / name).exists():
                    rewrite_lines(self.run / name, lambda r: r.get("step", 0) <= self.step)

    # ------------------------------------------------------------------ the loop
    def _time_up(self, deadline: float | None) -> bool:
        """The time limit. Processes reach it at different moments, so under torchrun they agree (a sum over
        processes) at log steps only; a single process checks every step."""
        if deadline is None:
            return False
        if self.world == 1:
            return self.train_seconds >= deadline
        if self.step % self.opts.log_every:
            return False
        flag = torch.tensor([float(self.train_seconds >= deadline)], device=self.device)
        return bool(distributed.all_sum(flag).item() > 0)

    def fit(self) -> TrainResult:
        o = self.opts
        total = self._total_steps()
        deadline = None if o.minutes is None else o.minutes * 60
        bar = None
        if o.progress and self.is_main:
            from tqdm import tqdm
            bar = tqdm(total=total, initial=self.step, desc="biggan", unit="step")
        try:
            while (total is None or self.step < total) and not self._time_up(deadline):
                self.train_step()
                if bar is not None:
                    bar.update(1)
                if self.step % o.log_every == 0:
                    row = self._log()
                    if bar is not None:
                        bar.set_postfix(d=f"{row.get('d_loss', 0):.3f}", g=f"{row.get('g_loss', 0):.3f}",
                                        refresh=False)
                if self.is_main and o.sample_every and self.step % o.sample_every == 0:
                    self.save_samples()
                if self.is_main and o.metrics_every and self.step % o.metrics_every == 0:
                    self.run_metrics()
                if o.checkpoint_every and self.step % o.checkpoint_every == 0:
                    self.save_checkpoint()
            if self._acc:
                self._log()
            if self.last_checkpoint is None or self.last_checkpoint.name != checkpoint_name(self.step):
                self.save_checkpoint()
                if self.is_main and o.sample_every:
                    self.save_samples()
        finally:
            if bar is not None:
                bar.close()
        return TrainResult(self.run, self.step, self.images / 1000, self.train_seconds / 60, self.last_checkpoint,
                           list(self.warnings))


def train(opts: BigGANTrainOptions | None = None, **kwargs) -> TrainResult:
    """Train a BigGAN run: `train(data=..., out=..., steps=...)` or with a `BigGANTrainOptions`."""
    opts = opts or BigGANTrainOptions(**kwargs)
    trainer = BigGANTrainer(opts)
    try:
        return trainer.fit()
    finally:
        trainer.close()
        distributed.shutdown()


def read_options(run) -> BigGANTrainOptions:
    cfg = read_run_config(run)
    if cfg.get("kind") != RUN_KIND:
        raise CheckpointError(f"{Path(run) / RUN_CONFIG}: not a BigGAN run (resume part-based runs with "
                              f"`memorygan train --resume`)")
    names = {f.name for f in dataclasses.fields(BigGANTrainOptions)}
    return BigGANTrainOptions(**{k: v for k, v in cfg["options"].items() if k in names})


def resume(run, more_steps: int | None = None, threads: int | None = None, progress: bool | None = None,
           data: str | None = None) -> TrainResult:
    """Continue a BigGAN run from its newest checkpoint, to its recorded limit or `more_steps` further."""
    opts = read_options(run)
    opts.out = str(run)
    if data is not None:
        opts.data = data
    if threads is not None:
        opts.threads = threads
    if progress is not None:
        opts.progress = progress
    trainer = BigGANTrainer(opts, resume=True)
    try:
        if more_steps is not None:
            if more_steps < 1:
                raise ConfigError(f"--more-steps must be >= 1, got {more_steps}")
            trainer.opts.steps, trainer.opts.kimg, trainer.opts.minutes = trainer.step + more_steps, None, None
        rec = read_run_config(run).get("dataset", {})
        now = trainer.dataset.fingerprint()
        if rec.get("fingerprint") and rec["fingerprint"] != now.get("fingerprint"):
            raise ConfigError(f"{opts.data} is not the data run {run} was trained on (fingerprint "
                              f"{now.get('fingerprint')} vs {rec['fingerprint']})")
        return trainer.fit()
    finally:
        trainer.close()
        distributed.shutdown()


def read_metrics(run) -> list[dict]:
    return read_lines(Path(run) / METRICS_LOG)
