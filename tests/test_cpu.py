"""Torch threads from the cores that are free now (memorygan.cpu): /proc/stat sampled twice, the load average only
where /proc/stat cannot be read."""
import os

import pytest

from memorygan import cpu


def stat_text(user, nice, system, idle, iowait, irq=0, softirq=0, steal=0, guest=0, guest_nice=0):
    """A /proc/stat as Linux writes it: the aggregate `cpu` line, then per-CPU lines (which must be ignored)."""
    return (f"cpu  {user} {nice} {system} {idle} {iowait} {irq} {softirq} {steal} {guest} {guest_nice}\n"
            f"cpu0 1 2 3 4 5 6 7 8 9 10\n"
            f"cpu1 999999 0 0 0 0 0 0 0 0 0\n"
            f"intr 12345 0 0\nctxt 987654\nbtime 1700000000\nprocesses 4242\n")


def reader(*snapshots):
    """A /proc/stat reader that returns the given texts in turn."""
    it = iter(snapshots)
    return lambda: next(it)


@pytest.fixture
def loadavg(monkeypatch):
    """A fixed 1-minute load average, so that a fallback to it is visible (1.3: what `pip install` left behind)."""
    monkeypatch.setattr(os, "getloadavg", lambda: (1.3, 0.0, 0.0))


def test_cpu_times_reads_the_aggregate_line():
    # idle = idle + iowait; total = user..steal (guest and guest_nice are already inside user and nice)
    assert cpu.cpu_times(stat_text(10, 20, 30, 40, 50, 60, 70, 80, 1000, 2000)) == (90, 360)
    with pytest.raises(ValueError):
        cpu.cpu_times("intr 1 2 3\n")


def test_half_of_two_cores_busy_leaves_one_thread(loadavg):
    # 400 ticks passed (2 cores x 200), 200 of them idle: one core's worth busy
    before, after = stat_text(1000, 0, 500, 8000, 100), stat_text(1150, 0, 550, 8180, 120)
    assert cpu.busy_cores(2, read_stat=reader(before, after), interval=0) == pytest.approx(1.0)
    assert cpu.auto_threads(cores=2, read_stat=reader(before, after), interval=0) == 1


def test_idle_machine_gives_every_core_despite_a_high_load_average(loadavg):
    # the reported bug: load average 1.3 just after `pip install`, but nothing runs now -> 2 threads, not 1
    before, after = stat_text(1000, 0, 500, 8000, 100), stat_text(1001, 0, 500, 8398, 101)
    assert cpu.busy_cores(2, read_stat=reader(before, after), interval=0) == pytest.approx(0.005)
    assert cpu.auto_threads(cores=2, read_stat=reader(before, after), interval=0) == 2


def test_busy_fraction_scales_with_the_cores_and_rounds(loadavg):
    # 8 cores, 40 % busy (3.2 cores): 4.8 free -> 5 threads; iowait and steal as in a VM
    before = stat_text(100, 10, 50, 1000, 20, 1, 2, 3)
    after = stat_text(100 + 250, 10 + 30, 50 + 80, 1000 + 550, 20 + 50, 1 + 10, 2 + 10, 3 + 20)   # 1000 ticks, 600 idle
    assert cpu.busy_cores(8, read_stat=reader(before, after), interval=0) == pytest.approx(3.2)
    assert cpu.auto_threads(cores=8, read_stat=reader(before, after), interval=0) == 5
    # everything busy: still one thread; nothing busy: at most `cores`
    full = stat_text(1000 + 400, 0, 500, 8000, 100)
    assert cpu.auto_threads(cores=2, read_stat=reader(stat_text(1000, 0, 500, 8000, 100), full), interval=0) == 1
    quiet = stat_text(1000, 0, 500, 8000 + 400, 100)
    assert cpu.auto_threads(cores=2, read_stat=reader(stat_text(1000, 0, 500, 8000, 100), quiet), interval=0) == 2


def test_samples_are_taken_interval_apart(monkeypatch, loadavg):
    slept = []
    monkeypatch.setattr(cpu.time, "sleep", slept.append)
    before, after = stat_text(1000, 0, 500, 8000, 100), stat_text(1001, 0, 500, 8398, 101)
    assert cpu.auto_threads(cores=2, read_stat=reader(before, after)) == 2
    assert slept == [cpu.SAMPLE_SECONDS] and 0.1 <= cpu.SAMPLE_SECONDS <= 1.0


def test_load_average_where_proc_stat_is_unreadable(loadavg):
    def unreadable():
        raise OSError("no /proc/stat (not Linux)")
    assert cpu.busy_cores(2, read_stat=unreadable, interval=0) == pytest.approx(1.3)
    assert cpu.auto_threads(cores=2, read_stat=unreadable, interval=0) == 1      # 2 - 1.3 -> 1
    assert cpu.auto_threads(cores=4, read_stat=unreadable, interval=0) == 3      # 4 - 1.3 -> 3
    # unparsable text, and two identical snapshots (no tick passed), fall back too
    assert cpu.busy_cores(2, read_stat=reader("garbage\n", "garbage\n"), interval=0) == pytest.approx(1.3)
    same = stat_text(1000, 0, 500, 8000, 100)
    assert cpu.busy_cores(2, read_stat=reader(same, same), interval=0) == pytest.approx(1.3)


def test_no_load_figure_at_all_means_idle(monkeypatch):
    def unreadable():
        raise OSError
    monkeypatch.delattr(os, "getloadavg", raising=False)
    assert cpu.auto_threads(cores=2, read_stat=unreadable, interval=0) == 2


def test_explicit_load_is_used_as_given():
    def must_not_read():
        raise AssertionError("an explicit load must not be measured")
    assert cpu.auto_threads(cores=2, load=2.6, read_stat=must_not_read) == 1
    assert cpu.auto_threads(cores=8, load=3.2, read_stat=must_not_read) == 5


def test_default_reader_is_proc_stat_where_it_exists():
    if not os.path.exists(cpu.PROC_STAT):
        pytest.skip("no /proc/stat here")
    busy = cpu.busy_cores(2, interval=0.05)
    assert 0.0 <= busy <= 2.0
    assert 1 <= cpu.auto_threads(cores=2, interval=0.05) <= 2


def test_fallback_counts_at_most_the_cores(monkeypatch):
    def unreadable():
        raise OSError
    monkeypatch.setattr(os, "getloadavg", lambda: (6.5, 0.0, 0.0))         # a load average counts waiting tasks too
    assert cpu.busy_cores(2, read_stat=unreadable, interval=0) == 2.0
    assert cpu.auto_threads(cores=2, read_stat=unreadable, interval=0) == 1
