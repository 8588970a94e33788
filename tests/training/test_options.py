"""TrainOptions: preset-recommended defaults (the small presets' mask R1 gamma) and their resolution."""
import json

import pytest

from memorygan.config import load_preset
from memorygan.errors import ConfigError
from memorygan.training.options import PRESET_DEFAULTS, TrainOptions


def test_mask_gamma_comes_from_the_preset_else_the_paper():
    assert TrainOptions().r1_gamma_mask is None
    assert TrainOptions().with_preset_defaults({"generator": {}}).r1_gamma_mask == 1000.0    # SSG paper value
    assert PRESET_DEFAULTS["r1_gamma_mask"] == 1000.0
    for name in ("memorygan-small", "ssg-small"):
        assert TrainOptions().with_preset_defaults(load_preset(name)).r1_gamma_mask == 10.0      # issue 26
    for name in ("memorygan-256", "ssg-512"):
        assert TrainOptions().with_preset_defaults(load_preset(name)).r1_gamma_mask == 1000.0
    # an explicit value always wins over the preset's recommendation
    explicit = TrainOptions(r1_gamma_mask=250.0).with_preset_defaults(load_preset("memorygan-small"))
    assert explicit.r1_gamma_mask == 250.0


def test_preset_recommends_image_gamma_and_augmentation_with_their_types():
    base = TrainOptions().with_preset_defaults({"generator": {}})
    assert (base.r1_gamma, base.augment) == (10.0, "none")                                  # paper values
    rec = TrainOptions().with_preset_defaults({"generator": {}, "training": {"r1_gamma": 1, "augment": "ada"}})
    assert rec.r1_gamma == 1.0 and isinstance(rec.r1_gamma, float) and rec.augment == "ada"
    mine = TrainOptions(r1_gamma=3.0, augment="diffaug").with_preset_defaults(
        {"generator": {}, "training": {"r1_gamma": 1, "augment": "ada"}})
    assert (mine.r1_gamma, mine.augment) == (3.0, "diffaug")                               # explicit wins
    with pytest.raises(ConfigError, match="augment must be a string, got 1"):
        TrainOptions().with_preset_defaults({"generator": {}, "training": {"augment": 1}})
    with pytest.raises(ConfigError, match="r1_gamma must be a number, got 'x'"):
        TrainOptions().with_preset_defaults({"generator": {}, "training": {"r1_gamma": "x"}})
    with pytest.raises(ConfigError, match="--augment must be one of"):
        TrainOptions(data="d", out="o", steps=1).with_preset_defaults(
            {"generator": {}, "training": {"augment": "strong"}}).validate()


def test_preset_training_section_is_checked():
    with pytest.raises(ConfigError, match="unknown or non-recommendable option.*lr"):
        TrainOptions().with_preset_defaults({"generator": {}, "training": {"lr": 0.1}})
    with pytest.raises(ConfigError, match="--r1-gamma-mask must be >= 0"):
        TrainOptions(data="d", out="o", steps=1, r1_gamma_mask=-1.0).validate()


def test_run_config_records_the_resolved_gamma_and_resume_keeps_it(opts_for, tiny_preset, tmp_path):
    from memorygan.training.loop import read_run_options, resume, train

    preset = json.loads(open(tiny_preset["memorygan"]).read())
    preset["training"] = {"r1_gamma_mask": 7.0}
    path = tmp_path / "tiny-recommending.json"
    path.write_text(json.dumps(preset))
    train(opts_for(preset=str(path), steps=1, checkpoint_every=1))
    run = tmp_path / "run"
    assert json.loads((run / "config.json").read_text())["options"]["r1_gamma_mask"] == 7.0
    path.write_text(json.dumps(dict(preset, training={})))   # the preset changes later: the run keeps its value
    resume(run, steps=2)
    assert read_run_options(run).r1_gamma_mask == 7.0
