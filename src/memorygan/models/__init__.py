"""Generators (MemoryGAN, SemanticStyleGAN), their shared parts, and the dual-branch discriminator."""
import torch

from memorygan.checkpoint import check_state_dict, read_generator
from memorygan.config import DiscriminatorConfig, GeneratorConfig
from memorygan.models.codes import expand_codes, layer_roles
from memorygan.models.discriminator import DualBranchDiscriminator
from memorygan.models.generator import CompositionalGenerator, Fusion, GeneratorOutput
from memorygan.models.memorygan import MemoryGAN
from memorygan.models.ssg import SemanticStyleGAN

GENERATORS = {"memorygan": MemoryGAN, "ssg": SemanticStyleGAN}


def build_generator(cfg: GeneratorConfig) -> CompositionalGenerator:
    return GENERATORS[cfg.arch](cfg)


def build_discriminator(cfg: DiscriminatorConfig) -> DualBranchDiscriminator:
    return DualBranchDiscriminator(cfg)


def load_generator(path, device: str | torch.device = "cpu") -> tuple[CompositionalGenerator, GeneratorConfig]:
    """Load a generator folder, its weights file, a checkpoint folder or a training run folder (newest checkpoint,
    EMA generator). Returns (G in eval mode without gradients, GeneratorConfig)."""
    cfg, state = read_generator(path)
    G = build_generator(cfg)
    check_state_dict(G.state_dict(), state, str(path))
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
           "Fusion", "expand_codes", "layer_roles", "build_generator", "build_discriminator", "load_generator", "load_generators",
           "GENERATORS"]
