"""`memorygan invert` end to end on tiny generators: output files and their consistency, known answers, PTI never
touches the source generator's files, resumability, dataset folders from the importers, bad inputs."""
import json

import numpy as np
import pytest
import torch
from helpers import tiny_generator
from PIL import Image

import memorygan
from memorygan.checkpoint import generator_fingerprint
from memorygan.cli import main
from memorygan.data.palette import class_colors
from memorygan.editing.codes import load_codes
from memorygan.errors import CheckpointError, ConfigError
from memorygan.inversion import InversionOptions, invert_command
from memorygan.inversion import run as run_mod
from memorygan.inversion.losses import psnr_uint8
from memorygan.visualize import to_uint8

FAST = InversionOptions(steps=8, perceptual_weight=0.0, stats_samples=100)


def _write_images(folder, G, seeds, size=None):
    folder.mkdir(parents=True, exist_ok=True)
    out = G.sample(len(seeds), seed=seeds[0])
    for i, s in enumerate(seeds):
        im = Image.fromarray(to_uint8(out.image[i:i + 1])[0])
        if size:
            im = im.resize((size, size))
        im.save(folder / f"img{s}.png")
    return out


def assert_renders_png(image, png, slack=0.01):
    """`png` (H, W, 3) uint8 is `image` (1, 3, H, W) in [-1, 1] rounded to 8 bits, the image computed again here.
    Not bit-equality of the bytes: the inversion rendered the PNG in its batch (2 images with batch=2) and in
    inference mode (channels_last activations), here one image with autograd on (contiguous activations), i.e.
    other GEMM/conv shapes and layouts, whose kernels (chosen by shape, layout and CPU ISA, e.g. AVX-512) may sum
    in another order; the fp32 values then differ in their last bits and a pixel within ~1e-6 of a rounding
    boundary lands on the other 8-bit level. Each rendered value must lie within half a level (+ `slack` levels,
    ~1e-4 in image units: far above fp32 rounding, far below a level) of the PNG's; other codes or a stale image
    miss it by whole levels."""
    x = ((image.detach().double().clamp(-1, 1) + 1) * 127.5)[0].permute(1, 2, 0).cpu().numpy()
    assert png.shape == x.shape and png.dtype == np.uint8
    worst = float(np.abs(x - png).max())
    assert worst <= 0.5 + slack, f"rendered values differ from the PNG by up to {worst:.4f} levels"


def png_ids(path, num_classes):
    """Class ids of a segmentation PNG drawn with the class palette (`seg_to_color`)."""
    rgb = np.asarray(Image.open(path))
    match = (rgb[..., None, :] == class_colors(num_classes)).all(-1)           # (H, W, K)
    assert (match.sum(-1) == 1).all(), "a pixel of the seg PNG has no (or no unique) class colour"
    return torch.from_numpy(match.argmax(-1))


def _write_masks(folder, ids):
    folder.mkdir(parents=True, exist_ok=True)
    for name, m in ids.items():
        Image.fromarray(np.asarray(m, np.uint8)).save(folder / f"{name}.png")


def test_folder_with_masks_writes_consistent_outputs(generator_dir, tmp_path):
    G, _ = memorygan.load(generator_dir)
    out = _write_images(tmp_path / "imgs", G, [0, 1])
    ids = out.seg.argmax(1)
    _write_masks(tmp_path / "masks", {"img0": ids[0], "img1": ids[1]})
    res = invert_command(generator_dir, tmp_path / "inv", FAST, images=tmp_path / "imgs", masks=tmp_path / "masks",
                         perceptual="none", batch=2, progress=False)
    assert res.done == ["img0", "img1"] and res.skipped == [] and res.perceptual_name == "none"
    for name in ("img0", "img1"):
        d = tmp_path / "inv" / name
        assert sorted(p.name for p in d.iterdir()) == sorted(
            ["codes.safetensors", "metrics.json", f"{name}-reconstruction.png", f"{name}-seg.png",
             f"{name}-compare.png"])
        m = json.loads((d / "metrics.json").read_text())
        assert m["perceptual_name"] == "none" and m["perceptual"] is None and m["level"] == "expanded"
        codes = load_codes(d / "codes.safetensors", G)   # codes of this generator (fingerprint checked)
        assert codes.level == "expanded" and codes.names == [name] and codes.generator == generator_fingerprint(G)
        assert m["generator_fingerprint"] == codes.generator
        # the codes render the reconstruction PNG, whose PSNR against the input is the reported one
        rec = np.asarray(Image.open(d / f"{name}-reconstruction.png"))
        out = G(expanded=codes.expanded)
        assert_renders_png(out.image, rec)
        target = np.asarray(Image.open(tmp_path / "imgs" / f"{name}.png"))
        assert m["psnr"] == pytest.approx(psnr_uint8(rec, target))
        # mIoU of the generator's segmentation (the seg PNG) against the mask. The PNG's ids, not an argmax of the
        # render here: like the image, that runs other shapes, and a pixel whose top two logits tie to fp32
        # rounding could flip; the render must agree with the PNG wherever its top two are apart.
        seg_ids = png_ids(d / f"{name}-seg.png", G.num_classes)
        top2 = out.seg[0].detach().topk(2, dim=0).values
        clear = top2[0] - top2[1] > 1e-4
        assert clear.float().mean() > 0.9 and torch.equal(out.seg[0].argmax(0)[clear], seg_ids[clear])
        mask = torch.from_numpy(np.asarray(Image.open(tmp_path / "masks" / f"{name}.png")).astype(np.int64))
        from memorygan.metrics.stats import IoUCounts
        assert m["miou"] == pytest.approx(IoUCounts(G.num_classes).update(seg_ids[None], mask[None]).miou)
    summary = json.loads((tmp_path / "inv" / "summary.json").read_text())
    assert summary["images"] == 2 and summary["psnr"] == pytest.approx(
        np.mean([json.loads((tmp_path / "inv" / n / "metrics.json").read_text())["psnr"] for n in ("img0", "img1")]))


def test_known_answers_from_seeds(tmp_path, capsys):
    gdir = tiny_generator("ssg").eval().save_pretrained(tmp_path / "G")
    opts = InversionOptions(level="wplus", steps=150, perceptual_weight=0.0, code_weight=0.0, seg_weight=0.0,
                            stats_samples=200)
    res = invert_command(gdir, tmp_path / "inv", opts, seeds=[3], perceptual="none", progress=False)
    targets = tmp_path / "inv" / "targets"
    assert (targets / "dataset.json").is_file() and (targets / "masks" / "seed0003.png").is_file()
    m = json.loads((tmp_path / "inv" / "seed0003" / "metrics.json").read_text())
    assert m["psnr"] > 25 and m["miou"] is not None and set(m["code_distance"]) >= {"part0", "mean_relative"}
    codes = load_codes(tmp_path / "inv" / "seed0003" / "codes.safetensors")
    assert codes.level == "latents" and codes.latents.shape == (1, 1 + 2 * 4, 16)
    assert codes.extra["requested_level"] == "wplus"
    G, _ = memorygan.load(gdir)
    true = load_codes(targets / "codes.safetensors", G)
    assert torch.allclose(G(z=true.z).image, G(expanded=true.expanded).image, atol=1e-6)
    assert res.summary["code_distance_mean_relative"] == pytest.approx(m["code_distance"]["mean_relative"])


def test_code_distances_by_hand():
    G = tiny_generator("memorygan").eval()
    space = run_mod.CodeSpace(G, "expanded", n=100)
    true = space.mean[None] + space.std[None] * 2.0             # every code 2 spreads off the mean
    rec = true.clone()
    rec[0, 1] = space.mean[1]                                   # part 1 recovered as the mean codes
    d = run_mod.code_distances(G, rec, true, space)
    assert d["part0"] == {"relative": 0.0, "rms_std": 0.0}
    assert d["part1"]["relative"] == pytest.approx(1.0) and d["part1"]["rms_std"] == pytest.approx(2.0, rel=1e-5)
    assert d["mean_relative"] == pytest.approx(0.25)


def test_pti_never_touches_the_source_generator(tmp_path, states):
    G0 = tiny_generator("memorygan").eval()
    gdir = G0.save_pretrained(tmp_path / "G")
    before = states(gdir)
    _write_images(tmp_path / "imgs", tiny_generator("memorygan", seed=9).eval(), [0])   # not G's own sample
    opts = InversionOptions(steps=30, perceptual_weight=0.0, stats_samples=100, pti_steps=15, pti_lr=3e-3,
                            pti_stop_psnr=None)
    res = invert_command(gdir, tmp_path / "inv", opts, images=tmp_path / "imgs", perceptual="none", progress=False)
    assert states(gdir) == before                                     # same bytes, same modification times
    G, _ = memorygan.load(gdir)
    assert generator_fingerprint(G) == generator_fingerprint(G0)
    d = tmp_path / "inv" / "img0"
    tuned, _ = memorygan.load(d / "generator")
    m = json.loads((d / "metrics.json").read_text())
    assert m["generator_fingerprint"] == generator_fingerprint(tuned) != generator_fingerprint(G)
    assert m["pti"]["source_generator_fingerprint"] == generator_fingerprint(G)
    assert m["psnr"] > m["projection"]["psnr"] and m["pti"]["gain_db"] == pytest.approx(
        m["psnr"] - m["projection"]["psnr"])
    drift = m["pti"]["unrelated_samples"]
    assert drift["seeds"] == list(run_mod.DRIFT_SEEDS) and drift["mse"] > 0
    # the codes belong to the tuned generator: they render its reconstruction, and the source refuses them
    codes = load_codes(d / "codes.safetensors", tuned)
    rec = np.asarray(Image.open(d / "img0-reconstruction.png"))
    assert_renders_png(tuned(expanded=codes.expanded).image, rec)   # rendered in inference mode there (see helper)
    with pytest.raises(CheckpointError, match="belong to another generator"):
        load_codes(d / "codes.safetensors", G)
    assert res.summary["pti_gain_db"] == pytest.approx(m["pti"]["gain_db"])


def test_interrupted_folder_inversion_continues_where_it_stopped(tmp_path, monkeypatch, states):
    G = tiny_generator("memorygan").eval()
    gdir = G.save_pretrained(tmp_path / "G")
    _write_images(tmp_path / "imgs", G, [0, 1, 2])
    calls = []
    real = run_mod.project

    def interrupted(*a, **kw):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*a, **kw)

    monkeypatch.setattr(run_mod, "project", interrupted)
    with pytest.raises(KeyboardInterrupt):
        invert_command(gdir, tmp_path / "inv", FAST, images=tmp_path / "imgs", perceptual="none", progress=False)
    inv = tmp_path / "inv"
    assert (inv / "img0" / "metrics.json").is_file() and not (inv / "img1").exists()
    assert not [p for p in inv.iterdir() if p.name.startswith(".img1")]       # no half-written folder left
    first = states(inv / "img0")
    monkeypatch.setattr(run_mod, "project", real)
    res = invert_command(gdir, inv, FAST, images=tmp_path / "imgs", perceptual="none", progress=False)
    assert res.skipped == ["img0"] and res.done == ["img1", "img2"]
    assert states(inv / "img0") == first                                      # finished images are not redone
    assert res.summary["images"] == 3
    # the same folder with other settings is refused, not mixed
    with pytest.raises(ConfigError, match="holds an inversion with other settings"):
        invert_command(gdir, inv, InversionOptions(steps=9, perceptual_weight=0.0, stats_samples=100),
                       images=tmp_path / "imgs", perceptual="none", progress=False)


def test_dataset_folders_from_the_importers_invert_with_their_masks(tmp_path):
    """`data import` and `data celebamask-hq` folders (small replicas built here) bring their masks."""
    from memorygan.data import import_celebamask_hq
    from memorygan.data.files import CELEBAMASK_CLASSES
    from memorygan.data.importer import import_dataset

    # data import: 4 classes, as the tiny generator
    G = tiny_generator("memorygan").eval()
    gdir = G.save_pretrained(tmp_path / "G4")
    out = _write_images(tmp_path / "raw" / "images", G, [0, 1], size=48)     # imported images get resized
    ids = out.seg.argmax(1)[:, ::2, ::2].numpy()                                 # (2, 16, 16) -> 48 x 48 masks
    _write_masks(tmp_path / "raw" / "masks", {f"img{i}": np.kron(ids[i], np.ones((3, 3), int)) for i in range(2)})
    import_dataset(tmp_path / "raw" / "images", tmp_path / "raw" / "masks", tmp_path / "ds", size=32,
                   classes=["part0", "part1", "part2", "part3"])
    res = invert_command(gdir, tmp_path / "inv", FAST, images=tmp_path / "ds", perceptual="none", progress=False)
    assert res.done == ["img0", "img1"]
    for n in res.done:
        m = json.loads((tmp_path / "inv" / n / "metrics.json").read_text())
        assert m["mask"].endswith(f"ds/masks/{n}.png") and m["miou"] is not None

    # data celebamask-hq: the 13 classes; the generator must have the same parts
    raw = tmp_path / "celeba"
    (raw / "CelebA-HQ-img").mkdir(parents=True)
    anno = raw / "CelebAMask-HQ-mask-anno" / "0"
    anno.mkdir(parents=True)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), np.uint8)).save(raw / "CelebA-HQ-img" / "0.jpg")
    skin = np.zeros((64, 64), np.uint8)
    skin[16:56, 12:52] = 255
    hair = np.zeros((64, 64), np.uint8)
    hair[4:20, 8:56] = 255
    Image.fromarray(skin).save(anno / "00000_skin.png")
    Image.fromarray(hair).save(anno / "00000_hair.png")
    import_celebamask_hq(raw, tmp_path / "cm", size=32)
    G13 = tiny_generator("ssg", num_classes=13, transparent_classes=[10, 12], class_names=list(CELEBAMASK_CLASSES))
    g13 = G13.eval().save_pretrained(tmp_path / "G13")
    res = invert_command(g13, tmp_path / "inv13", FAST, images=tmp_path / "cm", perceptual="none", progress=False)
    m = json.loads((tmp_path / "inv13" / "00000" / "metrics.json").read_text())
    assert res.done == ["00000"] and m["miou"] is not None
    # ... and a generator with other parts refuses it, naming both lists
    with pytest.raises(Exception, match="declares classes"):
        invert_command(gdir, tmp_path / "inv-bad", FAST, images=tmp_path / "cm", perceptual="none", progress=False)


def _cli_error(capsys, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("memorygan invert: error:") and "\n" not in err and "Traceback" not in err
    return err


def test_bad_inputs_get_one_line_errors(tmp_path, capsys):
    G = tiny_generator("memorygan").eval()
    gdir = G.save_pretrained(tmp_path / "G")
    base = ["invert", "--generator", str(gdir), "--out", str(tmp_path / "inv"), "--steps", "2", "--no-progress",
            "--perceptual", "none"]
    out = _write_images(tmp_path / "imgs", G, [0])
    # a mask of another size than its image
    _write_images(tmp_path / "big", G, [0], size=48)
    _write_masks(tmp_path / "bigmasks", {"img0": np.zeros((32, 32), np.uint8)})
    err = _cli_error(capsys, base + ["--images", str(tmp_path / "big"), "--masks", str(tmp_path / "bigmasks")])
    assert "img0.png is 32x32 but its image is 48x48" in err
    # a mask with unknown ids
    bad = out.seg.argmax(1)[0].numpy().copy()
    bad[0, 0] = 4                                                        # ids are 0..3
    _write_masks(tmp_path / "masks", {"img0": bad})
    err = _cli_error(capsys, base + ["--images", str(tmp_path / "imgs"), "--masks", str(tmp_path / "masks")])
    assert "img0.png has class id 4 but the generator has 4 parts (ids 0..3)" in err
    # a mask missing for an image; a mask of another size; an RGB mask
    (tmp_path / "empty").mkdir()
    err = _cli_error(capsys, base + ["--images", str(tmp_path / "imgs"), "--masks", str(tmp_path / "empty")])
    assert "no mask for image img0" in err
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(tmp_path / "small.png")
    one = ["--images", str(tmp_path / "imgs" / "img0.png"), "--masks"]
    err = _cli_error(capsys, base + one + [str(tmp_path / "small.png")])
    assert "small.png is 16x16 but its image is 32x32" in err
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "rgb.png")
    err = _cli_error(capsys, base + one + [str(tmp_path / "rgb.png")])
    assert "single-channel" in err
    # an image beyond Pillow's decompression-bomb limit (lowered here so the test stays small): the input's fault
    import PIL.Image
    limit = PIL.Image.MAX_IMAGE_PIXELS
    PIL.Image.MAX_IMAGE_PIXELS = 100                                     # 32x32 = 1024 > 2 x 100: refused
    try:
        err = _cli_error(capsys, base + ["--images", str(tmp_path / "imgs")])
    finally:
        PIL.Image.MAX_IMAGE_PIXELS = limit
    assert "img0.png: too large to decode safely" in err and "bug" not in err
    # a generator folder that does not exist
    err = _cli_error(capsys, ["invert", "--generator", str(tmp_path / "nope"), "--images", str(tmp_path / "imgs"),
                              "--out", str(tmp_path / "inv")])
    assert "nope: no such file or folder" in err
    # images that do not exist; an output folder that holds something else
    err = _cli_error(capsys, base + ["--images", str(tmp_path / "missing")])
    assert "--images" in err and "no such file or folder" in err
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x.txt").write_text("mine")
    err = _cli_error(capsys, base[:4] + [str(tmp_path / "busy")] + base[5:] + ["--images", str(tmp_path / "imgs")])
    assert "is not an inversion folder" in err and (tmp_path / "busy" / "x.txt").read_text() == "mine"
    assert not (tmp_path / "inv").exists()                              # nothing written by the failed runs


def test_cli_runs_and_reports_the_distance(tmp_path, capsys):
    G = tiny_generator("ssg").eval()
    gdir = G.save_pretrained(tmp_path / "G")
    _write_images(tmp_path / "imgs", G, [0, 1])
    argv = ["invert", "--generator", str(gdir), "--images", str(tmp_path / "imgs"), "--out", str(tmp_path / "inv"),
            "--steps", "3", "--level", "latents", "--perceptual", "none", "--no-progress", "--limit", "1"]
    rc = main(argv + ["--threads", "1"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "perceptual distance: none" in text and "1/1 images" in text
    assert (tmp_path / "inv" / "img0").is_dir() and not (tmp_path / "inv" / "img1").exists()
    rc = main(argv)
    assert rc == 0 and "1 image(s) already finished" in capsys.readouterr().out


def test_pti_around_the_codes_of_a_previous_inversion(tmp_path):
    """--init-from DIR --steps 0 --pti-steps M: pivotal tuning around codes found before (here with optimised noise
    maps), starting exactly where that inversion ended."""
    G = tiny_generator("ssg").eval()
    gdir = G.save_pretrained(tmp_path / "G")
    _write_images(tmp_path / "imgs", tiny_generator("ssg", seed=4).eval(), [0, 1])
    first = InversionOptions(steps=20, perceptual_weight=0.0, stats_samples=100, optimize_noise=True)
    invert_command(gdir, tmp_path / "inv", first, images=tmp_path / "imgs", perceptual="none", batch=2,
                   progress=False)
    pti = InversionOptions(steps=0, pti_steps=4, pti_lr=3e-3, pti_stop_psnr=None, perceptual_weight=0.0,
                           stats_samples=100)
    invert_command(gdir, tmp_path / "pti", pti, images=tmp_path / "imgs", perceptual="none", progress=False,
                   init_from=tmp_path / "inv")
    for n in ("img0", "img1"):
        a = json.loads((tmp_path / "inv" / n / "metrics.json").read_text())
        b = json.loads((tmp_path / "pti" / n / "metrics.json").read_text())
        assert b["projection"]["psnr"] == pytest.approx(a["psnr"]) and b["init_from"] == str(tmp_path / "inv")
        assert b["psnr"] > a["psnr"]
        ca = load_codes(tmp_path / "inv" / n / "codes.safetensors")
        cb = load_codes(tmp_path / "pti" / n / "codes.safetensors")
        assert torch.allclose(ca.expanded, cb.expanded, atol=1e-5)
        assert all(torch.allclose(x, y) for x, y in zip(ca.noise, cb.noise))
    with pytest.raises(ConfigError, match="no such inversion folder"):
        invert_command(gdir, tmp_path / "x", pti, images=tmp_path / "imgs", perceptual="none", progress=False,
                       init_from=tmp_path / "nope")
    other = tiny_generator("ssg", seed=8).eval().save_pretrained(tmp_path / "G2")
    with pytest.raises(CheckpointError, match="belong to another generator"):
        invert_command(other, tmp_path / "y", pti, images=tmp_path / "imgs", perceptual="none", progress=False,
                       init_from=tmp_path / "inv")


def test_images_as_users_have_them(tmp_path, capsys):
    """Any size and aspect (shorter side scaled, centre crop, as `data import`), transparency over white,
    greyscale, EXIF orientation: the same fitting for `memorygan invert` and the demo's upload (issue 30)."""
    from memorygan.inversion.targets import Target, fit_image, load_target, source_size

    G = tiny_generator("memorygan").eval()
    rgba = np.zeros((40, 60, 4), np.uint8)                               # fully transparent: white
    rgba[:, :30, :3] = (200, 0, 0)
    rgba[:, :30, 3] = 255                                                # left half opaque red
    Image.fromarray(rgba, "RGBA").save(tmp_path / "wide.png")
    x, _ = load_target(Target("wide", tmp_path / "wide.png"), 32)
    assert x.shape == (3, 32, 32)
    u8 = ((x + 1) * 127.5).round()
    assert u8[:, :, 0].tolist() == [[200.0] * 32, [0.0] * 32, [0.0] * 32]     # red at the crop's left edge
    assert (u8[:, :, -1] == 255).all()                                   # white where it was transparent
    Image.fromarray(np.full((20, 20), 90, np.uint8), "L").save(tmp_path / "grey.png")
    g, _ = load_target(Target("grey", tmp_path / "grey.png"), 32)
    assert torch.allclose(g, torch.full_like(g, 90 / 127.5 - 1), atol=1e-6)
    tall = np.zeros((20, 10, 3), np.uint8)
    tall[:10] = 255                                                      # top half white
    im = Image.fromarray(tall)
    exif = im.getexif()
    exif[0x0112] = 6                                                     # "rotate 90 CW to display"
    im.save(tmp_path / "rot.jpg", exif=exif, quality=100)
    assert source_size(tmp_path / "rot.jpg") == (20, 10)
    r, _ = load_target(Target("rot", tmp_path / "rot.jpg"), 10)
    shown = ((r + 1) * 127.5).round()[0]
    assert shown[:, :3].mean() < 60 and shown[:, -3:].mean() > 200       # displayed: white half on the right
    # the mask follows the image's crop with nearest neighbours
    ids = np.zeros((40, 60), np.int64)
    ids[:, 30:] = 2
    rgb, fitted = fit_image(Image.fromarray(rgba[..., :3]), 32, ids)
    assert rgb.shape == (32, 32, 3) and set(np.unique(fitted)) == {0, 2}
    assert (fitted[:, 0] == 0).all() and (fitted[:, -1] == 2).all()
    # through the CLI: a 48x40 RGBA photo inverts
    folder = tmp_path / "imgs"
    folder.mkdir()
    Image.fromarray(rgba, "RGBA").resize((48, 40)).save(folder / "photo.png")
    G.save_pretrained(tmp_path / "G")
    assert main(["invert", "--generator", str(tmp_path / "G"), "--images", str(folder), "--out",
                 str(tmp_path / "inv"), "--steps", "2", "--no-progress", "--perceptual", "none"]) == 0
    assert (tmp_path / "inv" / "photo").is_dir() or any((tmp_path / "inv").rglob("*photo*"))
