import copy
import json

import numpy as np
import pytest
from PIL import Image

from memorygan.data import portraits as P
from memorygan.data.files import CELEBAMASK_CLASSES
from memorygan.data.raster import Canvas, Frame
from memorygan.data.stats import pearson
from memorygan.data.synth import synthesize


def _attrs(seed=0, index=0, **changes):
    a = P.sample_portrait(np.random.default_rng([seed, index]))
    a = copy.deepcopy(a)
    for path, value in changes.items():
        cur = a
        keys = path.split("__")
        for k in keys[:-1]:
            cur = cur[k]
        cur[keys[-1]] = value
    return a


def _plain(**changes):
    """A frontal-ish portrait with no optional parts, then `changes`."""
    base = {"glasses": None, "hat": None, "earrings": None, "necklace": None, "pose__roll": 0.0, "pose__yaw": 0.0,
            "pose__dx": 0.0, "pose__dy": 0.0, "pose__scale": 1.3, "hair__style": "short", "hair__bangs": "none",
            "hair__covers_ears": False}
    base.update(changes)
    return _attrs(**base)


def test_same_seed_gives_identical_files_and_other_seed_differs(tmp_path, hashes):
    a = synthesize("portraits", tmp_path / "a", n=5, size=24, seed=11).path
    b = synthesize("portraits", tmp_path / "b", n=5, size=24, seed=11, workers=2, chunk=2).path
    c = synthesize("portraits", tmp_path / "c", n=5, size=24, seed=12).path
    ha, hb, hc = hashes(a), hashes(b), hashes(c)
    assert len(ha) == 5 * 2 + 2  # images, masks, dataset.json, attributes.jsonl
    assert ha == hb  # byte-identical, whatever the number of workers and chunking
    differing = [k for k in ha if k.startswith("images/") and ha[k] != hc[k]]
    assert len(differing) == 5


def test_item_depends_only_on_seed_and_index():
    img1, ids1, a1 = P.generate_portrait(5, 7, 32)
    img2, ids2, a2 = P.generate_portrait(5, 7, 32)
    img3, _, _ = P.generate_portrait(5, 8, 32)
    assert np.array_equal(img1, img2) and np.array_equal(ids1, ids2) and a1 == a2
    assert not np.array_equal(img1, img3)
    # the record re-renders exactly after a JSON round trip (attributes.jsonl is a complete description)
    img4, ids4 = P.render_portrait(json.loads(json.dumps(a1)), 32)
    assert np.array_equal(img1, img4) and np.array_equal(ids1, ids4)


def test_dataset_json_classes_and_transparent_flag(portraits_ds):
    info = json.loads((portraits_ds / "dataset.json").read_text())
    assert info["classes"] == list(CELEBAMASK_CLASSES)
    assert info["classes"][10] == "eyeglasses" and info["classes"][12] == "earrings"
    assert info["classes"][4] == "mouth" and info["classes"][7] == "hair" and info["classes"][8] == "neck"
    assert info["transparent_classes"] == ["eyeglasses", "earrings"]
    assert info["resolution"] == 32 and info["num_images"] == 6
    counts = np.zeros(13, np.int64)
    for p in sorted((portraits_ds / "masks").glob("*.png")):
        with Image.open(p) as m:
            assert m.mode == "L"
            ids = np.asarray(m)
        assert ids.shape == (32, 32) and ids.max() < 13
        counts += np.bincount(ids.ravel(), minlength=13)
    assert info["class_pixel_counts"] == counts.tolist()
    for p in (portraits_ds / "images").glob("*.png"):
        with Image.open(p) as im:
            assert im.mode == "RGB" and im.size == (32, 32)


def test_attribute_records_one_per_image(portraits_ds):
    recs = [json.loads(l) for l in (portraits_ds / "attributes.jsonl").read_text().splitlines()]
    assert [r["basename"] for r in recs] == [p.stem for p in sorted((portraits_ds / "images").glob("*.png"))]
    for r in recs:
        for key in ("identity", "skin", "hair", "eyes", "mouth", "pose", "glasses", "hat", "earrings"):
            assert key in r


def test_core_parts_present_in_frontal_portrait():
    _, ids, _ = P.generate_portrait(0, 0, 64)
    _, ids = P.render_portrait(_plain(), 64)
    present = set(np.unique(ids).tolist())
    # background, skin, eyes, brows, mouth, nose, ears, hair, neck, cloth
    assert {0, 1, 2, 3, 4, 5, 6, 7, 8, 9} <= present
    assert not present & {10, 11, 12}


def test_bangs_are_hair_over_skin():
    _, no_bangs = P.render_portrait(_plain(), 64)
    _, fringe = P.render_portrait(_plain(hair__bangs="fringe"), 64)
    covered = (no_bangs == P.SKIN) & (fringe == P.HAIR)
    assert covered.sum() > 20
    assert not ((no_bangs == P.HAIR) & (fringe == P.SKIN)).any()
    # the fringe lies on the forehead: above the eyes
    eye_rows = np.nonzero((no_bangs == P.EYES).any(axis=1))[0]
    assert np.nonzero(covered.any(axis=1))[0].max() < eye_rows.min()


def test_hair_is_behind_the_face():
    """Back hair covers the face centre when painted alone, but the face is painted over it."""
    a = _plain(hair__style="long")
    cv = Canvas(64, 3)
    face = Frame(0.0, 0.0, 1.3, 0.0)  # the face frame of render_portrait for this pose
    P._back_hair(cv, face, a["face"]["width"], a["face"]["height"], a["hair"], np.ones(3, np.float32),
                 np.array([0, 0, 1.0], np.float32), [(1.0, 0.0, 0.0)], 0.0)
    _, ids = P.render_portrait(a, 64)
    r, c = 32, 32 + 6  # face centre, a little off the nose line
    assert cv.slots[r * 3 + 1, c * 3 + 1] == P.HAIR
    assert ids[r, c] == P.SKIN
    # and it shows beside the face at temple height, on both sides
    row = ids[r - 8]
    skin = np.nonzero(row == P.SKIN)[0]
    assert (row[:skin.min()] == P.HAIR).any() and (row[skin.max() + 1:] == P.HAIR).any()


CLEAR = {"kind": "clear", "shape": "round", "opacity": 0.25, "tint": [0.8, 0.9, 0.9], "frame_rgb": [0.1, 0.1, 0.1],
         "width": 0.095, "height": 0.065, "thickness": 0.012}


def test_clear_glasses_are_transparent_over_eyes():
    img0, ids0 = P.render_portrait(_plain(), 64)
    img1, ids1 = P.render_portrait(_plain(glasses=CLEAR), 64)
    eyes0 = ids0 == P.EYES
    assert eyes0.sum() > 10
    # CelebAMask-HQ merge order: eye annotations stay on top of the (transparent) eyeglasses
    assert (ids1[eyes0] == P.EYES).all()
    # lens and frame over skin become eyeglasses
    assert ((ids0 == P.SKIN) & (ids1 == P.GLASSES)).sum() > 20
    # ... while the eyes are seen through a tinted lens: the pixels change
    diff = np.abs(img1.astype(int) - img0.astype(int))[eyes0].mean()
    assert diff > 2.0
    # nothing outside the glasses changes label except skin -> eyeglasses (and eye edges gained from ties)
    changed = ids0 != ids1
    assert set(ids1[changed].tolist()) <= {P.GLASSES, P.EYES}


def test_sunglasses_hide_the_eyes():
    sun = dict(CLEAR, kind="sun", opacity=0.9)
    _, ids0 = P.render_portrait(_plain(), 64)
    _, ids1 = P.render_portrait(_plain(glasses=sun), 64)
    assert (ids1 == P.EYES).sum() == 0
    assert (ids1[ids0 == P.EYES] == P.GLASSES).all()


@pytest.mark.parametrize("kind", ["beanie", "brim"])
def test_hat_is_over_hair(kind):
    hat = {"kind": kind, "rgb": [0.8, 0.1, 0.1], "height": 0.5}
    _, ids0 = P.render_portrait(_plain(), 64)
    _, ids1 = P.render_portrait(_plain(hat=hat), 64)
    assert ((ids0 == P.HAIR) & (ids1 == P.HAT)).sum() > 30
    assert not (ids0 == P.HAT).any()
    # the hat only adds itself; other labels change only on its border (block-majority anti-aliasing)
    hat = ids1 == P.HAT
    near = np.zeros_like(hat)
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            near |= np.roll(np.roll(hat, dr, 0), dc, 1)
    changed = (ids0 != ids1) & ~hat
    assert not (changed & ~near).any()


def test_earrings_and_side_locks():
    e = {"kind": "hoop", "rgb": [0.9, 0.7, 0.3], "size": 1.2}
    _, ids = P.render_portrait(_plain(earrings=e), 128)
    assert (ids == P.EARRINGS).sum() > 5
    _, open_ears = P.render_portrait(_plain(hair__style="long"), 64)
    _, covered = P.render_portrait(_plain(hair__style="long", hair__covers_ears=True), 64)
    assert (open_ears == P.EARS).sum() > 5
    assert (covered == P.EARS).sum() < (open_ears == P.EARS).sum() // 2


def test_anti_aliased_image_edges():
    img, ids = P.render_portrait(_plain(), 64)
    # along a row through the face, the skin/background boundary has intermediate colours
    gray = img.astype(np.float32).mean(axis=2)
    assert len(np.unique(gray)) > 200


def test_pose_moves_the_face():
    _, ids0 = P.render_portrait(_plain(), 64)
    _, ids1 = P.render_portrait(_plain(pose__dx=0.2), 64)
    c0 = np.nonzero(ids0 == P.SKIN)[1].mean()
    c1 = np.nonzero(ids1 == P.SKIN)[1].mean()
    assert c1 - c0 == pytest.approx(0.2 * 32, abs=1.0)


def test_built_in_dependencies_and_part_rates():
    recs = [P.sample_portrait(np.random.default_rng([99, i])) for i in range(1500)]
    pig = [r["identity"]["pigment"] for r in recs]
    assert pearson(pig, [r["eyes"]["lightness"] for r in recs]) < -0.6
    assert pearson(pig, [r["skin"]["lightness"] for r in recs]) < -0.9
    assert pearson(pig, [r["hair"]["lightness"] for r in recs]) < -0.4
    # hue: brown eyes ~0.05-0.1, blue ~0.6; dark pigment -> lower hue
    assert pearson(pig, [r["eyes"]["hue"] for r in recs]) < -0.5
    smile = [r["mouth"]["smile"] for r in recs]
    assert pearson(smile, [r["mouth"]["width"] for r in recs]) > 0.5
    assert pearson(smile, [r["eyes"]["height"] for r in recs]) < -0.5
    for part, lo, hi in (("glasses", 0.15, 0.25), ("hat", 0.12, 0.22), ("earrings", 0.15, 0.25)):
        rate = np.mean([r[part] is not None for r in recs])
        assert lo <= rate <= hi, (part, rate)
