"""`data import-classes`: ROOT/CLASS/*.png -> an image-level-only dataset, atomically, every problem at once."""
import json

import numpy as np
import pytest
from PIL import Image

from memorygan.cli import main
from memorygan.data import check_dataset, import_class_folders, read_attributes, read_image, read_info
from memorygan.errors import DatasetError

RNG = np.random.default_rng(7)
PIXELS = RNG.integers(0, 255, (8, 12, 3), np.uint8)     # h=8, w=12: shorter side 8


def _source(root):
    """cat/ (two images, one nested), dog/ (RGBA, greyscale, palette), a README at the top (ignored)."""
    (root / "dog").mkdir(parents=True)
    (root / "cat" / "deep" / "er").mkdir(parents=True)
    Image.fromarray(PIXELS).save(root / "cat" / "b.png")
    Image.fromarray(PIXELS[::-1]).save(root / "cat" / "deep" / "er" / "a.png")
    (root / "cat" / "notes.txt").write_text("not an image")
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., :3] = (10, 20, 30)
    rgba[:, 4:, 3] = 255                                 # left half transparent, right half opaque
    Image.fromarray(rgba, "RGBA").save(root / "dog" / "x.png")
    Image.fromarray(np.full((8, 8), 77, np.uint8), "L").save(root / "dog" / "y.png")
    Image.fromarray(np.zeros((8, 8), np.uint8), "L").convert("P").save(root / "dog" / "z.gif.png")
    (root / "README.md").write_text("a data card")
    return root


def test_import_values_labels_and_attributes(tmp_path, hashes):
    src = _source(tmp_path / "src")
    before = hashes(src)
    info = import_class_folders(src, tmp_path / "out", 4)
    out = tmp_path / "out"
    assert hashes(src) == before                                   # the input is only read
    assert info.categories == ["cat", "dog"] and info.classes == [] and not info.has_masks
    # order: category, then relative path ("cat/b.png" < "cat/deep/er/a.png")
    assert info.labels == {"000000": 0, "000001": 0, "000002": 1, "000003": 1, "000004": 1}
    assert not (out / "masks").exists() and sorted(p.name for p in (out / "images").iterdir()) == [
        f"00000{i}.png" for i in range(5)]
    recs = read_attributes(out)
    assert [r["source"] for r in recs] == ["cat/b.png", "cat/deep/er/a.png", "dog/x.png", "dog/y.png",
                                           "dog/z.gif.png"]
    assert [r["category"] for r in recs] == ["cat", "cat", "dog", "dog", "dog"] and recs[0]["source_size"] == [12, 8]
    # transparency over white, then the LANCZOS resize; not what dropping the alpha channel gives
    src_rgba = Image.open(src / "dog" / "x.png")
    over_white = Image.alpha_composite(Image.new("RGBA", (8, 8), (255, 255, 255, 255)), src_rgba).convert("RGB")
    rgba = read_image(out / "images" / "000002.png")
    assert np.array_equal(rgba, np.asarray(over_white.resize((4, 4), Image.LANCZOS)))
    assert not np.array_equal(rgba, np.asarray(src_rgba.convert("RGB").resize((4, 4), Image.LANCZOS)))
    assert rgba.shape == (4, 4, 3) and rgba[:, 0].min() > 200 and rgba[:, 3].max() < 60
    assert (read_image(out / "images" / "000003.png") == 77).all()
    data = json.loads((out / "dataset.json").read_text())
    assert data["classes"] == [] and data["categories"] == ["cat", "dog"] and data["labels"]["000004"] == 1
    assert "class_pixel_counts" not in data and data["provenance"]["source"] == "import-classes"
    rep = check_dataset(out)
    assert rep.ok, rep.format()
    assert rep.category_counts == {"cat": 2, "dog": 3} and rep.num_images == 5 and not rep.masks


def test_resize_and_centre_crop_match_pil(tmp_path):
    (tmp_path / "src" / "a").mkdir(parents=True)
    Image.fromarray(PIXELS).save(tmp_path / "src" / "a" / "p.png")
    import_class_folders(tmp_path / "src", tmp_path / "out", 4)
    expected = np.asarray(Image.fromarray(PIXELS).resize((6, 4), Image.LANCZOS))[:, 1:5]
    assert np.array_equal(read_image(tmp_path / "out" / "images" / "000000.png"), expected)


def test_sixteen_bit_greyscale_is_scaled_not_clipped(tmp_path):
    (tmp_path / "src" / "a").mkdir(parents=True)
    grey = np.array([[0, 257 * 128], [65535, 257 * 3]], np.uint16).repeat(2, 0).repeat(2, 1)
    Image.fromarray(grey).save(tmp_path / "src" / "a" / "depth.png")          # a 16-bit greyscale PNG
    with Image.open(tmp_path / "src" / "a" / "depth.png") as im:
        assert im.mode.startswith("I")
    import_class_folders(tmp_path / "src", tmp_path / "out", 4)
    out = read_image(tmp_path / "out" / "images" / "000000.png")
    assert out[..., 0].tolist() == (grey // 257).tolist() and (out[..., 0] == out[..., 2]).all()


def test_exif_orientation_is_applied(tmp_path):
    shown = np.zeros((16, 8, 3), np.uint8)                         # as displayed: 8 wide, 16 tall
    shown[:8] = (255, 0, 0)
    shown[8:, :4] = (0, 0, 255)
    shown[8:, 4:] = (0, 255, 0)
    stored = Image.fromarray(shown).transpose(Image.Transpose.ROTATE_90)   # what a camera writes for orientation 6
    exif = Image.Exif()
    exif[0x0112] = 6
    (tmp_path / "src" / "a").mkdir(parents=True)
    stored.save(tmp_path / "src" / "a" / "photo.png", exif=exif)
    import_class_folders(tmp_path / "src", tmp_path / "out", 8)
    assert np.array_equal(read_image(tmp_path / "out" / "images" / "000000.png"), shown[4:12])


def test_every_problem_reported_at_once_and_old_output_kept(tmp_path, hashes):
    src = _source(tmp_path / "src")
    out = tmp_path / "out"
    import_class_folders(src, out, 4)
    before = hashes(out)
    (src / "cat" / "b.png").write_bytes(b"\x89PNG broken")
    (src / "empty").mkdir()
    (src / "empty" / "readme.txt").write_text("no images here")
    Image.fromarray(PIXELS).save(src / "loose.jpg")
    with pytest.raises(DatasetError) as e:
        import_class_folders(src, out, 4, overwrite=True)
    msg = str(e.value)
    assert msg.startswith("import failed, nothing written (3 problem(s)):")
    assert f"image {src / 'loose.jpg'} lies directly in --root; every image must be inside a class folder" in msg
    assert f"class folder {src / 'empty'} holds no images (png, jpg, jpeg, bmp, webp, tif, tiff)" in msg
    assert f"image {src / 'cat' / 'b.png'} is unreadable or truncated" in msg
    assert hashes(out) == before                                   # the old dataset is byte-identical
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "src"]     # no temporary folder left
    with pytest.raises(DatasetError, match="exists and is not empty; pass --overwrite"):
        import_class_folders(src, out, 4)


def test_layout_errors(tmp_path):
    with pytest.raises(DatasetError, match="--root .*nope: not a folder"):
        import_class_folders(tmp_path / "nope", tmp_path / "out", 4)
    flat = tmp_path / "flat"
    flat.mkdir()
    Image.fromarray(PIXELS).save(flat / "a.png")
    with pytest.raises(DatasetError) as e:
        import_class_folders(flat, tmp_path / "out", 4)
    assert "(2 problem(s))" in str(e.value) and "a.png lies directly in --root" in str(e.value)
    assert f"--root {flat} has no class folders: expected one subfolder per class (ROOT/CLASS/image.png)" in \
        str(e.value)
    for kw, msg in (({"size": 1}, "--size must be between 2 and 8192, got 1"),
                    ({"size": 4, "image_format": "gif"}, "--image-format must be png or jpg, got 'gif'"),
                    ({"size": 4, "workers": 0}, "--workers must be at least 1, got 0")):
        with pytest.raises(DatasetError, match=msg):
            import_class_folders(_source(tmp_path / f"s{len(msg)}"), tmp_path / "out", **kw)
    src = _source(tmp_path / "inner")
    with pytest.raises(DatasetError, match=r"output folder .*inner/cat/out overlaps the --root folder"):
        import_class_folders(src, src / "cat" / "out", 4)
    assert not (tmp_path / "out").exists()


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_decompression_bomb_is_an_input_error(tmp_path, monkeypatch):
    src = _source(tmp_path / "src")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 40)  # 12x8 = 96 px > 2 x 40: refused; 8x8 = 64 px: a warning
    with pytest.raises(DatasetError) as e:
        import_class_folders(src, tmp_path / "out", 4)
    assert f"image {src / 'cat' / 'b.png'} is too large to decode safely (Image size (96 pixels) exceeds limit" \
        in str(e.value)
    assert "(2 problem(s))" in str(e.value) and "dog" not in str(e.value) and not (tmp_path / "out").exists()


def test_workers_jpeg_and_cli(tmp_path, capsys, hashes):
    src = _source(tmp_path / "src")
    import_class_folders(src, tmp_path / "one", 4, name="x")
    import_class_folders(src, tmp_path / "two", 4, name="x", workers=2, chunk=2)
    assert hashes(tmp_path / "one") == hashes(tmp_path / "two")
    rc = main(["data", "import-classes", "--root", str(src), "--size", "4", "--out", str(tmp_path / "j"),
               "--image-format", "jpg", "--name", "pets", "--quiet"])
    assert rc == 0 and capsys.readouterr().out.strip() == f"imported 5 images in 2 categories to {tmp_path / 'j'}"
    assert read_info(tmp_path / "j").name == "pets" and (tmp_path / "j" / "images" / "000004.jpg").is_file()
    (src / "dog" / "y.png").write_bytes(b"")
    rc = main(["data", "import-classes", "--root", str(src), "--size", "4", "--out", str(tmp_path / "k"), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("memorygan data: error: import failed, nothing written (1 problem(s)):")
    assert "y.png is unreadable or truncated" in err and "Traceback" not in err
    assert not (tmp_path / "k").exists()
