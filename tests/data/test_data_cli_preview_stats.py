import json

import numpy as np
import pytest
from PIL import Image

from memorygan.cli import main
from memorygan.data import class_colors, colorize, dataset_stats
from memorygan.data.palette import CELEBAMASK_COLORS
from memorygan.data.preview import preview_grid
from memorygan.data.stats import pearson


def test_class_colors():
    c13 = class_colors(13)
    assert np.array_equal(c13, CELEBAMASK_COLORS) and c13.dtype == np.uint8
    assert len({tuple(c) for c in c13}) == 13
    assert tuple(c13[0]) == (0, 0, 0) and tuple(c13[1]) == (204, 0, 0) and tuple(c13[7]) == (0, 0, 153)
    c1000 = class_colors(1000)
    assert c1000.shape == (1000, 3) and tuple(c1000[0]) == (0, 0, 0)
    assert len({tuple(c) for c in c1000[:100]}) == 100
    # an id keeps its colour whatever K (except the fixed 13-class palette)
    assert np.array_equal(class_colors(50)[:20], c1000[:20])
    ids = np.array([[0, 1], [12, 40]])
    rgb = colorize(ids, 13)
    assert rgb.shape == (2, 2, 3) and tuple(rgb[1, 0]) == tuple(CELEBAMASK_COLORS[12])
    assert tuple(rgb[1, 1]) == (255, 255, 255)  # out-of-palette ids are white


def test_preview_grid_pixels():
    imgs = [np.full((8, 8, 3), v, np.uint8) for v in (10, 20, 30)]
    masks = [np.full((8, 8), k) for k in (0, 1, 2)]
    g = np.asarray(preview_grid(imgs, masks, ["bg", "a", "b"], tile=16, columns=8))
    assert g.shape[1] == 3 * 16 + 4 * 2
    # image row then mask row, 2 px gaps
    assert (g[2:18, 2:18] == 10).all() and (g[2:18, 20:36] == 20).all()
    col = class_colors(3)
    assert (g[20:36, 20:36] == col[1]).all() and (g[20:36, 38:54] == col[2]).all()


def test_pearson_hand_checked():
    assert pearson([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)
    assert pearson([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert pearson([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)


def test_synth_preview_stats_through_cli(tmp_path, capsys):
    out = tmp_path / "p"
    assert main(["data", "synth", "portraits", "--n", "40", "--size", "16", "--seed", "2", "--out", str(out),
                 "--quiet", "--report"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["num_images"] == 40 and set(rep["class_frequencies"]) >= {"skin", "hair", "eyeglasses"}
    assert sum(rep["class_frequencies"].values()) == pytest.approx(1.0, abs=1e-4)
    assert rep["attributes"]["correlations"]["pigment~skin_lightness"] < -0.8
    # stats scans the masks and agrees with the counts recorded at generation
    assert main(["data", "stats", str(out), "--quiet"]) == 0
    st = json.loads(capsys.readouterr().out)
    assert st["counts_from"] == "masks" and st["class_frequencies"] == rep["class_frequencies"]
    assert st["attributes"]["correlations"] == rep["attributes"]["correlations"]
    # refusing to overwrite, then --overwrite
    assert main(["data", "synth", "portraits", "--n", "2", "--size", "16", "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert f"output folder {out} exists and is not empty; pass --overwrite" in err
    assert main(["data", "synth", "portraits", "--n", "2", "--size", "16", "--out", str(out), "--quiet",
                 "--overwrite"]) == 0
    assert len(list((out / "images").iterdir())) == 2
    png = tmp_path / "grid.png"
    assert main(["data", "preview", str(out), "--out", str(png), "--n", "2", "--tile", "32"]) == 0
    with Image.open(png) as im:
        assert im.size[0] == 2 * 32 + 3 * 2


def test_scenes_stats(scenes_ds):
    st = dataset_stats(scenes_ds, scan=False)
    assert st["counts_from"] == "dataset.json" and st["num_classes"] == 300
    assert st["attributes"]["objects_per_image"] >= 2


def test_cli_errors_name_the_thing(tmp_path, capsys):
    assert main(["data", "stats", str(tmp_path / "missing"), "--quiet"]) == 2
    assert f"{tmp_path / 'missing' / 'dataset.json'}: missing" in capsys.readouterr().err
    assert main(["data", "synth", "scenes", "--classes", "1", "--n", "1", "--out", str(tmp_path / "s")]) == 2
    assert "--classes must be between 2 and 65536" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["data", "synth", "--help"])
    assert e.value.code == 0
