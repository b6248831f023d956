"""Background work of the web server in worker threads of this process: audit runs, and request
fulfilment when the app is made with dispatch="thread" (deployment runs: flows/dispatch.py). The
caller's context (Prefect API settings) travels with each job."""

from __future__ import annotations

import contextvars
import logging
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

logger = logging.getLogger(__name__)


class Jobs:
    def __init__(self, workers: int = 2) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="castkeep-job")
        self.futures: dict[str, Future] = {}

    def submit(self, name: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> str:
        job_id = str(uuid.uuid4())
        ctx = contextvars.copy_context()
        future = self._pool.submit(ctx.run, fn, *args, **kwargs)
        future.add_done_callback(lambda f: self._done(name, job_id, f))
        self.futures[job_id] = future
        return job_id

    def _done(self, name: str, job_id: str, future: Future) -> None:
        if future.cancelled():  # the server stopped first; a request stays resumable
            logger.warning("background %s (job %s) did not start before the server stopped",
                           name, job_id)
            return
        exc = future.exception()
        if exc is not None:
            # The flow records its own outcome (a failed request keeps its reason).
            logger.warning("background %s (job %s) ended with %s: %s", name, job_id,
                           type(exc).__name__, exc)

    def shutdown(self, wait: bool = True) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=True)


def fulfil(request_id: str, actor: str) -> None:
    from castkeep.flows.fulfil_request import fulfil_request

    fulfil_request(request_id, actor=actor)


def audit(actor: str) -> None:
    from castkeep.flows.audit import audit as audit_flow

    audit_flow(actor=actor)
