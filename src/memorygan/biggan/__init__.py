"""Class-conditional BigGAN and BigGAN-deep, the generator the thesis trains and edits (chapters 2-4).

    config.py     BigGANConfig and the presets (presets/*.json: 64-px CPU preset up to 256 px)
    layers.py     spectral norm (with the singular-value estimates the monitors read), conditional BatchNorm,
                  self-attention, the residual blocks of both architectures
    models.py     BigGANGenerator, BigGANDiscriminator (projection), the truncation trick
"""
from memorygan.biggan.config import BigGANConfig, biggan_config, preset_names
from memorygan.biggan.models import BigGANDiscriminator, BigGANGenerator, truncated_z

__all__ = ["BigGANConfig", "biggan_config", "preset_names", "BigGANGenerator", "BigGANDiscriminator", "truncated_z"]
