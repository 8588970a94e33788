"""The encoder study (docs/inversion.md, "Encoders"): distortion, time and editability of every inversion method on
the shipped 64 px pair, on known answers (the generator's own samples, codes known) and on held-out portraits
(renderer seed 1000, never used for training, with their true masks).

Methods: the encoder alone (1 pass; 2 and 3 ReStyle passes), the encoder + 30 optimisation steps (expanded codes,
and latents, which keep every edit space), 300 optimisation steps from the mean codes (the default of
`memorygan invert`), and PTI (100 steps, lr 1e-3, perceptual weight 0.1) after each of encoder / encoder+30 /
300 steps on the first few images. Measures: PSNR (8-bit), EfficientNet-Lite0 perceptual distance, mIoU of the
generator's segmentation against the mask, seconds per image (batched as here, one thread). Editability: the slope
of learned directions (`memorygan edit learn`: hair lightness and skin lightness through the part codes, hair
lightness through the whole latent) on the held-out inversions, against their slope on samples; judged by the
assessor on the segmentation probe's mask (the probe took part in neither the direction nor the inversion), with
the assessor on the generator's own segmentation (what the direction was trained against) beside it.

    PYTHONPATH=src python docs/inversion/encoder_study.py --arch memorygan --encoder E --out study-memorygan.json
"""
import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import memorygan
from memorygan.data.dataset import SegmentationDataset
from memorygan.editing.assessors import get_assessor
from memorygan.editing.directions import Source, load_direction
from memorygan.encoder.model import encode, load_encoder
from memorygan.inversion import InversionOptions, load_perceptual, project
from memorygan.inversion.edits import EditView, compare_edits
from memorygan.inversion.losses import psnr_uint8
from memorygan.inversion.projection import CodeSpace
from memorygan.inversion.pti import pivotal_tuning
from memorygan.metrics.probe import load_probe
from memorygan.metrics.stats import IoUCounts
from memorygan.visualize import to_uint8

ALPHAS = (-0.5, -0.25, 0.0, 0.25, 0.5)
DIRS = Path("/work/exp/enc/dirs")
PROBE = Path("/work/exp/data/p64/probe")
HELDOUT = Path("/work/exp/data/p64-heldout")


class ProbeJudged:
    """An assessor read on the probe's segmentation of the image instead of the generator's own."""

    def __init__(self, assessor, probe):
        self.assessor, self.probe = assessor, probe
        self.spec = f"{assessor.spec} (probe mask)"

    def __call__(self, image, seg):
        with torch.no_grad():
            return self.assessor(image, self.probe(image))


def image_metrics(image, seg, target, ids, dist):
    a, b = to_uint8(image), to_uint8(target)
    n = image.shape[0]
    with torch.no_grad():
        perc = dist(image, target).tolist() if dist is not None else [float("nan")] * n
    miou = [IoUCounts(seg.shape[1]).update(seg[i:i + 1].argmax(1).cpu(), ids[i:i + 1].cpu()).miou for i in range(n)]
    return {"psnr": float(np.mean([psnr_uint8(a[i], b[i]) for i in range(n)])), "perceptual": float(np.mean(perc)),
            "miou": float(np.mean(miou)), "psnr_each": [psnr_uint8(a[i], b[i]) for i in range(n)]}


def methods(G, E, x, ids, dist, n_pti, pti_steps, long_steps=300, only_encoder=False):
    """Every method on the batch x (B, 3, H, W) with masks ids -> {name: {metrics, seconds, source}}."""
    out = {}
    exp_space = CodeSpace(G, "expanded", 2000)
    lat_space = CodeSpace(G, "latents", 2000)
    b = x.shape[0]
    for passes in (1, 2, 3):
        t = time.perf_counter()
        with torch.no_grad():
            enc = encode(E, G, x, passes)
        sec = (time.perf_counter() - t) / b
        out[f"encoder ({passes} pass{'es' if passes > 1 else ''})"] = dict(
            image_metrics(enc.image, enc.seg, x, ids, dist), seconds=sec,
            source=Source(enc.expanded, enc.latents))
        if passes == 1:
            enc1 = enc
    if only_encoder:
        return out
    has = torch.ones(b)
    runs = [("encoder + 30 steps (expanded)", exp_space, InversionOptions(steps=30), exp_space.units(enc1.expanded),
             sec_enc := out["encoder (1 pass)"]["seconds"]),
            ("encoder + 30 steps (latents)", lat_space, InversionOptions(steps=30, level="latents"),
             lat_space.units(enc1.latents), sec_enc),
            ("300 steps from the mean", exp_space, InversionOptions(steps=long_steps), None, 0.0)]
    for name, space, opts, init, extra in runs:
        t = time.perf_counter()
        p = project(G, x, opts, dist, ids, has, space, init_units=init)
        sec = (time.perf_counter() - t) / b + extra
        lat = p.codes if space.level == "latents" else None
        out[name] = dict(image_metrics(p.image, p.seg, x, ids, dist), seconds=sec, source=Source(p.expanded, lat))
        print(f"  {name}: {out[name]['psnr']:.2f} dB, {sec:.2f} s/image", flush=True)
    # PTI on the first n_pti images after three of the methods
    popts = InversionOptions(steps=0, pti_steps=pti_steps, pti_lr=1e-3, pti_perceptual_weight=0.1)
    for name in ("encoder (1 pass)", "encoder + 30 steps (expanded)", "300 steps from the mean"):
        src = out[name]["source"]
        rec = []
        t = time.perf_counter()
        for i in range(n_pti):
            tuned, _ = pivotal_tuning(G, src.expanded[i:i + 1], x[i:i + 1], popts, dist, center=exp_space.latent_mean)
            with torch.no_grad():
                o = tuned.synthesize(src.expanded[i:i + 1], noise_mode="const")
            rec.append(image_metrics(o["image"], o["seg"], x[i:i + 1], ids[i:i + 1], dist))
        before = image_metrics(*_render(G, src.expanded[:n_pti]), x[:n_pti], ids[:n_pti], dist)
        out[name + " + PTI"] = {"psnr": float(np.mean([r["psnr"] for r in rec])),
                                "perceptual": float(np.mean([r["perceptual"] for r in rec])),
                                "miou": float(np.mean([r["miou"] for r in rec])),
                                "seconds": (time.perf_counter() - t) / n_pti + out[name]["seconds"],
                                "images": n_pti, "before_on_these": {k: before[k] for k in ("psnr", "perceptual",
                                                                                           "miou")}}
    return out


def _render(G, expanded):
    with torch.no_grad():
        o = G.synthesize(expanded, noise_mode="const")
    return o["image"], o["seg"]


def slopes(G, arch, sources: dict, sample_source: Source, probe):
    """Per direction: slope on samples and on each method's held-out codes, judged (probe mask) and by the
    assessor on the generator's segmentation."""
    res = {}
    for dname in (f"{arch}-hair", f"{arch}-skin", f"{arch}-hair-latent"):
        d = load_direction(DIRS / dname, G)
        A = get_assessor(d.assessor, G)
        J = ProbeJudged(A, probe)
        row = {}
        for judge_name, judge in (("judge", J), ("assessor", A)):
            views = [EditView("samples", G, sample_source, d)]
            for m, src in sources.items():
                if d.space == "latent" and src.latents is None:
                    continue
                views.append(EditView(m, G, src, d))
            # compare_edits needs equal image counts: samples and held-out both hold the same number
            r = compare_edits(views, judge, ALPHAS)
            row[judge_name] = {v: r["views"][v]["slope_mean"] for v in r["views"]}
        res[dname] = row
    return res


def demo_latency(G, E, images, steps: int = 100) -> dict:
    """The demo's upload with an encoder: seconds from a 256 px upload to the first view (the encoder's codes,
    rendered into the panel) and to the refined view after `steps` steps, with the number of progress messages."""
    from memorygan.demo.state import DemoState

    st = DemoState(G, encoder=E)
    first, total, progress = [], [], []
    for x in images:
        up = np.asarray(Image.fromarray(to_uint8(x[None])[0]).resize((256, 256)))
        t = time.perf_counter()
        it = st.invert_steps(up, steps=steps)
        next(it)
        first.append(time.perf_counter() - t)
        rest = list(it)
        total.append(time.perf_counter() - t)
        progress.append(sum(isinstance(r, str) for r in rest))
    return {"first_view_s": float(np.mean(first)), "first_view_max_s": float(np.max(first)),
            "refined_s": float(np.mean(total)), "steps": steps, "progress_messages": float(np.mean(progress))}


def figure(G, targets, sources: dict, path: Path, direction: str):
    """Rows: the held-out targets, then each method's reconstruction; last rows: the whole-latent hair direction
    at -0.5 / +0.5 on the encoder's codes."""
    from memorygan.data.files import write_png
    from memorygan.editing.directions import edit_output
    from memorygan.visualize import grid

    n = targets.shape[0]
    rows = [to_uint8(targets)]
    for name in ("encoder (1 pass)", "encoder + 30 steps (latents)", "300 steps from the mean"):
        rows.append(to_uint8(_render(G, sources[name].expanded[:n])[0]))
    d = load_direction(DIRS / direction, G)
    src = sources["encoder (1 pass)"].select(slice(0, n))
    with torch.no_grad():
        for a in (-0.5, 0.5):
            rows.append(to_uint8(edit_output(G, d, src, a).image))
    write_png(path, grid(rows, pad=1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", required=True)
    ap.add_argument("--encoder", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--pti", type=int, default=4, help="images given PTI per method")
    ap.add_argument("--pti-steps", type=int, default=100)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--long-steps", type=int, default=300, help="steps of the from-the-mean baseline")
    ap.add_argument("--only-encoder", action="store_true", help="only the encoder's passes (no optimisation)")
    ap.add_argument("--figure", help="write the figure of the held-out reconstructions here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    G, _ = memorygan.load(f"portraits-{args.arch}")
    G.eval().requires_grad_(False)
    E, _ = load_encoder(args.encoder, G)
    dist = load_perceptual("efficientnet")
    probe, _ = load_probe(PROBE)
    n = args.n
    record = {"arch": args.arch, "encoder": args.encoder, "n": n}

    # timing of the encoder alone: batch 1, the forward pass and the forward pass + render, this thread count
    x1 = torch.zeros(1, 3, 64, 64)
    with torch.no_grad():
        for _ in range(5):
            E(x1)
        t = time.perf_counter()
        for _ in range(50):
            E(x1)
        fwd = (time.perf_counter() - t) / 50
        t = time.perf_counter()
        for _ in range(20):
            encode(E, G, x1)
        full = (time.perf_counter() - t) / 20
    record["timing_ms"] = {"encoder_forward": fwd * 1000, "encoder_and_render": full * 1000,
                           "threads": torch.get_num_threads()}
    print("timing", record["timing_ms"], flush=True)

    # known answers: samples of seeds 3000.. (the training drew seeds >= 2,000,000 and evaluated 1,000,000..)
    with torch.no_grad():
        z = G.sample_z(n, seed=3000)
        o = G(z, noise_mode="const")
    known_x, known_ids = o.image, o.seg.argmax(1)
    sample_source = Source(o.expanded, o.latents, z)
    print("known answers", flush=True)
    known = methods(G, E, known_x, known_ids, dist, args.pti, args.pti_steps, args.long_steps,
                    args.only_encoder)
    record["known"] = {k: {kk: vv for kk, vv in v.items() if kk != "source"} for k, v in known.items()}

    ds = SegmentationDataset(HELDOUT)
    items = [ds[i] for i in range(n)]
    hx = torch.stack([it["image"] for it in items])
    hids = torch.stack([it["ids"] for it in items])
    print("held-out", flush=True)
    held = methods(G, E, hx, hids, dist, args.pti, args.pti_steps, args.long_steps,
                    args.only_encoder)
    record["heldout"] = {k: {kk: vv for kk, vv in v.items() if kk != "source"} for k, v in held.items()}
    sources = {k: v["source"] for k, v in held.items() if "source" in v}
    print("slopes", flush=True)
    record["slopes"] = slopes(G, args.arch, sources, sample_source, probe)
    record["demo"] = demo_latency(G, E, hx[:5])
    print("demo", record["demo"], flush=True)
    if args.figure and not args.only_encoder:
        figure(G, hx[:6], sources, Path(args.figure), f"{args.arch}-hair-latent")
    Path(args.out).write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps({k: record[k] for k in ("timing_ms", "slopes")}, indent=1))


if __name__ == "__main__":
    main()
