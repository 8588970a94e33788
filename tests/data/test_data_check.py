import json

import numpy as np
import pytest
from PIL import Image

from memorygan.cli import main
from memorygan.data import check_dataset


def _masks():
    m0 = np.zeros((4, 4), np.uint8)
    m0[0, :] = 1          # 4 pixels of class 1
    m1 = np.zeros((4, 4), np.uint8)
    m1[2:, :] = 2         # 8 pixels of class 2
    return [m0, m1]


def test_valid_dataset_and_hand_checked_frequencies(tmp_path, make_ds):
    root = make_ds(tmp_path / "ok", _masks(), ["bg", "a", "b"])
    r = check_dataset(root)
    assert r.ok and r.errors == [] and r.warnings == []
    assert r.num_images == 2
    assert r.class_pixel_counts == [20, 4, 8]
    assert r.class_image_counts == [2, 1, 1]
    assert r.class_frequencies == {"bg": 20 / 32, "a": 4 / 32, "b": 8 / 32}
    text = r.format()
    assert "0 error(s)" in text and text.endswith("OK")


def test_procedural_datasets_are_valid(portraits_ds, scenes_ds):
    for root in (portraits_ds, scenes_ds):
        r = check_dataset(root)
        assert r.ok, r.format()
        info = json.loads((root / "dataset.json").read_text())
        assert r.class_pixel_counts == info["class_pixel_counts"]


def _broken(tmp_path, make_ds):
    """One folder with one instance of every problem kind."""
    masks = [np.zeros((4, 4), np.uint8) for _ in range(8)]
    masks[0][0, 0] = 1
    masks[6][1, 1] = 7                                 # id outside the 3 declared classes
    root = make_ds(tmp_path / "bad", masks, ["bg", "a", "never"])
    # truncated image
    p = root / "images" / "00001.png"
    p.write_bytes(p.read_bytes()[:40])
    # unreadable mask
    (root / "masks" / "00002.png").write_bytes(b"not a png at all")
    # image without mask, mask without image
    (root / "masks" / "00003.png").unlink()
    (root / "images" / "00004.png").unlink()
    # size mismatch
    Image.fromarray(np.zeros((4, 5, 3), np.uint8)).save(root / "images" / "00005.png")
    # multi-channel mask
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(root / "masks" / "00007.png")
    return root


def test_every_problem_is_reported_at_once(tmp_path, make_ds):
    root = _broken(tmp_path, make_ds)
    r = check_dataset(root)
    assert not r.ok
    text = "\n".join(r.errors)
    expected = [
        "image images/00001.png is unreadable or truncated",
        "mask masks/00002.png is unreadable or truncated",
        "image images/00003.png has no mask",
        "mask masks/00004.png has no image",
        "image images/00005.png is 5x4 but mask masks/00005.png is 4x4",
        "mask 00006.png has class id 7 but dataset.json declares 3 classes",
        "mask masks/00007.png has mode RGB (3 channels)",
        "dataset.json declares 8 images but the folder holds 6 image/mask pairs",
    ]
    for e in expected:
        assert e in text, f"missing: {e}\n{text}"
    assert len(r.errors) == len(expected)
    # the empty class is a warning (the valid masks never use class 2)
    assert any("classes never present in any mask: 2 never" in w for w in r.warnings)


@pytest.mark.parametrize("content, message", [
    (None, "dataset.json: missing"),
    ("{not json", "not valid JSON"),
    (json.dumps({"classes": [], "resolution": 4, "num_images": 1}), "'classes' must be a non-empty list"),
    (json.dumps({"classes": ["a", "a"], "resolution": 4, "num_images": 1}), "duplicate class names"),
    (json.dumps({"classes": ["a", "b"], "resolution": "big", "num_images": 1}), "'resolution' must be"),
    (json.dumps({"classes": ["a", "b"], "resolution": 4, "num_images": 1, "transparent_classes": ["c"]}),
     "transparent classes ['c'] are not in 'classes'"),
])
def test_bad_or_missing_dataset_json(tmp_path, make_ds, content, message):
    root = make_ds(tmp_path / "d", [np.zeros((4, 4), np.uint8)], ["bg", "a"])
    if content is None:
        (root / "dataset.json").unlink()
    else:
        (root / "dataset.json").write_text(content)
    r = check_dataset(root)
    assert not r.ok
    assert any(message in e for e in r.errors), r.errors


def test_missing_folders(tmp_path, make_ds):
    r = check_dataset(tmp_path / "none")
    assert not r.ok and "is not a folder" in r.errors[0]
    root = make_ds(tmp_path / "d", [np.zeros((4, 4), np.uint8)], ["bg", "a"])
    import shutil
    shutil.rmtree(root / "masks")
    r = check_dataset(root)
    assert any(e.endswith("masks: missing folder") for e in r.errors)


def test_cli_check_exit_codes(tmp_path, make_ds, capsys):
    ok = make_ds(tmp_path / "ok", _masks(), ["bg", "a", "b"])
    assert main(["data", "check", str(ok), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "OK" in out and "0.62500" in out  # background frequency 20/32
    bad = _broken(tmp_path, make_ds)
    assert main(["data", "check", str(bad), "--quiet"]) == 1
    out = capsys.readouterr().out
    assert "images/00001.png" in out and "mask 00006.png has class id 7" in out and out.rstrip().endswith("INVALID")
    assert main(["data", "check", str(bad), "--json"]) == 1
    rep = json.loads(capsys.readouterr().out)
    assert rep["ok"] is False and len(rep["errors"]) == 8
