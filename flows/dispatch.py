"""Requests fulfilled as runs of the `fulfil-request` deployment (prefect.yaml): start one for a
catalogued request, check that something serves the deployment, and serve it from this process
(a Prefect runner: a subprocess per run). Used by `castkeep web` and `castkeep request submit
--detach`."""

from __future__ import annotations

import contextvars
import logging

from castkeep.errors import InfrastructureError

logger = logging.getLogger(__name__)

# The deployment of prefect.yaml that fulfils a request (flow name / deployment name).
FULFIL_DEPLOYMENT = "fulfil-request/fulfil-request"


def fulfil_deployment_ready() -> bool:
    """Whether a runner or worker polled the fulfil-request deployment recently (Prefect marks
    such a deployment READY)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import DeploymentStatus
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            deployment = client.read_deployment_by_name(FULFIL_DEPLOYMENT)
        except ObjectNotFound:
            return False
    return deployment.status == DeploymentStatus.READY


def require_fulfil_worker() -> None:
    if not fulfil_deployment_ready():
        raise InfrastructureError(
            f"nothing serves the {FULFIL_DEPLOYMENT} deployment: start `castkeep web` (or "
            "`castkeep serve`, or a Prefect worker for its pool), or submit without --detach"
        )


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
