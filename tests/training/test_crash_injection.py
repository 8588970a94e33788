"""Crash injection (slow): a training process is killed with SIGKILL many times at random moments, half of them
while it writes or prunes a checkpoint, and after every kill the run folder must hold only complete checkpoints,
load, resume and report; at the end the run equals one that was never interrupted, bit for bit.

    python -m pytest -m slow tests/training/test_crash_injection.py -s      # prints the tally of where kills landed
"""
import json
import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
import warnings

import pytest

import memorygan
from memorygan.runs import (CKPT_DIR, RunLock, checkpoint_step, is_complete_checkpoint, latest_checkpoint, read_log,
                            read_training_state)
from memorygan.training.loop import resume, train

from helpers import assert_weights_close, checkpoint_weights

CHILD = """
import sys
from memorygan.training import loop
from memorygan import runs

save, remove = loop.Trainer.save_checkpoint, runs.remove_checkpoint

def marked_save(self):
    print(f"write {self.step}", flush=True)
    out = save(self)
    print(f"written {self.step}", flush=True)
    return out

def marked_remove(path):
    print(f"prune {path.name}", flush=True)
    remove(path)
    print(f"pruned {path.name}", flush=True)

loop.Trainer.save_checkpoint, loop.remove_checkpoint = marked_save, marked_remove
loop.resume(sys.argv[1], steps=int(sys.argv[2]), checkpoint_every=1, keep=2, progress=False)
print("done", flush=True)
"""

KILLS = int(os.environ.get("MEMORYGAN_CRASH_KILLS", "40"))
NEVER = 100_000                                    # the children's --steps: they are always killed before it


def _reader(stream, q):
    for line in stream:
        q.put((time.perf_counter(), line.strip()))
    q.put((time.perf_counter(), None))


def _where(events: list[str]) -> str:
    """Where the kill landed, from the child's last markers."""
    last = events[-1] if events else ""
    if last.startswith("write"):
        return "during a checkpoint write"
    if last.startswith("prune"):
        return "during a prune"
    if last.startswith(("written", "pruned")):
        return "between steps"
    return "before the first checkpoint write" if not events else "other"


def _check_run(run) -> dict:
    """The invariants that must hold after any kill; returns what was seen."""
    names = sorted(p.name for p in (run / CKPT_DIR).iterdir())
    steps = [p for p in (run / CKPT_DIR).iterdir() if checkpoint_step(p) is not None]
    incomplete = [p.name for p in steps if not is_complete_checkpoint(p, resumable=True)]
    assert not incomplete, f"a checkpoint under its final name is incomplete: {incomplete} ({names})"
    newest = latest_checkpoint(run, resumable=True)
    assert newest is not None
    read_training_state(newest)
    memorygan.load(run)                              # what every reader does
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")              # a torn last line is allowed (and reported) here
        rows = read_log(run)
    assert all(isinstance(r.get("step"), int) for r in rows)
    RunLock(run).check_free()                        # the killed process's lock does not block
    return {"leftovers": [n for n in names if n.startswith(".")], "newest": checkpoint_step(newest)}


@pytest.mark.slow
def test_kill_at_random_points_of_checkpoint_writes_and_prunes(opts_for, tmp_path):
    rng = random.Random(12345)
    run = train(opts_for(out="run", steps=1, checkpoint_every=1, keep=2)).run_dir
    src = os.path.dirname(os.path.dirname(memorygan.__file__))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]), OMP_NUM_THREADS="1")
    tally: dict[str, int] = {}
    leftovers_seen = 0
    kills = 0
    while kills < KILLS:
        proc = subprocess.Popen([sys.executable, "-c", CHILD, str(run), str(NEVER)], stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True, env=env)
        q: queue.Queue = queue.Queue()
        threading.Thread(target=_reader, args=(proc.stdout, q), daemon=True).start()
        events: list[str] = []
        # kill modes, in turn: inside a checkpoint write, inside a prune, at a random moment after the first
        # checkpoint marker, at a random moment from the start (start-up: lock, clean-up, log repair)
        mode = ("write", "prune", "after", "start")[kills % 4]
        deadline = time.perf_counter() + (rng.uniform(0.2, 5.0) if mode == "start" else 120)
        finished = False
        while True:
            try:
                _, line = q.get(timeout=max(0.0, deadline - time.perf_counter()))
            except queue.Empty:
                break
            if line is None or line == "done":
                finished = True
                break
            events.append(line)
            if mode in ("write", "prune") and line.startswith(mode):
                time.sleep(rng.uniform(0.0, 0.05))    # somewhere inside the write (files, fsync, rename) or prune
                break
            if mode == "after" and deadline > time.perf_counter() + 60:
                deadline = time.perf_counter() + rng.uniform(0.0, 2.0)
        if finished:                                  # the child failed: its output says why
            proc.wait()
            pytest.fail(f"the training process ended by itself (rc {proc.returncode}) after {events[-5:]}")
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        while not q.empty():
            _, line = q.get()
            if line:
                events.append(line)
        kills += 1
        where = _where(events)
        tally[where] = tally.get(where, 0) + 1
        seen = _check_run(run)
        leftovers_seen += bool(seen["leftovers"])
    print(f"\ncrash injection: {kills} kills; where they landed: {json.dumps(tally)}; kills that left a "
          f"temporary/renamed folder behind: {leftovers_seen}")
    # the end: a last resume cleans up and finishes; the result equals an uninterrupted run
    target = checkpoint_step(latest_checkpoint(run, resumable=True)) + 3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = resume(run, steps=target, checkpoint_every=1, keep=2)
    assert res.step == target
    assert not [p.name for p in (run / CKPT_DIR).iterdir() if p.name.startswith(".")]
    assert [r["step"] for r in read_log(run)] == list(range(1, target + 1))
    ref = train(opts_for(out="ref", steps=target, checkpoint_every=1, keep=2))
    assert_weights_close(checkpoint_weights(ref.checkpoint), checkpoint_weights(res.checkpoint), atol=0)
    print(f"final: resumed to step {target}, equal to an uninterrupted run (max abs difference 0)")
