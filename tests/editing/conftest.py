"""A stand-in generator whose parts do not interact: part k owns a fixed band of columns and paints it with a colour
computed from its own expanded codes only. Every edit of one part's codes must leave every other pixel exactly as
it was."""
from types import SimpleNamespace

import pytest
import torch
import torch.nn as nn
from helpers import GeneratorParts, tiny_config

from memorygan.models.codes import expand_codes, roles_of


class NonInteracting(GeneratorParts, nn.Module):
    arch = "ssg"

    def __init__(self, size: int = 32, k: int = 4):
        super().__init__()
        self.config = tiny_config("ssg", num_classes=k, class_names=["background", "skin", "eyes", "hair"][:k],
                                  transparent_classes=[], resolution=size)
        self.num_latents = self.config.base_layers + 2 * k
        self.register_buffer("layer_roles", roles_of(self.config), persistent=False)
        self.register_buffer("w", torch.randn(self.config.latent_dim, 3, generator=torch.Generator().manual_seed(3)))
        owner = torch.arange(size).repeat(size, 1) * k // size                      # (H, W) column bands
        self.register_buffer("owner", owner)

    @property
    def device(self):
        return self.w.device

    def sample_z(self, n, seed=None, generator=None):
        if generator is None:
            generator = torch.Generator().manual_seed(int(seed)) if seed is not None else None
        return torch.randn(n, self.config.latent_dim, generator=generator)

    def forward(self, z=None, *, latents=None, expanded=None, truncation=1.0, noise_mode="const", noise=None,
                return_fused=False, composition_mask=None):
        cfg = self.config
        if z is not None:
            latents = (0.7 * z)[:, None].expand(-1, self.num_latents, -1)
        if latents is not None:
            nb = cfg.base_layers
            expanded = expand_codes(latents[:, :nb], latents[:, nb::2], latents[:, nb + 1::2], cfg.local_layers,
                                    nb, cfg.depth_layers)
        k = cfg.num_classes
        colour = 0.2 * expanded.mean(2) @ self.w                                    # (B, K, 3), linear
        region = nn.functional.one_hot(self.owner, k).permute(2, 0, 1).float()       # (K, H, W)
        image = torch.einsum("bkc,khw->bchw", colour, region)
        seg = (2 * region - 1).expand(expanded.shape[0], -1, -1, -1)
        return SimpleNamespace(image=image, seg=seg, expanded=expanded, latents=latents, z=z)


@pytest.fixture
def painter():
    return NonInteracting().eval()
