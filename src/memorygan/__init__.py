"""memorygan: compositional image synthesis with MemoryGAN and SemanticStyleGAN."""
__version__ = "0.1.0"

from memorygan.config import DiscriminatorConfig, GeneratorConfig, generator_config, load_preset, preset_names


def load(path, device="cpu"):
    """Load a saved generator and its config: a generator folder, a checkpoint folder (its EMA generator) or a
    training run folder (the EMA generator of its newest checkpoint). `G, cfg = memorygan.load("runs/x")`."""
    from memorygan.models import load_generator
    return load_generator(path, device)


def build(preset: str, **overrides):
    """A freshly initialised generator from a preset name (or JSON path), with config fields overridden."""
    from memorygan.models import build_generator
    return build_generator(generator_config(preset, **overrides))


__all__ = ["load", "build", "GeneratorConfig", "DiscriminatorConfig", "generator_config", "load_preset",
           "preset_names", "__version__"]
