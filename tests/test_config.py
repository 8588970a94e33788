import json

import pytest

import memorygan
from memorygan.config import DiscriminatorConfig, GeneratorConfig, generator_config, load_preset, preset_names
from memorygan.errors import ConfigError


def test_presets_exist_and_build():
    names = preset_names()
    for name in ("memorygan-256", "memorygan-512", "ssg-256", "ssg-512", "memorygan-small", "ssg-small"):
        assert name in names
        cfg = generator_config(name)
        assert cfg.arch == name.split("-")[0]
    small = generator_config("memorygan-small")
    G = memorygan.build("memorygan-small")
    assert G.sample(1, seed=0).image.shape == (1, 3, small.resolution, small.resolution)


def test_k1_builds_for_both_models():
    for arch in ("memorygan", "ssg"):
        G = memorygan.build(f"{arch}-small", num_classes=1, class_names=None, transparent_classes=[])
        out = G.sample(2, seed=0)
        assert out.seg.shape[1] == 1 and (out.coarse_seg == 1).all()  # a single part covers everything


@pytest.mark.parametrize("field,value,match", [
    ("num_classes", 0, "num_classes"),
    ("depth_layers", 12, "depth_layers"),
    ("base_layers", 6, "depth_layers"),  # base_layers >= depth_layers
    ("resolution", 100, "resolution"),
    ("coarse_size", 256, "coarse_size"),
    ("coarse_size", 48, "coarse_size"),
    ("min_feat_size", 128, "min_feat_size"),
    ("arch", "stylegan", "arch"),
    ("transparent_classes", [0], "transparent_classes"),
    ("class_names", ["a", "b"], "class_names"),
])
def test_invalid_generator_configs_name_the_field(field, value, match):
    data = generator_config("memorygan-256").to_dict()
    data[field] = value
    with pytest.raises(ConfigError, match=f"GeneratorConfig.{match}"):
        GeneratorConfig.from_dict(data)


def test_unknown_fields_and_presets_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="unknown field.*'num_parts'"):
        GeneratorConfig.from_dict({"num_parts": 3})
    with pytest.raises(ConfigError, match="unknown preset 'nope'.*memorygan-256"):
        load_preset("nope")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="bad.json: preset is not valid JSON"):
        load_preset(str(bad))
    good = tmp_path / "mine.json"
    good.write_text(json.dumps({"generator": {"arch": "ssg", "resolution": 64, "coarse_size": 16, "min_feat_size": 8}}))
    assert generator_config(str(good)).arch == "ssg"
    with pytest.raises(ConfigError, match="DiscriminatorConfig.resolution"):
        DiscriminatorConfig(resolution=48)


def test_config_dict_round_trip():
    cfg = generator_config("ssg-512")
    assert GeneratorConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert cfg.render_channels(32) == 512 and cfg.render_channels(128) == 256 and cfg.render_channels(512) == 64
