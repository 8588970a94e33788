"""`--threads` is set once, by `memorygan.cli.main`, for every command that has it."""
import torch

from memorygan.cli import main


def test_threads_set_once_for_any_command(monkeypatch, tmp_path, capsys):
    calls = []
    monkeypatch.setattr(torch, "set_num_threads", lambda n: calls.append(n))
    # a command that fails on its input right after parsing: the threads were already set
    assert main(["invert", "--generator", str(tmp_path / "none"), "--seeds", "0", "--out", str(tmp_path / "o"),
                 "--threads", "3"]) == 2
    assert calls == [3]
    calls.clear()
    assert main(["edit", "apply", "--generator", str(tmp_path / "none"), "--direction", str(tmp_path / "d"),
                 "--seeds", "0", "--out", str(tmp_path / "e"), "--threads", "2"]) == 2
    assert calls == [2]
    capsys.readouterr()
    try:
        main(["demo", "--threads", "0"])
    except SystemExit as e:
        assert e.code == 2
    assert "--threads must be >= 1" in capsys.readouterr().err
