"""Training options (DESIGN 3): one JSON-serialisable dataclass holding every knob of a run, with the paper values
as defaults. The resolved options are written to `RUN/config.json`, and `--resume RUN` reads them back."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from memorygan.errors import ConfigError


# Options whose default comes from the preset when it recommends one (None in TrainOptions), else the paper value.
# R1 on the mask: SemanticStyleGAN's 1000 is tuned for 256/512 px; at 64 px it smooths the mask branch of D so much
# that the generator's masks stay collapsed to background for the first ~1000 steps. The small presets used 100
# (docs/training.md, "Tuning the small presets"); since issue 26 they use 10, which at 32 kimg gave both models
# higher mask mIoU, lower domain FID and far more samples with eyes and mouth (docs/training.md, issue 26).
# The small presets also recommend their recipe for small budgets (issue 26, docs/training.md): the image R1 gamma
# and the discriminator augmentation; the paper values stay the defaults of every other preset.
PRESET_DEFAULTS = {"r1_gamma_mask": 1000.0, "r1_gamma": 10.0, "augment": "none"}


_KIND_NAMES = {"str": "a string", "bool": "true or false", "dict": "an object", "int": "an integer",
               "float": "a number"}


@dataclass
class TrainOptions:
    data: str = ""                      # dataset folder (DESIGN 4 format)
    preset: str = "memorygan-small"     # generator/discriminator preset name or JSON path
    out: str = ""                       # run directory (must not exist yet, or be empty)
    generator_overrides: dict = field(default_factory=dict)   # GeneratorConfig fields overriding the preset
    # --- duration: training stops at the first limit reached (at least one must be set)
    kimg: float | None = None           # thousands of real images shown to D
    steps: int | None = None            # optimisation steps
    minutes: float | None = None        # wall-clock training time, excluding metrics/snapshots/checkpoints
    # --- batch
    batch: int = 8                      # global batch size (all processes, all accumulation rounds)
    accum: int = 1                      # gradient accumulation rounds per step (per process)
    # --- optimisation (DESIGN 3)
    lr: float = 0.002
    lstm_lr: float = 1e-4               # MemoryGAN's LSTM (paper: spikes at 0.002)
    beta1: float = 0.0
    beta2: float = 0.99
    r1_gamma: float | None = None       # R1 on the real image; None: the preset's "training" value, else paper 10
    r1_gamma_mask: float | None = None  # R1 on the real mask; None: the preset's "training" value, else paper 1000
    d_reg_every: int = 16
    pl_weight: float = 0.5
    g_reg_every: int = 4
    pl_batch_shrink: int = 2
    pl_decay: float = 0.01
    lambda_mask: float = 100.0
    loss: str = "logistic"              # adversarial loss: logistic (StyleGAN2, SSG) or hinge (BigGAN, Projected GAN)
    kl_weight: float = 1e-4             # MemoryGAN only
    mixing: float = 0.3
    ema_kimg: float = 10.0
    ema_rampup: float | None = 0.05
    clip_grad: float | None = None      # max global gradient norm per network; None: no clipping
    bf16: bool = False                  # bf16 autocast for the main (non-regularisation) passes
    noise_mode: str = "random"          # render-net noise during training
    mirror: bool = False                # x-flip augmentation (doubles the dataset, deterministic order)
    # --- discriminator augmentation (training/augment.py): image and mask in step, colour on the image only
    augment: str | None = None          # none | diffaug (DiffAugment, p = 1) | ada (StyleGAN2-ADA's adaptive p);
                                        # None: the preset's "training" value, else none
    augment_ops: str = ""               # comma-separated ops instead of the policy's (augment.ALL_OPS)
    augment_p: float | None = None      # initial (ada) or fixed probability per op; None: 1 for diffaug, 0 for ada
    ada_target: float = 0.6             # ADA's target r_t = E[sign(D(real))]
    ada_kimg: float = 100.0             # ADA: images (kimg) for p to move by 1 (StyleGAN2-ADA: 500 at its budgets)
    ada_interval: int = 4               # ADA: steps between adjustments
    discriminator_overrides: dict = field(default_factory=dict)   # DiscriminatorConfig fields overriding the preset
    seed: int = 0
    # --- bookkeeping
    log_every: int = 10                 # steps per stats.jsonl line (averages)
    sample_every: int = 200             # steps between sample grids (0: only at start and end)
    checkpoint_every: int = 1000        # steps between checkpoints (0: only at the end)
    metrics_every: int = 0              # steps between domain metrics (0: only at start and end; needs a probe)
    metrics_samples: int = 1000
    probe: str | None = None            # probe folder; default DATA/probe when it exists
    keep: int = 3                       # checkpoints kept (the newest N)
    max_nonfinite: int = 10             # consecutive non-finite steps before training stops
    num_samples_grid: int = 8
    device: str = "auto"                # auto: the GPU when torch sees one (memorygan.devices)
    threads: int | None = None          # torch intra-op threads (None: torch's default)
    progress: bool = True

    def check_types(self) -> "TrainOptions":
        """Every option has its annotated type (a run's config.json is untrusted input): integers are not bools,
        floats are finite numbers (`--lr inf` is refused), None only where the annotation allows it."""
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            kinds = [k.strip() for k in str(f.type).split("|")]
            flag = "--" + f.name.replace("_", "-")
            if v is None:
                if "None" not in kinds:
                    raise ConfigError(f"training option {flag} must not be null")
                continue
            kind = kinds[0]
            ok = {"str": isinstance(v, str), "bool": isinstance(v, bool), "dict": isinstance(v, dict),
                  "int": isinstance(v, int) and not isinstance(v, bool),
                  "float": isinstance(v, (int, float)) and not isinstance(v, bool)}.get(kind, True)
            if not ok:
                raise ConfigError(f"training option {flag} must be {_KIND_NAMES.get(kind, kind)}, got {v!r}")
            if kind == "float" and not math.isfinite(v):
                raise ConfigError(f"training option {flag} must be a finite number, got {v!r}")
        return self

    def validate(self) -> "TrainOptions":
        def need(cond, msg):
            if not cond:
                raise ConfigError(f"training option {msg}")
        self.check_types()
        need(self.data, "--data is required")
        need(self.out, "--out is required")
        need(any(v is not None for v in (self.kimg, self.steps, self.minutes)),
             "duration: give at least one of --kimg, --steps, --minutes")
        for name in ("kimg", "minutes"):
            v = getattr(self, name)
            need(v is None or (isinstance(v, (int, float)) and v > 0 and math.isfinite(v)), f"--{name} must be > 0, got {v!r}")
        need(self.steps is None or (isinstance(self.steps, int) and self.steps >= 0), f"--steps must be >= 0, got {self.steps!r}")
        for name in ("batch", "accum", "d_reg_every", "g_reg_every", "pl_batch_shrink", "log_every", "keep",
                     "max_nonfinite", "num_samples_grid", "metrics_samples"):
            v = getattr(self, name)
            need(isinstance(v, int) and not isinstance(v, bool) and v >= 1, f"--{name.replace('_', '-')} must be an integer >= 1, got {v!r}")
        for name in ("sample_every", "checkpoint_every", "metrics_every"):
            v = getattr(self, name)
            need(isinstance(v, int) and v >= 0, f"--{name.replace('_', '-')} must be an integer >= 0, got {v!r}")
        for name in ("lr", "lstm_lr", "ema_kimg"):
            need(getattr(self, name) > 0, f"--{name.replace('_', '-')} must be > 0, got {getattr(self, name)!r}")
        for name in ("pl_weight", "lambda_mask", "kl_weight", "pl_decay"):
            need(getattr(self, name) >= 0, f"--{name.replace('_', '-')} must be >= 0, got {getattr(self, name)!r}")
        for name in ("r1_gamma", "r1_gamma_mask"):           # None until the preset's recommendation fills it
            v = getattr(self, name)
            need(v is None or v >= 0, f"--{name.replace('_', '-')} must be >= 0, got {v!r}")
        need(0 <= self.beta1 < 1 and 0 <= self.beta2 < 1, f"betas must be in [0, 1), got {self.beta1}, {self.beta2}")
        need(0 <= self.mixing <= 1, f"--mixing must be in [0, 1], got {self.mixing!r}")
        need(self.clip_grad is None or self.clip_grad > 0, f"--clip-grad must be > 0, got {self.clip_grad!r}")
        need(self.loss in ("logistic", "hinge"), f"--loss must be logistic or hinge, got {self.loss!r}")
        need(self.noise_mode in ("const", "random", "none"), f"--noise-mode must be const/random/none, got {self.noise_mode!r}")
        need(self.ema_rampup is None or self.ema_rampup > 0, f"--ema-rampup must be > 0, got {self.ema_rampup!r}")
        need(self.threads is None or self.threads >= 1, f"--threads must be >= 1, got {self.threads!r}")
        from memorygan.training.augment import parse_ops
        if self.augment is not None:
            ops = parse_ops(self.augment_ops, self.augment)
            need(not (self.augment == "none" and ops), "--augment-ops needs --augment diffaug or ada")
        need(self.augment_p is None or 0 <= self.augment_p <= 1, f"--augment-p must be in [0, 1], got {self.augment_p!r}")
        need(0 < self.ada_target < 1, f"--ada-target must be in (0, 1), got {self.ada_target!r}")
        need(self.ada_kimg > 0, f"--ada-kimg must be > 0, got {self.ada_kimg!r}")
        need(isinstance(self.ada_interval, int) and self.ada_interval >= 1,
             f"--ada-interval must be an integer >= 1, got {self.ada_interval!r}")
        return self

    def with_preset_defaults(self, preset: dict) -> "TrainOptions":
        """Fill the options left at None that a preset may recommend (its "training" section), else the paper
        values (`PRESET_DEFAULTS`). The run's config.json records the resolved numbers, so resume is exact."""
        recommended = preset.get("training", {})
        unknown = sorted(set(recommended) - set(PRESET_DEFAULTS))
        if unknown:
            raise ConfigError(f"preset 'training' section: unknown or non-recommendable option(s) "
                              f"{', '.join(unknown)} (allowed: {', '.join(PRESET_DEFAULTS)})")
        for name, paper in PRESET_DEFAULTS.items():
            if getattr(self, name) is None:
                value = recommended.get(name, paper)
                kind = type(paper)
                if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
                    value = float(value)
                if not isinstance(value, kind):
                    raise ConfigError(f"preset 'training' section: {name} must be {_KIND_NAMES[kind.__name__]}, "
                                      f"got {value!r}")
                setattr(self, name, value)
        return self

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainOptions":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ConfigError(f"unknown training option(s): {', '.join(unknown)}")
        return cls(**d).check_types()
