"""Image-level labels: the dataset.json fields, `LabelledDataset` / `ProceduralLabelled`, and `data check`."""
import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from memorygan.cli import main
from memorygan.data import (
    DatasetInfo, LabelledDataset, ProceduralLabelled, SegmentationDataset, check_dataset, dataset_stats,
    import_class_folders,
)
from memorygan.data.files import parse_info
from memorygan.errors import DatasetError, MemoryGANWarning


def _image_level(root, labels=None, n=3, size=4, info_overrides=None):
    """A hand-made image-level-only dataset: image i is flat grey 40 i, labels i % 2 of ("a", "b")."""
    (root / "images").mkdir(parents=True)
    for i in range(n):
        Image.fromarray(np.full((size, size, 3), 40 * i, np.uint8)).save(root / "images" / f"{i:03d}.png")
    info = {"classes": [], "resolution": size, "num_images": n, "categories": ["a", "b"],
            "labels": labels if labels is not None else {f"{i:03d}": i % 2 for i in range(n)}}
    info.update(info_overrides or {})
    (root / "dataset.json").write_text(json.dumps(info))
    return root


# ---------------------------------------------------------------------------------------------------- format

def test_info_round_trip_and_optional_fields():
    info = DatasetInfo(classes=[], resolution=(8, 8), num_images=2, categories=["x", "y"], labels={"b": 1, "a": 0})
    d = info.to_json()
    assert d["categories"] == ["x", "y"] and list(d["labels"].items()) == [("a", 0), ("b", 1)]  # sorted
    back, errors = parse_info(json.loads(json.dumps(d)))
    assert errors == [] and back.categories == ["x", "y"] and back.labels == {"a": 0, "b": 1}
    assert not back.has_masks and back.num_categories == 2
    plain = DatasetInfo(classes=["bg"], resolution=(8, 8), num_images=0).to_json()
    assert "categories" not in plain and "labels" not in plain        # older datasets are written as before
    assert parse_info(plain)[0].categories is None


@pytest.mark.parametrize("fields, message", [
    ({"categories": []}, "dataset.json: 'categories' must be a non-empty list of image-level class names"),
    ({"categories": ["a", ""]}, "'categories' must be a non-empty list"),
    ({"categories": "a"}, "'categories' must be a non-empty list"),
    ({"categories": ["a", "b", "a"]}, "dataset.json: duplicate category names ['a'] in 'categories'"),
    ({"labels": {"x": 0}}, "dataset.json: 'labels' without 'categories'"),
    ({"categories": ["a"], "labels": [0]}, "'labels' must be an object mapping image basenames to category indices"),
    ({"categories": ["a", "b"], "labels": {"x": 2, "y": -1, "z": True, "w": "1", "v": 1}},
     "dataset.json: 'labels' must map image basenames to category indices 0..1; bad entries: 'x': 2, 'y': -1, "
     "'z': True, 'w': '1'"),
    ({"classes": []}, "'classes' must be a non-empty list of class names in id order (an empty list only for an "
                      "image-level dataset, which has 'categories')"),
])
def test_bad_category_fields(fields, message):
    data = {"classes": ["bg", "a"], "resolution": 4, "num_images": 1, **fields}
    info, errors = parse_info(data, "dataset.json")
    assert info is None and any(message in e for e in errors), errors


def test_every_problem_is_collected():
    _, errors = parse_info({"classes": [], "resolution": 0, "num_images": 1, "categories": ["a", "a"],
                            "labels": {"x": 5}}, "dataset.json")
    assert len(errors) == 3 and "duplicate category names" in errors[0] and "'resolution'" in errors[2]
    assert "'labels' must map image basenames to category indices 0..1; bad entries: 'x': 5" in errors[1]


# ---------------------------------------------------------------------------------------------------- reader

def test_items_labels_and_mirror(tmp_path):
    root = _image_level(tmp_path / "d")
    ds = LabelledDataset(root)
    assert len(ds) == 3 and ds.categories == ["a", "b"] and ds.num_categories == 2
    assert ds.labels.dtype == torch.int64 and ds.labels.tolist() == [0, 1, 0]
    item = ds[1]
    assert set(item) == {"image", "label", "index", "flip"}
    assert item["image"].shape == (3, 4, 4) and item["image"].dtype == torch.float32
    assert torch.equal(item["image"], torch.full((3, 4, 4), 40 / 127.5 - 1))
    assert item["label"].dtype == torch.int64 and item["label"].shape == () and int(item["label"]) == 1
    assert item["index"] == 1 and item["flip"] is False
    m = LabelledDataset(root, mirror=True)
    assert len(m) == 6
    it = m[3 + 2]
    assert it["index"] == 2 and it["flip"] and int(it["label"]) == 0 and m[-1]["index"] == 2
    with pytest.raises(IndexError, match="index 6 out of range for dataset of 6 items"):
        m[6]
    batch = next(iter(torch.utils.data.DataLoader(m, batch_size=4)))
    assert batch["label"].tolist() == [0, 1, 0, 0] and batch["flip"].tolist() == [False, False, False, True]


def test_flip_mirrors_the_image(categories_ds):
    ds = LabelledDataset(categories_ds)
    a, b = ds.load(3), ds.load(3, flip=True)
    assert torch.equal(b["image"], a["image"].flip(-1)) and not torch.equal(a["image"], b["image"])
    assert int(a["label"]) == int(b["label"]) == 3


def test_masks_are_never_read_and_procedural_items_equal_the_files(categories_ds, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(categories_ds, copy)
    shutil.rmtree(copy / "masks")
    files = LabelledDataset(copy, mirror=True)
    assert files.fingerprint() == LabelledDataset(categories_ds).fingerprint()   # path and masks left out
    live = ProceduralLabelled(n=24, size=16, seed=3, num_categories=12, mirror=True)
    assert len(live) == len(files) == 48 and live.categories == files.categories and live.num_categories == 12
    assert torch.equal(live.labels, files.labels) and files.labels.tolist() == [i % 12 for i in range(24)]
    for i in (5, 24 + 7):
        a, b = files[i], live[i]
        assert torch.equal(a["image"], b["image"]) and torch.equal(a["label"], b["label"])
        assert a["index"] == b["index"] and a["flip"] == b["flip"]


def test_fingerprint_follows_images_and_labels(tmp_path):
    root = _image_level(tmp_path / "d")
    fp = LabelledDataset(root).fingerprint()
    assert fp["num_images"] == 3 and len(fp["fingerprint"]) == 16
    shutil.copytree(root, tmp_path / "moved")
    assert LabelledDataset(tmp_path / "moved").fingerprint() == fp
    relabelled = _image_level(tmp_path / "r", labels={"000": 0, "001": 1, "002": 1})
    renamed = _image_level(tmp_path / "c", info_overrides={"categories": ["a", "c"]})
    assert LabelledDataset(relabelled).fingerprint()["fingerprint"] != fp["fingerprint"]
    assert LabelledDataset(renamed).fingerprint()["fingerprint"] != fp["fingerprint"]


def test_open_errors_name_the_problem(tmp_path, make_ds, portraits_ds):
    with pytest.raises(DatasetError, match="does not exist"):
        LabelledDataset(tmp_path / "nope")
    with pytest.raises(DatasetError, match=r"dataset .*portraits has no image-level labels \(dataset.json "
                                           r"'categories'\); import it with `memorygan data import-classes` or "
                                           r"synthesise `memorygan data synth categories`"):
        LabelledDataset(portraits_ds)
    seg = make_ds(tmp_path / "seg", [np.zeros((4, 4))] * 2, ["bg", "x"], info_overrides={"categories": ["a"]})
    with pytest.raises(DatasetError, match="dataset.json has 'categories' but no 'labels'"):
        LabelledDataset(seg)
    bad = _image_level(tmp_path / "b", labels={"000": 0, "001": 1, "zzz": 0})
    with pytest.raises(DatasetError, match=r"1 images have no label \(first: images/002\); 1 labels name no image "
                                           r"\(first: zzz\) \(run `memorygan data check"):
        LabelledDataset(bad)
    count = _image_level(tmp_path / "n", info_overrides={"num_images": 4})
    with pytest.raises(DatasetError, match="declares 4 images but the folder holds 3"):
        LabelledDataset(count)
    res = _image_level(tmp_path / "s", info_overrides={"resolution": 8})
    with pytest.raises(DatasetError, match="000.png is 4x4 but dataset.json declares 8x8"):
        LabelledDataset(res)
    with pytest.warns(MemoryGANWarning, match="is 4x4 px and the model 8x8: images are resized on load"):
        up = LabelledDataset(_image_level(tmp_path / "u"), resolution=8)
    assert up[0]["image"].shape == (3, 8, 8)


def test_part_based_reader_refuses_an_image_level_dataset(tmp_path):
    root = _image_level(tmp_path / "d")
    with pytest.raises(DatasetError, match=r"dataset .*d has image-level labels \(2 categories\) but no masks, so "
                                           r"it trains `memorygan biggan` models, not the part-based ones"):
        SegmentationDataset(root)


# ---------------------------------------------------------------------------------------------------- check

def test_check_image_level_dataset(tmp_path, capsys):
    root = _image_level(tmp_path / "d", n=4)
    r = check_dataset(root)
    assert r.ok and r.errors == [] and r.warnings == [] and not r.masks
    assert r.num_images == 4 and r.category_counts == {"a": 2, "b": 2}
    assert main(["data", "check", str(root), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "4 images (image-level labels, no masks) checked" in out and "images per category:" in out
    assert main(["data", "check", str(root), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["category_counts"] == {"a": 2, "b": 2}
    st = dataset_stats(root)
    assert st["num_classes"] == 0 and st["class_frequencies"] == {} and st["category_counts"] == {"a": 2, "b": 2}


def test_check_flags_label_problems(tmp_path, categories_ds):
    root = _image_level(tmp_path / "d", n=4, labels={"000": 0, "001": 0, "002": 0, "ghost": 1})
    Image.fromarray(np.zeros((5, 4, 3), np.uint8)).save(root / "images" / "001.png")
    (root / "masks").mkdir()
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(root / "masks" / "000.png")
    r = check_dataset(root)
    expected = [
        f"{root / 'masks'} holds files but dataset.json declares no mask classes ('classes': [])",
        "image images/001.png is 4x5 but dataset.json declares resolution 4x4",
        "dataset.json 'labels' names 'ghost', which has no image in images/",
        "image images/003.png has no label in dataset.json 'labels'",
    ]
    for e in expected:
        assert any(e in x for x in r.errors), f"missing: {e}\n{r.errors}"
    assert len(r.errors) == len(expected)
    assert r.category_counts == {"a": 3, "b": 0} and "categories without any image: 1 b" in r.warnings
    # a segmentation dataset with categories gets the same label checks
    copy = tmp_path / "cat"
    shutil.copytree(categories_ds, copy)
    info = json.loads((copy / "dataset.json").read_text())
    del info["labels"]["000005"]
    (copy / "dataset.json").write_text(json.dumps(info))
    r = check_dataset(copy)
    assert r.errors == ["image images/000005.png has no label in dataset.json 'labels'"]
    assert r.category_counts["lake"] == 1 and r.category_counts["beach"] == 2   # item 5 is category 5


def test_check_with_an_invalid_label_reports_it_not_missing_masks(tmp_path):
    root = _image_level(tmp_path / "d", labels={"000": 7})
    r = check_dataset(root)
    assert len(r.errors) == 1 and "bad entries: '000': 7" in r.errors[0]


def test_import_classes_reads_back(tmp_path):
    for cls, v in (("ant", 10), ("bee", 200)):
        (tmp_path / "src" / cls).mkdir(parents=True)
        Image.fromarray(np.full((6, 6, 3), v, np.uint8)).save(tmp_path / "src" / cls / "1.png")
    import_class_folders(tmp_path / "src", tmp_path / "out", 6)
    ds = LabelledDataset(tmp_path / "out")
    assert ds.categories == ["ant", "bee"] and ds.labels.tolist() == [0, 1]
    assert torch.equal(ds[1]["image"], torch.full((3, 6, 6), 200 / 127.5 - 1))


def test_preview_shows_categories_and_needs_no_masks(tmp_path, categories_ds):
    from memorygan.data.preview import preview_dataset, preview_grid
    root = _image_level(tmp_path / "d", n=3, size=8)
    with Image.open(preview_dataset(root, tmp_path / "p.png", tile=16)) as im:
        g = np.asarray(im.convert("RGB"))
    # one row: 2 px gap, 16 px images, a 14 px caption strip, no mask row, no legend (no classes)
    assert g.shape == (2 + 16 + 14 + 2 + 4 + 10, 3 * 16 + 4 * 2, 3)
    assert (g[2:18, 20:36] == 40).all() and (g[2:18, 38:54] == 80).all()
    caption = g[18:32, 2:18]
    assert (caption < 100).any() and (g[18:32, 20:36] < 100).any()          # "a" and "b" written in black
    imgs = [np.zeros((8, 8, 3), np.uint8)] * 2
    masks = [np.zeros((8, 8), np.int64)] * 2
    plain = preview_grid(imgs, masks, ["bg"], tile=16)
    captioned = preview_grid(imgs, masks, ["bg"], tile=16, captions=["beach", "a very long category name"])
    assert captioned.size == (plain.size[0], plain.size[1] + 14)
    assert preview_dataset(categories_ds, tmp_path / "c.png", n=2, tile=16).is_file()
