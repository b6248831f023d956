from __future__ import annotations

import multiprocessing as mp
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
