"""Codes files: the codes of one or more images of a generator (sampled, edited or inverted), as safetensors.

    expanded      (N, K, L, D)   always: the codes every generator renders from (DESIGN 1)
    latents       (N, M, D)      optional: SSG W+ / MemoryGAN latents, when the codes came from that level
    queries       (N, 1+K, D)    optional: MemoryGAN query codes
    z             (N, ...)       optional: the random source
    noise.<j>     (N|1, 1, H, W) optional: render noise maps (an inversion may optimise them)
    blend.source  (N, K, L, D)   optional, a region edit's result: the source codes, kept outside the region
    blend.mask    (N, 1, H, W)   optional, with blend.source: the blurred region; the image is `expanded` inside it
                                 blended over blend.source outside, at the fusion and every render layer
                                 (`editing.region.render_blended`; `render_codes` draws any codes file)

Metadata (strings): format, version, level (the level the codes were found or drawn at: z, queries, latents,
expanded), arch, num_classes, generator (the generator's fingerprint, `checkpoint.generator_fingerprint`), names
(JSON list: one name per image, e.g. the image file or "seed 3") and extra (JSON object).

`load_codes(path, G)` checks the shapes against G and refuses codes of another generator (a different fingerprint)
unless `allow_other_generator=True` (the same architecture, e.g. a fine-tuned copy of the generator).
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from memorygan.errors import CheckpointError
from memorygan.models.codes import Codes

CODES_FORMAT = "memorygan-codes"
LEVELS = ("z", "queries", "latents", "expanded")


def codes_from_output(out, G, level: str = "z", names=None, **extra) -> Codes:
    """A `Codes` record of a GeneratorOutput of G (every level the output holds)."""
    from memorygan.checkpoint import generator_fingerprint

    z = out.z if torch.is_tensor(out.z) else None
    return Codes(out.expanded.detach().cpu(), level, list(names or []),
                 None if out.latents is None else out.latents.detach().cpu(),
                 None if out.queries is None else out.queries.detach().cpu(),
                 None if z is None else z.detach().cpu(), None, G.arch, generator_fingerprint(G), extra)


def save_codes(path, codes: Codes) -> Path:
    """Write `codes` to a safetensors file (atomically: a temporary file renamed into place)."""
    if codes.level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {codes.level!r}")
    if codes.expanded.ndim != 4:
        raise ValueError(f"expanded codes must be (N, K, L, D), got {tuple(codes.expanded.shape)}")
    if codes.names and len(codes.names) != len(codes):
        raise ValueError(f"{len(codes.names)} names for {len(codes)} images")
    tensors = {"expanded": codes.expanded}
    for key in ("latents", "queries", "z"):
        if getattr(codes, key) is not None:
            tensors[key] = getattr(codes, key)
    for j, n in enumerate(codes.noise or []):
        tensors[f"noise.{j}"] = n
    if (codes.blend_source is None) != (codes.blend_mask is None):
        raise ValueError("a region edit's codes need both blend_source and blend_mask")
    if codes.blend_source is not None:
        tensors["blend.source"], tensors["blend.mask"] = codes.blend_source, codes.blend_mask
    tensors = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in tensors.items()}
    meta = {"format": CODES_FORMAT, "version": "1", "level": codes.level, "arch": codes.arch,
            "num_classes": str(codes.expanded.shape[1]), "generator": codes.generator,
            "names": json.dumps(list(codes.names)), "extra": json.dumps(codes.extra)}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    save_file(tensors, str(tmp), metadata=meta)
    tmp.replace(path)
    return path


def load_codes(path, G=None, allow_other_generator: bool = False) -> Codes:
    """Read a codes file; with G, check that the codes fit it (shapes, and the generator fingerprint unless
    `allow_other_generator`). Errors name the file and the problem."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"codes file {path} does not exist")
    try:
        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path}: not a readable safetensors codes file ({e})") from None
    if meta.get("format") != CODES_FORMAT or "expanded" not in tensors:
        raise CheckpointError(f"{path}: not a memorygan codes file (format {meta.get('format')!r}); codes files "
                              "are written by `memorygan invert` and the editing commands")
    try:
        names = json.loads(meta.get("names") or "[]")
        extra = json.loads(meta.get("extra") or "{}")
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path}: corrupt metadata ({e})") from None
    noise_keys = sorted((k for k in tensors if k.startswith("noise.")), key=lambda k: int(k.split(".")[1]))
    codes = Codes(tensors["expanded"], meta.get("level", "expanded"), names, tensors.get("latents"),
                  tensors.get("queries"), tensors.get("z"), [tensors[k] for k in noise_keys] or None,
                  meta.get("arch", ""), meta.get("generator", ""), extra, tensors.get("blend.source"),
                  tensors.get("blend.mask"))
    if (codes.blend_source is None) != (codes.blend_mask is None):
        raise CheckpointError(f"{path}: holds only one of blend.source and blend.mask (a region edit needs both)")
    if G is not None:
        check_codes(codes, G, path, allow_other_generator)
    return codes


def check_codes(codes: Codes, G, where="codes", allow_other_generator: bool = False) -> None:
    from memorygan.checkpoint import generator_fingerprint

    cfg = G.config
    want = (cfg.num_classes, cfg.local_layers, cfg.latent_dim)
    if codes.expanded.ndim != 4 or tuple(codes.expanded.shape[1:]) != want:
        raise CheckpointError(f"{where}: expanded codes are {tuple(codes.expanded.shape)} but this generator needs "
                              f"(N, K={want[0]}, L={want[1]}, D={want[2]})")
    if codes.arch and codes.arch != G.arch:
        raise CheckpointError(f"{where}: codes of a {codes.arch} generator, this one is {G.arch}")
    if not allow_other_generator and codes.generator and codes.generator != generator_fingerprint(G):
        raise CheckpointError(f"{where}: the codes belong to another generator (fingerprint {codes.generator}, this "
                              f"one is {generator_fingerprint(G)}); pass the generator they were made with (or "
                              "allow other generators for a fine-tuned copy)")
    if codes.noise is not None:
        G.render_net.check_noise(codes.noise, len(codes))
    if codes.blend_source is not None:
        r = cfg.resolution
        if tuple(codes.blend_source.shape) != tuple(codes.expanded.shape) or \
                tuple(codes.blend_mask.shape) != (len(codes), 1, r, r):
            raise CheckpointError(f"{where}: blend.source {tuple(codes.blend_source.shape)} / blend.mask "
                                  f"{tuple(codes.blend_mask.shape)} do not fit expanded codes "
                                  f"{tuple(codes.expanded.shape)} and {r}x{r} images")


@torch.no_grad()
def render_codes(G, codes: Codes):
    """(image (N, 3, H, W), seg (N, K, H, W)) of every image of `codes` as it was drawn: a region edit's codes
    blended over their source (`editing.region.render_blended`), others from their expanded codes; noise maps when
    the codes hold them, else G's constant maps."""
    noise = None if codes.noise is None else [n.to(G.device) for n in codes.noise]
    if codes.blend_source is not None:
        from memorygan.editing.region import render_blended
        image, seg, _ = render_blended(G, codes.expanded.to(G.device), codes.blend_source.to(G.device),
                                       codes.blend_mask.to(G.device), noise)
        return image, seg
    out = G(expanded=codes.expanded.to(G.device), noise=noise, noise_mode="const")
    return out.image, out.seg
