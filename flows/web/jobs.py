"""Background work of the web server: request fulfilment and audit runs, each a Prefect flow run
in a worker thread of this process (the embedded default). The caller's context (Prefect API
settings) travels with each job."""

from __future__ import annotations

import contextvars
import logging
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from castkeep.errors import InfrastructureError

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


# The deployment of prefect.yaml that fulfils a request (flow name / deployment name).
FULFIL_DEPLOYMENT = "fulfil-request/fulfil-request"


def start_fulfil_run(request_id: str, actor: str) -> str:
    """A run of the fulfil-request deployment for this request (not waited for); its flow run id."""
    from prefect.deployments import run_deployment
    from prefect.exceptions import ObjectNotFound, PrefectHTTPStatusError

    try:
        run = run_deployment(FULFIL_DEPLOYMENT, parameters={"request_id": request_id,
                                                            "actor": actor}, timeout=0)
    except (ObjectNotFound, PrefectHTTPStatusError) as exc:
        raise InfrastructureError(
            f"the Prefect server has no {FULFIL_DEPLOYMENT} deployment to run request "
            f"{request_id}: deploy prefect.yaml (`prefect deploy --all`) or run `castkeep serve`; "
            f"the request stays received ({type(exc).__name__})"
        ) from None
    return str(run.id)


class FulfilRunner:
    """Serves the fulfil-request deployment from this process: a Prefect runner (in a thread of
    its own) that executes each deployment run in a subprocess, like a process worker."""

    def __init__(self) -> None:
        self._runner = None
        self._loop = None
        self._thread = None

    def start(self) -> None:
        import asyncio
        import os
        import threading

        from prefect.runner import Runner

        from castkeep.flows.serve import load_plan, to_runner_deployments

        name = FULFIL_DEPLOYMENT.split("/", 1)[1]
        plan = [d for d in load_plan() if d.name == name]
        self._runner = Runner(name=f"castkeep-web-{os.getpid()}", query_seconds=2,
                              pause_on_shutdown=False)
        ready = threading.Event()
        failed: list[BaseException] = []

        async def serve(deployments) -> None:
            try:
                for deployment in deployments:  # registered with the API before runs are taken
                    await self._runner.aadd_deployment(deployment)
            except BaseException as exc:
                failed.append(exc)
                raise
            finally:
                ready.set()
            await self._runner.start()

        def run() -> None:
            try:
                # Built here, outside any event loop: Prefect's sync API then runs synchronously.
                deployments = to_runner_deployments(plan)
            except BaseException as exc:
                failed.append(exc)
                ready.set()
                raise
            self._loop = asyncio.new_event_loop()
            self._loop.run_until_complete(serve(deployments))

        self._thread = threading.Thread(target=contextvars.copy_context().run, args=(run,),
                                        name="castkeep-fulfil-runner", daemon=True)
        self._thread.start()
        if not ready.wait(120) or failed:
            raise InfrastructureError(
                "could not register the fulfil-request deployment with the Prefect API"
                + (f": {failed[0]}" if failed else " in 120 s")
            )

    def stop(self) -> None:
        import asyncio

        if self._runner is None or self._loop is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._runner.astop(), self._loop).result(timeout=60)
        except Exception as exc:  # noqa: BLE001 - shutting down anyway
            logger.warning("the fulfil runner did not stop cleanly: %s", exc)
        self._thread.join(timeout=60)
