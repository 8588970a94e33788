"""Generators shipped by name (memorygan.pretrained): export to fp16 with a model card, loading by name, the CLI,
the demo's default, and the shipped pair itself."""
import json
from pathlib import Path

import pytest
import torch
from helpers import tiny_generator
from safetensors.torch import load_file

import memorygan
from memorygan import pretrained
from memorygan.checkpoint import generator_fingerprint, save_generator
from memorygan.cli import main
from memorygan.errors import CheckpointError

SHIPPED = ("portraits-memorygan", "portraits-ssg")


@pytest.fixture
def source(tmp_path):
    G = tiny_generator("memorygan", seed=3)
    return save_generator(G, tmp_path / "src"), G


@pytest.fixture
def shipped_dir(tmp_path, monkeypatch):
    """An empty stand-in for the package's shipped folder."""
    d = tmp_path / "shipped"
    d.mkdir()
    monkeypatch.setattr(pretrained, "SHIPPED_DIR", d)
    return d


def test_export_writes_fp16_weights_that_load_close_to_fp32(source, tmp_path):
    path, G = source
    metrics = {"dfid": {"domain_fid": 0.42, "num_samples": 500}, "consistency": {"mask_miou": 0.61},
               "presence": {"presence_eyes": 0.9, "presence_real_eyes": 0.95}}
    (tmp_path / "m.json").write_text(json.dumps(metrics))
    out = pretrained.export(path, tmp_path / "toy", metrics=pretrained.read_metrics_file(tmp_path / "m.json"),
                            notes="hand-written note")
    meta = json.loads((out / "config.json").read_text())
    assert meta["storage_dtype"] == "float16"
    raw = load_file(str(out / "generator.safetensors"))
    assert all(t.dtype == torch.float16 for t in raw.values() if t.is_floating_point())
    assert (out / "generator.safetensors").stat().st_size < 0.6 * (path / "generator.safetensors").stat().st_size
    # the card's numbers are the metrics file's, and config.json records them too
    assert meta["model_card"]["metrics"]["domain_fid"] == 0.42 and meta["model_card"]["metrics"]["mask_miou"] == 0.61
    card = (out / "MODEL_CARD.md").read_text()
    assert "| 0.42 |" in card and "| 0.61 |" in card and "| 90 % | 95 % |" in card and "hand-written note" in card
    fid = meta["model_card"]["fp16"]
    assert fid["num_samples"] == 16 and 40 < fid["psnr_db"] < 200 and 0 <= fid["max_abs_diff"] < 0.05
    # loaded back: fp32 tensors, images within fp16 rounding of the source's
    G2, _ = memorygan.load(out)
    assert all(t.dtype == torch.float32 for t in G2.state_dict().values() if t.is_floating_point())
    a, b = G.sample(4, seed=1), G2.sample(4, seed=1)
    assert (a.image - b.image).abs().max() < 0.05
    assert generator_fingerprint(G2) != generator_fingerprint(G)      # rounded weights are another generator


def test_export_refuses_an_existing_folder_and_keeps_it(source, tmp_path):
    path, _ = source
    out = tmp_path / "toy"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(CheckpointError, match="already exists"):
        pretrained.export(path, out)
    assert (out / "keep.txt").read_text() == "mine"
    assert main(["pretrained", "export", str(path), "--out", str(out)]) == 2
    assert main(["pretrained", "export", str(path), "--out", str(out), "--overwrite"]) == 0
    assert not (out / "keep.txt").exists() and (out / "MODEL_CARD.md").is_file()


def test_export_refuses_weights_beyond_fp16_range(tmp_path):
    G = tiny_generator("ssg", seed=0)
    name = next(n for n, p in G.named_parameters() if p.dim() > 1)
    with torch.no_grad():
        dict(G.named_parameters())[name].view(-1)[0] = 1e6
    path = save_generator(G, tmp_path / "big")
    with pytest.raises(CheckpointError, match=f"beyond fp16's range.*{name}"):
        pretrained.export(path, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_shipped_name_loads_and_a_path_on_disk_wins(source, shipped_dir, tmp_path, monkeypatch):
    path, G = source
    pretrained.export(path, shipped_dir / "toy-model")
    assert pretrained.names() == ["toy-model"]
    monkeypatch.chdir(tmp_path)
    G2, cfg = memorygan.load("toy-model")
    assert cfg.arch == "memorygan" and (G2.sample(2, seed=0).image - G.sample(2, seed=0).image).abs().max() < 0.05
    # a folder of the same name in the working directory is what the user means
    other = tiny_generator("ssg", seed=5)
    save_generator(other, tmp_path / "toy-model")
    G3, cfg3 = memorygan.load("toy-model")
    assert cfg3.arch == "ssg" and generator_fingerprint(G3) == generator_fingerprint(other)


def test_an_unknown_name_lists_the_shipped_ones(source, shipped_dir, tmp_path, monkeypatch):
    pretrained.export(source[0], shipped_dir / "toy-model")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CheckpointError, match=r"portraits-nope: no such file or folder, nor the name of a shipped "
                                              r"generator \(toy-model\)"):
        memorygan.load("portraits-nope")


def test_cli_lists_and_shows_cards(source, shipped_dir, capsys):
    pretrained.export(source[0], shipped_dir / "toy-model", metrics={"domain_fid": 1.25, "mask_miou": 0.5})
    assert main(["pretrained", "list"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("toy-model: memorygan, 32 px, K=4") and "domain_fid 1.25" in out and "mask_miou 0.5" in out
    assert main(["pretrained", "show", "toy-model"]) == 0
    assert capsys.readouterr().out.startswith("# toy-model\n")
    assert main(["pretrained", "show", "nope"]) == 2
    assert "no shipped generator named 'nope' (shipped: toy-model)" in capsys.readouterr().err


def test_demo_serves_the_shipped_default_without_generator(monkeypatch):
    import memorygan.demo.app as app

    seen = {}

    def fake_launch(generator, *a, **kw):
        seen["generator"] = generator
    monkeypatch.setattr(app, "launch", fake_launch)
    assert main(["demo"]) == 0
    assert seen["generator"] == pretrained.DEFAULT_DEMO and pretrained.folder(pretrained.DEFAULT_DEMO) is not None


# --------------------------------------------------------------------------------------- the shipped pair itself

@pytest.mark.parametrize("name", SHIPPED)
def test_the_shipped_pair_loads_by_name_and_draws_portraits(name):
    assert name in pretrained.names()
    folder = pretrained.folder(name)
    assert (folder / "generator.safetensors").stat().st_size < 4 * 2**20        # "a few MB"
    meta = json.loads((folder / "config.json").read_text())
    assert meta["storage_dtype"] == "float16"
    G, cfg = memorygan.load(name)
    assert cfg.arch == ("memorygan" if name.endswith("memorygan") else "ssg")
    assert cfg.resolution == 64 and cfg.num_classes == 13
    # the card's table holds the numbers config.json records
    m = meta["model_card"]["metrics"]
    card = pretrained.card(name)
    assert f"| {m['domain_fid']:.4g} |" in card and f"| {m['mask_miou']:.4g} |" in card
    # a trained portrait generator: its own masks put skin and hair where portraits have them, and face parts
    # exist (an untrained one draws near-uniform masks: this fails on it)
    with torch.no_grad():
        out = G.sample(32, seed=0)
    seg = out.seg.argmax(1)
    names = list(cfg.class_names)
    share = {c: float((seg == names.index(c)).float().mean()) for c in ("background", "skin", "hair", "eyes", "mouth")}
    assert 0.1 < share["skin"] < 0.5 and 0.05 < share["hair"] < 0.5 and share["background"] > 0.1
    assert share["eyes"] > 0.001 and share["mouth"] > 0.001
    # the centre of the image is face, the top-left corner is not
    assert float((seg[:, 28:36, 28:36] == names.index("skin")).float().mean()) > 0.5
    assert float((seg[:, :6, :6] == names.index("skin")).float().mean()) < 0.1
    # pixels in the training range (an untrained generator puts ~14 % of them beyond it), with contrast
    assert float((out.image.abs() > 1.05).float().mean()) < 0.01 and out.image.std() > 0.2
