import json

import numpy as np
import pytest
from helpers import tiny_generator
from PIL import Image

from memorygan.cli import main

NAMES = ["background", "skin", "eyes", "hair"]


@pytest.fixture(scope="module")
def gens(tmp_path_factory):
    root = tmp_path_factory.mktemp("gens")
    tiny_generator("memorygan", class_names=NAMES).save_pretrained(root / "mg")
    tiny_generator("ssg").save_pretrained(root / "ssg")
    return {"memorygan": str(root / "mg"), "ssg": str(root / "ssg")}


def run(capsys, *argv):
    code = main(["analyze", *argv, "--threads", "1"])
    out, err = capsys.readouterr()
    return code, out, err


def png_size(path):
    with Image.open(path) as im:
        return im.size


def test_compose(gens, tmp_path, capsys):
    code, out, _ = run(capsys, "compose", "--generator", gens["memorygan"], "--out", str(tmp_path),
                       "--seeds", "0-1", "--order", "background,hair,1,eyes")
    assert code == 0
    assert f"wrote {tmp_path / 'compose.png'}" in out and f"wrote {tmp_path / 'compose.json'}" in out
    rec = json.loads((tmp_path / "compose.json").read_text())
    assert rec["order"] == ["background", "hair", "skin", "eyes"] and rec["order_ids"] == [0, 3, 1, 2]
    assert [s["seed"] for s in rec["samples"]] == [0, 1]
    cols = rec["samples"][0]["columns"]
    assert len(cols) == 4 and cols[0]["mse_from_previous"] is None and cols[1]["mse_from_previous"] >= 0
    assert set(cols[0]["area"]) == {"background"} and sum(cols[-1]["area"].values()) == pytest.approx(1)
    # 2 seeds x (image, depth, mask) rows of 32 px tiles, 4 columns, plus the label margin, title and part names
    assert png_size(tmp_path / "compose.png") == (72 + 4 * 34 + 2, 28 + 6 * 34 + 2)
    header = np.asarray(Image.open(tmp_path / "compose.png"))[14:28, 72:]
    for j in range(4):                                   # each column has its part's name above it
        assert (header[:, 2 + j * 34:2 + j * 34 + 32] < 128).any(), f"column {j} has no label"


def test_mix(gens, tmp_path, capsys):
    code, out, _ = run(capsys, "mix", "--generator", gens["memorygan"], "--out", str(tmp_path), "--parts",
                       "eyes,hair", "--target-seeds", "0,1", "--source-seeds", "2-4", "--mode", "shape")
    assert code == 0
    for name in ("mix-shape-eyes.png", "mix-shape-hair.png", "mix-shape.json"):
        assert f"wrote {tmp_path / name}" in out
    assert png_size(tmp_path / "mix-shape-eyes.png") == (72 + 4 * 34 + 2, 28 + 6 * 34 + 2)
    top = np.asarray(Image.open(tmp_path / "mix-shape-eyes.png"))[:28]
    assert (top[:14] < 128).any() and (top[14:, 72:] < 128).any()        # a title and column labels
    rec = json.loads((tmp_path / "mix-shape.json").read_text())
    assert rec["mode"] == "shape" and rec["large_parts"] == ["skin", "hair"]
    eyes, hair = rec["figures"]
    assert eyes["layers"] == {"eyes": [0, 1, 2]} and hair["layers"] == {"hair": [1, 2]}
    assert np.array(eyes["change"]).shape == (2, 3)

    code, out, _ = run(capsys, "mix", "--generator", gens["ssg"], "--out", str(tmp_path), "--parts", "1,2",
                       "--together", "--large-parts", "none")
    assert code == 0
    rec = json.loads((tmp_path / "mix-both.json").read_text())
    assert len(rec["figures"]) == 1 and rec["figures"][0]["parts"] == ["part1", "part2"]
    assert rec["large_parts"] == [] and (tmp_path / "mix-both-part1+part2.png").is_file()


def test_interpolate(gens, tmp_path, capsys):
    code, out, _ = run(capsys, "interpolate", "--generator", gens["ssg"], "--out", str(tmp_path), "--seeds", "3",
                       "4", "--steps", "5", "--parts", "0,part3")
    assert code == 0 and f"wrote {tmp_path / 'interpolate-3-4.png'}" in out
    rec = json.loads((tmp_path / "interpolate-3-4.json").read_text())
    assert [r["row"] for r in rec["rows"]] == ["whole", "part0", "part3"]
    assert rec["rows"][1]["layers"] == [0, 1, 2, 3, 4] and rec["rows"][2]["layers"] == [0, 1, 2, 3, 4]
    assert rec["t"] == [0.0, 0.25, 0.5, 0.75, 1.0] and len(rec["rows"][0]["step_change"]) == 4
    assert png_size(tmp_path / "interpolate-3-4.png") == (72 + 5 * 34 + 2, 6 * 34 + 2)


def test_embed(gens, tmp_path, capsys):
    code, out, _ = run(capsys, "embed", "--generator", gens["memorygan"], "--out", str(tmp_path), "--num", "8",
                       "--perplexity", "5")
    assert code == 0
    for name in ("embed.png", "embed.npz", "embed.json"):
        assert f"wrote {tmp_path / name}" in out
    data = np.load(tmp_path / "embed.npz")
    assert data["query_xy"].shape == (32, 2) and data["latent_xy"].shape == (32, 2)
    assert data["latent_part"].tolist() == [0, 1, 2, 3] * 8 and data["part_names"].tolist() == NAMES
    rec = json.loads((tmp_path / "embed.json").read_text())
    assert rec["spaces"] == ["query", "latent"] and rec["num"] == 8
    assert png_size(tmp_path / "embed.png")[0] > png_size(tmp_path / "embed.png")[1]  # two panels side by side

    code, _, err = run(capsys, "embed", "--generator", gens["ssg"], "--out", str(tmp_path / "s"), "--num", "4",
                       "--spaces", "query")
    assert code == 2
    assert "memorygan analyze: error: spaces: query codes exist only in MemoryGAN" in err
    assert not (tmp_path / "s" / "embed.png").exists()


def test_correlate(gens, tmp_path, capsys):
    code, out, _ = run(capsys, "correlate", "--generator", gens["memorygan"], "--out", str(tmp_path), "--num", "30")
    assert code == 0 and f"wrote {tmp_path / 'correlate.json'}" in out
    rec = json.loads((tmp_path / "correlate.json").read_text())
    assert rec["parts"] == NAMES and list(rec["spaces"]) == ["query", "latent"]
    mean = np.array(rec["spaces"]["latent"]["mean"])
    assert mean.shape == (4, 4) and np.allclose(np.diag(mean), 1)
    assert (tmp_path / "correlate.png").is_file()

    code, _, err = run(capsys, "correlate", "--generator", gens["ssg"], "--out", str(tmp_path / "s"), "--num", "5",
                       "--spaces", "latent,query")
    assert code == 2 and "query codes exist only in MemoryGAN (its controller's output); this generator is 'ssg'" in err


def test_bad_input(gens, tmp_path, capsys):
    code, _, err = run(capsys, "mix", "--generator", gens["memorygan"], "--out", str(tmp_path), "--parts", "nose")
    assert code == 2
    assert "memorygan analyze: error: parts: unknown part 'nose'; this generator's parts are: 0 background" in err
    code, _, err = run(capsys, "interpolate", "--generator", gens["memorygan"], "--out", str(tmp_path),
                       "--large-parts", "skin,wings")
    assert code == 2 and "large_parts: unknown part 'wings'" in err
    code, _, err = run(capsys, "compose", "--generator", gens["ssg"], "--out", str(tmp_path), "--order", "0,9")
    assert code == 2 and "order: part id 9 is out of range" in err
    with pytest.raises(SystemExit) as e:
        run(capsys, "mix", "--generator", gens["memorygan"], "--out", str(tmp_path), "--mode", "colour")
    assert e.value.code == 2
    assert "argument --mode: invalid choice: 'colour'" in capsys.readouterr().err
    code, _, err = run(capsys, "compose", "--generator", str(tmp_path / "missing"), "--out", str(tmp_path))
    assert code == 2 and "no such file or folder" in err
    assert list(tmp_path.iterdir()) == []  # nothing written on errors
