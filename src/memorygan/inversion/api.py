"""`invert_command`: the whole of `memorygan invert` as one function (load the generator, resolve the images or
samples, pick the perceptual distance, invert into the output folder)."""
from __future__ import annotations

from pathlib import Path

from memorygan.errors import ConfigError
from memorygan.inversion.projection import InversionOptions
from memorygan.inversion.run import TARGETS, InversionResult, invert


def invert_command(generator, out, opts: InversionOptions | None = None, *, images=None, masks=None, seeds=None,
                   truncation: float = 1.0, perceptual: str = "auto", lpips_weights=None, lpips_backbone=None,
                   probe=None, min_size: int = 128, limit: int | None = None, batch: int = 1, device: str = "cpu",
                   progress: bool = True, init_from=None, encoder=None) -> InversionResult:
    """Invert `images` (a file, folder or dataset folder, with optional `masks`) or the generator's samples of
    `seeds` (known answers, written to OUT/targets) into `out`. `perceptual`: see `inversion.perceptual.KINDS`;
    the probe fallback also finds a dataset folder's probe/. `limit`: only the first N images (name order).
    `init_from`: a previous inversion folder of this generator to start from (see `run.invert`); `encoder`: an
    encoder folder of this generator (`memorygan encoder train`) to start from (`opts.steps` 0: the encoder
    alone)."""
    import memorygan
    from memorygan.inversion.perceptual import load_perceptual
    from memorygan.inversion.targets import collect_targets, write_sample_targets

    from dataclasses import replace

    opts = opts or InversionOptions()
    if encoder is not None:
        opts = replace(opts, encoder=str(encoder))
    opts.check()
    if (images is None) == (seeds is None):
        raise ConfigError("pass either --images or --seeds")
    if masks is not None and images is None:
        raise ConfigError("--masks goes with --images (samples bring their own segmentation)")
    G, _ = memorygan.load(generator, device)
    out = Path(out)
    if seeds is not None:
        targets = write_sample_targets(G, seeds, out / TARGETS, truncation)
    else:
        targets = collect_targets(G, images, masks, limit)
    if probe is None and targets.dataset is not None and (targets.dataset / "probe").is_dir():
        probe = targets.dataset
    dist = load_perceptual(perceptual, lpips_weights=lpips_weights, lpips_backbone=lpips_backbone, probe=probe,
                           device=device, min_size=min_size)
    if init_from is not None and not Path(init_from).is_dir():
        raise ConfigError(f"--init-from {init_from}: no such inversion folder")
    E = None
    if encoder is not None:
        from memorygan.encoder.model import load_encoder
        E, _ = load_encoder(encoder, G)
    return invert(G, targets, out, opts, dist, generator_path=str(generator), batch=batch, progress=progress,
                  init_from=init_from, encoder=E)
