"""Class-conditional BigGAN and BigGAN-deep, the generator the thesis trains and edits (chapters 2-4).

    config.py     BigGANConfig and the presets (presets/*.json: 64-px CPU preset up to 256 px)
    layers.py     spectral norm (with the singular-value estimates the monitors read), conditional BatchNorm,
                  self-attention, the residual blocks of both architectures
    models.py     BigGANGenerator, BigGANDiscriminator (projection), the truncation trick
    steps.py      one iteration of thesis Algorithm 1 (accumulation), EMA, standing statistics
    monitors.py   singular values of every layer and collapse detection (thesis Fig. 2-2)
    train.py      the training run: options, run folder, checkpoints, bit-exact resume, torchrun
    checkpoint.py BigGAN generator folders (safetensors + JSON), safe loading
    classifier.py the domain classifier (IS, FID features, accuracy), trained like the probe
    evaluate.py   accuracy, domain IS / FID per class, precision / recall, the truncation sweep
    edits.py      GANalyze directions in z with the class fixed (ch. 3), Paint-by-Word over the split first
                  feature map with CMA-ES + Adam (ch. 4)
    report.py     the monitors' figure (thesis Fig. 2-2) and summary
    cli.py        `memorygan biggan presets | train | classifier | generate | evaluate`
"""
from memorygan.biggan.config import BigGANConfig, biggan_config, preset_names
from memorygan.biggan.models import BigGANDiscriminator, BigGANGenerator, truncated_z

__all__ = ["BigGANConfig", "biggan_config", "preset_names", "BigGANGenerator", "BigGANDiscriminator", "truncated_z"]
