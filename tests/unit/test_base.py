"""ModelBase: idempotent, thread-safe load; predict loads on first use."""

from __future__ import annotations

import threading
import time

import pytest

from castkeep.models.base import ModelBase


class Counting(ModelBase):
    def __init__(self, fail_first: bool = False) -> None:
        super().__init__()
        self.loads = 0
        self.unloads = 0
        self.fail_first = fail_first

    def _load(self) -> None:
        self.loads += 1
        time.sleep(0.01)  # widen the race window for the threaded test
        if self.fail_first and self.loads == 1:
            raise RuntimeError("weights missing")
        self.weights = 2

    def _unload(self) -> None:
        self.unloads += 1
        del self.weights

    def _predict(self, x: int, *, offset: int = 0) -> int:
        return x * self.weights + offset


def test_predict_loads_once():
    m = Counting()
    assert not m.loaded
    assert m.predict(3) == 6
    assert m.predict(4, offset=1) == 9
    m.load()
    assert m.loads == 1 and m.loaded
    assert m.load_seconds is not None and m.load_seconds >= 0.01


def test_concurrent_load_runs_once():
    m = Counting()
    threads = [threading.Thread(target=m.load) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert m.loads == 1


def test_failed_load_is_retried():
    m = Counting(fail_first=True)
    with pytest.raises(RuntimeError):
        m.load()
    assert not m.loaded
    assert m.predict(1) == 2
    assert m.loads == 2


def test_unload_then_predict_loads_again():
    m = Counting()
    m.load()
    m.unload()
    assert not m.loaded and m.unloads == 1
    m.unload()  # nothing loaded: no second _unload
    assert m.unloads == 1
    assert m.predict(5) == 10 and m.loads == 2


def test_subclass_must_implement_hooks():
    class Incomplete(ModelBase):
        def _load(self) -> None: ...

    with pytest.raises(TypeError):
        Incomplete()  # type: ignore[abstract]
