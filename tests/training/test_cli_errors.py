"""No raw tracebacks on user-facing commands: every bad input is one line naming the file or argument (exit 2),
Ctrl-C exits 130, and an unexpected internal error says so and where its traceback was written (exit 1)."""
import errno
import json
import os
import pickle
import tempfile

import pytest
import torch

from memorygan import cli
from memorygan.cli import describe_os_error, main
from memorygan.errors import OutputError


def _err(capsys, argv, code=2):
    rc = main(argv)
    err = capsys.readouterr().err.strip()
    assert rc == code, err
    assert "Traceback" not in err
    return err


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_data, tiny_preset):
    """A tiny finished run (one step) to break in various ways (each test copies it)."""
    out = tmp_path_factory.mktemp("cli") / "run"
    assert main(["train", "--data", str(tiny_data), "--preset", tiny_preset["memorygan"], "--out", str(out),
                 "--steps", "1", "--batch", "4", "--no-progress", "--threads", "1"]) == 0
    return out


@pytest.fixture
def run(trained, tmp_path):
    import shutil
    dst = tmp_path / "run"
    shutil.copytree(trained, dst)
    return dst


@pytest.mark.parametrize("content,match", [
    (b"\xff\xfe{}", r"config.json: run config is not UTF-8 text"),
    (b"[1, 2]", r"config.json: run config must be a JSON object, got a JSON array"),
    (b'{"format": "memorygan-run"}', r"config.json: has no 'options' object"),
    (b"[" * 100000 + b"]" * 100000, r"config.json: run config is nested too deeply to parse"),
    (b"{not json", r"config.json: run config is not valid JSON"),
], ids=["utf8", "array", "no-options", "nested", "not-json"])
def test_broken_run_config(run, capsys, content, match):
    (run / "config.json").write_bytes(content)
    for argv in (["train", "--resume", str(run), "--steps", "2"], ["report", str(run)]):
        err = _err(capsys, argv)
        assert len(err.splitlines()) == 1
        assert __import__("re").search(match, err), err
    assert not (run / "report").exists()


def test_run_config_with_a_wrong_type(run, capsys):
    cfg = json.loads((run / "config.json").read_text())
    cfg["options"]["batch"] = "four"
    (run / "config.json").write_text(json.dumps(cfg))
    err = _err(capsys, ["train", "--resume", str(run), "--steps", "2"])
    assert "config.json: invalid options (training option --batch must be an integer, got 'four')" in err


class Payload:
    def __reduce__(self):
        return (os.system, (f"touch {os.environ['MEMORYGAN_TEST_MARKER']}",))


def test_report_on_a_malicious_state_writes_nothing(run, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("MEMORYGAN_TEST_MARKER", str(tmp_path / "pwned"))
    ckpt = sorted((run / "checkpoints").iterdir())[-1]
    (ckpt / "state.pt").write_bytes(pickle.dumps({"step": Payload()}))
    err = _err(capsys, ["report", str(run)])
    assert f"{ckpt / 'state.pt'}: unreadable training state (UnpicklingError" in err
    assert not (run / "report").exists() and not (tmp_path / "pwned").exists()
    torch.save({"step": 1}, ckpt / "state.pt")
    assert "'g_opt' missing" in _err(capsys, ["report", str(run)])
    assert not (run / "report").exists()


def test_unwritable_outputs(run, tiny_data, tiny_preset, tmp_path, capsys):
    base = ["train", "--data", str(tiny_data), "--preset", tiny_preset["memorygan"], "--steps", "1", "--no-progress"]
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    err = _err(capsys, base + ["--out", str(blocker / "run")])
    assert err == f"memorygan train: error: {blocker / 'run'}: a part of this path is a file, not a folder"
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "nowhere" / "x")
    err = _err(capsys, base + ["--out", str(dangling)])
    assert f"{dangling}: already exists (a file, or a link pointing nowhere, where a folder is needed)" in err
    err = _err(capsys, base + ["--out", str(blocker)])
    assert f"--out {blocker} exists and is not a folder" in err


def test_os_errors_in_words():
    assert describe_os_error(OSError(errno.EROFS, "Read-only file system", "/mnt/x")) == \
        "/mnt/x: read-only file system"
    assert describe_os_error(OSError(errno.ENOSPC, "No space left on device", "/d/f")) == \
        "/d/f: no space left on the device"
    assert describe_os_error(PermissionError(errno.EACCES, "Permission denied", "/a", None)) == "/a: permission denied"
    assert describe_os_error(OSError(errno.EXDEV, "Invalid cross-device link", "/a", None, "/b")) == \
        "/a -> /b: Invalid cross-device link"


def test_disk_full_ctrl_c_and_internal_errors(run, capsys, monkeypatch, tmp_path):
    from memorygan.training import report

    def full(*a, **k):
        raise OutputError(f"no space left on the device while writing {run / 'report'}")
    monkeypatch.setattr(report, "write_report", full)
    assert "error: no space left on the device while writing" in _err(capsys, ["report", str(run)])

    def ctrl_c(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(report, "write_report", ctrl_c)
    assert _err(capsys, ["report", str(run)], code=130) == "memorygan report: interrupted"

    def bug(*a, **k):
        return {}["no such key"]
    monkeypatch.setattr(report, "write_report", bug)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    err = _err(capsys, ["report", str(run)], code=1)
    assert err.startswith("memorygan report: internal error (KeyError: 'no such key'); this is a bug in memorygan")
    path = err.split("the full traceback is in ")[1].split(" (set")[0]
    assert path.startswith(str(tmp_path)) and "KeyError: 'no such key'" in open(path).read()
    monkeypatch.setenv(cli.DEBUG_ENV, "1")
    with pytest.raises(KeyError):
        main(["report", str(run)])


def test_bad_numbers_are_refused(run, capsys):
    assert "--lr must be a finite number" in _err(capsys, ["train", "--data", "d", "--out", "o", "--steps", "1",
                                                           "--lr", "inf"])
    with pytest.raises(SystemExit) as e:                  # argparse: usage + one line, exit 2
        main(["train", "--resume", str(run), "--more-steps", "-1"])
    assert e.value.code == 2 and "--more-steps: expected an integer >= 1, got -1" in capsys.readouterr().err
    assert "--more-steps/--more-minutes continue a run" in _err(capsys, ["train", "--data", "d", "--out", "o",
                                                                         "--more-steps", "2"])


def test_a_second_writer_on_the_command_line_is_refused_naming_the_holder(opts_for, tmp_path, capsys):
    import socket

    from memorygan.training.loop import Trainer
    first = Trainer(opts_for(out="busy", steps=1))                # holds the run until fit() or close()
    run = tmp_path / "busy"
    cfg = (run / "config.json").read_bytes()
    opts = first.opts
    who = f"in use by pid {os.getpid()} on host {socket.gethostname()} since "
    for argv in (["train", "--data", opts.data, "--preset", opts.preset, "--out", str(run), "--steps", "1",
                  "--seed", "2", "--lr", "0.001", "--no-progress"],
                 ["train", "--resume", str(run), "--steps", "2", "--no-progress"]):
        err = _err(capsys, argv)
        assert len(err.splitlines()) == 1 and who in err and f"run folder {run}" in err
    assert (run / "config.json").read_bytes() == cfg               # the refused process wrote nothing
    assert not (run / "stats.jsonl").exists() or (run / "stats.jsonl").read_text() == ""
    first.close()
    assert main(["train", "--resume", str(run), "--steps", "1", "--no-progress"]) == 0   # free again


def test_a_read_only_output_folder_is_one_line(run, tiny_data, tiny_preset, tmp_path, capsys, monkeypatch):
    """Root ignores permission bits, so a read-only mount is simulated where every folder is made: mkdir under
    tmp_path/ro fails with EROFS, as it does on a read-only file system."""
    import pathlib

    ro = tmp_path / "ro"
    mkdir = pathlib.Path.mkdir

    def read_only(self, *a, **k):
        if str(self).startswith(str(ro)):
            raise OSError(errno.EROFS, "Read-only file system", str(self))
        return mkdir(self, *a, **k)
    monkeypatch.setattr(pathlib.Path, "mkdir", read_only)
    err = _err(capsys, ["train", "--data", str(tiny_data), "--preset", tiny_preset["memorygan"], "--steps", "1",
                        "--out", str(ro / "run"), "--no-progress"])
    assert err == f"memorygan train: error: {ro / 'run'}: read-only file system"
    err = _err(capsys, ["report", str(run), "--out", str(ro / "report")])
    assert err == f"memorygan report: error: {ro / 'report'}: read-only file system"


@pytest.fixture
def generator_dir(tmp_path):
    from helpers import tiny_generator
    return tiny_generator("ssg").save_pretrained(tmp_path / "g")


def test_editing_inversion_and_demo_commands_give_one_line_errors(generator_dir, tmp_path, capsys):
    """The commands that came after the CLI's error handling (edit, invert, demo) go through it too."""
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    bad = tmp_path / "bad-direction"
    bad.mkdir()
    (bad / "direction.json").write_text("{not json")
    cases = [
        (["invert", "--generator", str(tmp_path / "nowhere"), "--seeds", "0", "--out", str(tmp_path / "i")],
         f"memorygan invert: error: {tmp_path / 'nowhere'}: no such file or folder"),
        (["invert", "--generator", str(generator_dir), "--seeds", "0", "--steps", "1", "--out", str(a_file / "i"),
          "--threads", "1"],
         f"memorygan invert: error: {a_file / 'i'}: a part of this path is a file, not a folder"),
        (["edit", "apply", "--generator", str(generator_dir), "--direction", str(bad), "--seeds", "0-1",
          "--out", str(tmp_path / "e"), "--threads", "1"],
         f"memorygan edit: error: {bad}: unreadable direction (JSONDecodeError"),
        (["edit", "apply", "--generator", str(generator_dir), "--direction", str(a_file), "--seeds", "0-1",
          "--out", str(tmp_path / "e"), "--threads", "1"],
         f"memorygan edit: error: {a_file}: no direction.json"),
        (["demo", "--generator", str(tmp_path / "nowhere")],
         f"memorygan demo: error: {tmp_path / 'nowhere'}: no such file or folder"),
    ]
    for argv, start in cases:
        err = _err(capsys, argv)
        assert len(err.splitlines()) == 1 and err.startswith(start), (argv, err)
    assert not (tmp_path / "i").exists() and not (tmp_path / "e").exists()
