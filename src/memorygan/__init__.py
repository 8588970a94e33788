"""memorygan: compositional image synthesis with MemoryGAN and SemanticStyleGAN."""
__version__ = "0.1.0"

from memorygan.config import DiscriminatorConfig, GeneratorConfig, generator_config, load_preset, preset_names


def load(path, device="cpu", max_gib: float | None = None):
    """Load a saved generator and its config: a generator folder, a checkpoint folder (its EMA generator) or a
    training run folder (the EMA generator of its newest checkpoint). `G, cfg = memorygan.load("runs/x")`.
    A config whose parameters would exceed `max_gib` (default $MEMORYGAN_MAX_MODEL_GIB, else 8 GiB) is refused
    before anything is allocated."""
    from memorygan.models import load_generator
    return load_generator(path, device, max_gib)


def build(preset: str, max_gib: float | None = None, **overrides):
    """A freshly initialised generator from a preset name (or JSON path), with config fields overridden (size
    checked against `max_gib` as in `load`)."""
    from memorygan.models import build_generator, check_model_size
    cfg = generator_config(preset, **overrides)
    check_model_size(cfg, where=f"preset {preset}", limit_gib=max_gib)
    return build_generator(cfg)


__all__ = ["load", "build", "GeneratorConfig", "DiscriminatorConfig", "generator_config", "load_preset",
           "preset_names", "__version__"]
