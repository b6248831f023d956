"""What the web benchmarks share: the benchmark's accounts, the real app served by uvicorn on
127.0.0.1 in a thread, and the p50/p95/max summary of a list of request times."""

from __future__ import annotations

import contextlib
import contextvars
import statistics
import threading
import time
from collections.abc import Iterator


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def latency_summary(ms: list[float]) -> dict[str, float]:
    return {"n": len(ms), "p50_ms": round(statistics.median(ms), 1),
            "p95_ms": round(_pct(ms, 0.95), 1), "max_ms": round(max(ms), 1)}


def requester_token(settings, reviewer: tuple[str, str] | None = None) -> str:
    """Adds the requester `bench` (and the reviewer (username, password), if given); returns an
    API token of `bench`."""
    from castkeep.flows.runtime import open_runtime
    from castkeep.tasks.accounts import add_user, create_token

    with open_runtime(settings) as rt:
        add_user(rt, "bench", ["requester"], password=None, actor="bench")
        if reviewer is not None:
            add_user(rt, reviewer[0], ["reviewer"], password=reviewer[1], actor="bench")
        return create_token(rt, "bench", actor="bench")["token"]


@contextlib.contextmanager
def serve_app(settings) -> Iterator[str]:
    """Yields the app's base URL; on exit the server stops after the fulfilments under way."""
    import uvicorn

    from castkeep.flows.web import create_app
    from castkeep.net import free_port

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=contextvars.copy_context().run, args=(server.run,),
                              daemon=True)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=900)
