"""The run-folder layout (memorygan.runs): the lock, crash leftovers, prunes, training state, logs."""
import json
import os
import pickle
import socket
import subprocess
import sys
import textwrap

import pytest
import torch

from memorygan import runs
from memorygan.errors import CheckpointError, MemoryGANWarning, RunBusyError
from memorygan.runs import (CHECKPOINT_FILES, RunLock, clean_leftovers, list_checkpoints, read_log,
                            read_training_state, remove_checkpoint, truncate_logs)


def fake_checkpoint(path, files=CHECKPOINT_FILES):
    for f in files:
        (path / f).parent.mkdir(parents=True, exist_ok=True)
        (path / f).write_text("x")
    return path


def dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


HOLDER = textwrap.dedent("""
    import sys, time
    from memorygan.runs import RunLock
    lock = RunLock(sys.argv[1], "test").acquire()
    print("locked", flush=True)
    time.sleep(60)
""")


@pytest.fixture
def holder(tmp_path):
    """A separate process holding the lock of tmp_path/run; yields (run, process)."""
    run = tmp_path / "run"
    src = os.path.dirname(os.path.dirname(runs.__file__))     # this checkout's src/, whatever the cwd
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(run)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout.readline().strip() == "locked"
        yield run, proc
    finally:
        proc.kill()
        proc.wait()


def test_lock_refuses_a_second_holder_and_names_the_first(tmp_path):
    run = tmp_path / "run"
    first = RunLock(run, "train").acquire()
    info = json.loads((run / "lock.json").read_text())
    assert info["pid"] == os.getpid() and info["host"] == socket.gethostname() and info["since"]
    with pytest.raises(RunBusyError, match=rf"in use by pid {os.getpid()} on host {socket.gethostname()} since "):
        RunLock(run).acquire()
    with pytest.raises(RunBusyError, match="in use by pid"):
        RunLock(run).check_free()
    first.release()
    assert not (run / "lock.json").exists()
    with RunLock(run):
        assert (run / "lock.json").is_file()
    assert not (run / "lock.json").exists()


def test_lock_of_a_live_process_blocks_and_of_a_dead_one_does_not(holder):
    run, proc = holder
    with pytest.raises(RunBusyError, match=rf"pid {proc.pid} on host"):
        RunLock(run).acquire()
    proc.kill()
    proc.wait()
    # the dead holder's lock.json is still there, naming it, but it no longer blocks
    assert json.loads((run / "lock.json").read_text())["pid"] == proc.pid
    RunLock(run).check_free()
    with RunLock(run):
        assert json.loads((run / "lock.json").read_text())["pid"] == os.getpid()


def test_lock_without_flock_takes_over_only_dead_holders(tmp_path, monkeypatch, holder):
    monkeypatch.setattr(runs, "fcntl", None)          # the fallback used where fcntl does not exist
    run = tmp_path / "stale"
    run.mkdir()
    (run / "lock.json").write_text(json.dumps({"pid": dead_pid(), "host": socket.gethostname(), "since": "x"}))
    with RunLock(run):
        assert json.loads((run / "lock.json").read_text())["pid"] == os.getpid()
    live_run, proc = holder                            # flock-held by the other process, which is alive
    with pytest.raises(RunBusyError, match=rf"pid {proc.pid}"):
        RunLock(live_run).acquire()
    other = tmp_path / "other-host"
    other.mkdir()
    (other / "lock.json").write_text(json.dumps({"pid": dead_pid(), "host": "elsewhere", "since": "x"}))
    with pytest.raises(RunBusyError, match="on host elsewhere"):
        RunLock(other).acquire()


def test_clean_leftovers(tmp_path):
    run = tmp_path / "run"
    ck = run / "checkpoints"
    for step in (2, 4):
        fake_checkpoint(ck / f"step-0000000{step}")
    fake_checkpoint(ck / ".step-00000006.tmp-abc", CHECKPOINT_FILES[:2])     # a write cut short
    fake_checkpoint(ck / ".step-00000001.del-77", CHECKPOINT_FILES[:1])      # a prune cut short
    fake_checkpoint(ck / "step-00000001", CHECKPOINT_FILES[2:])              # half-deleted in place (old versions)
    fake_checkpoint(ck / ".step-00000004.old-9")                             # replaced: the new one is there
    fake_checkpoint(ck / ".step-00000003.old-9")                             # replaced, but the new one never came
    fake_checkpoint(ck / "step-00000008", CHECKPOINT_FILES[:1])             # newer and incomplete: not ours to judge
    assert [p.name for p in list_checkpoints(run, resumable=True)] == ["step-00000002", "step-00000004"]
    done = clean_leftovers(run)
    assert sorted(p.name for p in ck.iterdir()) == ["step-00000002", "step-00000003", "step-00000004",
                                                     "step-00000008"]
    assert ".step-00000003.old-9 -> step-00000003" in done and "step-00000001" in done
    assert [p.name for p in list_checkpoints(run, resumable=True)] == ["step-00000002", "step-00000003",
                                                                      "step-00000004"]
    assert clean_leftovers(run) == []


def test_remove_checkpoint_renames_before_deleting(tmp_path, monkeypatch):
    run = tmp_path / "run"
    a = fake_checkpoint(run / "checkpoints" / "step-00000001")
    fake_checkpoint(run / "checkpoints" / "step-00000002")

    def killed(path, **kw):                      # the process dies before the deletion starts
        raise KeyboardInterrupt
    monkeypatch.setattr(runs.shutil, "rmtree", killed)
    with pytest.raises(KeyboardInterrupt):
        remove_checkpoint(a)
    monkeypatch.undo()
    names = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert names == [f".step-00000001.del-{os.getpid()}", "step-00000002"]
    assert [p.name for p in list_checkpoints(run)] == ["step-00000002"]
    assert clean_leftovers(run) == [f".step-00000001.del-{os.getpid()}"]


class Payload:
    def __reduce__(self):
        return (os.system, (f"touch {os.environ['MEMORYGAN_TEST_MARKER']}",))


def test_read_training_state_refuses_wrong_content(tmp_path, monkeypatch):
    ck = tmp_path / "ck"
    ck.mkdir()
    good = {"step": 3, "images": 12, "pl_mean": 0.5, "train_seconds": 1.0, "nonfinite_total": 0, "g_opt": {},
            "d_opt": {}, "torch_rng": torch.get_rng_state(), "world_size": 1}
    torch.save(good, ck / "state.pt")
    assert read_training_state(ck)["step"] == 3
    torch.save({"step": 1}, ck / "state.pt")
    with pytest.raises(CheckpointError, match=r"state.pt: not a memorygan training state: 'images' missing.*'g_opt' "
                                              r"missing"):
        read_training_state(ck)
    torch.save(dict(good, step="3", g_opt=[]), ck / "state.pt")
    with pytest.raises(CheckpointError, match=r"'step' is str \(expected int\); .*'g_opt' is list"):
        read_training_state(ck)
    torch.save([1, 2], ck / "state.pt")
    with pytest.raises(CheckpointError, match="expected a dict of training state, got list"):
        read_training_state(ck)
    marker = tmp_path / "pwned"
    monkeypatch.setenv("MEMORYGAN_TEST_MARKER", str(marker))
    (ck / "state.pt").write_bytes(pickle.dumps({"step": Payload()}))
    with pytest.raises(CheckpointError, match=r"state.pt: unreadable training state \(UnpicklingError"):
        read_training_state(ck)
    assert not marker.exists(), "the pickled payload ran"
    (ck / "state.pt").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(CheckpointError, match="unreadable training state"):
        read_training_state(ck)


def test_torn_last_log_line_is_skipped_and_repaired(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "stats.jsonl").write_bytes(b'{"step": 1}\n{"step": 2}\n{"step": 3, "loss_d": 0.')
    with pytest.warns(MemoryGANWarning, match=r"stats.jsonl: skipped 1 unreadable line\(s\) \(line 3"):
        assert [r["step"] for r in read_log(run)] == [1, 2]
    truncate_logs(run, 1)
    assert (run / "stats.jsonl").read_text() == '{"step": 1}\n'
