"""Codes and parts, in one place: which code each (part, local layer) takes, part names, code expansion and the
part-wise style mixing of SemanticStyleGAN.

Layer roles (DESIGN 2.2). Local layer l of a foreground part k reads
    the base code l          for l in [0, base_layers)              role BASE
    the part's shape code    for l in [base_layers, depth_layers)   role SHAPE
    the part's texture code  for l in [depth_layers, L)             role TEXTURE
and the background (k = 0) has no base code: SHAPE on [0, depth_layers), TEXTURE on the rest. `layer_roles`
returns this (K, L) table; expansion, training-time mixing, the analyses' swap rules and the leakage metric all
read it, so the rule is written once.

SemanticStyleGAN's part-wise style mixing (Shi et al., CVPR 2022; official `mix_styles`): base codes from the
first style; for every (sample, part) the (shape, texture) codes come from (1, 1), (1, 2) or (2, 2), choice
0, 1, 2. `mix_wplus` applies it to W+ codes, `mix_selector` to expanded codes (the same rule through the roles).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from memorygan.devices import to_device
from memorygan.errors import ConfigError

BASE, SHAPE, TEXTURE = 0, 1, 2
ROLE_NAMES = ("base", "shape", "texture")

#: (shape source, texture source) for each mixing choice value; 1 = first codes, 2 = second codes.
MIX_CHOICES = ((1, 1), (1, 2), (2, 2))


def layer_roles(num_classes: int, num_layers: int, base_layers: int, depth_layers: int,
                device: torch.device | str | None = None) -> torch.Tensor:
    """(K, L) int64 table of BASE / SHAPE / TEXTURE per (part, local layer); see the module docstring."""
    if not 0 <= base_layers < depth_layers <= num_layers:
        raise ValueError(f"need 0 <= base_layers < depth_layers <= L, got base_layers={base_layers}, "
                         f"depth_layers={depth_layers}, L={num_layers}")
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    layer = torch.arange(num_layers, device=device if device is not None else "cpu")
    fg = torch.where(layer < base_layers, BASE, torch.where(layer < depth_layers, SHAPE, TEXTURE))
    bg = torch.where(layer < depth_layers, SHAPE, TEXTURE)
    return torch.cat([bg[None], fg[None].expand(num_classes - 1, -1)]).long()


def roles_of(cfg, device=None) -> torch.Tensor:
    """`layer_roles` of a GeneratorConfig."""
    return layer_roles(cfg.num_classes, cfg.local_layers, cfg.base_layers, cfg.depth_layers, device)


def role_layers(cfg, part: int, roles=("shape", "texture")) -> list[int]:
    """Local layers of `part` whose role is one of `roles` (names or ids), in order."""
    want = {ROLE_NAMES.index(r) if isinstance(r, str) else int(r) for r in roles}
    row = roles_of(cfg, "cpu")[part]
    return [i for i, r in enumerate(row.tolist()) if r in want]


def expand_codes(base: torch.Tensor | None, shape: torch.Tensor, texture: torch.Tensor, num_layers: int,
                 base_layers: int, depth_layers: int) -> torch.Tensor:
    """Per-(part, layer) codes following `layer_roles`.

    base: (B, base_layers, D) or None (base_layers = 0); shape, texture: (B, K, D) -> (B, K, L, D).
    """
    b, k, d = shape.shape
    roles = layer_roles(k, num_layers, base_layers, depth_layers, shape.device)[None, :, :, None]  # (1, K, L, 1)
    if base_layers:
        base_full = torch.cat([base, base.new_zeros(b, num_layers - base_layers, d)], 1)[:, None]  # (B, 1, L, D)
    else:
        base_full = shape.new_zeros(1, 1, 1, 1)
    return torch.where(roles == BASE, base_full,
                       torch.where(roles == SHAPE, shape[:, :, None], texture[:, :, None])).expand(b, k, num_layers, d)


def check_mix_choice(choice: torch.Tensor, batch: int | None = None, num_classes: int | None = None) -> None:
    if choice.ndim != 2:
        raise ValueError(f"mixing choice must be (B, K), got {tuple(choice.shape)}")
    if choice.dtype.is_floating_point or choice.dtype == torch.bool:
        raise ValueError(f"mixing choice must be an integer tensor with values in {{0, 1, 2}}, got dtype "
                         f"{choice.dtype}")
    if batch is not None and tuple(choice.shape) != (batch, num_classes):
        raise ValueError(f"mixing choice must be (B, K) = {(batch, num_classes)}, got {tuple(choice.shape)}")
    if choice.numel() and (int(choice.min()) < 0 or int(choice.max()) > 2):
        raise ValueError(f"mixing choice values must be in {{0, 1, 2}} ((1,1), (1,2), (2,2)), got range "
                         f"[{int(choice.min())}, {int(choice.max())}]")


def mix_selector(choice: torch.Tensor, roles: torch.Tensor, check: bool = True) -> torch.Tensor:
    """Boolean (B, K, L): True where layer l of part k takes its code from the second source.

    choice: (B, K) in {0, 1, 2}; roles: (K, L) from `layer_roles`. Base layers always come from the first source;
    shape layers from the second when choice == 2, texture layers when choice >= 1. `check=False` skips the range
    check (it reads the values back: a host sync on a GPU) for choices already checked.
    """
    if check:
        check_mix_choice(choice)
    roles = to_device(roles, choice.device)
    shape_from_2 = (choice == 2)[:, :, None]
    texture_from_2 = (choice >= 1)[:, :, None]
    return ((roles == SHAPE)[None] & shape_from_2) | ((roles == TEXTURE)[None] & texture_from_2)


def mix_wplus(w1: torch.Tensor, w2: torch.Tensor, choice: torch.Tensor, base_layers: int) -> torch.Tensor:
    """SemanticStyleGAN W+ style mixing (official `mix_styles` with two styles).

    w1, w2: (B, base+2K, D) W+ codes of the two styles; choice: (B, K) in {0, 1, 2}. Returns (B, base+2K, D):
    base codes from w1; part k's shape code (index base+2k) from w2 when choice == 2, its texture code
    (base+2k+1) from w2 when choice >= 1.
    """
    b, n, _ = w1.shape
    k = (n - base_layers) // 2
    check_mix_choice(choice, b, k)
    take = torch.zeros(b, n, dtype=torch.bool, device=w1.device)
    choice = to_device(choice, w1.device)
    take[:, base_layers::2] = choice == 2
    take[:, base_layers + 1::2] = choice >= 1
    return torch.where(take[..., None], w2, w1)


def random_mix_choice(batch: int, num_classes: int, generator: torch.Generator | None = None,
                      device: torch.device | str | None = None) -> torch.Tensor:
    """(B, K) uniform choices in {0, 1, 2}, drawn on the generator's device (CPU by default) then moved, so a seed
    gives the same mixing on every device."""
    draw_on = generator.device if generator is not None else torch.device("cpu")
    return to_device(torch.randint(0, len(MIX_CHOICES), (batch, num_classes), generator=generator, device=draw_on),
                     device)


# ----------------------------------------------------------------------------------------------------- parts

def part_names(cfg) -> list[str]:
    """The K part names in id order: the config's class names, or part0, part1, ... when it has none."""
    names = cfg.class_names
    return list(names) if names else [f"part{k}" for k in range(cfg.num_classes)]


def resolve_part(cfg, part: int | str, arg: str = "parts") -> int:
    """A part id from an id (int or digits) or a class name; a ConfigError naming `arg` otherwise."""
    names = part_names(cfg)
    k = len(names)
    if isinstance(part, str) and part.strip().lstrip("-").isdigit():
        part = int(part)
    if isinstance(part, int) and not isinstance(part, bool):
        if not 0 <= part < k:
            raise ConfigError(f"{arg}: part id {part} is out of range; this generator has parts 0..{k - 1}")
        return part
    if isinstance(part, str) and part.strip() in names:
        return names.index(part.strip())
    listing = ", ".join(f"{i} {n}" for i, n in enumerate(names))
    raise ConfigError(f"{arg}: unknown part {part!r}; this generator's parts are: {listing}")


def resolve_parts(cfg, parts, arg: str = "parts") -> list[int]:
    """Ids of `parts` (ids or names, a list or a comma-separated string, in the given order; None = all parts);
    repeated parts are an error."""
    if parts is None:
        return list(range(cfg.num_classes))
    if isinstance(parts, str):
        parts = [p for p in parts.split(",") if p.strip()] if "," in parts else [parts]
    elif isinstance(parts, int):
        parts = [parts]
    ids = [resolve_part(cfg, p, arg) for p in parts]
    if not ids:
        raise ConfigError(f"{arg}: no parts given")
    if len(set(ids)) != len(ids):
        raise ConfigError(f"{arg}: a part is listed twice ({list(parts)})")
    return ids


@dataclass
class Codes:
    """The codes of one or more images of a generator: the one type every edit, inversion, codes file and the demo
    use. `expanded` always (what every generator renders from); the levels above it while they still describe the
    images (latents: SSG W+ / MemoryGAN latents; queries: MemoryGAN's working memory; z: the random source); render
    noise; names; a region edit's blend (the source codes kept outside the blurred mask). Files: editing.codes."""
    expanded: torch.Tensor                           # (N, K, L, D)
    level: str = "expanded"
    names: list[str] = field(default_factory=list)
    latents: torch.Tensor | None = None
    queries: torch.Tensor | None = None
    z: torch.Tensor | None = None
    noise: list[torch.Tensor] | None = None
    arch: str = ""
    generator: str = ""                              # fingerprint of the generator the codes belong to
    extra: dict = field(default_factory=dict)
    blend_source: torch.Tensor | None = None         # (N, K, L, D) a region edit's source codes (kept outside)
    blend_mask: torch.Tensor | None = None           # (N, 1, H, W) its blurred region

    def __len__(self) -> int:
        return self.expanded.shape[0]

    def select(self, index) -> "Codes":
        """The codes of some images (an int, slice or list of indices), everything else kept."""
        idx = [index] if isinstance(index, int) else index
        pick = (lambda t: None if t is None else t[idx])
        noise = None if self.noise is None else [n if n.shape[0] == 1 else n[idx] for n in self.noise]
        names = [self.names[i] for i in (range(len(self))[idx] if isinstance(idx, slice) else idx)] \
            if self.names else []
        return Codes(pick(self.expanded), self.level, names, pick(self.latents), pick(self.queries), pick(self.z),
                     noise, self.arch, self.generator, dict(self.extra), pick(self.blend_source),
                     pick(self.blend_mask))
