"""tasks/run_stats: per-stage wall and CPU time of a request run."""

from __future__ import annotations

import time

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
