"""Region edits (Paint-by-Word): the split generator leaves the outside alone, the blend at every render layer, masks
and their errors, the search bases, CMA-ES determinism, and the CLI."""
import json

import numpy as np
import pytest
import torch
from helpers import tiny_generator
from PIL import Image

from memorygan.cli import main
from memorygan.editing.directions import seed_source
from memorygan.editing.region import (
    Region,
    blend_render,
    code_basis,
    gaussian_blur,
    make_region,
    read_mask,
    region_edit,
    render_reference,
    run_cma,
)
from memorygan.editing.scorers import text_score
from memorygan.editing.text import edit_space
from memorygan.errors import ConfigError

NAMES = ["background", "skin", "eyes", "hair"]
pytest.importorskip("cma")


def _mask_png(path, size, box):
    m = np.zeros((size, size), np.uint8)
    m[box[0]:box[1], box[2]:box[3]] = 255
    Image.fromarray(m).save(path)
    return path


def test_region_edit_on_non_interacting_parts_keeps_every_outside_pixel(staged_painter):
    """Parts that do not interact, region = the hair band: after CMA-ES + Adam towards "red hair", no pixel outside
    the band moved (PSNR capped), the hair turned red."""
    G = staged_painter
    score = text_score("attributes", "red hair", G)
    src = seed_source(G, [0, 1])
    res = region_edit(G, src, score, parts="hair", popsize=12, cma_iters=6, adam_steps=30, adam_lr=0.05,
                      basis_samples=64, components=8)
    hair = G.owner == 3
    assert torch.equal(res.region.hard[0], hair)
    assert torch.equal(res.after.image[..., ~hair], res.before.image[..., ~hair])
    assert float((res.after.image[..., hair] - res.before.image[..., hair]).abs().max()) > 0.05
    from memorygan.editing.region import region_edit_record
    rec = region_edit_record(G, res, score, ["a", "b"])
    assert rec["summary"]["psnr_outside"] == 100.0 and rec["summary"]["preserved_outside"] == 1.0
    assert rec["summary"]["loss_after"] < rec["summary"]["loss_before"]
    assert rec["evaluations"] == 2 * (12 * 6 + 2 + 30)


def test_user_mask_inside_a_part_changes_only_the_mask(staged_painter, tmp_path):
    """A painted box inside the hair band: the split generator changes pixels inside the blurred box only."""
    G = staged_painter
    mask = read_mask(_mask_png(tmp_path / "m.png", 32, (8, 20, 26, 30)), 32)
    res = region_edit(G, seed_source(G, [0]), text_score("attributes", "red hair", G), mask=mask, optimizer="adam",
                      adam_steps=20, adam_lr=0.1, basis="codes", basis_samples=64)
    assert res.settings["parts"] == ["hair"]                             # the part the mask covers
    changed = (res.after.image - res.before.image).abs().amax(1)[0] > 0
    assert bool(changed.any())
    assert not bool(changed[res.region.soft[0] == 0].any())             # nothing outside the blurred mask
    assert not bool(changed[:, :24].any())                               # other parts' bands untouched


def test_split_at_every_layer_on_a_real_generator(arch):
    """The split generator on a real render net: mask 0 is the source bit for bit, mask 1 the edit; a left-half mask
    keeps every right-half pixel (image and seg) exactly, which blending at the render input alone does not (its 3x3
    convolutions carry the edit across the border)."""
    G = tiny_generator(arch, class_names=NAMES)
    src = seed_source(G, [0, 1])
    edited = src.expanded + 0.5 * torch.randn(src.expanded.shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref, img_s, seg_s = render_reference(G, *G.generate_parts(src.expanded))
        assert len(ref.trace) == G.render_net.mix_points
        assert torch.equal(img_s, G(expanded=src.expanded).image)
        h1, d1 = G.generate_parts(edited)
        zero = torch.zeros(2, 1, 32, 32)
        img0, seg0 = blend_render(G, h1, d1, ref, zero)
        img1, seg1 = blend_render(G, h1, d1, ref, zero + 1)
        assert torch.equal(img0, img_s) and torch.equal(seg0, seg_s)
        assert torch.allclose(img1, G(expanded=edited).image, atol=1e-5)
        assert torch.allclose(seg1, G(expanded=edited).seg, atol=1e-5)
        half = zero.clone()
        half[..., :16] = 1                                               # left half of the image
        img_h, seg_h = blend_render(G, h1[1:], d1[1:], ref.select(1), half[1:])
        assert torch.equal(img_h[..., 16:], img_s[1:, ..., 16:]) and torch.equal(seg_h[..., 16:], seg_s[1:, ..., 16:])
        assert float((img_h[..., :16] - img_s[1:, ..., :16]).abs().max()) > 1e-2
        f_h = G.fuse(h1[1:], d1[1:])                                     # the render-input blend alone leaks
        want = torch.cat([f_h.fused[..., :4], ref.fusion.fused[1:, ..., 4:]], -1)
        leak, _ = G.render(want, torch.cat([f_h.coarse_seg[..., :4], ref.fusion.coarse_seg[1:, ..., 4:]], -1))
        assert float((leak[..., 16:] - img_s[1:, ..., 16:]).abs().max()) > 1e-3


def test_masks_blur_and_errors(tmp_path):
    G = tiny_generator("ssg", class_names=NAMES)
    path = _mask_png(tmp_path / "m.png", 32, (4, 12, 4, 12))
    mask = read_mask(path, 32)
    assert mask.shape == (32, 32) and float(mask.sum()) == 64
    with pytest.raises(ConfigError, match=r"m.png is 32x32 but the generator draws 64x64 images"):
        read_mask(path, 64)
    with pytest.raises(ConfigError, match="paints no pixel"):
        read_mask(_mask_png(tmp_path / "e.png", 32, (0, 0, 0, 0)), 32)
    (tmp_path / "t.png").write_text("not an image")
    with pytest.raises(ConfigError, match="not a readable image"):
        read_mask(tmp_path / "t.png", 32)
    with pytest.raises(ConfigError, match="no such file"):
        read_mask(tmp_path / "missing.png", 32)
    m = torch.zeros(1, 1, 21, 21)
    m[..., 10, 10] = 1
    b = gaussian_blur(m, 1.5)
    assert float(b.sum()) == pytest.approx(1.0, abs=1e-5) and float(b[0, 0, 10, 10]) < 0.2
    assert torch.equal(gaussian_blur(m, 0), m)
    out = G(expanded=seed_source(G, [0]).expanded)
    reg = make_region(G, out, mask=mask)
    assert isinstance(reg, Region) and reg.soft.shape == (1, 32, 32) and reg.hard.shape == (1, 32, 32)
    assert bool((reg.soft[0][mask >= 0.5] == 1).all()) and float(reg.soft[0, 20:, 20:].max()) == 0
    score = text_score("attributes", "red hair", G)
    with pytest.raises(ConfigError, match="needs --mask MASK.png or --parts"):
        region_edit(G, seed_source(G, [0]), score)
    with pytest.raises(ConfigError, match="--optimizer must be one of"):
        region_edit(G, seed_source(G, [0]), score, parts="hair", optimizer="sgd")
    with pytest.raises(ConfigError, match="unknown part"):
        region_edit(G, seed_source(G, [0]), score, parts="wings")


def test_code_basis_pca_and_codes():
    G = tiny_generator("ssg", class_names=NAMES)
    es = edit_space(G, "parts", "hair,skin", "both")
    pca = code_basis(G, es, "pca", components=4, n=200)
    assert pca.vectors.shape == (2, 2, 4, 16) and pca.dim == 16
    v = pca.vectors[0, 0]
    norms = v.norm(dim=1)
    assert bool((norms[:-1] >= norms[1:] - 1e-6).all())                    # by decreasing spread
    cos = (v / norms[:, None]) @ (v / norms[:, None]).T
    assert torch.allclose(cos, torch.eye(4), atol=1e-4)                    # orthogonal directions
    diag = code_basis(G, es, "codes", n=200)
    assert diag.vectors.shape == (2, 2, 16, 16) and diag.dim == 64
    x = torch.zeros(1, diag.dim)
    x[0, 0] = 1.0
    theta = diag.theta(x)
    assert theta.shape == (1, 2, 2, 16) and float(theta[0, 0, 0, 0]) == pytest.approx(float(diag.vectors[0, 0, 0, 0]))
    assert float(theta.abs().sum()) == pytest.approx(float(diag.vectors[0, 0, 0, 0]))
    with pytest.raises(ConfigError, match="--basis must be one of"):
        code_basis(G, es, "ica")


def test_cma_is_deterministic_for_a_seed_and_leaves_numpy_alone():
    target = np.linspace(-1, 1, 6)
    fn = lambda x: ((x - target) ** 2).sum(1)                              # noqa: E731
    np.random.seed(123)
    state = np.random.get_state()[1].copy()
    a = run_cma(fn, 6, 10, 0.5, 15, seed=0)
    b = run_cma(fn, 6, 10, 0.5, 15, seed=0)
    c = run_cma(fn, 6, 10, 0.5, 15, seed=1)
    assert np.array_equal(a[0], b[0]) and a[1] == b[1] and not np.array_equal(a[0], c[0])
    assert a[1] < 0.1 * fn(np.zeros((1, 6)))[0]                              # it optimises
    assert np.array_equal(np.random.get_state()[1], state)


def test_region_edit_is_deterministic_for_a_seed():
    G = tiny_generator("memorygan", class_names=NAMES)
    score = text_score("attributes", "red hair", G)
    src = seed_source(G, [0])
    kw = dict(parts="hair", optimizer="cma", popsize=6, cma_iters=3, basis_samples=64, components=4)
    a, b = region_edit(G, src, score, seed=3, **kw), region_edit(G, src, score, seed=3, **kw)
    c = region_edit(G, src, score, seed=4, **kw)
    assert torch.equal(a.x, b.x) and torch.equal(a.after.image, b.after.image)
    assert not torch.equal(a.x, c.x)


def test_cli_region_edit(tmp_path, capsys):
    G = tiny_generator("ssg", class_names=NAMES)
    G.save_pretrained(tmp_path / "G")
    mask = _mask_png(tmp_path / "m.png", 32, (0, 16, 0, 32))
    out = tmp_path / "out"
    rc = main(["edit", "region", "--generator", str(tmp_path / "G"), "--mask", str(mask), "--parts", "hair",
               "--prompt", "red hair", "--seeds", "0", "--popsize", "6", "--cma-iters", "2", "--adam-steps", "3",
               "--components", "4", "--held-out", "rgb", "--out", str(out), "--no-progress"])
    assert rc == 0
    rec = json.loads((out / "metrics.json").read_text())
    assert rec["optimizer"] == "cma+adam" and rec["region"] == "mask" and rec["popsize"] == 6
    assert "psnr_outside" in rec["summary"] and "held_out_after" in rec["summary"]
    assert (out / "region.png").is_file() and "region" in rec["strip_columns"]
    small = _mask_png(tmp_path / "s.png", 16, (0, 8, 0, 8))
    assert main(["edit", "region", "--generator", str(tmp_path / "G"), "--mask", str(small), "--prompt", "red hair",
                 "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "is 16x16 but the generator draws 32x32 images" in err and len(err.strip().splitlines()) == 1
    bad = [(["--parts", "wings"], "unknown part"), (["--parts", "hair", "--prompt", "purple hair"], "unknown phrase"),
           (["--mask", str(tmp_path / "none.png")], "no such file")]
    for extra, msg in bad:
        args = ["edit", "region", "--generator", str(tmp_path / "G"), "--prompt", "red hair", "--out",
                str(tmp_path / "bad"), "--no-progress", *extra]
        if "--prompt" in extra:
            args = args[:4] + args[6:]                                   # one --prompt only
        assert main(args) == 2
        err = capsys.readouterr().err
        assert msg in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "bad").exists()


def test_saved_region_edit_codes_render_the_edited_image_again(tmp_path):
    """edited-codes.safetensors of a region edit keeps the source codes and the region, so loading it (the API's
    `render_codes`, the demo's `load_codes`) draws after.png again; its expanded codes alone draw another image
    outside the region (what the file gave before it carried the blend)."""
    from memorygan.demo.state import DemoState
    from memorygan.editing.codes import load_codes, render_codes
    from memorygan.visualize import to_uint8

    G = tiny_generator("ssg", class_names=NAMES).eval()
    G.save_pretrained(tmp_path / "G")
    mask = _mask_png(tmp_path / "m.png", 32, (0, 12, 0, 32))
    out = tmp_path / "out"
    assert main(["edit", "region", "--generator", str(tmp_path / "G"), "--mask", str(mask), "--parts", "hair",
                 "--prompt", "red hair", "--seeds", "0,1", "--optimizer", "adam", "--adam-steps", "4",
                 "--out", str(out), "--no-progress"]) == 0
    codes = load_codes(out / "edited-codes.safetensors", G)
    assert codes.blend_source is not None and codes.blend_mask.shape == (2, 1, 32, 32)
    image, _ = render_codes(G, codes)
    after = np.asarray(Image.open(out / "after.png"))                   # one column per image
    drawn = np.concatenate(list(to_uint8(image)), 1)
    pad = (after.shape[1] - drawn.shape[1]) // 3                        # grid padding: 2 px around and between
    cols = np.concatenate([after[pad:pad + 32, pad + i * (32 + pad):pad + i * (32 + pad) + 32] for i in range(2)], 1)
    assert np.abs(cols.astype(int) - drawn.astype(int)).max() <= 1
    plain = np.concatenate(list(to_uint8(G(expanded=codes.expanded, noise_mode="const").image)), 1)
    outside = np.concatenate([codes.blend_mask[i, 0].numpy() == 0 for i in range(2)], 1)
    assert np.abs(plain.astype(int) - cols.astype(int))[outside].max() > 2      # the bare codes miss the source there
    st = DemoState(G)
    view = st.load_codes(out / "edited-codes.safetensors", index=1)
    assert np.abs(view.image.astype(int) - drawn[:, 32:].astype(int)).max() <= 1
    saved = load_codes(st.save(tmp_path / "dl")["codes"], G)           # the demo's download keeps the blend too
    torch.testing.assert_close(saved.blend_mask, codes.blend_mask[1:])


def test_one_rule_for_painted_masks_in_files_and_the_demo(tmp_path):
    """A region painted in red on black counts as painted in a --mask file as in the demo's brush (before, a file
    was read by its luminance: red 255 gave 0.30, below the 0.5 threshold, "paints no pixel"); RGBA paint is read by
    its alpha; the demo's painted layers give the same region."""
    from memorygan.demo.app import painted_mask
    from memorygan.editing.region import painted_region

    red = np.zeros((32, 32, 3), np.uint8)
    red[4:10, 2:30, 0] = 255
    Image.fromarray(red).save(tmp_path / "red.png")
    m = read_mask(tmp_path / "red.png", 32)
    assert float(m[5, 5]) == 1.0 and float(m[20, 20]) == 0.0
    rgba = np.zeros((32, 32, 4), np.uint8)
    rgba[..., :3] = 255                                          # white everywhere, painted only where alpha is
    rgba[4:10, 2:30, 3] = 255
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    assert torch.equal(read_mask(tmp_path / "rgba.png", 32), m)
    layer_mask = painted_mask({"layers": [rgba]})
    assert np.array_equal(painted_region(layer_mask) > 0.5, m.numpy() > 0.5)
    grey = (m.numpy() * 255).astype(np.uint8)
    assert np.array_equal(painted_region(grey), m.numpy())
    with pytest.raises(ConfigError, match="painted mask must be"):
        painted_region(np.zeros((2, 2, 2, 2)))


def test_cma_lockstep_solves_each_problem_as_if_alone():
    """Three problems (own targets, own seeds) solved together: each result equals run_cma on that problem alone,
    so neither the other problems' rows nor their draws from numpy's generator leak into it."""
    from memorygan.editing.region import run_cma_lockstep

    targets = np.stack([np.linspace(-1, 1, 5), np.linspace(1, -1, 5), np.full(5, 0.3)])
    seen = []

    def fn(rows, owner):
        seen.append(len(rows))
        return ((rows - targets[owner]) ** 2).sum(1)

    together = run_cma_lockstep(fn, 5, 8, 0.5, 12, seeds=[0, 7, 3], chunk=10)
    for j, seed in enumerate([0, 7, 3]):
        alone = run_cma(lambda x, t=targets[j]: ((x - t) ** 2).sum(1), 5, 8, 0.5, 12, seed=seed)
        assert np.array_equal(together[j][0], alone[0]) and together[j][1] == alone[1]
        assert together[j][2] == alone[2]
        assert alone[1] < 0.1 * float((targets[j] ** 2).sum())           # it optimises
    assert max(seen) == 10                                               # 24 rows a generation, in chunks of 10


def test_region_edit_does_not_depend_on_the_batch():
    """Three images edited one by one, two at a time and all together (CMA-ES + Adam): the same coordinates, images
    and per-image histories up to float rounding; an image is never scored against another image's source."""
    G = tiny_generator("memorygan", class_names=NAMES)
    score = text_score("attributes", "red hair", G)
    src = seed_source(G, [0, 1, 2])
    kw = dict(parts="hair", popsize=6, cma_iters=3, adam_steps=5, adam_lr=0.05, basis_samples=64, components=4,
              seed=2)
    runs = [region_edit(G, src, score, batch=b, **kw) for b in (1, 2, 3)]
    one = runs[0]
    assert [r.settings["batch"] for r in runs] == [1, 2, 3]
    assert float(one.x.abs().min(1).values.max()) > 0 and not torch.allclose(one.x[0], one.x[1])
    for r in runs[1:]:
        assert torch.allclose(r.x, one.x, atol=1e-4)
        assert torch.allclose(r.after.image, one.after.image, atol=1e-3)
        assert r.evaluations == one.evaluations == 3 * (6 * 3 + 2 + 5)
        for h, h1 in zip(r.history, one.history):
            assert h["cma"]["loss"] == pytest.approx(h1["cma"]["loss"], rel=1e-4, abs=1e-6)
            assert [c["loss"] for c in h["adam"]] == pytest.approx([c["loss"] for c in h1["adam"]], rel=1e-4,
                                                                    abs=1e-6)
    with pytest.raises(ConfigError, match="--batch must be >= 1"):
        region_edit(G, src, score, batch=0, **kw)
