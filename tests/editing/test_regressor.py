"""Attribute assessors trained on the procedural portraits' ground truth (editing/regressor.py)."""
import json

import pytest
import torch
from helpers import tiny_generator

from memorygan.cli import main
from memorygan.editing.assessors import get_assessor
from memorygan.editing.regressor import attribute_targets, train_assessor
from memorygan.errors import CheckpointError, ConfigError, DatasetError

NAMES = ["background", "skin", "eyes", "hair"]


@pytest.fixture(scope="module")
def portraits(tmp_path_factory):
    from memorygan.data.synth import synthesize

    root = tmp_path_factory.mktemp("p") / "p32"
    synthesize("portraits", root, n=60, size=32, seed=0)
    return root


def test_kinds_of_attributes(portraits):
    values, kind, classes = attribute_targets(portraits, "skin.lightness")
    assert kind == "regression" and len(values) == 60 and all(0 <= v <= 1 for v in values)
    assert attribute_targets(portraits, "glasses")[1] == "presence"
    _, kind, classes = attribute_targets(portraits, "eyes.color")
    assert kind == "classes" and classes == sorted(classes) and len(classes) >= 3
    with pytest.raises(ConfigError, match=r"--attribute 'skin.tone' is not in attributes.jsonl; available: .*"
                                          r"skin.lightness"):
        attribute_targets(portraits, "skin.tone")
    with pytest.raises(ConfigError, match="values of type list"):
        attribute_targets(portraits, "skin.rgb")


def test_skin_lightness_regressor_learns_and_scores_images(portraits, tmp_path):
    rep = train_assessor(portraits, "skin.lightness", tmp_path / "a", steps=200, batch=16, holdout_every=5,
                         eval_every=50)
    assert rep.kind == "regression" and rep.heldout["r2"] > 0.5            # held-out images it never saw
    meta = json.loads((tmp_path / "a" / "assessor.json").read_text())
    assert meta["attribute"] == "skin.lightness" and meta["dataset"]["num_images"] == 60
    assert (meta["num_heldout"], meta["num_validation"], meta["num_train"]) == (12, 12, 36)
    assert meta["best_step"] in (50, 100, 150, 200) and meta["flip"] is True
    G = tiny_generator("memorygan", class_names=NAMES)
    A = get_assessor(f"regressor:{tmp_path / 'a'}", G)
    from memorygan.data.dataset import SegmentationDataset
    ds = SegmentationDataset(portraits)
    images = torch.stack([ds.load(i)["image"] for i in range(0, 60, 5)])   # the held-out images
    truth = torch.tensor(attribute_targets(portraits, "skin.lightness")[0][0::5])
    pred = A(images)
    assert torch.corrcoef(torch.stack([pred, truth]))[0, 1] > 0.7
    assert (pred - truth).abs().mean() < 0.5 * truth.std()             # in the attribute's units, not normalised
    # generated images of another size are resized to the regressor's resolution, and it is differentiable
    x = torch.zeros(2, 3, 64, 64, requires_grad=True)
    A(x).sum().backward()
    assert x.grad.abs().sum() > 0


def test_class_and_presence_assessors(portraits, tmp_path, capsys):
    assert main(["edit", "train-assessor", "--data", str(portraits), "--attribute", "eyes.color", "--steps", "20",
                 "--out", str(tmp_path / "c"), "--no-progress"]) == 0
    assert "eyes.color (classes): held-out" in capsys.readouterr().out
    G = tiny_generator("memorygan", class_names=NAMES)
    classes = json.loads((tmp_path / "c" / "assessor.json").read_text())["classes"]
    A = get_assessor(f"regressor:{tmp_path / 'c'}:{classes[0]}", G)
    p = A(torch.zeros(3, 3, 32, 32))
    assert p.shape == (3,) and ((p >= 0) & (p <= 1)).all()
    with pytest.raises(ConfigError, match="is a class attribute; name one of its classes"):
        get_assessor(f"regressor:{tmp_path / 'c'}", G)
    train_assessor(portraits, "glasses", tmp_path / "g", steps=5, batch=8)
    with pytest.raises(ConfigError, match="is a presence attribute and takes no class"):
        get_assessor(f"regressor:{tmp_path / 'g'}:blue", G)
    with pytest.raises(CheckpointError, match="not an assessor folder"):
        get_assessor(f"regressor:{tmp_path}", G)


def test_dataset_without_attributes(tmp_path):
    from memorygan.data.synth import synthesize

    synthesize("portraits", tmp_path / "d", n=12, size=32, seed=0)
    (tmp_path / "d" / "attributes.jsonl").unlink()
    with pytest.raises(DatasetError, match="has no attributes.jsonl"):
        train_assessor(tmp_path / "d", "skin.lightness", tmp_path / "o", steps=1)


def test_mirror_sensitive_attributes_are_not_flipped(portraits, tmp_path):
    train_assessor(portraits, "pose.yaw", tmp_path / "y", steps=2, batch=4, eval_every=1)
    assert json.loads((tmp_path / "y" / "assessor.json").read_text())["flip"] is False
