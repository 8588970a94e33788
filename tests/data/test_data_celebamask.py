"""The CelebAMask-HQ importer on a small replica of the raw layout built here."""
import json

import numpy as np
import pytest
from PIL import Image

from memorygan.cli import main
from memorygan.data import SegmentationDataset, check_dataset, import_celebamask_hq
from memorygan.data.files import read_mask
from memorygan.errors import DatasetError


def _part(grid: np.ndarray, scale: int = 2) -> Image.Image:
    """A CelebAMask-HQ style part file (0/255) from a logical 8x8 grid, upscaled by pixel replication."""
    return Image.fromarray((np.kron(grid, np.ones((scale, scale))) * 255).astype(np.uint8))


def _rect(r0, r1, c0, c1, n=8):
    g = np.zeros((n, n), np.uint8)
    g[r0:r1, c0:c1] = 1
    return g


PARTS0 = {  # image 0: overlapping parts on a logical 8x8 grid
    "skin": _rect(2, 8, 1, 7),
    "eye_g": _rect(3, 5, 1, 7),     # glasses over skin ...
    "l_eye": _rect(4, 5, 2, 3),     # ... but eyes are merged after glasses
    "r_eye": _rect(4, 5, 5, 6),
    "hair": _rect(0, 3, 0, 8),      # hair overwrites skin at row 2
    "hat": _rect(0, 1, 2, 6),       # hat overwrites hair
    "l_lip": _rect(6, 7, 3, 5),
    "nose": _rect(5, 7, 3, 5),      # nose after lips
    "l_ear": _rect(2, 6, 0, 1),     # ears after hair (row 2) and skin
    "cloth": _rect(7, 8, 0, 8),     # cloth after skin
    "ear_r": _rect(5, 6, 0, 1),     # earrings last (over the ear)
    # no mouth, neck, neck_l, brows ... files: absent parts
}
EXPECTED0 = np.zeros((8, 8), np.uint8)
for _name, _cid in (("skin", 1), ("eye_g", 10), ("l_eye", 2), ("r_eye", 2), ("l_lip", 4), ("nose", 5),
                    ("hair", 7), ("l_ear", 6), ("cloth", 9), ("hat", 11), ("ear_r", 12)):
    EXPECTED0[PARTS0[_name] > 0] = _cid


def _raw(root):
    img_dir = root / "CelebA-HQ-img"
    img_dir.mkdir(parents=True)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (32, 32, 3), np.uint8)).save(img_dir / "0.jpg")
    Image.fromarray(rng.integers(0, 255, (21, 21), np.uint8)).save(img_dir / "1.jpg")   # grayscale, odd size
    Image.fromarray(rng.integers(0, 255, (32, 32, 3), np.uint8)).save(img_dir / "28000.jpg")
    a0 = root / "CelebAMask-HQ-mask-anno" / "0"
    a0.mkdir(parents=True)
    for part, grid in PARTS0.items():
        _part(grid).save(a0 / f"00000_{part}.png")
    # image 1: odd-sized part files (17x17), skin everywhere, hair in the top rows
    Image.fromarray(np.full((17, 17), 255, np.uint8)).save(a0 / "00001_skin.png")
    hair = np.zeros((17, 17), np.uint8)
    hair[:3] = 255
    Image.fromarray(hair).convert("RGB").save(a0 / "00001_hair.png")  # RGB part files occur too
    a14 = root / "CelebAMask-HQ-mask-anno" / "14"
    a14.mkdir(parents=True)
    _part(_rect(0, 8, 0, 8)).save(a14 / "28000_cloth.png")
    return root


def test_merge_order_split_and_conversions(tmp_path, hashes):
    raw = _raw(tmp_path / "raw")
    before = hashes(raw)
    res = import_celebamask_hq(raw, tmp_path / "celeba", size=8)
    assert hashes(raw) == before  # input untouched
    train, test = tmp_path / "celeba", tmp_path / "celeba-test"
    assert res.outputs == {"train": train, "test": test}
    assert sorted(p.name for p in (train / "masks").iterdir()) == ["00000.png", "00001.png"]
    assert sorted(p.name for p in (test / "masks").iterdir()) == ["28000.png"]
    # hand-merged expectation: later parts overwrite earlier ones, missing parts are absent
    m0 = read_mask(train / "masks" / "00000.png")
    assert np.array_equal(m0, EXPECTED0)
    assert m0[2, 0] == 6 and m0[2, 3] == 7 and m0[0, 3] == 11 and m0[4, 1] == 10 and m0[4, 2] == 2
    assert m0[5, 0] == 12 and m0[6, 3] == 5 and m0[7, 3] == 9 and m0[3, 3] == 10
    assert (read_mask(test / "masks" / "28000.png") == 9).all()
    # odd sizes resized: 17x17 parts and a 21x21 grayscale image become 8x8; grayscale becomes RGB
    m1 = read_mask(train / "masks" / "00001.png")
    assert m1.shape == (8, 8) and set(np.unique(m1).tolist()) == {1, 7}
    assert (m1[0] == 7).all() and (m1[-1] == 1).all()
    with Image.open(train / "images" / "00001.png") as im:
        assert im.mode == "RGB" and im.size == (8, 8)
        a = np.asarray(im)
        assert np.array_equal(a[..., 0], a[..., 1]) and np.array_equal(a[..., 1], a[..., 2])
    info = json.loads((train / "dataset.json").read_text())
    assert info["transparent_classes"] == ["eyeglasses", "earrings"] and info["num_images"] == 2
    assert info["class_pixel_counts"][10] == int((EXPECTED0 == 10).sum())
    assert check_dataset(train).ok and check_dataset(test).ok
    assert len(SegmentationDataset(train)) == 2


def test_cli_and_refusals(tmp_path, capsys):
    raw = _raw(tmp_path / "raw")
    out = tmp_path / "c"
    assert main(["data", "celebamask-hq", "--root", str(raw), "--out", str(out), "--size", "8", "--quiet"]) == 0
    assert "train: 2 images" in capsys.readouterr().out
    # existing non-empty output is refused without --overwrite
    assert main(["data", "celebamask-hq", "--root", str(raw), "--out", str(out), "--size", "8", "--quiet"]) == 2
    assert f"output folder {out} exists and is not empty" in capsys.readouterr().err
    with pytest.raises(DatasetError, match="CelebAMask-HQ-mask-anno: missing"):
        import_celebamask_hq(tmp_path / "raw" / "CelebA-HQ-img", tmp_path / "z", size=8)


def test_unreadable_image_aborts_without_output(tmp_path, hashes):
    raw = _raw(tmp_path / "raw")
    (raw / "CelebA-HQ-img" / "1.jpg").write_bytes(b"\xff\xd8\xff garbage")
    before = hashes(raw)
    with pytest.raises(DatasetError, match=r"image .*1\.jpg is unreadable"):
        import_celebamask_hq(raw, tmp_path / "c", size=8)
    assert hashes(raw) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["raw"]  # no output, no temporary folder left


def test_workers_give_identical_output(tmp_path, hashes):
    raw = _raw(tmp_path / "raw")
    import_celebamask_hq(raw, tmp_path / "one", size=8)
    import_celebamask_hq(raw, tmp_path / "two", size=8, workers=2)
    one, two = hashes(tmp_path / "one"), hashes(tmp_path / "two")
    # dataset.json differs only if the merge differed; provenance does not record the worker count
    assert one == two and len(one) == 5


def test_raw_layout_replica_round_trips(tmp_path, portraits_ds):
    """Procedural portraits written in the raw layout import back to the same masks (and nearly the same images)."""
    from memorygan.data.celebamask import write_raw_layout

    assert write_raw_layout(portraits_ds, tmp_path / "raw", start_index=27998) == 6
    assert (tmp_path / "raw" / "CelebA-HQ-img" / "27998.jpg").is_file()
    assert (tmp_path / "raw" / "CelebAMask-HQ-mask-anno" / "13" / "27999_skin.png").is_file()
    import_celebamask_hq(tmp_path / "raw", tmp_path / "back", size=32)
    src = SegmentationDataset(portraits_ds)
    back = {**{n: tmp_path / "back" for n in ("27998", "27999")}, **{str(i): tmp_path / "back-test"
                                                                    for i in range(28000, 28004)}}
    for n, name in enumerate(src.names):
        folder = back[str(27998 + n)]
        i = 27998 + n
        assert np.array_equal(read_mask(folder / "masks" / f"{i:05d}.png"), src.load(n)["ids"].numpy())
        img = np.asarray(Image.open(folder / "images" / f"{i:05d}.png"), np.float64)
        orig = (src.load(n)["image"].permute(1, 2, 0).numpy() + 1) * 127.5
        assert 10 * np.log10(255 ** 2 / ((img - orig) ** 2).mean()) > 30      # JPEG quality 95
    with pytest.raises(DatasetError, match="already holds a CelebAMask-HQ layout"):
        write_raw_layout(portraits_ds, tmp_path / "raw")
