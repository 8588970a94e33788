"""Official SemanticStyleGAN checkpoints (DESIGN 7): import into the project's SSG generator, and export back.

An official checkpoint is a `torch.save` dict with `g`, `d`, `g_ema`, `g_optim`, `d_optim` and `args` (an
`argparse.Namespace`). It is read with `torch.load(weights_only=True)` allowing only `argparse.Namespace`
beyond tensors and containers, so no pickled code runs. The architecture is inferred from tensor shapes
(resolution, K, widths, layer counts, render channels, coarse size) and from `args` for what shapes cannot tell
(base/depth layer split, transparent classes, residual refine).

Key mapping (official -> project), everything else identical:
  style.{i}                                   -> mapping.net.{i}
  pos_embed.weights                           -> pos_embed.weight
  local_nets.{k}.linears.{i}.conv.weight      -> local_nets.{k}.layers.{i}.conv.weight      (1,O,I,1,1) -> (O,I,1,1)
  local_nets.{k}.linears.{i}.*                -> local_nets.{k}.layers.{i}.*
  *.to_feat/to_depth/to_rgbs/to_segs.conv.weight -> *.weight; .conv.modulation (1,I,1,1) -> .modulation (1,I);
  *.bias (1,O,1,1) -> *.bias (O,); *.upsample.kernel (fixed buffer, checked, not stored)
  render_net.convs.{j}.modulation (1,I,1,1)   -> render_net.convs.{j}.modulation (1,I); blur.kernel checked
  render_net.noises.noise_{j}                 -> render_net.noise_{j}
"""
from __future__ import annotations

import argparse
import pickle
import re
import zipfile
from pathlib import Path

import torch

from memorygan.checkpoint import check_state_dict
from memorygan.config import GeneratorConfig
from memorygan.errors import CheckpointError, ConfigError
from memorygan.ops import make_kernel

OFFICIAL_KEYS = ("g", "d", "g_ema", "g_optim", "d_optim", "args")
_KERNEL4 = make_kernel([1, 3, 3, 1]) * 4  # Blur(upsample_factor=2) and Upsample(factor=2) buffers


# ------------------------------------------------------------------------------------------------ reading

def read_official_checkpoint(path) -> tuple[dict[str, torch.Tensor], argparse.Namespace | dict | None]:
    """Safely load an official checkpoint; returns (g_ema state dict, args)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            ckpt = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        msg = str(e).split("\n\n")[0] if "Unsupported global" in str(e) or "weights_only" in str(e) else str(e)
        found = re.search(r"GLOBAL ([\w.]+)", str(e))
        what = f" (it references {found.group(1)})" if found else ""
        raise CheckpointError(f"{path}: refused to load: the pickle holds objects other than tensors, containers "
                              f"and argparse.Namespace{what}. {msg.strip()[:300]}") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError, AttributeError, KeyError) as e:
        raise CheckpointError(f"{path}: not a PyTorch checkpoint ({type(e).__name__}: {str(e)[:200]})") from None
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"{path}: expected a dict with keys {list(OFFICIAL_KEYS)}, got {type(ckpt).__name__}")
    if "g_ema" not in ckpt:
        raise CheckpointError(f"{path}: no 'g_ema' entry (keys: {sorted(map(str, ckpt))[:10]}); not an official "
                              "SemanticStyleGAN checkpoint")
    g_ema = ckpt["g_ema"]
    if not isinstance(g_ema, dict) or not all(isinstance(v, torch.Tensor) for v in g_ema.values()):
        raise CheckpointError(f"{path}: 'g_ema' must be a state dict of tensors")
    args = ckpt.get("args")
    if args is not None and not isinstance(args, (argparse.Namespace, dict)):
        raise CheckpointError(f"{path}: 'args' must be an argparse.Namespace, got {type(args).__name__}")
    return {str(k): v for k, v in g_ema.items()}, args


def _arg(args, name: str, default):
    if args is None:
        return default
    value = args.get(name, default) if isinstance(args, dict) else getattr(args, name, default)
    return default if value is None else value


def _count(sd: dict, pattern: str) -> int:
    rx = re.compile(pattern)
    return len({m.group(1) for k in sd for m in [rx.fullmatch(k)] if m})


def infer_ssg_config(sd: dict[str, torch.Tensor], args=None, where: str = "checkpoint") -> GeneratorConfig:
    """Architecture of an official g_ema state dict (shapes first, `args` for what shapes do not determine)."""
    def need(key):
        if key not in sd:
            raise CheckpointError(f"{where}: unknown layout: missing {key}")
        return sd[key]

    try:
        latent = need("style.1.weight").shape[1]
        n_mlp = _count(sd, r"style\.(\d+)\.weight")
        k = need("render_net.to_segs.0.conv.weight").shape[0]
        pos = need("pos_embed.weights")
        local_ch, fourier_ch = pos.shape[:2]
        num_freqs = (fourier_ch // 2 - 1) // 2
        if 2 * (2 * num_freqs + 1) != fourier_ch:
            raise CheckpointError(f"{where}: unknown layout: pos_embed.weights has {fourier_ch} input channels, "
                                  "not 2(2N+1)")
        resolution = 2 ** num_freqs
        local_layers = _count(sd, r"local_nets\.0\.linears\.(\d+)\.conv\.weight")
        coarse_ch = need("local_nets.0.to_feat.conv.weight").shape[0]
        n_convs = _count(sd, r"render_net\.convs\.(\d+)\.weight")
        min_feat = need("render_net.noises.noise_0").shape[-1] // 2
        last = need(f"render_net.noises.noise_{n_convs - 1}").shape[-1]
        if last != resolution:
            raise CheckpointError(f"{where}: unknown layout: last noise map is {last} px but pos_embed implies "
                                  f"{resolution} px")
        outs = [sd[f"render_net.convs.{2 * b}.weight"].shape[0] for b in range(n_convs // 2)]
        ins = [sd[f"render_net.convs.{2 * b}.weight"].shape[1] for b in range(n_convs // 2)]
        coarse_size = None
        prev = coarse_ch
        for b, (i, o) in enumerate(zip(ins, outs)):
            if i == prev + coarse_ch:
                coarse_size = min_feat * 2 ** b
            prev = o
        if coarse_size is None:
            raise CheckpointError(f"{where}: unknown layout: no render block concatenates the coarse feature map")
        cmax = max(outs)
        cbase = outs[-1] * resolution
        for b, o in enumerate(outs):
            r = min_feat * 2 ** (b + 1)
            if min(cbase // r, cmax) != o:
                raise CheckpointError(f"{where}: unknown layout: render channels {outs} do not follow the "
                                      "StyleGAN2 channel table")
    except (IndexError, KeyError, ValueError) as e:
        raise CheckpointError(f"{where}: unknown layout ({e})") from None
    transparent = _arg(args, "transparent_dims", [])
    try:
        return GeneratorConfig(
            arch="ssg", resolution=resolution, num_classes=k, latent_dim=latent, mapping_layers=n_mlp,
            mapping_lr_mul=float(_arg(args, "lr_mlp", 0.01)), local_layers=local_layers,
            base_layers=int(_arg(args, "base_layers", 2)), depth_layers=int(_arg(args, "depth_layers", 6)),
            local_channels=local_ch, coarse_channels=coarse_ch, coarse_size=coarse_size, min_feat_size=min_feat,
            channel_base=cbase, channel_max=cmax, residual_refine=bool(_arg(args, "residual_refine", True)),
            transparent_classes=[int(t) for t in transparent])
    except (ConfigError, TypeError) as e:
        raise CheckpointError(f"{where}: inferred an invalid architecture: {e}") from None


# ------------------------------------------------------------------------------------------------ mapping

def _to_official_name(name: str) -> str:
    name = re.sub(r"^mapping\.net\.", "style.", name)
    name = name.replace("pos_embed.weight", "pos_embed.weights")
    name = re.sub(r"^(local_nets\.\d+)\.layers\.", r"\1.linears.", name)
    name = re.sub(r"^render_net\.noise_(\d+)$", r"render_net.noises.noise_\1", name)
    m = re.match(r"^(.*\.(?:to_feat|to_depth|to_rgbs\.\d+|to_segs\.\d+))\.(weight|modulation)$", name)
    if m:
        name = f"{m.group(1)}.conv.{m.group(2)}"
    return name


def _to_official_tensor(name: str, t: torch.Tensor) -> torch.Tensor:
    if re.search(r"\.linears\.\d+\.conv\.weight$", name):
        return t[None]
    if name.endswith("modulation") and t.ndim == 2:
        return t[:, :, None, None]
    if re.search(r"(to_feat|to_depth|to_rgbs\.\d+|to_segs\.\d+)\.bias$", name):
        return t.reshape(1, -1, 1, 1)
    return t


_SKIP = ("w_avg", "w_avg_count")


def export_ssg(G) -> dict[str, torch.Tensor]:
    """The project's SSG generator -> official `g_ema` state dict (names, shapes and fixed kernel buffers)."""
    if getattr(G, "arch", None) != "ssg":
        raise CheckpointError(f"export to the official SemanticStyleGAN layout needs an 'ssg' generator; this one is "
                              f"{getattr(G, 'arch', type(G).__name__)!r} (MemoryGAN has no official counterpart)")
    out = {}
    for name, t in G.state_dict().items():
        if name in _SKIP:
            continue
        oname = _to_official_name(name)
        t = t.detach() if t.device.type == "meta" else t.detach().cpu()
        out[oname] = _to_official_tensor(oname, t).contiguous().clone()
        m = re.match(r"^(.*\.(?:to_feat|to_depth|to_rgbs\.\d+|to_segs\.\d+))\.conv\.weight$", oname)
        if m:
            out[f"{m.group(1)}.upsample.kernel"] = _KERNEL4.clone()
        m = re.match(r"^(render_net\.convs\.\d+)\.weight$", oname)
        if m and G.render_net.convs[int(oname.split(".")[2])].upsample:
            out[f"{m.group(1)}.blur.kernel"] = _KERNEL4.clone()
    return out


def official_to_state_dict(sd: dict[str, torch.Tensor], G, where: str = "checkpoint") -> dict[str, torch.Tensor]:
    """Official g_ema state dict -> the project's state dict for `G` (strict: every problem listed)."""
    expected = export_ssg(G)
    check_state_dict(expected, sd, where)
    for name, t in expected.items():
        if name.endswith("kernel") and not torch.allclose(sd[name].float(), t, atol=1e-6):
            raise CheckpointError(f"{where}: unknown layout: {name} is not the [1,3,3,1] blur kernel")
    own = G.state_dict()
    state = {}
    for name, t in own.items():
        if name in _SKIP:
            state[name] = t.clone()
            continue
        src = sd[_to_official_name(name)]
        state[name] = src.reshape(t.shape).to(t.dtype).clone()
    return state


# ------------------------------------------------------------------------------------------------ API

def load_official_generator(path):
    """Read an official checkpoint and return (SSG generator with its g_ema weights, config)."""
    from memorygan.models import SemanticStyleGAN

    sd, args = read_official_checkpoint(path)
    cfg = infer_ssg_config(sd, args, where=str(path))
    G = SemanticStyleGAN(cfg)
    G.load_state_dict(official_to_state_dict(sd, G, where=str(path)), strict=True)
    return G.eval().requires_grad_(False), cfg


def import_ssg(path, out_dir, w_avg_samples: int = 4096, overwrite: bool = False):
    """Convert an official checkpoint into a project generator folder (atomic: nothing is left on failure).

    The truncation centre (not stored by the official code) is estimated from `w_avg_samples` samples.
    Returns (G, cfg).
    """
    from memorygan.checkpoint import save_generator

    out_dir = Path(out_dir)
    if out_dir.exists() and not overwrite and any(out_dir.iterdir()):
        raise CheckpointError(f"--out {out_dir} already exists and is not empty (use --overwrite)")
    G, cfg = load_official_generator(path)
    if w_avg_samples > 0:
        G.update_w_avg(w_avg_samples)
    save_generator(G, out_dir, extra={"provenance": {"imported_from": str(Path(path).resolve()),
                                                     "format": "official SemanticStyleGAN g_ema"}})
    return G, cfg


def official_args(cfg: GeneratorConfig) -> argparse.Namespace:
    """`args` for an exported checkpoint, with the official training script's names."""
    return argparse.Namespace(
        size=cfg.resolution, latent=cfg.latent_dim, n_mlp=cfg.mapping_layers,
        channel_multiplier=cfg.channel_base // 16384, seg_dim=cfg.num_classes, local_layers=cfg.local_layers,
        base_layers=cfg.base_layers, depth_layers=cfg.depth_layers, local_channel=cfg.local_channels,
        coarse_channel=cfg.coarse_channels, coarse_size=cfg.coarse_size, min_feat_size=cfg.min_feat_size,
        residual_refine=cfg.residual_refine, transparent_dims=list(cfg.transparent_classes), lr_mlp=cfg.mapping_lr_mul)


def export_ssg_checkpoint(G, path) -> Path:
    """Write an official-layout checkpoint (`g_ema` and `g` = the weights, `args`; no optimizer/discriminator state)."""
    path = Path(path)
    sd = export_ssg(G)
    ckpt = {"g": sd, "g_ema": sd, "d": {}, "g_optim": {}, "d_optim": {}, "args": official_args(G.config)}
    tmp = path.with_name(f".{path.name}.tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(ckpt, str(tmp))
    tmp.replace(path)
    return path
