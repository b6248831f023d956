"""Where a request run's time goes, summed per stage (the overhead benchmark reads it).

Thread-safe: a request runs two variants at once (one in the engine, one in post-processing,
flows/fulfil_request.py), both adding to one RunStats. Their stage times then overlap in wall
time, so the stages of a run can sum to more than its wall time."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

# The outcome counters `count()` increments.
COUNTERS = ("variants", "attempts", "passed", "rejected", "retries")


@dataclass
class RunStats:
    stages: dict[str, float] = field(default_factory=dict)
    # CPU seconds of the calling thread per stage, where measured (`stage()` and `add_cpu`): on a
    # shared machine wall time also counts other programs' turns on the CPU.
    cpu: dict[str, float] = field(default_factory=dict)
    variants: int = 0
    attempts: int = 0
    # outcomes of this run's variants (progress shows them): passed, rejected, retried attempts
    passed: int = 0
    rejected: int = 0
    retries: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)
    # per thread: the stage seconds that thread added (see `own_seconds`)
    _own: threading.local = field(default_factory=threading.local, repr=False, compare=False)
    # per unit of work (a variant): its time in timed stages (note_timed / take_timed)
    _timed: dict = field(default_factory=dict, repr=False, compare=False)

    def add(self, stage: str, seconds: float, *, alongside: bool = False) -> None:
        """Add `seconds` to `stage`. `alongside`: time of work another thread did while the
        calling thread's own timed work ran (already inside that work's wall time), so not
        counted in `own_seconds`."""
        seconds = float(seconds)
        with self._lock:
            self.stages[stage] = self.stages.get(stage, 0.0) + seconds
        if not alongside:
            self._own.seconds = getattr(self._own, "seconds", 0.0) + seconds

    def add_cpu(self, stage: str, seconds: float) -> None:
        with self._lock:
            self.cpu[stage] = self.cpu.get(stage, 0.0) + float(seconds)

    def count(self, **counters: int) -> None:
        """`stats.count(variants=1, passed=1)`: add to the outcome counters (COUNTERS)."""
        unknown = set(counters) - set(COUNTERS)
        if unknown:
            raise ValueError(f"unknown RunStats counter(s) {sorted(unknown)}; known: {COUNTERS}")
        with self._lock:
            for name, n in counters.items():
                setattr(self, name, getattr(self, name) + int(n))

    def own_seconds(self) -> float:
        """The stage seconds the calling thread has added so far (`add` and `stage`): the
        difference over a block is that block's timed part, whatever other threads add."""
        return getattr(self._own, "seconds", 0.0)

    def note_timed(self, key, seconds: float) -> None:
        """Note the stage seconds a unit of work (`key`: a variant) added from its own thread
        (an `own_seconds` difference), for whoever waited for it: its wall time less these is
        the time spent around the work (`take_timed`). Summed over repeated runs of `key`."""
        with self._lock:
            self._timed[key] = self._timed.get(key, 0.0) + float(seconds)

    def take_timed(self, key) -> float:
        """The timed seconds noted for `key` (0 if none), forgotten once taken."""
        with self._lock:
            return self._timed.pop(key, 0.0)

    def snapshot(self) -> dict:
        """The stages, CPU times and counters, copied under the lock (a consistent view)."""
        with self._lock:
            return {"stages": dict(self.stages), "cpu": dict(self.cpu),
                    **{name: getattr(self, name) for name in COUNTERS}}

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """`with stats.stage("db"): ...` adds the block's wall time (and this thread's CPU
        time) to `name`."""
        t0, c0 = time.perf_counter(), time.thread_time()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - t0)
            self.add_cpu(name, time.thread_time() - c0)
