"""Dataset tools never delete what they should not: overlapping outputs, inputs inside --out, folders that are not
datasets; every count argument is checked; files of another size are an error, not a silent resize."""
import json

import numpy as np
import pytest
from PIL import Image

from memorygan.cli import main
from memorygan.data import SegmentationDataset, import_celebamask_hq, import_dataset
from memorygan.data.preview import preview_dataset
from memorygan.errors import DatasetError, MemoryGANWarning


def _raw(root, ids=(0, 1, 28000, 28001)):
    """A minimal CelebAMask-HQ raw layout: images with a skin part each."""
    (root / "CelebA-HQ-img").mkdir(parents=True)
    for i in ids:
        Image.fromarray(np.full((16, 16, 3), 50 + i % 7, np.uint8)).save(root / "CelebA-HQ-img" / f"{i}.jpg")
        anno = root / "CelebAMask-HQ-mask-anno" / str(i // 2000)
        anno.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((16, 16), 255, np.uint8)).save(anno / f"{i:05d}_skin.png")
    return root


def test_celebamask_overlapping_outputs_are_refused(tmp_path, capsys, hashes):
    raw = _raw(tmp_path / "raw")
    out = tmp_path / "d"
    assert main(["data", "celebamask-hq", "--root", str(raw), "--out", str(out), "--size", "8", "--quiet"]) == 0
    before = hashes(out)
    for test_out in (out, out / "test", tmp_path):
        rc = main(["data", "celebamask-hq", "--root", str(raw), "--out", str(out), "--test-out", str(test_out),
                   "--size", "8", "--overwrite", "--quiet"])
        err = capsys.readouterr().err
        assert rc == 2 and f"--out {out} and --test-out {test_out} overlap" in err
        assert hashes(out) == before                                       # the train split is intact
    with pytest.raises(SystemExit):
        main(["data", "celebamask-hq", "--root", str(raw), "--out", str(tmp_path / "x"), "--limit", "-1"])
    assert "--limit: expected an integer >= 1, got -1" in capsys.readouterr().err
    with pytest.raises(DatasetError, match="--limit must be an integer >= 1, got -1"):
        import_celebamask_hq(raw, tmp_path / "y", size=8, limit=-1)
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
    res = import_celebamask_hq(raw, tmp_path / "z", size=8, limit=3)      # the first 3 ids, none dropped
    assert res.infos["train"].num_images == 2 and res.infos["test"].num_images == 1


def _source(root):
    (root / "img").mkdir(parents=True)
    (root / "msk").mkdir()
    for n in ("a", "b"):
        Image.fromarray(np.full((8, 8, 3), 9, np.uint8)).save(root / "img" / f"{n}.png")
        Image.fromarray(np.eye(8, dtype=np.uint8)).save(root / "msk" / f"{n}.png")
    return root / "img", root / "msk"


def test_import_overwrite_never_deletes_its_own_inputs_or_a_non_dataset(tmp_path, capsys):
    img, msk = _source(tmp_path / "src")
    out = tmp_path / "out"
    import_dataset(img, msk, out, 8)
    classes = out / "classes.json"                  # the user keeps the class list inside the dataset folder
    classes.write_text(json.dumps(["background", "line"]))
    remap = out / "remap.json"
    remap.write_text(json.dumps({"0": 0, "1": 1}))
    for arg, path in (("--classes", classes), ("--remap", remap)):
        rc = main(["data", "import", "--images", str(img), "--masks", str(msk), "--size", "8", "--out", str(out),
                   arg, str(path), "--overwrite", "--quiet"])
        assert rc == 2
        assert f"{arg} file {path} lies inside the output folder {out}, which would be replaced" in \
            capsys.readouterr().err
        assert path.is_file()
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "thesis.tex").write_text("precious")
    with pytest.raises(DatasetError, match=r"--overwrite replaces only a dataset folder, and .*notes is not one "
                                           r"\(.*dataset.json: missing.*refusing to delete it"):
        import_dataset(img, msk, notes, 8, overwrite=True)
    assert (notes / "thesis.tex").read_text() == "precious"
    (notes / "dataset.json").write_text("[]")                   # a dataset.json that is not a dataset's
    with pytest.raises(DatasetError, match="is not one"):
        import_dataset(img, msk, notes, 8, overwrite=True)
    assert (notes / "thesis.tex").read_text() == "precious"
    classes.unlink()
    remap.unlink()
    import_dataset(img, msk, out, 8, overwrite=True)             # a dataset is replaced as before


def test_preview_counts_are_checked(portraits_ds, tmp_path, capsys):
    for argv, msg in ((["--n", "-2"], "--n: expected an integer >= 1, got -2"),
                      (["--start", "-1"], "--start: expected an integer >= 0, got -1"),
                      (["--columns", "0"], "--columns: expected an integer >= 1, got 0")):
        with pytest.raises(SystemExit) as e:
            main(["data", "preview", str(portraits_ds), "--out", str(tmp_path / "p.png"), *argv])
        assert e.value.code == 2 and msg in capsys.readouterr().err
    for kw, msg in (({"n": -2}, "--n must be an integer >= 1, got -2"), ({"tile": 100000}, "--tile must be"),
                    ({"n": 5000}, "at most 1024")):
        with pytest.raises(DatasetError, match=msg):
            preview_dataset(portraits_ds, tmp_path / "p.png", **kw)
    assert not (tmp_path / "p.png").exists()


def test_images_of_another_size_are_an_error_not_a_resize(make_ds, tmp_path):
    root = make_ds(tmp_path / "d", [np.zeros((8, 8), np.uint8)] * 3, ["bg", "x"])
    Image.fromarray(np.zeros((200, 300, 3), np.uint8)).save(root / "images" / "00002.png")   # 300x200
    ds = SegmentationDataset(root)
    assert ds[0]["image"].shape == (3, 8, 8)
    with pytest.raises(DatasetError, match=r"image .*00002.png is 300x200 but dataset.json declares 8x8: files of "
                                           r"another size are not resized"):
        ds[2]
    with pytest.warns(MemoryGANWarning, match="is 8x8 px and the model 16x16: images are resized on load"):
        up = SegmentationDataset(root, resolution=16)
    assert up[0]["image"].shape == (3, 16, 16)
    with pytest.raises(DatasetError, match="00002.png is 300x200"):
        up[2]
    Image.fromarray(np.zeros((4, 8), np.uint8)).save(root / "masks" / "00001.png")
    with pytest.raises(DatasetError, match=r"mask .*00001.png is 8x4 but dataset.json declares 8x8"):
        ds[1]
    wide = make_ds(tmp_path / "w", [np.zeros((8, 12), np.uint8)] * 2, ["bg", "x"])
    with pytest.raises(DatasetError, match=r"is 12x8 px \(not square\); it cannot be resized to the model's 16x16 "
                                           r"without stretching"):
        SegmentationDataset(wide, resolution=16)
