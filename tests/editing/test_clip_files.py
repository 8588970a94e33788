"""The CLIP folder's files are checked before transformers is asked: pickled weights are refused in one line."""
import pytest

from memorygan.editing.clip import resolve_clip_folder
from memorygan.errors import ConfigError


def test_pickled_weights_are_refused(tmp_path):
    folder = tmp_path / "clip"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "pytorch_model.bin").write_bytes(b"\x80\x04not really a pickle")
    with pytest.raises(ConfigError, match=r"pytorch_model.bin is a pickle, which memorygan never loads.*only "
                                          r"safetensors weights are read") as e:
        resolve_clip_folder(folder)
    assert "\n" not in str(e.value)
    (folder / "pytorch_model.bin").unlink()
    with pytest.raises(ConfigError, match="no .safetensors weights; only safetensors"):
        resolve_clip_folder(folder)
    (folder / "model.safetensors").write_bytes(b"")
    assert resolve_clip_folder(folder) == folder


def test_cli_says_it_in_one_line(tmp_path, capsys):
    from helpers import tiny_generator

    from memorygan.cli import main
    folder = tmp_path / "clip"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "pytorch_model.bin").write_bytes(b"x")
    G = tiny_generator("ssg", class_names=["background", "skin", "eyes", "hair"])
    G.save_pretrained(tmp_path / "G")
    rc = main(["edit", "text", "--generator", str(tmp_path / "G"), "--scorer", "clip", "--clip", str(folder),
               "--prompt", "red hair", "--parts", "hair", "--out", str(tmp_path / "x"), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "only safetensors weights are read" in err, err
    assert not (tmp_path / "x").exists()
