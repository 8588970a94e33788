"""`memorygan quickstart` end to end on a tiny scale (the real one is the README's first command)."""
import json

import pytest

from memorygan.cli import main
from memorygan.errors import ConfigError
from memorygan.quickstart import auto_threads, run_quickstart


def test_quickstart_tiny(tmp_path, tiny_preset):
    out = tmp_path / "qs"
    kw = dict(n=20, size=32, preset=tiny_preset["memorygan"], probe_steps=5, metrics_every=2, metrics_samples=8,
              workers=1, progress=False, threads=1)
    lines = []
    res = run_quickstart(out, steps=3, log=lines.append, **kw)
    assert (out / "data" / "dataset.json").is_file() and (out / "data" / "probe" / "probe.json").is_file()
    assert 0.0 <= res.probe_miou <= 1.0 and res.steps == 3 and res.trained
    for name in ("samples.png", "composition.png", "metrics.png", "summary.md"):
        assert (res.report / name).is_file(), name
    metrics_file = res.run / "metrics.jsonl"
    metrics = [json.loads(x) for x in metrics_file.read_text().splitlines()]
    assert [m["step"] for m in metrics] == [0, 2, 3]                    # the step budget, not the clock, decides
    assert {"domain_fid", "domain_kid", "mask_miou"} <= metrics[0].keys()
    summary = (res.report / "summary.md").read_text()
    assert "3 steps" in summary and "after 3 steps" in summary
    assert any("training" in x and "for 3 steps (about" in x for x in lines)
    assert any(x.endswith("mIoU after 3 steps") for x in lines)
    # run again: reuses data and probe, trains nothing, and says so; no duplicate metrics row
    before = metrics_file.read_bytes()
    probe_mtime = (out / "data" / "probe" / "probe.json").stat().st_mtime
    lines.clear()
    again = run_quickstart(out, steps=3, log=lines.append, **kw)
    assert not again.trained and again.steps == 3
    assert metrics_file.read_bytes() == before
    assert any("is finished: 3 steps" in x and "nothing to train" in x and "--more-steps N" in x for x in lines)
    assert (out / "data" / "probe" / "probe.json").stat().st_mtime == probe_mtime
    more = run_quickstart(out, steps=3, more_steps=2, log=lambda *a: None, **kw)
    assert more.steps == 5 and [m["step"] for m in more.metrics] == [0, 2, 3, 4, 5]


def test_every_argument_is_checked_before_any_work(tmp_path, tiny_preset, capsys):
    q = tmp_path / "q"
    for kw, msg in (({"preset": "foo"}, "unknown preset 'foo'"),
                    ({"n": 5}, "--n must be an integer >= 20"),
                    ({"size": 30}, "--size must be a multiple of 8"),
                    ({"steps": 0}, "--steps must be an integer >= 1"),
                    ({"minutes": float("inf"), "steps": None}, "--minutes must be > 0"),
                    ({"probe_steps": 0}, "--probe-steps must be an integer >= 1"),
                    ({"threads": 0}, "--threads must be an integer >= 1")):
        with pytest.raises(ConfigError, match=msg):
            run_quickstart(q, **{"steps": 3, **kw}, log=lambda *a: None)
        assert not q.exists()
    q.mkdir()
    (q / "thesis.tex").write_text("x")
    with pytest.raises(ConfigError, match=r"holds other things \(thesis.tex\)"):
        run_quickstart(q, log=lambda *a: None)
    assert main(["quickstart", "--out", str(tmp_path / "r"), "--preset", "foo"]) == 2
    assert "unknown preset 'foo'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["quickstart", "--out", str(tmp_path / "r"), "--minutes", "0"])
    assert "--minutes: expected a finite number > 0, got 0" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_threads_leave_busy_cores_alone():
    assert auto_threads(cores=2, load=2.6) == 1          # two training runs on two cores: one thread
    assert auto_threads(cores=2, load=0.1) == 2
    assert auto_threads(cores=8, load=3.2) == 5
    assert auto_threads(cores=1, load=0.0) == 1
    assert auto_threads(cores=4, load=9.0) == 1


def test_quickstart_by_minutes(tmp_path, tiny_preset):
    res = run_quickstart(tmp_path / "m", steps=None, minutes=0.005, n=20, size=32, preset=tiny_preset["ssg"],
                         probe_steps=2, metrics_every=50, metrics_samples=4, workers=1, progress=False, threads=1,
                         log=lambda *a: None)
    assert res.steps >= 1 and res.trained


def test_use_threads_follows_the_load_unless_the_user_chose(monkeypatch):
    import os

    import torch

    from memorygan import cpu

    def no_proc_stat():
        raise OSError("no /proc/stat")
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    monkeypatch.setattr(cpu, "_read_proc_stat", no_proc_stat)              # the load-average fallback
    monkeypatch.setattr(os, "getloadavg", lambda: (2.8, 0.0, 0.0))
    try:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
        assert cpu.use_threads() == 1 and torch.get_num_threads() == 1      # 4 cores, 2.8 busy: 1 idle
        monkeypatch.setattr(os, "getloadavg", lambda: (0.4, 0.0, 0.0))
        assert cpu.use_threads() == 4 and torch.get_num_threads() == 4
        snapshots = iter(["cpu  100 0 0 900 0 0 0 0 0 0\n", "cpu  400 0 0 1000 0 0 0 0 0 0\n"])
        monkeypatch.setattr(cpu, "_read_proc_stat", lambda: next(snapshots))  # 3 of 4 cores busy now,
        monkeypatch.setattr(cpu.time, "sleep", lambda s: None)                 # whatever the load average says
        assert cpu.use_threads() == 1 and torch.get_num_threads() == 1
        assert cpu.use_threads(load=0.0) == 4 and torch.get_num_threads() == 4   # a measured figure passed in
        assert cpu.use_threads(2) == 2 and torch.get_num_threads() == 2     # --threads wins
        monkeypatch.setenv("OMP_NUM_THREADS", "3")                           # the user's environment wins
        torch.set_num_threads(3)
        assert cpu.use_threads() == 3 and torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(1)


def test_quickstart_logs_the_cores_busy_now(tmp_path, monkeypatch):
    """The thread line names the busy cores measured now (it printed the lagging 1-minute load average)."""
    import os

    import torch

    from memorygan import cpu

    class Stop(Exception):
        pass
    lines = []

    def log(line):
        lines.append(line)
        raise Stop                                   # the first line is the thread line; no work after it
    snapshots = iter(["cpu  100 0 0 900 0 0 0 0 0 0\n", "cpu  101 0 0 1299 0 0 0 0 0 0\n"])   # 1 of 400 ticks busy
    monkeypatch.setattr(cpu, "_read_proc_stat", lambda: next(snapshots))
    monkeypatch.setattr(cpu.time, "sleep", lambda s: None)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(os, "getloadavg", lambda: (1.3, 0.0, 0.0))       # just after `pip install`
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    try:
        with pytest.raises(Stop):
            run_quickstart(tmp_path / "q", log=log)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(1)
    assert lines == ["      using 2 torch thread(s) for 2 cores, 0.0 of them busy now (--threads to choose)"]
    assert not (tmp_path / "q" / "data").exists()
