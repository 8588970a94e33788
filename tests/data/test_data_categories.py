"""The `categories` procedural dataset: image-level labels with ground truth, learnable from the pixels."""
import json
import re

import numpy as np
import pytest

from memorygan.cli import main
from memorygan.data import categories as C
from memorygan.data import check_dataset, read_attributes, read_image, read_info, read_mask
from memorygan.data.synth import synthesize
from memorygan.errors import DatasetError

HALF_PI = np.pi / 2


def test_table_every_category_its_own_rules():
    assert len(C.CATEGORIES) >= C.DEFAULT_CATEGORIES == 10
    assert len(set(C.CATEGORY_NAMES)) == len(C.CATEGORY_NAMES)
    assert C.category_names()[:3] == ["beach", "forest", "city"] and len(C.category_names(12)) == 12
    first = C.CATEGORIES[:C.DEFAULT_CATEGORIES]
    assert {c.layout for c in first} == set(C.LAYOUTS)          # the default 10 use every layout rule
    used = {n for c in first for n, _ in c.objects} | {e.kind for c in first for e in c.extras}
    assert used == set(C.OBJECTS)                               # ... and every object class
    assert C.CLASSES[:3] == ("sky", "ground", "water") and len(C.CLASSES) == 3 + len(C.OBJECTS)
    grounds = {c.ground for c in C.CATEGORIES}
    assert len(grounds) == len(C.CATEGORIES)                    # no two categories share a ground palette
    for bad in (9, 13):
        with pytest.raises(ValueError, match="between 10 and 12"):
            C.category_names(bad)


def test_balanced_labels_match_attributes_and_masks(categories_ds):
    info = read_info(categories_ds)
    recs = read_attributes(categories_ds)
    assert info.categories == list(C.CATEGORY_NAMES) and info.classes == list(C.CLASSES)
    assert len(recs) == 24 and np.bincount(list(info.labels.values())).tolist() == [2] * 12
    for i, r in enumerate(recs):
        name = r["basename"]
        assert name == f"{i:06d}" and info.labels[name] == r["category_id"] == i % 12
        assert r["category"] == C.CATEGORY_NAMES[i % 12]
        ids = read_mask(categories_ds / "masks" / f"{name}.png")
        assert ids.shape == (16, 16) and ids.max() < len(C.CLASSES)
        # per-object visible areas add up to the mask's pixels of each object class (slots are exclusive)
        for k in range(3, len(C.CLASSES)):
            area = sum(o["area_px"] for o in r["objects"] if o["class_id"] == k)
            assert area == int((ids == k).sum()), (name, C.CLASSES[k])
        for o in r["objects"]:
            assert C.CLASSES[o["class_id"]] == o["class"]
            assert o["centre_px"] == [round((o["x"] + 1) * 8, 4), round((o["y"] + 1) * 8, 4)]
            assert o["radius_px"] == round(o["radius"] * 8, 4)
            if C.OBJECTS[o["class"]].family == "ellipse":
                assert o["circularity"] == o["aspect"] and 0.6 < o["circularity"] <= 1.0
            else:
                assert o["circularity"] is None
            if o["class"] == "sun":
                assert o["circularity"] == 1.0
        img = read_image(categories_ds / "images" / f"{name}.png")
        assert r["mean_luma"] == round(float((img @ np.array([0.299, 0.587, 0.114])).mean() / 255), 4)
    assert check_dataset(categories_ds).ok


def test_layout_rules_are_visible_in_the_ground_truth():
    recs = {}
    for i in range(48):                                          # four of each of the 12 categories
        img, ids, r = C.generate_category_scene(5, i, 16, 12)
        recs.setdefault(r["category"], []).append((img, ids, r))
    for img, ids, r in recs["garden"]:                           # seen from above: no sky
        assert r["horizon"] is None and not (ids == 0).any()
    for cat in ("beach", "lake", "harbour"):                     # a water band between horizon and shore
        assert all((ids == 2).any() for _, ids, _ in recs[cat])
    for _, _, r in recs["orchard"]:                              # a grid: 2 or 3 rows of equally many trees
        ys = sorted(o["y"] for o in r["objects"])
        rows = 1 + sum(b - a > 0.05 for a, b in zip(ys, ys[1:]))   # (tilted trees differ by < 0.001)
        assert rows in (2, 3) and len(ys) % rows == 0 and 3 <= len(ys) // rows <= 5
    for _, _, r in recs["desert"] + recs["mountains"]:           # one large object near the centre
        main_ = [o for o in r["objects"] if o["role"] == "main"]
        assert len(main_) == 1 and abs(main_[0]["x"]) <= 0.12
    stacked = 0
    for _, _, r in recs["harbour"]:                              # containers standing on containers
        boxes = [o for o in r["objects"] if o["class"] == "container"]
        stacked += sum(1 for a in boxes for b in boxes if a is not b and abs(a["x"] - b["x"]) < 0.1
                       and b["y"] < a["y"])
    assert stacked >= 1
    night = [r["mean_luma"] for _, _, r in recs["night"]]
    snow = [r["mean_luma"] for _, _, r in recs["snowfield"]]
    assert max(night) < 0.15 and min(snow) > 0.8
    for cat, items in recs.items():
        lo, hi = C.CATEGORIES[C.CATEGORY_NAMES.index(cat)].brightness
        assert all(lo <= r["brightness"] <= hi for _, _, r in items)


def test_hand_made_record_colours_ids_and_areas():
    """Top-down grey ground at brightness 0.5, a star (emissive: keeps its colour) and a rock (dimmed)."""
    obj = {"role": "main", "aspect": None, "angle": 0.0, "color": 0, "brightness": 1.0, "radius": 0.4, "y": 0.0}
    rec = {"category": "garden", "category_id": 8, "layout": "scatter", "horizon": None, "wave": [0.0, 2.0, 0.0],
           "shore": None, "palette": {"ground_far": [0.5, 0.5, 0.5], "ground_near": [0.5, 0.5, 0.5]},
           "brightness": 0.5, "light": -HALF_PI, "render_seed": 1,
           "objects": [{**obj, "class": "star", "class_id": 5, "x": -0.5},
                       {**obj, "class": "rock", "class_id": 17, "x": 0.5}]}
    img, ids, areas = C.render_category_scene(rec, 32, ss=1)
    assert ids[16, 8] == 5 and ids[16, 24] == 17 and ids[2, 2] == 1 and set(np.unique(ids)) == {1, 5, 17}
    assert areas.tolist() == [int((ids == 5).sum()), int((ids == 17).sum())] and areas.min() > 20
    # ground: 0.5 x brightness 0.5 x (1 +- 6% texture)
    ground = img[ids == 1].astype(float) / 255
    assert abs(ground.mean() - 0.25) < 0.02 and ground.max() <= 0.25 * 1.06 + 0.01
    # pixel (16, 8) centre: x = -0.46875, y = 0.03125, so (u, v) = (0.078, 0.078) in the star's frame; light from
    # above (lx, ly) = (0, -1): shade = 1 + 0.15 (u lx + v ly) - 0.1 (u^2 + v^2)
    u = v = 0.03125 / 0.4
    shade = 1 - 0.15 * v - 0.1 * (u * u + v * v)
    star = np.array(C.OBJECTS["star"].colors[0][0])              # plain texture: colour 1 everywhere
    assert np.abs(img[16, 8] - 255 * star * shade).max() <= 0.51    # emissive: not dimmed
    rock = C.OBJECTS["rock"].colors[0]                           # gradient at angle 1: a = u cos 1 + v sin 1
    t = 0.5 + 0.5 * (u * np.cos(1.0) + v * np.sin(1.0))          # pixel (16, 24): the same (u, v) from x = 0.53125
    col = np.array(rock[0]) + (np.array(rock[1]) - np.array(rock[0])) * t
    shade_r = 1 - 0.15 * v - 0.1 * (2 * u * u)
    assert np.abs(img[16, 24] - 255 * col * shade_r * 0.5).max() <= 0.51   # dimmed with the palette


def test_a_record_rerenders_exactly(categories_ds):
    r = read_attributes(categories_ds)[7]
    img, ids, areas = C.render_category_scene(r, 16)
    assert np.array_equal(img, read_image(categories_ds / "images" / "000007.png"))
    assert np.array_equal(ids, read_mask(categories_ds / "masks" / "000007.png"))
    assert areas.tolist() == [o["area_px"] for o in r["objects"]]


def test_deterministic_worker_independent_and_seed_dependent(tmp_path, hashes):
    a = synthesize("categories", tmp_path / "a", n=12, size=16, seed=1).path
    b = synthesize("categories", tmp_path / "b", n=12, size=16, seed=1, workers=2, chunk=5).path
    c = synthesize("categories", tmp_path / "c", n=12, size=16, seed=2).path
    assert hashes(a) == hashes(b)
    ha, hc = hashes(a), hashes(c)
    assert sum(ha[k] != hc[k] for k in ha if k.startswith("images/")) == 12
    assert read_info(a).labels == read_info(c).labels                     # labels depend on the index only
    # item i does not depend on how many items are generated
    img, _, _ = C.generate_category_scene(1, 11, 16)
    assert np.array_equal(img, read_image(a / "images" / "000011.png"))


def _features(seed: int, indices, size: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """8x8 colour thumbnails (block means) as (N, 192) vectors, and the labels."""
    x, y = [], []
    for i in indices:
        img, _, r = C.generate_category_scene(seed, i, size)
        f = size // 8
        x.append(img.astype(np.float64).reshape(8, f, 8, f, 3).mean((1, 3)).ravel() / 255.0)
        y.append(r["category_id"])
    return np.stack(x), np.array(y)


def test_categories_are_learnable_by_a_nearest_mean_classifier():
    xtr, ytr = _features(0, range(200))
    xte, yte = _features(0, range(200, 400))
    means = np.stack([xtr[ytr == k].mean(0) for k in range(10)])
    pred = ((xte[:, None, :] - means[None]) ** 2).sum(-1).argmin(1)
    acc = float((pred == yte).mean())
    assert acc >= 0.7, acc                                        # chance is 0.1
    # and the labels are what makes it work: shuffled labels give chance-level means
    perm = np.random.default_rng(0).permutation(len(ytr))
    shuffled = np.stack([xtr[ytr[perm] == k].mean(0) for k in range(10)])
    acc_shuffled = float((((xte[:, None, :] - shuffled[None]) ** 2).sum(-1).argmin(1) == yte).mean())
    assert acc_shuffled < 0.4, acc_shuffled


def test_bad_arguments_are_dataset_errors(tmp_path, capsys):
    for kw, msg in (({"num_categories": 9}, r"--categories must be between 10 and 12 \(beach, forest, "),
                    ({"num_categories": 13}, "--categories must be between 10 and 12"),
                    ({"num_classes": 5}, "categories always have the 20 mask classes sky, ground, water, sun")):
        with pytest.raises(DatasetError, match=msg):
            synthesize("categories", tmp_path / "x", n=2, size=16, **kw)
    with pytest.raises(DatasetError, match="--categories applies to the categories dataset only, not scenes"):
        synthesize("scenes", tmp_path / "x", n=2, size=16, num_classes=4, num_categories=10)
    assert not (tmp_path / "x").exists()
    assert main(["data", "synth", "categories", "--n", "2", "--size", "16", "--categories", "3",
                 "--out", str(tmp_path / "y"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "--categories must be between 10 and 12" in err and "Traceback" not in err


def test_cli_synth_check_stats_preview(tmp_path, capsys):
    out = tmp_path / "cat"
    assert main(["data", "synth", "categories", "--n", "12", "--size", "16", "--categories", "12", "--seed", "4",
                 "--out", str(out), "--quiet", "--report"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["num_images"] == 12 and set(rep["class_frequencies"]) == set(C.CLASSES)
    assert rep["attributes"]["category_distribution"] == {c: 1 for c in C.CATEGORY_NAMES}
    info = json.loads((out / "dataset.json").read_text())
    assert info["categories"] == list(C.CATEGORY_NAMES) and info["labels"]["000011"] == 11
    assert info["provenance"]["categories"] == 12
    assert main(["data", "check", str(out), "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "images per category:" in text and re.search(r"\n +11 mountains +1\n", text)
    assert main(["data", "stats", str(out), "--quiet"]) == 0
    assert json.loads(capsys.readouterr().out)["category_counts"]["harbour"] == 1
    assert main(["data", "preview", str(out), "--out", str(tmp_path / "p.png"), "--n", "4", "--tile", "32"]) == 0
