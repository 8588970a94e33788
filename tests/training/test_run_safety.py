"""A run folder a careless or hostile user cannot corrupt: one writer at a time, crash leftovers, torn logs, wrong
state files, resumes that would silently do nothing or continue on other data, and the ways on from each."""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys

import pytest
import torch

from memorygan.cli import main
from memorygan.errors import CheckpointError, ConfigError, DatasetError, MemoryGANWarning, OutputError, RunBusyError
from memorygan.training import loop
from memorygan.runs import RunLock
from memorygan.training.loop import Trainer, TrainingInterrupted, latest_checkpoint, resume, train

from helpers import assert_weights_close as _assert_close, checkpoint_weights as _weights


def _steps(run, name="stats.jsonl"):
    return [json.loads(x)["step"] for x in (run / name).read_text().splitlines()]


def test_two_writers_on_one_run_are_refused(opts_for, tmp_path):
    first = Trainer(opts_for(out="run", steps=2))                  # holds the lock until fit() ends
    who = rf"in use by pid {os.getpid()} on host {socket.gethostname()} since "
    with pytest.raises(RunBusyError, match=who):
        Trainer(opts_for(out="run", steps=2, seed=2, lr=0.001))
    with pytest.raises(RunBusyError, match=who):
        resume(tmp_path / "run", steps=3)
    cfg_before = (tmp_path / "run" / "config.json").read_text()
    first.fit()
    assert (tmp_path / "run" / "config.json").read_text() == cfg_before      # seed 0, lr 0.002: the run that trained
    assert json.loads(cfg_before)["options"]["seed"] == 0
    assert _steps(tmp_path / "run") == [1, 2]                                # every step logged once
    assert not (tmp_path / "run" / "lock.json").exists()
    assert resume(tmp_path / "run", steps=3).step == 3                      # free again after fit


def test_resume_is_not_blocked_by_the_lock_of_a_dead_process(opts_for, tmp_path):
    res = train(opts_for(steps=1))
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    (res.run_dir / "lock.json").write_text(json.dumps({"pid": p.pid, "host": socket.gethostname(), "since": "x"}))
    assert resume(res.run_dir, steps=2).step == 2
    assert not (res.run_dir / "lock.json").exists()


def test_crash_leftovers_are_cleaned_and_prunes_rename_first(opts_for, monkeypatch):
    res = train(opts_for(steps=2, checkpoint_every=1, keep=1))
    ck = res.run_dir / "checkpoints"
    assert sorted(p.name for p in ck.iterdir()) == ["step-00000002"]
    (ck / ".step-00000003.tmp-x1y2").mkdir()                      # a checkpoint write cut short
    (ck / ".step-00000003.tmp-x1y2" / "G.safetensors").write_bytes(b"partial")
    removed = []
    monkeypatch.setattr(loop, "remove_checkpoint",                  # a prune whose deletion never ran
                        lambda p: (removed.append(p.name), os.replace(p, p.with_name(f".{p.name}.del-1"))))
    with pytest.warns(MemoryGANWarning, match=r"removed what an interrupted run left behind: \.step-00000003\.tmp"):
        resume(res.run_dir, steps=3)
    assert removed == ["step-00000002"]
    assert sorted(p.name for p in ck.iterdir()) == [".step-00000002.del-1", "step-00000003"]
    monkeypatch.undo()
    with pytest.warns(MemoryGANWarning, match=r"\.step-00000002\.del-1"):
        resume(res.run_dir, steps=4)
    assert sorted(p.name for p in ck.iterdir()) == ["step-00000004"]


def test_run_killed_before_its_first_checkpoint_restarts_in_place(opts_for, tmp_path):
    tr = Trainer(opts_for(out="run", steps=3))
    for _ in range(2):                                             # two steps logged, then the process "dies"
        tr.train_step()
        tr._write_stats(0.1)
    tr.close()
    run = tmp_path / "run"
    assert latest_checkpoint(run) is None and _steps(run) == [1, 2]
    with pytest.raises(ConfigError, match=r"stopped before its first checkpoint; `memorygan train --resume .*run` "
                                          r"restarts it in place"):
        train(opts_for(out="run", steps=3))
    with pytest.warns(MemoryGANWarning, match="restarting it in place from step 0"):
        res = resume(run)
    assert res.step == 3 and _steps(run) == [1, 2, 3]
    fresh = train(opts_for(out="fresh", steps=3))
    _assert_close(_weights(fresh.checkpoint), _weights(res.checkpoint), atol=0)


def test_torn_log_lines_do_not_block_resume_and_are_repaired(opts_for):
    res = train(opts_for(steps=2, checkpoint_every=2))
    with open(res.run_dir / "stats.jsonl", "ab") as f:
        f.write(b'{"step": 3, "loss_d": 0.69')                   # killed mid-line
    (res.run_dir / "metrics.jsonl").write_bytes(b'{"step": 0, "domain_fid": 3.0}\n{"step": 2, "dom')
    res2 = resume(res.run_dir, steps=4)
    assert res2.step == 4 and _steps(res.run_dir) == [1, 2, 3, 4]
    assert (res.run_dir / "metrics.jsonl").read_text() == '{"step": 0, "domain_fid": 3.0}\n'


def test_resume_that_would_train_nothing_says_so(opts_for, capsys):
    res = train(opts_for(steps=2))
    files = {n: (res.run_dir / n).read_bytes() for n in ("stats.jsonl", "config.json")}
    with pytest.raises(ConfigError, match=r"already at step 2 .*meets --steps 1: nothing to train.*totals for the "
                                          r"whole run.*--more-steps N / --more-minutes M"):
        resume(res.run_dir, steps=1)
    with pytest.raises(ConfigError, match=r"already at step 2 .*meets --minutes 1e-06: nothing to train"):
        resume(res.run_dir, minutes=1e-6)                  # the issue's `--resume RUN --minutes 1` on a longer run
    assert {n: (res.run_dir / n).read_bytes() for n in files} == files
    assert not (res.run_dir / "lock.json").exists()
    assert resume(res.run_dir, more_steps=2).step == 4
    assert resume(res.run_dir, kimg=0.02).step == 5           # a duration given on resume replaces the recorded
    assert json.loads((res.run_dir / "config.json").read_text())["options"]["steps"] == 2   # ones (steps 2 here)
    with pytest.raises(ConfigError, match=r"meets --steps 5 and --kimg 0.01: nothing"):
        resume(res.run_dir, steps=5, kimg=0.01)
    r = resume(res.run_dir, more_minutes=0.002)
    assert r.step >= 6 and r.train_seconds >= 0.002 * 60 + torch.load(
        res.run_dir / "checkpoints" / "step-00000005" / "state.pt", weights_only=True)["train_seconds"] - 1e-9
    with pytest.raises(ConfigError, match="not both"):
        resume(res.run_dir, steps=10, more_steps=1)
    assert main(["train", "--resume", str(res.run_dir), "--more-steps", "1", "--no-progress"]) == 0
    assert f"trained {r.step + 1} steps" in capsys.readouterr().out
    assert main(["train", "--resume", str(res.run_dir), "--steps", "1"]) == 2
    assert "nothing to train" in capsys.readouterr().err


def test_resume_from_another_directory_and_with_a_moved_dataset(opts_for, tiny_data, tmp_path, monkeypatch):
    data = tmp_path / "where" / "data"
    shutil.copytree(tiny_data, data)
    monkeypatch.chdir(tmp_path / "where")
    train(opts_for(data="data", out=str(tmp_path / "run"), steps=1))       # a relative --data
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    assert cfg["options"]["data"] == str(data) and cfg["dataset"]["path"] == str(data)
    assert len(cfg["dataset"]["fingerprint"]) == 16 and cfg["dataset"]["num_images"] == 16
    monkeypatch.chdir(tmp_path)
    assert resume("run", steps=2).step == 2                                 # from another directory
    moved = tmp_path / "moved"
    shutil.move(str(data), moved)
    with pytest.raises(DatasetError, match=r"where/data \(recorded in run/config.json\) does not exist; if it "
                                           r"moved, pass its new location with `memorygan train --resume run --data "
                                           r"NEW_PATH`"):
        resume("run", steps=3)
    assert resume("run", steps=3, data=str(moved)).step == 3
    assert json.loads((tmp_path / "run" / "config.json").read_text())["dataset"]["path"] == str(moved)
    assert resume("run", steps=4).step == 4                                 # the new place is remembered
    assert main(["train", "--resume", "run", "--data", str(tiny_data), "--steps", "5", "--no-progress"]) == 0


def test_resume_refuses_a_changed_dataset(opts_for, tiny_data, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(tiny_data, data)
    res = train(opts_for(data=str(data), steps=1))
    for name in ("000014", "000015"):
        (data / "images" / f"{name}.png").unlink()
        (data / "masks" / f"{name}.png").unlink()
    info = json.loads((data / "dataset.json").read_text())
    (data / "dataset.json").write_text(json.dumps(dict(info, num_images=14)))
    with pytest.raises(DatasetError, match=r"is not the data run .* started with: it holds 14 images \(fingerprint "
                                           r"[0-9a-f]{16}\), the run was started on 16"):
        resume(res.run_dir, steps=2)
    other = tmp_path / "other"
    shutil.copytree(tiny_data, other)
    (other / "images" / "000003.png").write_bytes((other / "images" / "000004.png").read_bytes())  # one file edited
    with pytest.raises(DatasetError, match="is not the data run"):
        resume(res.run_dir, steps=2, data=str(other))


def test_resume_warns_when_the_thread_count_changes(opts_for):
    import warnings
    res = train(opts_for(steps=1, threads=1))
    assert json.loads((res.run_dir / "config.json").read_text())["threads"] == 1
    try:
        # the warning comes before any work (here a resume with nothing to train: two threads on a loaded 2-core
        # machine made a training step take 30 s)
        with pytest.warns(MemoryGANWarning, match=r"--threads 2 differs from the 1 thread\(s\).*no longer "
                                                  r"bit-exact"), pytest.raises(ConfigError, match="nothing to train"):
            resume(res.run_dir, steps=1, threads=2)
        torch.set_num_threads(2)
        with warnings.catch_warnings():
            warnings.simplefilter("error", MemoryGANWarning)
            assert resume(res.run_dir, steps=2).step == 2           # no --threads: the recorded count, no warning
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(1)


def test_class_count_comes_from_the_dataset(opts_for, tiny_preset, tmp_path):
    preset = json.loads(open(tiny_preset["memorygan"]).read())
    preset["generator"]["num_classes"] = 5
    path = tmp_path / "p5.json"
    path.write_text(json.dumps(preset))
    with pytest.warns(MemoryGANWarning, match=r"configured for 5 classes but the dataset .* has 13: the generator is "
                                              r"built for the dataset's 13 classes"):
        tr = Trainer(opts_for(preset=str(path), out="a"))
    assert tr.gcfg.num_classes == 13
    tr.close()
    with pytest.raises(ConfigError, match="--set num_classes: the classes come from the dataset"):
        Trainer(opts_for(out="b", generator_overrides={"num_classes": 5}))


def test_wrong_training_state_is_a_clear_error(opts_for, capsys):
    res = train(opts_for(steps=1))
    state = res.checkpoint / "state.pt"
    good = torch.load(state, weights_only=True)
    torch.save({k: v for k, v in good.items() if k != "g_opt"}, state)
    with pytest.raises(CheckpointError, match=r"state.pt: not a memorygan training state: 'g_opt' missing"):
        resume(res.run_dir, steps=2)
    torch.save(dict(good, g_opt={"state": {}, "param_groups": [{"params": [0]}]}), state)
    assert main(["train", "--resume", str(res.run_dir), "--steps", "2", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "state.pt: its optimizer or RNG state does not fit this run" in err and len(err.strip().splitlines()) == 1
    assert not (res.run_dir / "lock.json").exists()


def test_second_ctrl_c_stops_at_once_with_a_clear_message(opts_for):
    tr = Trainer(opts_for(steps=10, checkpoint_every=2))
    orig = tr.train_step

    def step():
        orig()
        if tr.step == 3:
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)
    tr.train_step = step
    with pytest.raises(TrainingInterrupted, match=r"second Ctrl-C at step 3.*newest checkpoint is .*step-00000002"):
        tr.fit()
    assert latest_checkpoint(tr.run).name == "step-00000002"
    assert resume(tr.run, steps=4).step == 4


def test_full_disk_during_a_checkpoint_is_said_as_such(opts_for, monkeypatch):
    from memorygan import fileio
    res = train(opts_for(steps=1))
    tr = Trainer(opts_for(steps=3), resume=True)
    tr.train_step()

    def full(obj, path):                                  # what torch.save raises when the disk fills up
        open(path, "wb").write(b"PK partial")
        raise RuntimeError("[enforce fail at inline_container.cc:778] . PytorchStreamWriter failed writing file "
                           "data/3: file write failed")
    monkeypatch.setattr(loop.torch, "save", full)
    monkeypatch.setattr(fileio.shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(100, 100, 0))
    with pytest.raises(OutputError, match=r"no space left on the device while writing .*step-00000002 "
                                          r"\(RuntimeError: \[enforce fail.*nothing was replaced"):
        tr.save_checkpoint()
    monkeypatch.undo()

    def no_space(*a, **k):                                # safetensors wraps ENOSPC in its own exception
        from safetensors import SafetensorError
        raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")
    monkeypatch.setattr("memorygan.checkpoint.save_file", no_space)    # inside the nested generator folder
    with pytest.raises(OutputError, match=r"while writing .*checkpoints/step-00000002 \(SafetensorError: .*No space"):
        tr.save_checkpoint()
    tr.close()
    assert sorted(p.name for p in (res.run_dir / "checkpoints").iterdir()) == ["step-00000001"]


def test_metrics_inside_training_show_progress_and_never_duplicate_a_row(opts_for, capsys):
    calls = []

    class Domain:                                   # stands in for DomainMetrics (probe features are slow)
        def evaluate(self, G, num_samples, seed, progress=False):
            calls.append(progress)
            return {"domain_fid": 1.0 + len(calls)}
    tr = Trainer(opts_for(steps=4, metrics_every=2, metrics_samples=8, progress=True))
    tr._probe_dir = lambda: tr.run
    tr._domain = Domain()
    res = tr.fit()
    assert calls == [True, True, True]               # steps 0, 2 and 4; the end (step 4) is not evaluated twice
    assert _steps(res.run_dir, "metrics.jsonl") == [0, 2, 4]
    assert "computing domain metrics on 8 samples" in capsys.readouterr().err


def test_report_evaluate_skips_incomplete_checkpoints_and_takes_the_lock(opts_for, monkeypatch):
    from memorygan.metrics import domain
    from memorygan.training.report import evaluate_checkpoints

    res = train(opts_for(steps=2, checkpoint_every=1, keep=5))
    ck = res.run_dir / "checkpoints"
    (ck / "step-00000001" / "generator" / "generator.safetensors").unlink()      # half-deleted by an old prune
    (ck / ".step-00000003.tmp-zz").mkdir()                                         # a write cut short
    seen = []

    class Domain:
        def __init__(self, probe, data, device=None):
            pass

        def evaluate(self, G, num_samples, seed):
            seen.append(RunLock(res.run_dir).holder().get("what"))
            return {"domain_fid": float(len(seen))}
    monkeypatch.setattr(domain, "DomainMetrics", Domain)
    rows = evaluate_checkpoints(res.run_dir, probe=res.run_dir, num_samples=2, progress=False)
    assert [r["step"] for r in rows] == [0, 2] and seen == ["report --evaluate"] * 2
    assert _steps(res.run_dir, "metrics.jsonl") == [0, 2]
    assert not (res.run_dir / "lock.json").exists()
    with pytest.warns(MemoryGANWarning, match=r"removed .*\.step-00000003\.tmp-zz, step-00000001"):
        tr = Trainer(opts_for(steps=3), resume=True)                              # a writer holds the run
    with pytest.raises(RunBusyError, match="in use by pid"):
        evaluate_checkpoints(res.run_dir, probe=res.run_dir, num_samples=2, progress=False)
    tr.close()
