"""Where a request run's time goes, summed per stage (the overhead benchmark reads it)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field


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

    def add(self, stage: str, seconds: float) -> None:
        self.stages[stage] = self.stages.get(stage, 0.0) + float(seconds)

    def add_cpu(self, stage: str, seconds: float) -> None:
        self.cpu[stage] = self.cpu.get(stage, 0.0) + float(seconds)

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
