"""Training-time part-wise style mixing (DESIGN 2.5 and 3), as the official SemanticStyleGAN train script does it.

Official `mixing_noise`: with probability `mixing` (0.3) per batch a second z is drawn, and `mix_styles` mixes the
two part-wise: base codes from the first, and for every (sample, part) the (shape, texture) codes from (1, 1),
(1, 2) or (2, 2), uniformly (choice 0, 1, 2). Otherwise the batch uses one z per image. Here the mixing happens on
expanded codes (B, K, L, D), where the rule is a per-layer selection through the layer roles (`models.codes`):
that is what MemoryGAN needs (its shape and texture codes are one vector per part, so the split exists only
through layer positions), and for SSG it equals mixing the W+ codes first (tested).
"""
from __future__ import annotations

import torch

from memorygan.devices import to_device
from memorygan.models.codes import MIX_CHOICES, check_mix_choice, mix_selector, random_mix_choice

__all__ = ["MIX_CHOICES", "partwise_mix", "random_partwise_mix", "mixing_coin"]


def partwise_mix(e1: torch.Tensor, e2: torch.Tensor, choice: torch.Tensor, roles: torch.Tensor) -> torch.Tensor:
    """Part-wise mix of two expanded codes.

    e1, e2: (B, K, L, D) expanded codes of the first and second sample; choice: (B, K) in {0, 1, 2} meaning
    (shape from, texture from) = (1, 1), (1, 2), (2, 2) per sample and part; roles: (K, L) layer roles
    (`G.layer_roles`). Returns (B, K, L, D).
    """
    if e1.ndim != 4 or e1.shape != e2.shape:
        raise ValueError(f"e1 and e2 must both be expanded codes (B, K, L, D) of one shape, got "
                         f"{tuple(e1.shape)} and {tuple(e2.shape)}")
    if tuple(choice.shape) != tuple(e1.shape[:2]):
        raise ValueError(f"choice must be (B, K) = {tuple(e1.shape[:2])}, got {tuple(choice.shape)}")
    if tuple(roles.shape) != tuple(e1.shape[1:3]):
        raise ValueError(f"roles must be (K, L) = {tuple(e1.shape[1:3])}, got {tuple(roles.shape)}")
    check_mix_choice(choice)                         # where the caller made it (a CPU draw: no host sync)
    take_2 = mix_selector(to_device(choice, e1.device), to_device(roles, e1.device), check=False)
    return torch.where(take_2[..., None], e2, e1)


def random_partwise_mix(e1: torch.Tensor, e2: torch.Tensor, roles: torch.Tensor,
                        generator: torch.Generator | None = None, return_choice: bool = False):
    """`partwise_mix` with a uniformly random choice per (sample, part), drawn from `generator` (on its device,
    default the CPU, then moved, so a seed gives the same mixing on every device). Returns the mixed codes
    (B, K, L, D), and with `return_choice` also the choice (B, K)."""
    if e1.ndim != 4:
        raise ValueError(f"e1 must be expanded codes (B, K, L, D), got {tuple(e1.shape)}")
    choice = random_mix_choice(e1.shape[0], e1.shape[1], generator)   # on the generator's device
    mixed = partwise_mix(e1, e2, choice, roles)
    return (mixed, to_device(choice, e1.device)) if return_choice else mixed


def mixing_coin(prob: float, generator: torch.Generator | None = None) -> bool:
    """Whether a batch is mixed: True with probability `prob` (DESIGN 3: 0.3), one draw per batch as the official
    `mixing_noise`."""
    if not 0 <= prob <= 1:
        raise ValueError(f"mixing probability must be in [0, 1], got {prob!r}")
    if prob == 0:
        return False
    draw_on = generator.device if generator is not None else torch.device("cpu")
    return bool(torch.rand((), generator=generator, device=draw_on) < prob)
