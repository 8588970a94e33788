"""The encoder network (pSp, Richardson et al. 2021, adapted to part codes): image -> a generator's latent codes in
one forward pass.

    backbone   conv stem + 4 residual down blocks (GroupNorm, LeakyReLU): res -> res/2 -> /4 -> /8 -> /16
    pyramid    pSp's feature pyramid: 1x1 laterals of the /4, /8, /16 maps, top-down sum (fine, medium, coarse)
    heads      one per code group and pyramid level (pSp's map2style: stride-2 convs down to 4x4, then a linear
               layer to the group's codes); a group read from two levels sums their heads

Code groups follow the generator's latents (`CompositionalGenerator.map_z`), so coarse features predict the codes
of the whole layout and fine features the textures (pSp's coarse / medium / fine split):

    MemoryGAN  base latent <- coarse;  the K part latents <- medium + fine
    SSG W+     base codes  <- coarse;  the K shape codes <- medium;  the K texture codes <- fine

The encoder predicts codes of `level` (latents, or for MemoryGAN the working memory's queries, which the generator
maps to latents itself: the part latents then stay on the generator's own mapping, e4e's aim) in units of their
per-dimension spread: codes = mean + std * u, with mean and std estimated from the generator's samples and stored
in the encoder, so one loss weight fits every code.

The input is the image and the generator's current reconstruction of it, stacked (B, 6, H, W): the first pass
sees the render of the mean codes, each further pass (ReStyle, Alaluf et al. 2021) the previous pass's render, and
adds a correction to the previous pass's units. One pass is plain pSp.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from memorygan.errors import CheckpointError, ConfigError

ENCODER_FORMAT = "memorygan-encoder"
ENCODER_VERSION = 1
WEIGHTS = "encoder.safetensors"
META = "encoder.json"
PYRAMID = ("fine", "medium", "coarse")          # res/4, res/8, res/16
LEVELS = ("latents", "queries")


@dataclass
class EncoderConfig:
    arch: str                                   # the generator's: memorygan | ssg
    resolution: int
    num_codes: int                              # M: codes at the level
    latent_dim: int
    level: str = "latents"                      # latents | queries (MemoryGAN)
    groups: list = field(default_factory=list)  # [{"name", "index": [code indices], "levels": [pyramid names]}]
    channels: tuple = (32, 64, 128, 256)        # the four down blocks
    stem_channels: int = 32
    pyramid_channels: int = 128
    head_channels: int = 64
    passes: int = 1                             # refinement passes used by default at inference
    generator: str = ""                         # fingerprint of the generator the codes belong to
    num_classes: int = 0
    part_names: list = field(default_factory=list)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["channels"] = list(self.channels)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "EncoderConfig":
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        cfg = cls(**known)
        cfg.channels = tuple(int(c) for c in cfg.channels)
        return cfg.check()

    def check(self) -> "EncoderConfig":
        if self.level not in LEVELS:
            raise ConfigError(f"encoder level must be one of {', '.join(LEVELS)}, got {self.level!r}")
        if self.resolution < 16 or self.resolution & (self.resolution - 1):
            raise ConfigError(f"encoder resolution must be a power of two >= 16, got {self.resolution}")
        if len(self.channels) != 4 or min(self.channels) < 1:
            raise ConfigError(f"encoder channels must be four positive numbers, got {list(self.channels)}")
        covered = sorted(i for g in self.groups for i in g["index"])
        if covered != list(range(self.num_codes)):
            raise ConfigError(f"encoder code groups must cover codes 0..{self.num_codes - 1} once each, got {covered}")
        for g in self.groups:
            bad = [lv for lv in g["levels"] if lv not in PYRAMID]
            if bad or not g["levels"]:
                raise ConfigError(f"encoder group {g['name']}: pyramid levels must be among {PYRAMID}, got "
                                  f"{g['levels']}")
        if self.passes < 1:
            raise ConfigError(f"encoder passes must be >= 1, got {self.passes}")
        return self


def code_groups(G, level: str = "latents") -> list[dict]:
    """The generator's codes at `level` split into the groups the heads predict (module docstring)."""
    cfg = G.config
    if G.arch == "memorygan":
        return [{"name": "base", "index": [0], "levels": ["coarse"]},
                {"name": "parts", "index": list(range(1, 1 + cfg.num_classes)), "levels": ["medium", "fine"]}]
    if level != "latents":
        raise ConfigError(f"--level {level}: only MemoryGAN has query codes; SemanticStyleGAN's encoder predicts "
                          "its W+ latents")
    nb, k = cfg.base_layers, cfg.num_classes
    groups = [{"name": "base", "index": list(range(nb)), "levels": ["coarse"]}] if nb else []
    groups += [{"name": "shape", "index": [nb + 2 * j for j in range(k)], "levels": ["medium"]},
               {"name": "texture", "index": [nb + 2 * j + 1 for j in range(k)], "levels": ["fine"]}]
    return groups


def _gn(c: int) -> nn.GroupNorm:
    return nn.GroupNorm(math.gcd(c, 8), c)


class DownBlock(nn.Module):
    """conv3x3 stride 2 + conv3x3, GroupNorm + LeakyReLU(0.2), plus a pooled 1x1 shortcut."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=2, padding=1)
        self.norm1 = _gn(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.norm2 = _gn(cout)
        self.skip = nn.Conv2d(cin, cout, 1, bias=False)

    def forward(self, x):
        h = F.leaky_relu(self.norm1(self.conv1(x)), 0.2)
        h = F.leaky_relu(self.norm2(self.conv2(h)), 0.2)
        return (h + self.skip(F.avg_pool2d(x, 2))) / math.sqrt(2)


class CodeHead(nn.Module):
    """pSp's map2style: stride-2 convs from a pyramid map (C, s, s) down to 4x4, then a linear layer to n codes."""

    def __init__(self, cin: int, size: int, hidden: int, n: int, dim: int):
        super().__init__()
        layers, c = [], cin
        while size > 4:
            layers += [nn.Conv2d(c, hidden, 3, stride=2, padding=1), nn.LeakyReLU(0.2)]
            c, size = hidden, size // 2
        layers += [nn.Conv2d(c, hidden, 3, padding=1), nn.LeakyReLU(0.2)]
        self.convs = nn.Sequential(*layers)
        self.linear = nn.Linear(hidden * size * size, n * dim)
        nn.init.zeros_(self.linear.bias)
        self.linear.weight.data.mul_(0.1)     # start near the mean codes (u = 0)
        self.n, self.dim = n, dim

    def forward(self, f):
        return self.linear(self.convs(f).flatten(1)).view(-1, self.n, self.dim)


class Encoder(nn.Module):
    """(image, current render) (B, 6, H, W) in [-1, 1] -> units u (B, M, D) of the codes at the encoder's level.
    Buffers: `mean`, `std` (M, D) of the codes (codes = mean + std * u) and `mean_image` (3, H, W), the render of
    the mean codes that the first pass sees."""

    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.config = cfg.check()
        c0 = cfg.stem_channels
        self.stem = nn.Sequential(nn.Conv2d(6, c0, 3, padding=1), nn.LeakyReLU(0.2))
        chans = [c0, *cfg.channels]
        self.blocks = nn.ModuleList(DownBlock(chans[i], chans[i + 1]) for i in range(4))
        p = cfg.pyramid_channels
        # blocks[1] -> res/4 (fine), blocks[2] -> res/8 (medium), blocks[3] -> res/16 (coarse)
        self.lateral = nn.ModuleDict({"fine": nn.Conv2d(chans[2], p, 1), "medium": nn.Conv2d(chans[3], p, 1),
                                      "coarse": nn.Conv2d(chans[4], p, 1)})
        sizes = {"fine": cfg.resolution // 4, "medium": cfg.resolution // 8, "coarse": cfg.resolution // 16}
        self.heads = nn.ModuleDict()
        for g in cfg.groups:
            for lv in g["levels"]:
                self.heads[f"{g['name']}_{lv}"] = CodeHead(p, sizes[lv], cfg.head_channels, len(g["index"]),
                                                           cfg.latent_dim)
        m, d, r = cfg.num_codes, cfg.latent_dim, cfg.resolution
        self.register_buffer("mean", torch.zeros(m, d))
        self.register_buffer("std", torch.ones(m, d))
        self.register_buffer("mean_image", torch.zeros(3, r, r))
        order = torch.tensor([i for g in cfg.groups for i in g["index"]], dtype=torch.long)
        self.register_buffer("order", torch.argsort(order), persistent=False)   # group order -> code order

    @property
    def device(self) -> torch.device:
        return self.mean.device

    def pyramid(self, x: torch.Tensor) -> dict:
        h = self.stem(x)
        feats = []
        for blk in self.blocks:
            h = blk(h)
            feats.append(h)
        coarse = self.lateral["coarse"](feats[3])
        medium = self.lateral["medium"](feats[2]) + F.interpolate(coarse, scale_factor=2, mode="nearest")
        fine = self.lateral["fine"](feats[1]) + F.interpolate(medium, scale_factor=2, mode="nearest")
        return {"fine": fine, "medium": medium, "coarse": coarse}

    def forward(self, image: torch.Tensor, current: torch.Tensor | None = None) -> torch.Tensor:
        """Units u (B, M, D) predicted from `image` (B, 3, H, W) and the current render (default: the mean codes'
        render, the first pass)."""
        r = self.config.resolution
        if image.ndim != 4 or image.shape[1] != 3 or tuple(image.shape[2:]) != (r, r):
            raise ConfigError(f"encoder input must be (B, 3, {r}, {r}) images, got {tuple(image.shape)}")
        if current is None:
            current = self.mean_image[None].expand(image.shape[0], -1, -1, -1)
        f = self.pyramid(torch.cat([image, current.to(image.dtype)], 1))
        out = []
        for g in self.config.groups:
            out.append(sum(self.heads[f"{g['name']}_{lv}"](f[lv]) for lv in g["levels"]))
        return torch.cat(out, 1)[:, self.order]

    def codes(self, u: torch.Tensor) -> torch.Tensor:
        return self.mean[None] + self.std[None] * u

    def units(self, codes: torch.Tensor) -> torch.Tensor:
        return (codes - self.mean[None]) / self.std[None]


# ---------------------------------------------------------------------------------------------------- construction

@torch.no_grad()
def code_statistics(G, level: str, n: int = 2000, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, std) (M, D) of G's codes at `level` over n samples (SSG: one mean and spread shared by every W+ code,
    since a sample's W+ codes are one w; MemoryGAN: per code)."""
    g = torch.Generator().manual_seed(seed)
    vals = []
    for start in range(0, n, 500):
        vals.append(G.map_z(G.sample_z(min(500, n - start), generator=g))[level])
    vals = torch.cat(vals).float()
    if G.arch == "memorygan":
        mean, std = vals.mean(0), vals.std(0)
    else:
        mean = vals.mean((0, 1)).expand(vals.shape[1], -1)
        std = vals.std((0, 1)).expand(vals.shape[1], -1)
    std = std.clamp_min(1e-6 * float(std.mean().clamp_min(1e-12)))
    return mean.contiguous(), std.contiguous()


def latents_of(G, level: str, codes: torch.Tensor) -> torch.Tensor:
    """Codes at the encoder's level -> the generator's latents (queries go through MemoryGAN's latent MLP)."""
    return G.mlp_latent(codes) if level == "queries" else codes


@torch.no_grad()
def build_encoder(G, level: str = "latents", passes: int = 1, stats_samples: int = 2000, **sizes) -> Encoder:
    """An untrained encoder for G: groups from G's latents, code statistics and the mean codes' render from G."""
    from memorygan.checkpoint import generator_fingerprint

    if level not in LEVELS:
        raise ConfigError(f"--level must be one of {', '.join(LEVELS)}, got {level!r}")
    if level == "queries" and G.arch != "memorygan":
        raise ConfigError("--level queries: only MemoryGAN has query codes")
    mean, std = code_statistics(G, level, stats_samples)
    cfg = EncoderConfig(arch=G.arch, resolution=G.config.resolution, num_codes=mean.shape[0],
                        latent_dim=mean.shape[1], level=level, groups=code_groups(G, level), passes=passes,
                        generator=generator_fingerprint(G), num_classes=G.num_classes,
                        part_names=list(G.part_names), **sizes)
    E = Encoder(cfg).to(G.device)
    E.mean.copy_(mean)
    E.std.copy_(std)
    E.mean_image.copy_(render(G, level, mean[None].to(G.device))["image"][0])
    return E


def render(G, level: str, codes: torch.Tensor) -> dict:
    """G's output dict (image, seg) for codes at the encoder's level, with G's constant noise."""
    return G.synthesize(G.expand(latents_of(G, level, codes)), noise_mode="const")


# ---------------------------------------------------------------------------------------------------- files

def save_encoder(E: Encoder, out, meta: dict | None = None) -> Path:
    """Write encoder.safetensors + encoder.json into the folder `out` (atomic rename; never pickle)."""
    from safetensors.torch import save_file

    from memorygan.checkpoint import state_dict_for_saving

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / f".{WEIGHTS}.tmp"
    save_file(state_dict_for_saving(E), str(tmp), metadata={"format": ENCODER_FORMAT})
    tmp.replace(out / WEIGHTS)
    record = {"format": ENCODER_FORMAT, "version": ENCODER_VERSION, "config": E.config.to_dict(), **(meta or {})}
    tmpj = out / f".{META}.tmp"
    tmpj.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    tmpj.replace(out / META)
    return out


def read_encoder_meta(path) -> dict:
    path = Path(path)
    meta_path = path / META
    if not path.is_dir():
        raise CheckpointError(f"encoder {path}: no such folder")
    if not meta_path.is_file():
        raise CheckpointError(f"encoder {path}: not an encoder folder ({META} is missing; encoders are written by "
                              "`memorygan encoder train`)")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{meta_path}: not valid JSON ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != ENCODER_FORMAT:
        raise CheckpointError(f"{meta_path}: not a {ENCODER_FORMAT} file")
    if meta.get("version") != ENCODER_VERSION:
        raise CheckpointError(f"{meta_path}: {ENCODER_FORMAT} version {meta.get('version')!r}, this memorygan reads "
                              f"version {ENCODER_VERSION}")
    return meta


def load_encoder(path, G=None, device: str | torch.device | None = None) -> tuple[Encoder, dict]:
    """Load an encoder folder -> (encoder in eval mode, metadata + "checksum"). With G: refuse an encoder trained
    for another generator (its fingerprint), since its codes would mean other images."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from memorygan.checkpoint import check_finite, check_state_dict, generator_fingerprint

    path = Path(path)
    meta = read_encoder_meta(path)
    try:
        cfg = EncoderConfig.from_dict(meta["config"])
        E = Encoder(cfg)
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path / META}: invalid encoder description ({e})") from None
    weights = path / WEIGHTS
    if not weights.is_file():
        raise CheckpointError(f"encoder {path}: {WEIGHTS} is missing")
    raw = weights.read_bytes()
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{weights}: not a readable safetensors file ({e})") from None
    check_state_dict(E.state_dict(), state, str(weights))
    check_finite(state, str(weights))
    E.load_state_dict(state, strict=True)
    if G is not None:
        fp = generator_fingerprint(G)
        if cfg.generator and cfg.generator != fp:
            raise CheckpointError(f"encoder {path} was trained for another generator (fingerprint {cfg.generator}, "
                                  f"this one is {fp}); train one with `memorygan encoder train --generator ...`")
        if device is None:
            device = G.device
    meta = dict(meta, path=str(path), checksum=hashlib.sha256(raw).hexdigest()[:16])
    E.checksum = meta["checksum"]
    return E.eval().requires_grad_(False).to(device or "cpu"), meta


# ---------------------------------------------------------------------------------------------------- use

@dataclass
class Encoded:
    """What `encode` found for a batch: codes at the encoder's level, the latents and expanded codes they give,
    the final render, and per pass the render (for ReStyle's progression)."""
    codes: torch.Tensor          # (B, M, D) at `level`
    level: str
    latents: torch.Tensor        # (B, M', D)
    expanded: torch.Tensor       # (B, K, L, D)
    image: torch.Tensor          # (B, 3, H, W)
    seg: torch.Tensor            # (B, K, H, W)
    units: torch.Tensor          # (B, M, D)
    passes: int

    @property
    def queries(self) -> torch.Tensor | None:
        return self.codes if self.level == "queries" else None


def encode(E: Encoder, G, image: torch.Tensor, passes: int | None = None) -> Encoded:
    """Codes of `image` (B, 3, H, W) in [-1, 1] after `passes` passes (default: the encoder's own setting); each
    pass after the first sees the previous pass's render and corrects its units. Differentiable in E (wrap in
    torch.no_grad() for inference)."""
    passes = E.config.passes if passes is None else int(passes)
    if passes < 1:
        raise ConfigError(f"--passes must be >= 1, got {passes}")
    level = E.config.level
    image = image.to(E.device)
    u = None
    current = None
    out = None
    for _ in range(passes):
        du = E(image, current)
        u = du if u is None else u + du
        out = render(G, level, E.codes(u))
        current = out["image"].detach()
    codes = E.codes(u)
    latents = latents_of(G, level, codes)
    return Encoded(codes, level, latents, G.expand(latents), out["image"], out["seg"], u, passes)
