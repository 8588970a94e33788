"""memorygan.fileio: hostile JSON, durable atomic writes (fsync before the rename), JSON-lines logs."""
import json
import os

import pytest

from memorygan import checkpoint, fileio
from memorygan.errors import CheckpointError, MemoryGANWarning

from helpers import tiny_generator


@pytest.mark.parametrize("content,match", [
    (b"\xff\xfe", "is not UTF-8 text"),
    (b"[1]", "must be a JSON object, got a JSON array"),
    (b'"x"', "must be a JSON object, got a JSON string"),
    (b"{", "is not valid JSON"),
    (b"[" * 50000 + b"]" * 50000, "is nested too deeply to parse"),
], ids=["utf8", "array", "string", "truncated", "nested"])
def test_read_json_turns_every_problem_into_one_error(tmp_path, content, match):
    path = tmp_path / "c.json"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=rf"c.json: thing {match}"):
        fileio.read_json(path, CheckpointError, "thing")


def test_read_json_missing_and_too_big(tmp_path, monkeypatch):
    with pytest.raises(CheckpointError, match="nope.json: thing not found"):
        fileio.read_json(tmp_path / "nope.json", CheckpointError, "thing")
    (tmp_path / "big.json").write_text("{}")
    monkeypatch.setattr(fileio, "MAX_JSON_BYTES", 1)
    with pytest.raises(CheckpointError, match="too big"):
        fileio.read_json(tmp_path / "big.json", CheckpointError, "thing")


def test_checkpoint_files_and_folders_are_fsynced_before_the_rename(tmp_path, monkeypatch):
    events = []
    real_file, real_dir, real_replace = fileio.fsync_file, fileio.fsync_dir, os.replace
    monkeypatch.setattr(fileio, "fsync_file", lambda p: (events.append(("fsync", str(p))), real_file(p)))

    def fsync_dir(p):
        events.append(("fsync-dir", str(p)))
        real_dir(p)
    monkeypatch.setattr(fileio, "fsync_dir", fsync_dir)
    monkeypatch.setattr(checkpoint, "fsync_dir", fsync_dir)
    monkeypatch.setattr(os, "replace", lambda a, b: (events.append(("rename", str(a), str(b))), real_replace(a, b)))
    final = tmp_path / "g"
    checkpoint.save_generator(tiny_generator(), final)
    rename = next(i for i, e in enumerate(events) if e[0] == "rename" and e[2] == str(final))
    tmp = events[rename][1]
    synced = {e[1] for e in events[:rename] if e[0] == "fsync"}
    assert synced == {f"{tmp}/generator.safetensors", f"{tmp}/config.json"}
    assert ("fsync-dir", tmp) in events[:rename]                    # the folder's entries too
    assert ("fsync-dir", str(tmp_path)) in events[rename:]          # and the rename itself


def test_write_text_atomic_is_fsynced_and_leaves_no_temporary(tmp_path, monkeypatch):
    synced = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real(fd)))
    fileio.write_text_atomic(tmp_path / "a.json", "{}")
    assert (tmp_path / "a.json").read_text() == "{}" and len(synced) >= 2     # the file, then the folder
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]


def test_json_lines_survive_a_torn_line(tmp_path):
    path = tmp_path / "log.jsonl"
    fileio.append_line(path, {"step": 1})
    with open(path, "ab") as f:
        f.write(b'{"step": 2, "x": 1')                               # killed mid-line
    fileio.append_line(path, {"step": 3})                              # starts on a line of its own
    assert path.read_text().splitlines()[-1] == '{"step": 3}'
    with pytest.warns(MemoryGANWarning, match=r"skipped 1 unreadable line\(s\) \(line 2"):
        assert fileio.read_lines(path) == [{"step": 1}, {"step": 3}]
    assert fileio.rewrite_lines(path, lambda r: r["step"] < 3) == (1, 2)
    assert path.read_text() == '{"step": 1}\n'
    assert fileio.read_lines(tmp_path / "missing.jsonl") == []
    (tmp_path / "arr.jsonl").write_text('[1]\n{"a": 1}\n')
    with pytest.warns(MemoryGANWarning):
        assert fileio.read_lines(tmp_path / "arr.jsonl") == [{"a": 1}]
    assert json.loads(path.read_text())["step"] == 1


def test_write_json_is_strict_json_with_one_rule_for_non_finite_numbers(tmp_path):
    """Every JSON record goes through fileio.write_json: NaN and +-inf become null (a strict reader refuses them),
    paths and numpy/torch scalars plain values, and the file appears whole (no temporary file left)."""
    import json as _json
    from pathlib import Path as _Path

    import numpy as np
    import torch

    from memorygan.fileio import write_json

    def strict(text):
        return _json.loads(text, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))

    p = write_json(tmp_path / "sub" / "r.json", {"nan": float("nan"), "inf": float("inf"), "ninf": -float("inf"),
                                                 "path": _Path("a/b"), "np": np.float32(0.5), "t": torch.tensor(2),
                                                 "nested": [1.0, (float("nan"),)]})
    assert strict(p.read_text()) == {"nan": None, "inf": None, "ninf": None, "path": "a/b", "np": 0.5, "t": 2,
                                     "nested": [1.0, [None]]}
    assert [q.name for q in p.parent.iterdir()] == ["r.json"]
