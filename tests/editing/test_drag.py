"""Drag (DragGAN over part codes or part coordinates) and the spatial-edit CLI (issue 29)."""
import json

import numpy as np
import pytest
import torch
from helpers import tiny_generator
from PIL import Image

from memorygan.cli import main
from memorygan.editing.directions import seed_source
from memorygan.editing.drag import disk, drag, feature_index, parts_under, sample_at, square
from memorygan.errors import ConfigError

NAMES = ["background", "skin", "eyes", "hair"]


@pytest.fixture(scope="module")
def G():
    return tiny_generator("ssg", seed=5, class_names=NAMES).eval()


def test_sample_at_reads_pixel_centres_and_interpolates():
    feat = torch.arange(16.0).reshape(1, 1, 4, 4)
    pts = torch.tensor([[0.0, 0.0], [3.0, 2.0], [1.5, 0.0], [1.0, 0.5]])
    got = sample_at(feat, pts)[:, 0]
    assert torch.allclose(got, torch.tensor([0.0, 11.0, 1.5, 3.0]))


def test_neighbourhoods():
    assert disk(1, "cpu").shape == (5, 2) and disk(2, "cpu").shape == (13, 2)
    assert square(2, "cpu").shape == (25, 2)
    assert float(disk(2, "cpu").norm(dim=1).max()) <= 2


def test_feature_spec(G):
    blocks = G.render_net.mix_points // 4
    assert feature_index(G, "fused") is None
    assert feature_index(G, "render:-1") == 4 * (blocks - 1) + 1
    assert feature_index(G, "render:0") == 1
    for bad in ("render", "render:x", f"render:{blocks}", "conv:1"):
        with pytest.raises(ConfigError):
            feature_index(G, bad)


def test_handles_at_their_targets_stop_at_once(G):
    src = seed_source(G, [0])
    pts = [[10.0, 12.0]]
    res = drag(G, src, pts, pts, steps=5)
    assert res.converged and res.steps == 0 and res.trace == [0.0]
    assert torch.allclose(res.after["image"], res.before["image"], atol=1e-6)


@pytest.mark.parametrize("space", ["codes", "coords"])
def test_drag_changes_only_what_it_may(G, space):
    src = seed_source(G, [1])
    seen = []
    res = drag(G, src, [[12.0, 14.0]], [[17.0, 14.0]], space=space, steps=6, lr=0.05,
               callback=lambda step, image, handles: seen.append((step, tuple(image.shape), handles.shape)))
    assert seen[0][0] == 0 and seen[-1][0] == res.steps and seen[0][1:] == ((1, 3, 32, 32), (1, 2))
    assert len(res.trace) == res.steps + 1 and res.seconds > 0
    assert not torch.allclose(res.after["image"], res.before["image"], atol=1e-4)    # something moved
    if space == "codes":
        changed = (res.expanded - src.expanded).abs().sum(-1)[0]                   # (K, L)
        texture = G.layer_roles == 2
        assert float(changed[texture].max()) == 0.0                                # shape codes only (default)
        assert float(changed[~texture].max()) > 0 and res.grids == {}
    else:
        assert res.parts == parts_under(G, res.before["seg"], torch.tensor([[12.0, 14.0]]))
        assert set(res.grids) == set(res.parts)
        assert torch.equal(res.expanded, src.expanded)


def test_drag_only_the_named_parts_codes(G):
    src = seed_source(G, [2])
    res = drag(G, src, [[12.0, 14.0]], [[16.0, 14.0]], parts=["hair"], layers="all", steps=4, lr=0.05)
    changed = (res.expanded - src.expanded).abs().sum((-1, -2))[0]
    assert float(changed[3]) > 0 and float(changed[:3].max()) == 0.0


def test_the_mask_term_holds_the_outside(G):
    src = seed_source(G, [3])
    mask = torch.zeros(32, 32)
    mask[8:20, 8:24] = 1
    kw = dict(space="codes", layers="all", steps=8, lr=0.05, stop_px=0.0)
    free = drag(G, src, [[12.0, 14.0]], [[18.0, 14.0]], **kw)
    held = drag(G, src, [[12.0, 14.0]], [[18.0, 14.0]], mask=mask, lambda_mask=1000.0, **kw)
    outside = mask == 0

    def change(res):
        return float((res.after["image"] - res.before["image"]).abs().mean(1)[0][outside].mean())
    assert change(held) < 0.5 * change(free)


@pytest.mark.parametrize("kw, message", [
    (dict(handles=[[1.0, 1.0]], targets=[[40.0, 1.0]]), "inside the 32x32 image"),
    (dict(handles=[[1.0, 1.0], [2.0, 2.0]], targets=[[3.0, 1.0]]), "one target per handle"),
    (dict(handles=[[1.0]], targets=[[3.0]]), "list of \\(x, y\\) points"),
    (dict(handles=[[1.0, 1.0]], targets=[[3.0, 1.0]], space="pixels"), "space must be one of"),
    (dict(handles=[[1.0, 1.0]], targets=[[3.0, 1.0]], mask=torch.ones(16, 16)), "mask must be 32x32"),
])
def test_bad_drags_are_refused(G, kw, message):
    with pytest.raises(ConfigError, match=message):
        drag(G, seed_source(G, [0]), **kw)


def test_one_image_at_a_time(G):
    with pytest.raises(ConfigError, match="one image at a time"):
        drag(G, seed_source(G, [0, 1]), [[1.0, 1.0]], [[3.0, 1.0]])


# ------------------------------------------------------------------------------------------------------ CLI
@pytest.fixture(scope="module")
def saved(tmp_path_factory, G):
    folder = tmp_path_factory.mktemp("spatial") / "G"
    G.save_pretrained(folder)
    return str(folder)


@pytest.mark.parametrize("command, extra", [
    ("move", ["--part", "hair", "--by", "4,0"]),
    ("scale", ["--part", "skin", "--factor", "1.2"]),
    ("rotate", ["--part", "skin", "--degrees", "30", "--centre", "15.5,15.5"]),
    ("remove", ["--parts", "eyes,hair"]),
    ("clone", ["--part", "hair", "--by", "0,8", "--no-preserve"]),
])
def test_cli_closed_form_edits(tmp_path, saved, command, extra, capsys):
    out = tmp_path / command
    assert main(["edit", command, "--generator", saved, "--seeds", "0-1", "--out", str(out), *extra]) == 0
    rec = json.loads((out / "metrics.json").read_text())
    assert rec["edit"] == command and len(rec["images"]) == 2
    assert rec["preserve"] == (command != "clone")
    for name in ("before.png", "after.png", "mask-after.png", "strip.png"):
        assert (out / name).is_file()
    assert not (out / "edited-codes.safetensors").exists()                # codes are not what changed
    if command == "move":
        t = rec["images"][0]["transforms"][0]
        assert t["part"] == "hair" and t["area_ratio_expected"] == 1.0
    if command == "remove":
        assert [r["part"] for r in rec["images"][0]["removed"]] == ["eyes", "hair"]
        assert all(r["area_after"] == 0.0 for r in rec["images"][0]["removed"])
    assert "wrote" in capsys.readouterr().out


def test_cli_unknown_part(tmp_path, saved, capsys):
    assert main(["edit", "move", "--generator", saved, "--out", str(tmp_path / "x"), "--part", "wings",
                 "--by", "1,0"]) == 2
    err = capsys.readouterr().err
    assert "unknown part" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("command, extra, message", [
    ("move", ["--part", "hair", "--by", "1"], "expected two numbers X,Y"),
    ("scale", ["--part", "hair", "--factor", "-1"], "one positive number or two"),
    ("drag", ["--handles", "1,2;", "--targets", "x"], "expected two numbers X,Y"),
])
def test_cli_bad_numbers(tmp_path, saved, command, extra, message, capsys):
    with pytest.raises(SystemExit):
        main(["edit", command, "--generator", saved, "--out", str(tmp_path), *extra])
    assert message in capsys.readouterr().err


def test_cli_drag(tmp_path, saved, capsys):
    out = tmp_path / "drag"
    mask = np.zeros((32, 32), np.uint8)
    mask[4:28, 4:28] = 255
    Image.fromarray(mask).save(tmp_path / "m.png")
    assert main(["edit", "drag", "--generator", saved, "--seeds", "0", "--handles", "10,12", "--targets", "14,12",
                 "--steps", "3", "--mask", str(tmp_path / "m.png"), "--out", str(out)]) == 0
    rec = json.loads((out / "metrics.json").read_text())
    img = rec["images"][0]
    assert rec["space"] == "codes" and img["distance_before"] == pytest.approx(4.0)
    assert len(img["trace"]) == img["steps"] + 1 <= 4
    assert (out / "edited-codes.safetensors").is_file() and (out / "steps.png").is_file()
    assert main(["edit", "drag", "--generator", saved, "--handles", "10,12;3,3", "--targets", "14,12",
                 "--out", str(tmp_path / "bad")]) == 2
    assert "one target per handle" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------- the study
def test_study_measures_against_the_judge(G, monkeypatch):
    """A judge that always sees the same skin square: nothing it sees moves, so every move misses by exactly its
    offset, a removal leaves all of the part, and drag ends where it began."""
    from memorygan.editing import spatial_report as sr

    labels = torch.zeros(32, 32, dtype=torch.long)
    labels[11:21, 11:21] = 1

    class Fixed:
        def labels(self, image):
            return labels[None].expand(image.shape[0], -1, -1).clone()

    monkeypatch.setattr(sr, "_pick", lambda *a: 1)
    rows = sr.study(G, Fixed(), n=3, drag_n=1, seed=0, drag_kw={"steps": 5})
    for r in rows["move"]:
        assert r["centroid_error"] == pytest.approx(float(np.hypot(*r["shift"])), abs=1e-4)
        assert r["area_ratio"] == 1.0 and r["nontarget_miou"] == 1.0 and r["labels_kept"] == 1.0
    for r in rows["scale"]:
        want = sr.scale_mask(labels == 1, r["factor"], [15.5, 15.5]).sum().item()
        assert r["area_ratio"] == pytest.approx(100 / want) and r["centroid_error"] == pytest.approx(0, abs=0.3)
    assert [r["remaining"] for r in rows["remove"]] == [1.0] * 3
    for space in ("codes", "coords"):
        (r,) = rows[f"drag-{space}"]
        assert r["distance_after"] == pytest.approx(r["distance_before"], abs=1e-4)
    s = sr.summarise(rows)
    assert s["move"]["n"] == 3 and s["drag-codes"]["ratio"] == pytest.approx(1.0, abs=1e-4)
    md = sr.markdown({"models": {"tiny": {"summary": s, "move_by_part": sr.by_part(rows, "move", "centroid_error"),
                                          "drag_by_part": sr.by_part(rows, "drag-codes", "distance_after")}}})
    assert "| tiny | move | 3 |" in md and "large parts" in md


def test_mask_helpers():
    from memorygan.editing.spatial_report import _usable, centroid, dilate, miou_outside, shift_mask

    m = torch.zeros(8, 8, dtype=torch.bool)
    m[2:4, 2:5] = True
    assert torch.equal(centroid(m), torch.tensor([3.0, 2.5]))
    assert torch.equal(shift_mask(m, (1, 2)), torch.roll(m, (2, 1), (0, 1)))
    assert shift_mask(m, (-3, 0)).sum() == 4                              # cropped at the border
    assert dilate(m, 1).sum() == 4 * 5
    a = torch.zeros(8, 8, dtype=torch.long)
    b = a.clone()
    b[0, 0] = 2
    everywhere = torch.ones(8, 8, dtype=torch.bool)
    assert miou_outside(a, b, everywhere, skip=9) == pytest.approx((63 / 64 + 0) / 2)
    assert miou_outside(a, b, everywhere, skip=2) == pytest.approx(63 / 64)
    m12 = torch.zeros(8, 8, dtype=torch.bool)
    m12[2:5, 2:6] = True
    assert _usable(m12) and not _usable(torch.roll(m12, 3, 1)) and not _usable(m)


def test_truth_cases_move_the_head_or_the_eyes_apart():
    from memorygan.editing.spatial_report import _eye_centroids, centroid, truth_cases

    cases = truth_cases(4, 1000, 64, np.random.default_rng(0))
    assert [c["kind"] for c in cases] == ["head", "eyes", "head", "eyes"]
    for c in cases:
        assert c["image0"].shape == (1, 3, 64, 64) and c["ids0"].shape == (64, 64)
        if c["kind"] == "head":
            d = centroid(c["ids1"] == 1) - centroid(c["ids0"] == 1)
            assert 3.0 < float(d.norm()) < 9.0
        else:
            e0, e1 = _eye_centroids(c["ids0"], 2), _eye_centroids(c["ids1"], 2)
            assert float((e1[1, 0] - e1[0, 0]) - (e0[1, 0] - e0[0, 0])) > 2.0      # further apart
            assert torch.equal(c["ids0"] == 8, c["ids1"] == 8)                        # the neck did not move


def test_cli_spatial_report(tmp_path, saved):
    from memorygan.metrics.probe import ProbeUNet, save_probe

    save_probe(ProbeUNet(4, 4, 2), tmp_path / "probe", {"format": "memorygan-probe", "version": 1, "num_classes": 4,
                                                         "base_channels": 4, "depth": 2, "classes": NAMES,
                                                         "resolution": [32, 32]})
    out = tmp_path / "report"
    assert main(["edit", "spatial-report", "--generator", saved, "--labels", "tiny", "--probe", str(tmp_path / "probe"),
                 "--n", "2", "--drag-n", "1", "--drag-steps", "2", "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["n"] == 2 and set(report["models"]) == {"tiny"}
    from memorygan.editing.spatial_report import KINDS
    assert set(report["models"]["tiny"]["rows"]) == set(KINDS)
    assert (out / "report.md").read_text().startswith("| model | edit |")
