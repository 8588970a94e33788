"""Shared test helpers (importable as `helpers`: tests/ is on pytest's pythonpath)."""
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from memorygan.config import DiscriminatorConfig, GeneratorConfig

TINY = dict(resolution=32, num_classes=4, latent_dim=16, mapping_layers=2, local_layers=5, base_layers=1,
            depth_layers=3, local_channels=8, coarse_channels=16, coarse_size=8, min_feat_size=4, channel_base=256,
            channel_max=32, controller_const_dim=16, controller_mlp_dim=16, controller_hidden_dim=16,
            transparent_classes=[3])


def tiny_config(arch: str = "memorygan", **overrides) -> GeneratorConfig:
    kw = dict(TINY, arch=arch)
    kw.update(overrides)
    return GeneratorConfig(**kw)


def tiny_generator(arch: str = "memorygan", seed: int = 0, randomize: bool = True, **overrides):
    """Tiny generator; with `randomize`, every parameter/buffer gets non-trivial values so tests see every tensor."""
    from memorygan.models import build_generator

    torch.manual_seed(seed)
    G = build_generator(tiny_config(arch, **overrides))
    if randomize:
        g = torch.Generator().manual_seed(seed + 1)
        with torch.no_grad():
            for name, p in G.named_parameters():
                if name.endswith("noise.weight") or (name.endswith("bias") and "modulation" not in name):
                    p.copy_(0.1 * torch.randn(p.shape, generator=g))
                elif name.endswith("modulation"):
                    p.copy_(1 + 0.1 * torch.randn(p.shape, generator=g))
    return G


def tiny_dconfig_obj() -> DiscriminatorConfig:
    return DiscriminatorConfig(resolution=32, num_classes=4, channel_base=256, channel_max=32)


# A tiny training preset (32 px, K from the dataset): the training and report tests train it for a few steps.
TINY_PRESET = {
    "generator": {"arch": "memorygan", "resolution": 32, "latent_dim": 16, "mapping_layers": 2, "local_layers": 5,
                  "base_layers": 1, "depth_layers": 3, "local_channels": 8, "coarse_channels": 16, "coarse_size": 8,
                  "min_feat_size": 4, "channel_base": 256, "channel_max": 32, "controller_const_dim": 16,
                  "controller_mlp_dim": 16, "controller_hidden_dim": 16},
    "discriminator": {"channel_base": 256, "channel_max": 32},
}


class GeneratorParts:
    """Part names and their resolution for test stand-ins of a generator that only have a `config` (the real
    generators get them from `CompositionalGenerator`)."""

    @property
    def part_names(self) -> list[str]:
        from memorygan.models.codes import part_names
        return part_names(self.config)

    def resolve_parts(self, parts, arg: str = "parts") -> list[int]:
        from memorygan.models.codes import resolve_parts
        return resolve_parts(self.config, parts, arg)


def checkpoint_weights(ckpt) -> dict:
    """{G, D, ema: state dict} of a training checkpoint folder."""
    from safetensors.torch import load_file
    return {name: load_file(str(ckpt / f)) for name, f in
            (("G", "G.safetensors"), ("D", "D.safetensors"), ("ema", "generator/generator.safetensors"))}


def assert_weights_close(a: dict, b: dict, atol: float = 1e-5) -> None:
    for net in a:
        assert a[net].keys() == b[net].keys()
        worst = max((a[net][k].float() - b[net][k].float()).abs().max().item() for k in a[net])
        assert worst <= atol, f"{net}: max abs difference {worst}"


class CountOps(TorchDispatchMode):
    """Counts the ATen ops dispatched while active (`n`): each is at least one kernel launch on a GPU."""

    def __init__(self):
        super().__init__()
        self.n = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.n += 1
        return func(*args, **(kwargs or {}))
