"""Part dependencies, real vs generated (analysis/dependencies.py)."""
import math

import numpy as np
import pytest
import torch
from helpers import tiny_generator

from memorygan.analysis.dependencies import (PAIRS, correlation, generated_dependencies, part_ids, part_measures,
                                             real_dependencies, write_dependencies)
from memorygan.cli import main
from memorygan.errors import ConfigError

NAMES = ["background", "skin", "eyes", "mouth", "hair"]
PARTS = {"skin": 1, "hair": 4, "eyes": 2, "mouth": 3}


def test_measures_of_a_hand_built_image():
    ids = torch.zeros(1, 8, 8, dtype=torch.long)
    ids[0, 0:4, 1:7] = 1                 # skin: 6 columns wide
    ids[0, 5, 2:5] = 3                   # mouth: 3 columns
    ids[0, 1:3, 2] = 2                   # eyes: 3 pixels over 2 columns -> mean height 1.5
    ids[0, 1, 5] = 2
    ids[0, 6:8, :] = 4                   # hair
    rgb = torch.zeros(1, 3, 8, 8)        # in [0, 1]
    rgb[:, :, ids[0] == 1] = 0.5                                           # grey skin: luma 0.5
    rgb[0, :, ids[0] == 4] = torch.tensor([1.0, 0.0, 0.0])[:, None]        # red hair: luma 0.299
    rgb[0, :, ids[0] == 2] = torch.tensor([0.0, 0.0, 1.0])[:, None]        # blue eyes: luma 0.114, blueness 1
    m = part_measures(rgb * 2 - 1, ids, PARTS)
    assert m["skin_lightness"][0] == pytest.approx(0.5) and m["hair_lightness"][0] == pytest.approx(0.299)
    assert m["eye_lightness"][0] == pytest.approx(0.114) and m["eye_blueness"][0] == pytest.approx(1.0)
    assert m["mouth_width"][0] == pytest.approx(3 / 6) and m["eye_height"][0] == pytest.approx(1.5 / 6)
    ids[0, ids[0] == 3] = 0              # no mouth: NaN, never 0
    assert math.isnan(part_measures(rgb * 2 - 1, ids, PARTS)["mouth_width"][0])


def test_correlation_skips_missing_values():
    a = np.array([1.0, 2.0, np.nan, 3.0, 4.0])
    assert correlation(a, 2 * a + 1) == (pytest.approx(1.0), 4)
    assert correlation(a, -a)[0] == pytest.approx(-1.0)
    assert math.isnan(correlation(a[:2], a[:2])[0]) and math.isnan(correlation(a, np.ones(5))[0])


def test_real_portraits_show_the_built_in_dependencies(tmp_path):
    from memorygan.data.synth import synthesize

    synthesize("portraits", tmp_path / "p", n=120, size=32, seed=0)
    r = real_dependencies(tmp_path / "p", 120)
    # one pigment factor drives skin, hair and eyes (DESIGN 4): measured from the pixels, and in the ground truth
    for pair in ("skin_lightness~hair_lightness", "skin_lightness~eye_lightness", "hair_lightness~eye_lightness"):
        assert r["pairs"][pair]["r"] > 0.4 and r["ground_truth"][pair]["r"] > 0.4
    assert r["ground_truth"]["mouth_width~eye_height"]["r"] < -0.4       # a smile widens the mouth, narrows eyes
    assert r["num_images"] == 120 and len(r["matrix"]) == 6


def test_generated_dependencies_and_the_cli(tmp_path):
    from memorygan.data.synth import synthesize

    G = tiny_generator("ssg", num_classes=5, class_names=NAMES, transparent_classes=[])
    rec = generated_dependencies(G, n=7, seed=0, batch=3)
    assert rec["num_images"] == 7 and set(rec["pairs"]) == {f"{a}~{b}" for a, b, _ in PAIRS}
    assert all(0 <= v <= 1 for v in rec["present"].values())
    # the samples do not depend on the batch size
    again = generated_dependencies(G, n=7, seed=0, batch=7)
    assert np.allclose(np.array(rec["matrix"], float), np.array(again["matrix"], float), equal_nan=True)
    with pytest.raises(ConfigError, match="missing: mouth"):
        part_ids(["background", "skin", "eyes", "hair"])
    # the CLI on a dataset without those parts (scenes) names what is missing
    synthesize("scenes", tmp_path / "s", n=4, size=32, seed=0, num_classes=5)
    G.save_pretrained(tmp_path / "g")
    assert main(["analyze", "dependencies", "--generator", str(tmp_path / "g"), "--data", str(tmp_path / "s"),
                 "--out", str(tmp_path / "o"), "--num", "4"]) == 2
    out = write_dependencies(tmp_path / "o2", _portraits(tmp_path), {"tiny": G}, n=5)
    assert (tmp_path / "o2" / "dependencies.md").read_text().count("\n") == 2 + 5
    assert set(out["models"]) == {"tiny"}


def _portraits(tmp_path):
    from memorygan.data.synth import synthesize
    root = tmp_path / "p5"
    synthesize("portraits", root, n=5, size=32, seed=1)
    return root
