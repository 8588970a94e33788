"""Generator folders are untrusted input: a small config must not allocate gigabytes, types and ranges are checked,
and weights of another dtype or with NaN/inf are refused instead of loaded silently."""
import json

import pytest
import torch
from safetensors.torch import load_file, save_file

import memorygan
from memorygan.config import GeneratorConfig, generator_config
from memorygan.errors import CheckpointError, ConfigError
from memorygan.models import build_discriminator, build_generator, check_model_size, model_bytes
from memorygan.training.options import TrainOptions

from helpers import tiny_config, tiny_dconfig_obj, tiny_generator


def _edit_config(folder, **changes):
    path = folder / "config.json"
    meta = json.loads(path.read_text())
    meta["generator"].update(changes)
    path.write_text(json.dumps(meta))


@pytest.mark.parametrize("arch", ["memorygan", "ssg"])
def test_model_bytes_is_exact_without_allocating(arch):
    cfg = tiny_config(arch, num_classes=7, transparent_classes=[3])
    G = build_generator(cfg)
    real = sum(t.numel() * t.element_size() for t in list(G.parameters()) + list(G.buffers()))
    assert model_bytes(cfg) == real
    D = build_discriminator(tiny_dconfig_obj())
    assert model_bytes(tiny_dconfig_obj()) == sum(t.numel() * t.element_size()
                                                  for t in list(D.parameters()) + list(D.buffers()))


@pytest.mark.parametrize("preset,changes", [("memorygan-256", {"latent_dim": 16384}),
                                            ("memorygan-256", {"local_channels": 16384}),
                                            ("memorygan-256", {"channel_base": 1 << 24, "channel_max": 16384}),
                                            ("ssg-256", {"num_classes": 65536})])
def test_a_small_config_asking_for_gigabytes_is_refused_before_allocating(tmp_path, monkeypatch, preset, changes):
    """Paper-scale presets with a field at its allowed maximum: a 1 KB config.json asking for 8 to 99 GiB."""
    folder = tmp_path / "g"
    folder.mkdir()
    cfg = generator_config(preset, **changes, class_names=None).to_dict()
    (folder / "config.json").write_text(json.dumps({"format": "memorygan-generator", "generator": cfg}))
    save_file({"x": torch.zeros(1)}, str(folder / "generator.safetensors"))
    assert (folder / "config.json").stat().st_size < 2048
    monkeypatch.setattr(memorygan.models, "read_weights", lambda *a: pytest.fail("weights read before the check"))
    with pytest.raises(ConfigError, match=r"g/config.json: this generator would hold [0-9.]+ GiB of parameters and "
                                          r"buffers .*above the limit of 8 GiB; .*MEMORYGAN_MAX_MODEL_GIB"):
        memorygan.load(folder)


def test_the_size_limit_can_be_raised(tmp_path, monkeypatch):
    cfg = tiny_config()
    need = model_bytes(cfg)
    with pytest.raises(ConfigError, match="above the limit"):
        check_model_size(cfg, limit_gib=need / 2**30 / 2)
    assert check_model_size(cfg, limit_gib=need / 2**30 * 2) == need
    folder = tiny_generator().save_pretrained(tmp_path / "g")
    monkeypatch.setenv("MEMORYGAN_MAX_MODEL_GIB", str(need / 2**30 / 2))
    with pytest.raises(ConfigError, match="above the limit"):
        memorygan.load(folder)
    monkeypatch.setenv("MEMORYGAN_MAX_MODEL_GIB", "64")
    memorygan.load(folder)
    monkeypatch.setenv("MEMORYGAN_MAX_MODEL_GIB", "lots")
    with pytest.raises(ConfigError, match="MEMORYGAN_MAX_MODEL_GIB='lots': expected a number"):
        memorygan.load(folder)


@pytest.mark.parametrize("field,value,match", [
    ("residual_refine", "no", "residual_refine must be true or false"),
    ("mapping_lr_mul", float("inf"), "mapping_lr_mul must be a finite number"),
    ("latent_dim", 16.0, "latent_dim must be an integer"),
    ("resolution", 8192, "resolution must be at most 4096"),
    ("num_classes", True, "num_classes must be an integer"),
    ("class_names", "abcd", "class_names must be a list of strings"),
    ("transparent_classes", [True], "transparent_classes entries must be class ids"),
])
def test_config_types_and_ranges(tmp_path, field, value, match):
    folder = tiny_generator().save_pretrained(tmp_path / "g")
    _edit_config(folder, **{field: value})               # json writes inf as Infinity, which Python reads back
    with pytest.raises(CheckpointError, match=match):
        memorygan.load(folder)


def test_weights_of_another_dtype_or_not_finite_are_refused(tmp_path):
    folder = tiny_generator().save_pretrained(tmp_path / "g")
    weights = folder / "generator.safetensors"
    good = load_file(str(weights))
    name = next(k for k, v in good.items() if v.is_floating_point() and v.ndim > 1)
    for dtype, word in ((torch.float16, "float16"), (torch.int32, "int32"), (torch.float64, "float64")):
        save_file({**good, name: good[name].to(dtype)}, str(weights))
        with pytest.raises(CheckpointError, match=rf"1 tensor\(s\) of another dtype: {name}: expected float32, got "
                                                  rf"{word}"):
            memorygan.load(folder)
    save_file({**good, name: torch.full_like(good[name], float("nan"))}, str(weights))
    with pytest.raises(CheckpointError, match=rf"1 tensor\(s\) hold NaN or infinite values: {name}"):
        memorygan.load(folder)
    save_file(good, str(weights))
    memorygan.load(folder)


def test_training_options_types_and_finiteness():
    base = dict(data="d", out="o", steps=1)
    for field, value, match in (("lr", float("inf"), "--lr must be a finite number"),
                                ("lr", float("nan"), "--lr must be a finite number"),
                                ("batch", "8", "--batch must be an integer"),
                                ("batch", 8.0, "--batch must be an integer"),
                                ("mirror", "yes", "--mirror must be true or false"),
                                ("threads", 0, "--threads must be >= 1"),
                                ("generator_overrides", [], "--generator-overrides must be an object")):
        with pytest.raises(ConfigError, match=match):
            TrainOptions(**base, **{field: value}).validate()
    with pytest.raises(ConfigError, match="--kimg must be a finite number"):
        TrainOptions.from_dict(dict(base, kimg=float("inf")))


def test_generator_config_rejects_non_finite_floats():
    with pytest.raises(ConfigError, match="mapping_lr_mul must be a finite number"):
        GeneratorConfig(mapping_lr_mul=float("nan"))


def test_float16_storage_round_trip_and_declared_dtype(tmp_path):
    """save_pretrained(storage_dtype="float16") halves the weights file; loading declares and converts it back to
    float32; a file whose dtype differs from the declaration is refused."""
    import json as _json

    import memorygan
    from safetensors.torch import load_file, save_file

    from helpers import tiny_generator
    from memorygan.errors import CheckpointError, ConfigError

    G = tiny_generator("memorygan")
    G.save_pretrained(tmp_path / "fp32")
    G.save_pretrained(tmp_path / "fp16", storage_dtype="float16")
    size32 = (tmp_path / "fp32" / "generator.safetensors").stat().st_size
    size16 = (tmp_path / "fp16" / "generator.safetensors").stat().st_size
    assert size16 < 0.6 * size32
    assert _json.loads((tmp_path / "fp16" / "config.json").read_text())["storage_dtype"] == "float16"
    H, _ = memorygan.load(tmp_path / "fp16")
    for (k, a), b in zip(G.state_dict().items(), H.state_dict().values()):
        assert b.dtype == a.dtype, k
        if a.is_floating_point():
            assert torch.allclose(a, b, rtol=1e-3, atol=1e-4), k                  # fp16 rounding only
    z = G.sample_z(2, generator=torch.Generator().manual_seed(0))
    assert (G.eval()(z, noise_mode="const").image - H(z, noise_mode="const").image).abs().max() < 0.05
    # a float32 file declared as float16 is refused, naming the file
    state = load_file(str(tmp_path / "fp32" / "generator.safetensors"))
    save_file(state, str(tmp_path / "fp16" / "generator.safetensors"))
    with pytest.raises(CheckpointError, match="generator.safetensors: config.json declares float16 weights"):
        memorygan.load(tmp_path / "fp16")
    # an undeclared float16 file is refused as before (no silent conversion)
    half = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    save_file(half, str(tmp_path / "fp32" / "generator.safetensors"))
    with pytest.raises(CheckpointError, match="of another dtype"):
        memorygan.load(tmp_path / "fp32")
    with pytest.raises(ConfigError, match="storage dtype must be one of"):
        G.save_pretrained(tmp_path / "x", storage_dtype="int8")
