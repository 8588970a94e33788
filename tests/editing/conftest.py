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


class StagedNonInteracting(NonInteracting):
    """NonInteracting with the staged synthesis region edits use, per pixel at full resolution: part k's features are
    its colour everywhere, its depth is high on its own band; fusion is the softmax of the depths; the render net
    shows the fused map. Blending two fused maps therefore changes exactly the pixels where the blend weight is > 0
    and a part's colour differs."""

    def __init__(self, size: int = 32, k: int = 4):
        super().__init__(size, k)
        self.config.coarse_size = size             # fusion at full resolution (a real config refuses this)

    def _colour(self, expanded):
        return 0.2 * expanded.mean(2) @ self.w                                       # (B, K, 3)

    def generate_parts(self, expanded, coords=None):
        b, k = expanded.shape[:2]
        size = self.config.resolution
        hidden = self._colour(expanded)[..., None, None].expand(b, k, 3, size, size)
        band = nn.functional.one_hot(self.owner, k).permute(2, 0, 1).float()        # (K, H, W)
        return hidden, (200 * band)[None].expand(b, -1, -1, -1)             # softmax: exactly one-hot

    def fuse(self, hidden, depths, composition_mask=None):
        from memorygan.models.generator import Fusion

        m = torch.softmax(depths, dim=1)
        return Fusion(m, m, (m[:, :, None] * hidden).sum(1))

    def render(self, fused, coarse_seg, noise_mode="const", noise=None, mix=None):
        if mix is not None:                                  # one "layer": the output
            fused, coarse_seg = mix(0, fused), mix(1, coarse_seg)
        return fused, coarse_seg

    def forward(self, z=None, *, latents=None, expanded=None, **kw):
        out = super().forward(z, latents=latents, expanded=expanded, **kw)
        fusion = self.fuse(*self.generate_parts(out.expanded))
        out.image, out.seg = self.render(fusion.fused, fusion.coarse_seg)
        return out


@pytest.fixture
def staged_painter():
    return StagedNonInteracting().eval()


def make_tiny_clip(folder) -> None:
    """A tiny random CLIP in the transformers format (model + tokenizer files), built offline: a byte-level BPE vocab
    of single letters plus a few merges."""
    import json
    from pathlib import Path

    from transformers import CLIPConfig, CLIPModel, CLIPTokenizer

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for c in "abcdefghijklmnopqrstuvwxyz":
        vocab[c] = len(vocab)
        vocab[c + "</w>"] = len(vocab)
    merges = ["r e", "re d</w>", "h a", "ha i", "hai r</w>"]
    for m in merges:
        vocab["".join(m.split())] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    tok = CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"))
    cfg = CLIPConfig(text_config=dict(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                      num_attention_heads=2, max_position_embeddings=16, bos_token_id=0,
                                      eos_token_id=1, pad_token_id=1),
                     vision_config=dict(image_size=32, patch_size=8, hidden_size=32, intermediate_size=64,
                                        num_hidden_layers=1, num_attention_heads=2),
                     projection_dim=16)
    torch.manual_seed(0)
    CLIPModel(cfg).save_pretrained(str(folder))
    tok.save_pretrained(str(folder))


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory):
    pytest.importorskip("transformers")
    folder = tmp_path_factory.mktemp("tiny-clip")
    make_tiny_clip(folder)
    return folder
