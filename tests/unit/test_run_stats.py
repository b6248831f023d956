"""tasks/run_stats: per-stage wall and CPU time of a request run, added to from the threads of
the variants in flight."""

from __future__ import annotations

import sys
import threading
import time

import pytest

from castkeep.tasks.run_stats import RunStats


def test_a_stage_adds_its_wall_and_this_threads_cpu_time():
    stats = RunStats()
    with stats.stage("db"):
        time.sleep(0.05)  # waiting: wall time, next to no CPU
    with stats.stage("scoring"):
        end = time.thread_time() + 0.05
        while time.thread_time() < end:  # working: CPU time
            pass
    assert stats.stages["db"] >= 0.05 and stats.cpu["db"] < 0.02
    assert stats.cpu["scoring"] >= 0.05
    assert stats.stages["scoring"] >= stats.cpu["scoring"] - 1e-3
    with stats.stage("db"):
        time.sleep(0.01)
    assert stats.stages["db"] >= 0.06  # summed over blocks


def test_cpu_measured_elsewhere_is_summed_per_stage():
    stats = RunStats()
    stats.add_cpu("engine", 0.25)
    stats.add_cpu("engine", 0.5)
    stats.add("engine", 2.0)
    assert stats.cpu == {"engine": 0.75} and stats.stages == {"engine": 2.0}


def _in_threads(n: int, fn) -> None:
    """Run fn(i) in n threads at once, switching between them as often as Python allows (so a
    read-modify-write without a lock loses updates)."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    start = threading.Barrier(n)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            start.wait()
            fn(i)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            errors.append(exc)

    try:
        threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(old)
    assert errors == []


def test_stages_and_counters_added_from_many_threads_lose_nothing():
    stats = RunStats()
    n, each = 8, 4_000

    def work(i: int) -> None:
        for _ in range(each):
            stats.add("engine", 1.0)
            stats.add_cpu("engine", 0.5)
            stats.add(f"stage-{i % 2}", 1.0)
            stats.count(attempts=1, passed=i % 2, rejected=1 - i % 2)

    # Threads switch every microsecond, so unguarded updates would be lost within these few
    # thousand (a plain dict update from 8 threads keeps about 60% of them).
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        _in_threads(n, work)
    finally:
        sys.setswitchinterval(interval)
    assert stats.stages == {"engine": n * each, "stage-0": n * each / 2, "stage-1": n * each / 2}
    assert stats.cpu == {"engine": n * each * 0.5}
    assert (stats.attempts, stats.passed, stats.rejected) == (n * each, n * each / 2, n * each / 2)
    assert (stats.variants, stats.retries) == (0, 0)


def test_unknown_counter_is_refused():
    with pytest.raises(ValueError, match=r"unknown RunStats counter\(s\) \['attempt'\]"):
        RunStats().count(attempt=1)


def test_each_thread_sees_only_the_stage_time_it_added():
    stats = RunStats()
    own: dict[int, float] = {}

    def work(i: int) -> None:
        before = stats.own_seconds()
        for _ in range(1000):
            stats.add("db", i + 1.0)
        with stats.stage("report"):
            pass
        own[i] = stats.own_seconds() - before

    _in_threads(3, work)
    stats.add("fine_pass", 5.0, alongside=True)  # another thread's work, inside this one's
    assert stats.stages["fine_pass"] == 5.0
    for i in range(3):
        assert 1000 * (i + 1.0) <= own[i] < 1000 * (i + 1.0) + 0.1
    assert stats.stages["db"] == 1000 * (1 + 2 + 3)
    assert stats.own_seconds() == 0.0  # this thread added nothing


def test_timed_seconds_are_noted_per_unit_summed_and_taken_once():
    stats = RunStats()
    stats.note_timed(3, 1.5)
    stats.note_timed(3, 0.25)  # a retried task run of the same variant
    stats.note_timed(4, 2.0)
    assert stats.take_timed(3) == 1.75
    assert stats.take_timed(3) == 0.0
    assert stats.take_timed(4) == 2.0
    assert stats.take_timed(5) == 0.0


def test_snapshot_is_a_copy():
    stats = RunStats()
    stats.add("db", 1.0)
    stats.count(variants=2, passed=1, rejected=1)
    snap = stats.snapshot()
    stats.add("db", 1.0)
    stats.count(variants=1)
    assert snap == {"stages": {"db": 1.0}, "cpu": {}, "variants": 2, "attempts": 0,
                    "passed": 1, "rejected": 1, "retries": 0}
