"""Part-level style mixing (MemoryGAN Sec. 4.5, Fig. 11; DESIGN 5): a target sample takes over the expanded codes
of one or more parts from a source sample, on the layers the paper's swap rules name.

Expanded codes (B, K, L, D) hold the code of part k at local layer l (DESIGN 2.2). For a foreground part, layers
[0, base_layers) carry the shared base code, [base_layers, depth_layers) its shape code and [depth_layers, L) its
texture code; the background has shape codes on [0, depth_layers) and texture codes on the rest. Swap rules:

- background: all layers;
- large parts (skin and hair in the paper): shape + texture layers;
- small parts (eyes, eyebrows, mouth, nose, and every other part not named large): the LAST base layer + shape +
  texture layers. The paper found shape + texture not enough to move a small part's style: a small part covers
  few pixels, so the network also stores it in the base layers it sees.

The paper names only skin and hair as large. `LARGE_PARTS` adds the other regions of the 13 portrait classes that
cover comparably large areas (neck, cloth, hat), so they keep their share of the base code too; ears, eyeglasses
and earrings are small. Names a generator does not have are ignored, so for other datasets (e.g. `scenes`, parts
c0001...) every foreground part is small unless `large_parts` says otherwise.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from memorygan.analysis.parts import render, rendered, samples
from memorygan.errors import ConfigError
from memorygan.models.codes import role_layers
from memorygan.visualize import grid, seg_to_color, to_uint8

LARGE_PARTS = ("skin", "hair", "neck", "cloth", "hat")
MODES = ("both", "shape", "texture")


def large_part_ids(G, large_parts=None) -> set[int]:
    """Ids of the large parts: given names/ids (strictly checked), or the `LARGE_PARTS` names the generator has."""
    if large_parts is None:
        names = G.part_names
        return {names.index(n) for n in LARGE_PARTS if n in names}
    if isinstance(large_parts, (int, str)):
        large_parts = [large_parts]
    return set(G.resolve_parts(list(large_parts), "large_parts")) if len(large_parts) else set()


def swap_layers(G, part: int | str, mode: str = "both", large_parts=None) -> list[int]:
    """Local layers whose codes a mix of `part` swaps (the rules in the module docstring), read from the layer roles
    (`models.codes`).

    mode "shape": the layers with the part's shape role (for small parts also the last base layer); "texture": the
    texture-role layers; "both": their union, which is the paper's rule.
    """
    if mode not in MODES:
        raise ConfigError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    cfg = G.config
    k = G.resolve_parts([part])[0]
    shape = role_layers(cfg, k, ["shape"])
    base = role_layers(cfg, k, ["base"])
    if k != 0 and base and k not in large_part_ids(G, large_parts):
        shape = base[-1:] + shape        # small parts: the last base layer too
    texture = role_layers(cfg, k, ["texture"])
    return {"shape": shape, "texture": texture, "both": shape + texture}[mode]


def swap_mask(G, parts, mode: str = "both", large_parts=None) -> torch.Tensor:
    """(K, L) bool: True where the codes of `parts` are swapped."""
    cfg = G.config
    mask = torch.zeros(cfg.num_classes, cfg.local_layers, dtype=torch.bool, device="cpu")
    for k in G.resolve_parts(parts):
        mask[k, swap_layers(G, k, mode, large_parts)] = True
    return mask


def mix_parts(G, expanded_target: torch.Tensor, expanded_source: torch.Tensor, parts, mode: str = "both",
              large_parts=None) -> torch.Tensor:
    """Target expanded codes (B, K, L, D) with the swap layers of `parts` taken from the source (broadcastable to
    the target, e.g. (1, K, L, D))."""
    cfg = G.config
    want = (cfg.num_classes, cfg.local_layers, cfg.latent_dim)
    for name, e in (("expanded_target", expanded_target), ("expanded_source", expanded_source)):
        if e.ndim != 4 or tuple(e.shape[1:]) != want:
            raise ConfigError(f"{name} must be (B, {want[0]}, {want[1]}, {want[2]}), got {tuple(e.shape)}")
    mask = swap_mask(G, parts, mode, large_parts).to(expanded_target.device)
    return torch.where(mask[None, :, :, None], expanded_source, expanded_target)


@dataclass
class MixResult:
    """Renders of a mixing grid: targets (T), sources (S) and mixes (T, S) as {"image", "seg", "depths"} dicts;
    the mixes are stored target-major (index t * S + s)."""
    parts: list[int]
    mode: str
    layers: dict[int, list[int]]   # swapped layers per part
    target_seeds: list[int]
    source_seeds: list[int]
    target: dict
    source: dict
    mixed: dict

    def figure(self) -> np.ndarray:
        """Grid: row 0 the source images and row 1 their masks (first cell blank); then per target its image row
        and mask row: the target itself, then the target with the source's parts swapped in, one per column."""
        t, s = len(self.target_seeds), len(self.source_seeds)
        blank = np.full_like(to_uint8(self.source["image"][:1]), 255)
        rows = [np.concatenate([blank, to_uint8(self.source["image"])]),
                np.concatenate([blank, seg_to_color(self.source["seg"])])]
        mixed_img, mixed_seg = to_uint8(self.mixed["image"]), seg_to_color(self.mixed["seg"])
        tgt_img, tgt_seg = to_uint8(self.target["image"]), seg_to_color(self.target["seg"])
        for i in range(t):
            rows.append(np.concatenate([tgt_img[i:i + 1], mixed_img[i * s:(i + 1) * s]]))
            rows.append(np.concatenate([tgt_seg[i:i + 1], mixed_seg[i * s:(i + 1) * s]]))
        return grid(rows)

    def row_labels(self) -> list[str]:
        labels = ["source", "mask"]
        for seed in self.target_seeds:
            labels += [f"target {seed}", "mask"]
        return labels

    def stats(self) -> dict:
        """Per cell (target-major lists T x S): mean |change| of the image against the target, over all pixels,
        inside the swapped parts' region (pixels of those parts in the target or the mix) and outside it."""
        t, s = len(self.target_seeds), len(self.source_seeds)
        tgt = self.target["image"].repeat_interleave(s, 0)
        diff = (self.mixed["image"] - tgt).abs().mean(1)                         # (T*S, H, W)
        parts = torch.tensor(self.parts, device=self.mixed["seg"].device)
        region = (torch.isin(self.mixed["seg"].argmax(1), parts)
                  | torch.isin(self.target["seg"].argmax(1), parts).repeat_interleave(s, 0))

        def masked_mean(m):
            n = m.sum(dim=(1, 2))
            v = (diff * m).sum(dim=(1, 2)) / n.clamp(min=1)
            return [None if c == 0 else float(x) for x, c in zip(v, n)]

        def cells(values):
            return [values[i * s:(i + 1) * s] for i in range(t)]

        return {"change": cells([float(x) for x in diff.mean(dim=(1, 2))]),
                "change_inside": cells(masked_mean(region)),
                "change_outside": cells(masked_mean(~region)),
                "region_fraction": cells([float(x) for x in region.float().mean(dim=(1, 2))])}


@torch.no_grad()
def mixing(G, target_seeds: list[int], source_seeds: list[int], parts, mode: str = "both", truncation: float = 1.0,
           large_parts=None) -> MixResult:
    """Every target (one sample per seed) mixed with every source on the swap layers of `parts` (all swapped at
    once)."""
    ids = G.resolve_parts(parts)
    if not target_seeds or not source_seeds:
        raise ConfigError("target_seeds and source_seeds must each name at least one seed")
    layers = {k: swap_layers(G, k, mode, large_parts) for k in ids}
    tgt, src = samples(G, target_seeds, truncation), samples(G, source_seeds, truncation)
    t, s = len(target_seeds), len(source_seeds)
    mixed = mix_parts(G, tgt.expanded.repeat_interleave(s, 0), src.expanded.repeat(t, 1, 1, 1), ids, mode, large_parts)
    return MixResult(ids, mode, layers, list(target_seeds), list(source_seeds), rendered(tgt), rendered(src),
                     render(G, mixed))


def mixing_grid(G, target_seeds: list[int], source_seeds: list[int], parts, mode: str = "both",
                truncation: float = 1.0, large_parts=None) -> np.ndarray:
    """The style-mixing figure (uint8 (2(T+1)(H+2)+2, (S+1)(W+2)+2, 3)); layout in `MixResult.figure`."""
    return mixing(G, target_seeds, source_seeds, parts, mode, truncation, large_parts).figure()


def write_mixing(G, out, target_seeds: list[int], source_seeds: list[int], parts=None, mode: str = "both",
                 truncation: float = 1.0, large_parts=None, together: bool = False) -> dict:
    """Mixing grids into `out`: one PNG per part (`mix-{mode}-{name}.png`), or with `together` one grid swapping all
    `parts` at once, plus `mix-{mode}.json` with the swapped layers and per-cell changes. Returns that record."""
    from pathlib import Path

    from memorygan.analysis.figures import generator_info, label_rows, save_png, write_json

    out = Path(out)
    names = G.part_names
    ids = G.resolve_parts(parts)
    groups = [ids] if together else [[k] for k in ids]
    record = {"analysis": "mix", "generator": generator_info(G), "mode": mode, "truncation": truncation,
              "target_seeds": list(target_seeds), "source_seeds": list(source_seeds),
              "large_parts": [names[k] for k in sorted(large_part_ids(G, large_parts))],
              "layout": "row 0 source images, row 1 source masks; then per target an image row and a mask row: the "
                        "target, then the target with the source's parts swapped in (one column per source)",
              "figures": []}
    for group in groups:
        res = mixing(G, target_seeds, source_seeds, group, mode, truncation, large_parts)
        png = out / f"mix-{mode}-{'+'.join(names[k] for k in group)}.png"
        save_png(label_rows(res.figure(), res.row_labels(), G.config.resolution), png)
        record["figures"].append({"png": str(png), "parts": [names[k] for k in group], "part_ids": group,
                                  "layers": {names[k]: res.layers[k] for k in group}, **res.stats()})
    record["json"] = str(write_json(record, out / f"mix-{mode}.json"))
    return record
