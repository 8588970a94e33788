"""Typed model configurations and presets.

Dataclasses with paper defaults; presets are JSON files in `memorygan/presets/` (`{"generator": {...},
"discriminator": {...}}`). Every check names the field it rejects.
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path

from memorygan.errors import ConfigError

ARCHS = ("memorygan", "ssg")
D_ARCHS = ("dual", "projected", "hybrid")

# Hard upper bounds of the integer fields: far above any published model, low enough that a hostile or mistyped
# config is refused before anything is allocated (the parameter memory is checked separately, against a limit the
# user can raise: `memorygan.models.check_model_size`).
FIELD_MAX = {"resolution": 4096, "num_classes": 65536, "latent_dim": 16384, "mapping_layers": 64,
             "local_layers": 64, "base_layers": 64, "depth_layers": 64, "local_channels": 16384,
             "coarse_channels": 16384, "coarse_size": 4096, "min_feat_size": 4096, "channel_base": 1 << 24,
             "channel_max": 16384, "controller_const_dim": 16384, "controller_mlp_dim": 16384,
             "controller_hidden_dim": 16384, "mbstd_group": 1024, "mbstd_features": 1024,
             "projected_size": 1024, "projected_width": 4096}


def _check_types(obj, bad) -> None:
    """Every field has its annotated type (JSON gives no guarantee): ints are not bools or floats, floats are
    finite numbers, bools are true/false, and integers stay within `FIELD_MAX`."""
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
        if kind == "int":
            if not isinstance(v, int) or isinstance(v, bool):
                bad(f.name, "must be an integer")
            if f.name in FIELD_MAX and v > FIELD_MAX[f.name]:
                bad(f.name, f"must be at most {FIELD_MAX[f.name]}")
        elif kind == "float":
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
                bad(f.name, "must be a finite number")
        elif kind == "bool":
            if not isinstance(v, bool):
                bad(f.name, "must be true or false")
        elif kind == "str":
            if not isinstance(v, str):
                bad(f.name, "must be a string")


def _is_pow2(n: int) -> bool:
    return isinstance(n, int) and n > 0 and (n & (n - 1)) == 0


def _from_dict(cls, data: dict, where: str):
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a JSON object, got {type(data).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {unknown}; known fields: {sorted(names)}")
    return cls(**data)


def channels_for(resolution: int, channel_base: int, channel_max: int) -> int:
    """StyleGAN2-ADA channel rule; base 32768 / max 512 reproduces the StyleGAN2 table with multiplier 2."""
    return min(channel_base // resolution, channel_max)


@dataclass
class GeneratorConfig:
    """Generator architecture (both models). Defaults: the papers' 256 px CelebAMask-HQ model."""
    arch: str = "memorygan"                 # "memorygan" (shared local generator + LSTM controller) or "ssg"
    resolution: int = 256                   # output size
    num_classes: int = 13                   # K, background is class 0
    class_names: list[str] | None = None    # K names, id order
    transparent_classes: list[int] = field(default_factory=list)  # ids added on top (eyeglasses, earrings)
    latent_dim: int = 512                   # D
    mapping_layers: int = 8                 # SSG mapping / MemoryGAN MLP_latent depth
    mapping_lr_mul: float = 0.01
    local_layers: int = 10                  # L
    base_layers: int = 2                    # layers [0, base_layers) read the base code
    depth_layers: int = 6                   # pseudo-depth read after layer depth_layers-1
    local_channels: int = 64
    coarse_channels: int = 512              # per-part feature width
    coarse_size: int = 64                   # Hc = Wc
    min_feat_size: int = 16                 # render net input size
    channel_base: int = 32768               # render channels: min(channel_base // res, channel_max)
    channel_max: int = 512
    residual_refine: bool = True            # final seg = upsampled coarse mask + learned residual
    # MemoryGAN working memory (controller). 512/256/256 gives 17.72 M params at 256 px, K=1 (paper: 17.7 M).
    controller_const_dim: int = 512         # V_bkg, V_base
    controller_mlp_dim: int = 256           # hidden width of the background/base MLPs
    controller_hidden_dim: int = 256        # LSTM hidden size

    def __post_init__(self):
        self.validate()

    def render_channels(self, res: int) -> int:
        return channels_for(res, self.channel_base, self.channel_max)

    def validate(self) -> None:
        def bad(name, msg):
            raise ConfigError(f"GeneratorConfig.{name} {msg} (got {getattr(self, name)!r})")

        _check_types(self, bad)
        if self.arch not in ARCHS:
            bad("arch", f"must be one of {list(ARCHS)}")
        if self.class_names is not None and not (isinstance(self.class_names, list)
                                                 and all(isinstance(c, str) for c in self.class_names)):
            bad("class_names", "must be a list of strings")
        if not isinstance(self.transparent_classes, list):
            bad("transparent_classes", "must be a list of class ids")
        for name in ("num_classes", "latent_dim", "local_layers", "local_channels", "coarse_channels",
                     "mapping_layers", "controller_const_dim", "controller_mlp_dim", "controller_hidden_dim",
                     "channel_base", "channel_max"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                bad(name, "must be an integer >= 1")
        if not _is_pow2(self.resolution) or self.resolution < 8:
            bad("resolution", "must be a power of two >= 8")
        if not _is_pow2(self.coarse_size):
            bad("coarse_size", "must be a power of two")
        if self.coarse_size >= self.resolution:
            bad("coarse_size", f"must be smaller than resolution={self.resolution}")
        if not _is_pow2(self.min_feat_size) or self.min_feat_size > self.coarse_size:
            bad("min_feat_size", f"must be a power of two <= coarse_size={self.coarse_size}")
        if not (isinstance(self.base_layers, int) and 0 <= self.base_layers):
            bad("base_layers", "must be an integer >= 0")
        if not (isinstance(self.depth_layers, int) and self.base_layers < self.depth_layers):
            bad("depth_layers", f"must be > base_layers={self.base_layers}")
        if self.depth_layers > self.local_layers:
            bad("depth_layers", f"must be <= local_layers={self.local_layers}")
        if not self.mapping_lr_mul > 0:
            bad("mapping_lr_mul", "must be > 0")
        if self.class_names is not None and len(self.class_names) != self.num_classes:
            bad("class_names", f"must have num_classes={self.num_classes} entries")
        for t in self.transparent_classes:
            if not isinstance(t, int) or isinstance(t, bool) or not 1 <= t < self.num_classes:
                bad("transparent_classes", f"entries must be class ids in [1, {self.num_classes - 1}]")
        if self.channel_max < 1 or self.render_channels(self.resolution) < 1:
            bad("channel_base", f"gives 0 channels at resolution {self.resolution}")

    @property
    def num_fourier_freqs(self) -> int:
        return int(math.log2(self.resolution))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "GeneratorConfig":
        return _from_dict(cls, data, "generator config")


@dataclass
class DiscriminatorConfig:
    """Dual-branch discriminator (DESIGN 2.7), or the projected one (models/projected.py, issue 26)."""
    resolution: int = 256
    num_classes: int = 13                   # seg-branch input channels
    channel_base: int = 32768
    channel_max: int = 512
    mbstd_group: int = 4
    mbstd_features: int = 1
    arch: str = "dual"                      # "dual" (SemanticStyleGAN's), "projected" (EfficientNet-Lite0 features) or
                                            # "hybrid" (both, half the loss each)
    projected_size: int = 128               # projected: the image is resized to this before the feature network
    projected_width: int = 64               # projected: CCM widths width x (1, 2, 4, 8) (Projected GAN: 64)
    projected_mask: str = "concat"          # projected: "concat" (mask joins every scale) or "none" (image only)
    projected_seed: int = 0                 # projected: the fixed random CCM/CSM weights
    projected_share: float = 0.5            # hybrid: the projected D's share of the loss (the dual D has the rest)

    def __post_init__(self):
        self.validate()

    def channels(self, res: int) -> int:
        return channels_for(res, self.channel_base, self.channel_max)

    def validate(self) -> None:
        def bad(name, msg):
            raise ConfigError(f"DiscriminatorConfig.{name} {msg} (got {getattr(self, name)!r})")

        _check_types(self, bad)
        if not _is_pow2(self.resolution) or self.resolution < 8:
            bad("resolution", "must be a power of two >= 8")
        for name in ("num_classes", "channel_base", "channel_max", "mbstd_group", "mbstd_features",
                     "projected_width"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                bad(name, "must be an integer >= 1")
        if self.arch not in D_ARCHS:
            bad("arch", f"must be one of {list(D_ARCHS)}")
        if not 0 < self.projected_share <= 0.5:
            bad("projected_share", "must be in (0, 0.5]")
        if self.projected_mask not in ("concat", "none"):
            bad("projected_mask", "must be 'concat' or 'none'")
        if not _is_pow2(self.projected_size) or self.projected_size < 32:
            bad("projected_size", "must be a power of two >= 32 (the feature network's /32 stage)")
        if self.channels(self.resolution) < 1:
            bad("channel_base", f"gives 0 channels at resolution {self.resolution}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "DiscriminatorConfig":
        return _from_dict(cls, data, "discriminator config")


# ------------------------------------------------------------------------------------------------ presets

def preset_names() -> list[str]:
    files = resources.files("memorygan.presets")
    return sorted(p.name[:-5] for p in files.iterdir() if p.name.endswith(".json"))


def load_preset(name_or_path: str) -> dict:
    """A preset by name (`memorygan-256`) or a path to a JSON file. Returns the raw dict (generator, discriminator, ...)."""
    path = Path(name_or_path)
    if path.suffix == ".json" and path.exists():
        from memorygan.fileio import read_json
        data, where = read_json(path, ConfigError, "preset"), str(path)
    else:
        res = resources.files("memorygan.presets") / f"{name_or_path}.json"
        if not res.is_file():
            raise ConfigError(f"unknown preset {name_or_path!r}; available: {', '.join(preset_names())} "
                              "(or a path to a .json file)")
        data, where = json.loads(res.read_text()), f"preset {name_or_path}"
    if not isinstance(data.get("generator"), dict):
        raise ConfigError(f"{where}: missing the 'generator' section (an object)")
    for section in ("discriminator", "training"):
        if section in data and not isinstance(data[section], dict):
            raise ConfigError(f"{where}: '{section}' must be an object")
    return data


def generator_config(preset: str, **overrides) -> GeneratorConfig:
    """GeneratorConfig of a preset with fields overridden (e.g. `num_classes=100`)."""
    data = dict(load_preset(preset)["generator"])
    data.update(overrides)
    return GeneratorConfig.from_dict(data)


def discriminator_config(preset: str, **overrides) -> DiscriminatorConfig:
    raw = load_preset(preset)
    data = dict(raw.get("discriminator", {}))
    data.setdefault("resolution", raw["generator"].get("resolution", 256))
    data.setdefault("num_classes", raw["generator"].get("num_classes", 13))
    data.update(overrides)
    return DiscriminatorConfig.from_dict(data)
