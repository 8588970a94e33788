import json

import numpy as np
import pytest
from PIL import Image

from memorygan.cli import main
from memorygan.data import check_dataset, import_dataset
from memorygan.data.files import AtomicOutput, read_mask
from memorygan.errors import DatasetError

# logical 4x6 id grid (h=4, w=6); files are 8x12, every 2x2 block constant so NEAREST resizing is unambiguous
GRID = np.array([[0, 5, 5, 0, 255, 0],
                 [0, 5, 5, 0, 255, 0],
                 [0, 0, 0, 5, 5, 0],
                 [255, 0, 0, 5, 5, 255]], np.uint8)


def _source(root, names=("a", "b"), grid=GRID):
    (root / "img").mkdir(parents=True)
    (root / "msk").mkdir()
    rng = np.random.default_rng(1)
    for n in names:
        Image.fromarray(rng.integers(0, 255, (8, 12, 3), np.uint8)).save(root / "img" / f"{n}.jpg")
        Image.fromarray(np.kron(grid, np.ones((2, 2), np.uint8))).save(root / "msk" / f"{n}.png")
    return root / "img", root / "msk"


def test_resize_crop_remap_and_classes(tmp_path, hashes):
    img, msk = _source(tmp_path / "src")
    before = hashes(tmp_path / "src")
    (tmp_path / "classes.json").write_text(json.dumps({"classes": ["background", "thing"],
                                                       "transparent_classes": ["thing"]}))
    (tmp_path / "remap.json").write_text(json.dumps({"0": 0, "5": 1, "255": 0}))
    info = import_dataset(img, msk, tmp_path / "out", 4, classes=tmp_path / "classes.json",
                          remap=tmp_path / "remap.json")
    assert hashes(tmp_path / "src") == before
    assert info.classes == ["background", "thing"] and info.transparent_classes == ["thing"]
    # shorter side 8 -> 4 (scale 1/2: the logical grid), width 12 -> 6, centre crop columns 1..4
    expected = np.where(GRID[:, 1:5] == 5, 1, 0)
    m = read_mask(tmp_path / "out" / "masks" / "a.png")
    assert np.array_equal(m, expected)
    with Image.open(tmp_path / "out" / "images" / "a.png") as im:
        assert im.size == (4, 4) and im.mode == "RGB"
    assert info.class_pixel_counts == [2 * int((expected == 0).sum()), 2 * int((expected == 1).sum())]
    assert check_dataset(tmp_path / "out").ok


def test_without_classes_file_ids_define_the_classes(tmp_path):
    img, msk = _source(tmp_path / "src")
    info = import_dataset(img, msk, tmp_path / "out", 4)
    assert info.num_classes == 256 and info.classes[:2] == ["background", "class_1"]
    assert read_mask(tmp_path / "out" / "masks" / "b.png").max() == 255


def test_unmapped_id_fails_atomically_and_names_file_and_id(tmp_path, hashes):
    img, msk = _source(tmp_path / "src", names=("a", "b", "c"))
    bad = GRID.copy()
    bad[0, 0] = 9
    Image.fromarray(np.kron(bad, np.ones((2, 2), np.uint8))).save(msk / "c.png")
    before = hashes(tmp_path / "src")
    with pytest.raises(DatasetError, match=r"mask .*c\.png has class id 9 not in the remap"):
        import_dataset(img, msk, tmp_path / "out", 4, remap={"0": 0, "5": 1, "255": 0})
    assert hashes(tmp_path / "src") == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]  # no output, no temporary folder


def test_overwrite_keeps_old_dataset_when_the_new_one_fails(tmp_path):
    img, msk = _source(tmp_path / "src")
    out = tmp_path / "out"
    import_dataset(img, msk, out, 4)
    old = (out / "dataset.json").read_text()
    with pytest.raises(DatasetError, match="not empty"):
        import_dataset(img, msk, out, 4)
    (msk / "b.png").write_bytes(b"broken")
    with pytest.raises(DatasetError, match=r"mask .*b\.png is unreadable"):
        import_dataset(img, msk, out, 4, overwrite=True)
    assert (out / "dataset.json").read_text() == old  # the old dataset is intact
    _source(tmp_path / "src2")
    info = import_dataset(tmp_path / "src2" / "img", tmp_path / "src2" / "msk", out, 2, overwrite=True)
    assert json.loads((out / "dataset.json").read_text())["resolution"] == 2 and info.num_images == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "src", "src2"]


def test_pairing_and_channel_errors_are_all_reported(tmp_path):
    img, msk = _source(tmp_path / "src", names=("a", "b"))
    (msk / "b.png").unlink()
    Image.fromarray(np.zeros((8, 12), np.uint8)).save(msk / "z.png")
    with pytest.raises(DatasetError) as e:
        import_dataset(img, msk, tmp_path / "out", 4)
    assert "b.jpg has no mask b.png" in str(e.value) and "z.png has no image" in str(e.value)
    img2, msk2 = _source(tmp_path / "src2", names=("a",))
    Image.fromarray(np.zeros((8, 12, 3), np.uint8)).save(msk2 / "a.png")
    with pytest.raises(DatasetError, match="has mode RGB .3 channels.; expected a single-channel PNG"):
        import_dataset(img2, msk2, tmp_path / "out", 4)
    assert not (tmp_path / "out").exists()


def test_output_inside_input_is_refused(tmp_path):
    img, msk = _source(tmp_path / "src")
    with pytest.raises(DatasetError, match=r"output folder .*img/out overlaps the --images folder .*img"):
        import_dataset(img, msk, img / "out", 4)


def test_atomic_output_replaces_only_on_commit(tmp_path):
    out = tmp_path / "d"
    out.mkdir()
    (out / "old.txt").write_text("old")
    (out / "dataset.json").write_text(json.dumps({"classes": ["bg"], "resolution": 4, "num_images": 0}))
    with pytest.raises(DatasetError, match="not empty"):
        AtomicOutput(out)
    a = AtomicOutput(out, overwrite=True)
    (a.path / "new.txt").write_text("new")
    assert (out / "old.txt").exists()          # untouched until commit
    a.commit()
    assert sorted(p.name for p in out.iterdir()) == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]  # old copy removed, no temporaries
    b = AtomicOutput(tmp_path / "e")
    b.abort()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]


def test_cli_import_error_names_file_and_exit_code(tmp_path, capsys):
    img, msk = _source(tmp_path / "src")
    (tmp_path / "classes.json").write_text(json.dumps(["background", "thing"]))
    rc = main(["data", "import", "--images", str(img), "--masks", str(msk), "--classes",
               str(tmp_path / "classes.json"), "--size", "4", "--out", str(tmp_path / "out"), "--quiet"])
    assert rc == 2
    err = capsys.readouterr().err
    assert err.startswith("memorygan data: error: import failed, nothing written")
    assert "a.png has class id 5, 255 but the classes file declares 2 classes" in err
    assert "Traceback" not in err
    rc = main(["data", "import", "--images", str(img), "--masks", str(msk), "--remap", '{"0": 0, "5": 1, "255": 0}',
               "--size", "4", "--out", str(tmp_path / "out"), "--quiet"])
    assert rc == 2 and "cannot read remap file" in capsys.readouterr().err
    (tmp_path / "remap.json").write_text('{"0": 0, "5": 1, "255": 0}')
    rc = main(["data", "import", "--images", str(img), "--masks", str(msk), "--remap", str(tmp_path / "remap.json"),
               "--size", "4", "--out", str(tmp_path / "out"), "--quiet"])
    assert rc == 0 and "imported 2 images with 2 classes" in capsys.readouterr().out


def test_import_with_workers_matches_single_process(tmp_path, hashes):
    img, msk = _source(tmp_path / "src", names=("a", "b", "c"))
    import_dataset(img, msk, tmp_path / "one", 4, name="x")
    import_dataset(img, msk, tmp_path / "two", 4, workers=2, name="x")
    assert hashes(tmp_path / "one") == hashes(tmp_path / "two")
