"""`BigGANConfig`: the architecture of a class-conditional BigGAN / BigGAN-deep (G and D), and its presets.

Defaults and presets follow the authors' launch scripts (ajbrock/BigGAN-PyTorch, `scripts/launch_BigGAN_bs256x8.sh`,
`launch_BigGAN_deep.sh`), which the thesis trains (Sec. 2.3): hierarchical latents, a shared class embedding of
128, spectral norm in G and D (eps 1e-6), BatchNorm eps 1e-5, one self-attention block (at 64 px for 128-px
models). Presets are JSON files in `biggan/presets/`.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from importlib import resources

from memorygan.errors import ConfigError

ARCHS = ("biggan", "biggan-deep")
RESOLUTIONS = (64, 128, 256)

# channel multipliers per stage (BigGAN.py / BigGANdeep.py G_arch, D_arch)
_G_MULT = {64: [16, 16, 8, 4, 2], 128: [16, 16, 8, 4, 2, 1], 256: [16, 16, 8, 8, 4, 2, 1]}
_D_MULT = {64: [1, 2, 4, 8, 16], 128: [1, 2, 4, 8, 16, 16], 256: [1, 2, 4, 8, 8, 16, 16]}


@dataclass
class BigGANConfig:
    arch: str = "biggan"                  # biggan | biggan-deep
    resolution: int = 128
    num_classes: int = 1000               # image-level classes (categories)
    class_names: list[str] | None = None
    g_ch: int = 96                        # channel width multiplier of G (BigGAN's ch)
    d_ch: int = 96
    dim_z: int = 120                      # BigGAN: split in (stages + 1) chunks; BigGAN-deep: 128, not split
    shared_dim: int = 128                 # the shared class embedding
    hier: bool = True                     # hierarchical latents (z chunks into every conditional BatchNorm)
    g_attention: list[int] = field(default_factory=lambda: [64])   # resolutions with self-attention in G
    d_attention: list[int] = field(default_factory=lambda: [64])
    g_depth: int = 2                      # BigGAN-deep: blocks per stage
    d_depth: int = 2
    bn_eps: float = 1e-5
    sn_eps: float = 1e-6
    init: str = "ortho"                   # ortho | N02 | xavier

    def __post_init__(self):
        self.g_attention = [int(r) for r in self.g_attention]
        self.d_attention = [int(r) for r in self.d_attention]
        self.check()

    @property
    def deep(self) -> bool:
        return self.arch == "biggan-deep"

    @property
    def g_stages(self) -> int:
        """Up-sampling stages of G (from 4x4 to the resolution)."""
        return len(_G_MULT[self.resolution]) - 1

    @property
    def z_chunk(self) -> int:
        """Size of each z chunk of BigGAN's hierarchical latents (0 when z is not split)."""
        return self.dim_z // (self.g_stages + 1) if (self.hier and not self.deep) else 0

    @property
    def cond_dim(self) -> int:
        """Width of the vector that conditions each BatchNorm."""
        if self.deep:
            return self.shared_dim + self.dim_z if self.hier else self.shared_dim
        return self.shared_dim + self.z_chunk

    def check(self) -> None:
        def bad(name, why):
            raise ConfigError(f"BigGAN config field {name!r}: {why}")
        if self.arch not in ARCHS:
            bad("arch", f"unknown architecture {self.arch!r}; choose one of {', '.join(ARCHS)}")
        if self.resolution not in RESOLUTIONS:
            bad("resolution", f"{self.resolution} is not supported; choose one of {RESOLUTIONS}")
        if not 1 <= self.num_classes <= 100_000:
            bad("num_classes", f"must be between 1 and 100000, got {self.num_classes}")
        if self.class_names is not None and len(self.class_names) != self.num_classes:
            bad("class_names", f"{len(self.class_names)} names for {self.num_classes} classes")
        for name in ("g_ch", "d_ch", "dim_z", "shared_dim", "g_depth", "d_depth"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                bad(name, f"must be a positive integer, got {v!r}")
        if self.hier and not self.deep and self.dim_z % (self.g_stages + 1):
            bad("dim_z", f"{self.dim_z} does not split into {self.g_stages + 1} equal chunks (one per stage and one "
                         f"for the first linear layer); use a multiple of {self.g_stages + 1}")
        valid = sorted({4 * 2 ** i for i in range(1, self.g_stages + 1)})
        for name, res in (("g_attention", self.g_attention), ("d_attention", self.d_attention)):
            for r in res:
                if r not in valid:
                    bad(name, f"no stage at resolution {r}; choose from {valid}")
        for name, ch, att in (("g_ch", self.g_ch, self.g_attention), ("d_ch", self.d_ch, self.d_attention)):
            if att and ch % 8:
                bad(name, f"{ch}: self-attention needs a channel width divisible by 8")
        if self.init not in ("ortho", "N02", "xavier"):
            bad("init", f"unknown initialisation {self.init!r}; choose ortho, N02 or xavier")
        if not (self.bn_eps > 0 and self.sn_eps > 0):
            bad("bn_eps/sn_eps", "must be > 0")

    def g_channels(self) -> list[int]:
        """Channels at 4x4 and after each stage."""
        return [self.g_ch * m for m in _G_MULT[self.resolution]]

    def d_channels(self) -> list[int]:
        """BigGAN: the input of the first block is RGB; stage i maps channels[i] -> channels[i+1]."""
        return [self.d_ch * m for m in _D_MULT[self.resolution]]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict, where: str = "config") -> "BigGANConfig":
        if not isinstance(d, dict):
            raise ConfigError(f"{where}: expected a JSON object for the BigGAN config")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ConfigError(f"{where}: unknown BigGAN config fields {unknown}")
        try:
            return cls(**d)
        except TypeError as e:
            raise ConfigError(f"{where}: {e}") from None


PRESET_DIR = "presets"


def preset_names() -> list[str]:
    files = resources.files("memorygan.biggan").joinpath(PRESET_DIR).iterdir()
    return sorted(p.name[:-5] for p in files if p.name.endswith(".json"))


def read_preset(name: str) -> dict:
    """The preset's JSON: {"generator": {BigGANConfig fields}, "training": {train option defaults}, "notes": ...}."""
    if name not in preset_names():
        raise ConfigError(f"unknown BigGAN preset {name!r}; choose one of {', '.join(preset_names())}")
    text = resources.files("memorygan.biggan").joinpath(PRESET_DIR, f"{name}.json").read_text()
    return json.loads(text)


def biggan_config(preset: str, **overrides) -> BigGANConfig:
    """The BigGANConfig of a preset with fields overridden (e.g. num_classes, class_names)."""
    d = dict(read_preset(preset)["generator"])
    d.update({k: v for k, v in overrides.items() if v is not None})
    return BigGANConfig.from_dict(d, f"preset {preset}")
