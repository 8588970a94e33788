"""Generators (MemoryGAN, SemanticStyleGAN), their shared parts, and the dual-branch discriminator."""
from memorygan.config import DiscriminatorConfig, GeneratorConfig
from memorygan.models.discriminator import DualBranchDiscriminator
from memorygan.models.generator import CompositionalGenerator, GeneratorOutput, expand_codes
from memorygan.models.memorygan import MemoryGAN
from memorygan.models.ssg import SemanticStyleGAN

GENERATORS = {"memorygan": MemoryGAN, "ssg": SemanticStyleGAN}


def build_generator(cfg: GeneratorConfig) -> CompositionalGenerator:
    return GENERATORS[cfg.arch](cfg)


def build_discriminator(cfg: DiscriminatorConfig) -> DualBranchDiscriminator:
    return DualBranchDiscriminator(cfg)


__all__ = ["MemoryGAN", "SemanticStyleGAN", "DualBranchDiscriminator", "CompositionalGenerator", "GeneratorOutput",
           "expand_codes", "build_generator", "build_discriminator", "GENERATORS"]
