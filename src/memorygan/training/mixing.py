"""Part-wise style mixing on expanded codes (DESIGN 2.5 and 3).

SemanticStyleGAN's training mixing (Shi et al., CVPR 2022; probability 0.3): draw two z, take the base codes
from the first, and for every (sample, part) choose where the part's (shape, texture) codes come from among
(1, 1), (1, 2), (2, 2). On expanded codes (B, K, L, D) that rule is a per-layer selection between two code
tensors, which is what MemoryGAN needs: its shape and texture codes are one vector per part, so the split only
exists through layer positions (DESIGN 2.2) and mixing must happen after expansion.

Choices: 0 = (1, 1), 1 = (1, 2), 2 = (2, 2), written as (shape from, texture from).
"""
from __future__ import annotations

import torch

#: (shape source, texture source) for each choice value; 1 = first codes, 2 = second codes.
MIX_CHOICES = ((1, 1), (1, 2), (2, 2))


def partwise_mix_selector(choice: torch.Tensor, num_layers: int, base_layers: int,
                          depth_layers: int) -> torch.Tensor:
    """Boolean (B, K, L): True where layer l of part k takes its code from the second source.

    choice: (B, K) integers in {0, 1, 2}. Foreground parts (k >= 1): layers [0, base_layers) never (base codes
    come from the first source), [base_layers, depth_layers) when the shape comes from the second source
    (choice 2), [depth_layers, L) when the texture does (choice >= 1). Background (k = 0): [0, depth_layers)
    follows the shape choice, [depth_layers, L) the texture choice (it has no base code, DESIGN 2.2).
    """
    if choice.ndim != 2:
        raise ValueError(f"choice must be (B, K), got {tuple(choice.shape)}")
    if choice.dtype.is_floating_point or choice.dtype == torch.bool:
        raise ValueError(f"choice must be an integer tensor with values in {{0, 1, 2}}, got dtype {choice.dtype}")
    if choice.numel() and (int(choice.min()) < 0 or int(choice.max()) > 2):
        raise ValueError(f"choice values must be in {{0, 1, 2}} ((1,1), (1,2), (2,2)), got range "
                         f"[{int(choice.min())}, {int(choice.max())}]")
    if not 0 <= base_layers < depth_layers <= num_layers:
        raise ValueError(f"need 0 <= base_layers < depth_layers <= L, got base_layers={base_layers}, "
                         f"depth_layers={depth_layers}, L={num_layers}")
    layer = torch.arange(num_layers, device=choice.device)                        # (L,)
    shape_from_2 = (choice == 2)[:, :, None]                                      # (B, K, 1)
    texture_from_2 = (choice >= 1)[:, :, None]
    is_texture = (layer >= depth_layers)[None, None]                              # (1, 1, L)
    first_shape = torch.zeros(choice.shape[1], 1, dtype=torch.long, device=choice.device)
    first_shape[1:] = base_layers                                                 # background: no base layers
    is_shape = (layer[None] >= first_shape) & (layer < depth_layers)[None]        # (K, L)
    return (is_shape[None] & shape_from_2) | (is_texture & texture_from_2)


def partwise_mix(e1: torch.Tensor, e2: torch.Tensor, choice: torch.Tensor, base_layers: int,
                 depth_layers: int) -> torch.Tensor:
    """Part-wise mix of two expanded codes (DESIGN 2.5; SemanticStyleGAN's training style mixing).

    e1, e2: (B, K, L, D) expanded codes of the first and second sample; choice: (B, K) in {0, 1, 2} meaning
    (shape from, texture from) = (1, 1), (1, 2), (2, 2) per sample and part. Returns (B, K, L, D): see
    `partwise_mix_selector` for which layers each choice takes from `e2`.
    """
    if e1.ndim != 4 or e1.shape != e2.shape:
        raise ValueError(f"e1 and e2 must both be expanded codes (B, K, L, D) of one shape, got "
                         f"{tuple(e1.shape)} and {tuple(e2.shape)}")
    if tuple(choice.shape) != tuple(e1.shape[:2]):
        raise ValueError(f"choice must be (B, K) = {tuple(e1.shape[:2])}, got {tuple(choice.shape)}")
    take_2 = partwise_mix_selector(choice.to(e1.device), e1.shape[2], base_layers, depth_layers)
    return torch.where(take_2[..., None], e2, e1)


def random_partwise_mix(e1: torch.Tensor, e2: torch.Tensor, prob: float, generator: torch.Generator | None = None,
                        *, base_layers: int, depth_layers: int, return_choice: bool = False):
    """Training-time style mixing: with probability `prob` per sample, mix part-wise with a uniformly random
    choice per (sample, part); other samples are returned as e1 (choice 0 on every part).

    e1, e2: (B, K, L, D); prob: in [0, 1] (DESIGN 3: 0.3); generator: torch.Generator for the draws (they are
    made on the generator's device, default CPU, then moved to e1's device, so a seed gives the same mixing
    on every device). Returns the mixed codes (B, K, L, D), and with `return_choice` also the choice (B, K)
    that was applied.
    """
    if not 0 <= prob <= 1:
        raise ValueError(f"prob must be in [0, 1], got {prob!r}")
    if e1.ndim != 4:
        raise ValueError(f"e1 must be expanded codes (B, K, L, D), got {tuple(e1.shape)}")
    b, k = e1.shape[:2]
    device = generator.device if generator is not None else torch.device("cpu")
    apply = torch.rand(b, generator=generator, device=device) < prob                      # (B,)
    choice = torch.randint(0, len(MIX_CHOICES), (b, k), generator=generator, device=device)
    choice = (choice * apply[:, None]).to(e1.device)
    mixed = partwise_mix(e1, e2, choice, base_layers, depth_layers)
    return (mixed, choice) if return_choice else mixed
