"""tasks/generate: the kept engines, the engine turn of a process, the local and Prefect `gpu`
slots."""

from __future__ import annotations

import multiprocessing as mp
import threading
import time
import uuid

import pytest

from castkeep.errors import EngineError, SpecError
from castkeep.tasks.generate import forget_engines, is_transient, loaded_engine, local_gpu_slot


def test_transient_failures_are_retried_user_errors_are_not():
    assert is_transient(EngineError("cuda hiccup"))
    assert is_transient(MemoryError())
    assert is_transient(RuntimeError("CUDA out of memory"))
    assert not is_transient(SpecError("yaw 60 beyond the classical engine's limit"))
    assert not is_transient(ValueError("bug"))
    assert not is_transient(None)


def test_engine_is_kept_between_calls():
    forget_engines()
    first = loaded_engine("classical")
    assert loaded_engine("classical") is first
    assert loaded_engine("classical", {"backdrop": (1, 2, 3)}) is not first
    forget_engines()
    assert loaded_engine("classical") is not first


def _hold(lock_dir, seconds, started):
    with local_gpu_slot(lock_dir, 1):
        started.set()
        time.sleep(seconds)


def test_local_slot_is_exclusive_and_freed_when_its_holder_dies(tmp_path):
    ctx = mp.get_context("fork")
    started = ctx.Event()
    holder = ctx.Process(target=_hold, args=(tmp_path, 60, started))
    holder.start()
    try:
        assert started.wait(30)
        t0 = time.perf_counter()
        blocked = ctx.Process(target=_hold, args=(tmp_path, 0, ctx.Event()))
        blocked.start()
        blocked.join(1.0)
        assert blocked.is_alive()  # waits for the slot
        holder.kill()  # a crash: the kernel releases the lock
        blocked.join(10)
        assert blocked.exitcode == 0 and time.perf_counter() - t0 < 10
    finally:
        holder.kill()


def test_two_slots_admit_two_holders(tmp_path):
    with local_gpu_slot(tmp_path, 2):
        t0 = time.perf_counter()
        with local_gpu_slot(tmp_path, 2):
            assert time.perf_counter() - t0 < 1.0


@pytest.mark.usefixtures("prefect_harness")
def test_prefect_gpu_limit_is_created_taken_and_released():
    from prefect.client.orchestration import get_client

    from castkeep.tasks.generate import ensure_gpu_limit, gpu_slot

    # Its own limit name: the session-wide Prefect API is shared with `castkeep serve --setup`
    # tests, which configure the real `gpu` limit.
    name = f"gpu-test-{uuid.uuid4().hex[:8]}"
    ensure_gpu_limit(2, name)
    ensure_gpu_limit(5, name)  # an existing limit is left as configured
    with get_client(sync_client=True) as client:
        limit = client.read_global_concurrency_limit_by_name(name)
        assert limit.limit == 2
        with gpu_slot(name):
            assert client.read_global_concurrency_limit_by_name(name).active_slots == 1
        assert client.read_global_concurrency_limit_by_name(name).active_slots == 0


HOLD_S = 0.3


@pytest.fixture
def recording_classical():
    """A real classical engine that records its calls, installed as the process's engine for
    its own construction options (so no other test's engine is touched). Each call waits
    HOLD_S first (the GIL free, as a GPU engine waits for its device)."""
    from castkeep.models.cache import models
    from castkeep.models.engines.engine_classical import ClassicalEngine

    construct = {"backdrop": (9, 9, 9)}
    record = {"events": [], "active": 0, "peak": 0, "lock": threading.Lock()}

    class Recording(ClassicalEngine):
        def _predict(self, inp):
            with record["lock"]:
                record["active"] += 1
                record["peak"] = max(record["peak"], record["active"])
                record["events"].append(("start", inp.seed))
            try:
                time.sleep(HOLD_S)
                return super()._predict(inp)
            finally:
                with record["lock"]:
                    record["active"] -= 1
                    record["events"].append(("end", inp.seed))

    forget_engines()
    models.get("engine", "classical", construct, lambda: Recording(**construct))
    yield construct, record
    forget_engines()


def _edit(portrait_rgb, portrait_faces, seed: int):
    from castkeep.models.engines.base import EditInput
    from castkeep.models.specs import parse_lighting

    return EditInput([portrait_rgb["obama"]], [portrait_faces["obama"][0]],
                     lighting=parse_lighting("azimuth=60"), seed=seed)


def test_engine_calls_from_two_threads_take_turns(recording_classical, portrait_rgb,
                                                  portrait_faces):
    """Two variants' engine calls at once in one process: they run one after the other (the
    engine object is shared), the second's wait is its queue time, not engine time, and each
    call's `before` runs with the turn held (no engine call running)."""
    from castkeep.tasks.generate import run_engine

    construct, record = recording_classical
    out: dict[int, object] = {}
    active_at_before: list[int] = []
    start = threading.Barrier(2)

    def call(seed: int) -> None:
        start.wait()
        out[seed] = run_engine("classical", construct, _edit(portrait_rgb, portrait_faces, seed),
                               limit=None, before=lambda: active_at_before.append(record["active"]))

    threads = [threading.Thread(target=call, args=(seed,)) for seed in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert record["peak"] == 1
    first = record["events"][0][1]
    second = 3 - first
    assert record["events"] == [("start", first), ("end", first), ("start", second),
                                ("end", second)]
    assert active_at_before == [0, 0]
    assert out[second].queue_seconds >= out[first].engine_seconds - 0.05
    assert out[first].queue_seconds < HOLD_S
    for gen in out.values():
        assert gen.engine_seconds >= HOLD_S and gen.output.image.shape[2] == 3
        assert gen.wait_seconds < HOLD_S  # no Prefect slot asked for


def test_a_refusal_before_the_engine_runs_nothing_and_frees_the_turn(
    recording_classical, portrait_rgb, portrait_faces
):
    from castkeep.errors import Refused
    from castkeep.tasks.generate import run_engine

    construct, record = recording_classical

    def refuse() -> None:
        raise Refused(["talent x: consent revoked"], "consent")

    with pytest.raises(Refused, match="consent revoked"):
        run_engine("classical", construct, _edit(portrait_rgb, portrait_faces, 1), limit=None,
                   before=refuse)
    assert record["events"] == []
    # The turn was given back: the next call runs at once.
    gen = run_engine("classical", construct, _edit(portrait_rgb, portrait_faces, 2), limit=None)
    assert record["events"] == [("start", 2), ("end", 2)] and gen.queue_seconds < 0.05
