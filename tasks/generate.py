"""Generation: one engine call per variant attempt, under the `gpu` global concurrency limit.

The engine is kept loaded in the worker process between variants (and between requests): loading
real diffusion weights takes tens of seconds, an edit a few. Transient failures (out of memory,
I/O, a device hiccup) are retried by Prefect; a spec the engine cannot do is not.

Engine calls in one process run one at a time (the process's engine turn, `run_engine`): a
request runs the next variant's engine call while the previous variant is scored and signed, and
the engines are shared objects (one per process) that are not safe to call from two threads at
once (a diffusers pipeline is not).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


from castkeep.errors import CastkeepError, EngineError
from castkeep.models.engines.base import EditEngine, EditInput, EditOutput, EngineInfo, get_engine

GPU_LIMIT = "gpu"
# The process's engine turn: one engine call at a time, whichever engine and thread.
_ENGINE_TURN = threading.Lock()


def _cached_engine(name: str, construct: dict[str, Any] | None) -> EditEngine:
    from castkeep.models.cache import models

    return models.get("engine", name, construct, lambda: get_engine(name, **(construct or {})))


def loaded_engine(name: str, construct: dict[str, Any] | None = None) -> EditEngine:
    """The process's engine for (name, construction options), loaded once and kept."""
    engine = _cached_engine(name, construct)
    engine.load()  # idempotent
    return engine


def engine_info(name: str, construct: dict[str, Any] | None = None) -> EngineInfo:
    """The engine's declared info without loading weights (for the licence gate)."""
    return _cached_engine(name, construct).info


def check_engine_request(
    name: str, construct: dict[str, Any] | None, options: dict[str, Any], scene: str | None
) -> EngineInfo:
    """What can be checked about an engine before a request is catalogued, without loading
    weights: the name (UnknownModelError), its settings (ModelNotConfiguredError) and the
    request's options and scene (SpecError)."""
    engine = _cached_engine(name, construct)
    engine.check_options(dict(options), scene=scene)
    return engine.info


def forget_engines() -> None:
    """Drop the kept engines (tests, or to free device memory)."""
    from castkeep.models.cache import models

    models.clear("engine")


@dataclass(frozen=True)
class Generated:
    output: EditOutput
    engine_seconds: float  # wall time inside the engine call (excludes the waits)
    wait_seconds: float  # waiting for a `gpu` slot
    # waiting for this process's engine turn (another thread's engine call)
    queue_seconds: float = 0.0
    cpu_seconds: float = 0.0  # the calling thread's CPU time inside the engine call


def is_transient(exc: BaseException | None) -> bool:
    """Worth retrying: resource or device trouble, not a user error."""
    if exc is None:
        return False
    if isinstance(exc, EngineError):
        return True
    if isinstance(exc, CastkeepError):
        return False
    return isinstance(exc, (MemoryError, OSError, TimeoutError, RuntimeError))


# Shortest lease Prefect allows; renewed in the background while held, so a worker that dies
# frees its slot within about a minute (the server's repossessor revokes expired leases).
LEASE_SECONDS = 60


@contextlib.contextmanager
def gpu_slot(limit: str | None = GPU_LIMIT):
    """Hold one slot of the Prefect global concurrency `limit` (no-op when `limit` is None)."""
    if not limit:
        yield
        return
    from prefect.concurrency.sync import concurrency

    with concurrency(limit, occupy=1, lease_duration=LEASE_SECONDS):
        yield


@contextlib.contextmanager
def local_gpu_slot(lock_dir: Path, slots: int = 1, poll_s: float = 0.2):
    """One of `slots` machine-wide slots, as an OS file lock under `lock_dir`.

    Used when variants run in the request's own process (the embedded default). There the
    Prefect API is an ephemeral server whose lease bookkeeping dies with the process and that
    runs no lease repossessor, so a run killed while holding a Prefect slot would block every
    later run for good; the kernel releases a file lock the moment its holder dies.
    """
    import fcntl

    lock_dir = Path(lock_dir)
    lock_dir.mkdir(parents=True, exist_ok=True)
    files = [open(lock_dir / f"gpu-{i}.lock", "a+b") for i in range(max(1, int(slots)))]  # noqa: SIM115
    held = None
    try:
        while held is None:
            for f in files:
                try:
                    fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue
                held = f
                break
            else:
                time.sleep(poll_s)
        yield
    finally:
        if held is not None:
            fcntl.flock(held.fileno(), fcntl.LOCK_UN)
        for f in files:
            f.close()


def run_engine(
    engine_name: str,
    construct: dict[str, Any] | None,
    inp: EditInput,
    *,
    limit: str | None = GPU_LIMIT,
    before: Callable[[], None] | None = None,
) -> Generated:
    """Load (once) and call the engine, holding one slot of the global concurrency `limit`
    (None: no Prefect slot) and then this process's engine turn. `before` runs once the turn
    is taken, right before the engine starts (a last consent check: the turn can take an engine
    call's time to come); an exception from it ends the call with the engine not run."""
    engine = loaded_engine(engine_name, construct)
    t0 = time.perf_counter()
    with gpu_slot(limit):
        t1 = time.perf_counter()
        with _ENGINE_TURN:
            t_turn = time.perf_counter()
            if before is not None:
                before()
            t2, c2 = time.perf_counter(), time.thread_time()
            output = engine.predict(inp)
            t3, c3 = time.perf_counter(), time.thread_time()
    return Generated(output=output, engine_seconds=t3 - t2, wait_seconds=t1 - t0,
                     queue_seconds=t_turn - t1, cpu_seconds=c3 - c2)


def ensure_gpu_limit(slots: int, name: str = GPU_LIMIT) -> None:
    """Create the global concurrency limit if the Prefect API does not have it yet (embedded
    mode; `castkeep serve --setup` creates it for a server). An existing limit is left as is."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            try:
                client.create_global_concurrency_limit(
                    GlobalConcurrencyLimitCreate(name=name, limit=max(1, int(slots)))
                )
            except Exception:  # noqa: BLE001 - created concurrently by another run
                client.read_global_concurrency_limit_by_name(name)
