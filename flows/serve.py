"""The deployments of prefect.yaml: read them, create the work pools and the `gpu` concurrency
limit they rely on, serve them in one process, and start a local Prefect server when none is
configured (an in-process ephemeral API has no scheduler, so schedules would never fire)."""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import yaml

from castkeep.errors import ConfigurationError
from castkeep.net import free_port
from castkeep.tasks.generate import GPU_LIMIT

DASK_TAG = "dask"  # prefect.yaml tag: this deployment's task fan-out may run on a Dask cluster
ENTRYPOINT_PACKAGE = "castkeep."  # entrypoints are module paths in the installed package


@dataclass(frozen=True)
class ScheduleSpec:
    cron: str | None = None
    interval_s: float | None = None
    timezone: str = "UTC"


@dataclass(frozen=True)
class DeploymentSpec:
    name: str
    entrypoint: str
    work_pool: str | None
    description: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)
    schedules: tuple[ScheduleSpec, ...] = ()
    concurrency_limit: int | None = None
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class SetupResult:
    work_pools_created: list[str]
    work_pools_existing: list[str]
    gpu_limit: int


def default_prefect_file() -> Path:
    """The deployments shipped with the package (castkeep/flows/prefect.yaml): found in an
    installed castkeep as in a checkout."""
    return Path(__file__).resolve().with_name("prefect.yaml")


def load_plan(path: Path | None = None) -> list[DeploymentSpec]:
    path = path or default_prefect_file()
    if not path.is_file():
        raise ConfigurationError(f"{path} not found: pass --prefect-file with a prefect.yaml "
                                 "(castkeep ships one as castkeep/flows/prefect.yaml)")
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"{path} is not valid YAML: {exc}") from exc
    specs = []
    for i, d in enumerate(doc.get("deployments") or []):
        where = f"{path}: deployments[{i}]"
        if not isinstance(d, dict) or not d.get("name") or not d.get("entrypoint"):
            raise ConfigurationError(f"{where} needs a name and an entrypoint")
        schedules = []
        for s in d.get("schedules") or []:
            if "cron" in s:
                schedules.append(ScheduleSpec(cron=str(s["cron"]), timezone=s.get("timezone", "UTC")))
            elif "interval" in s:
                schedules.append(ScheduleSpec(interval_s=float(s["interval"]), timezone=s.get("timezone", "UTC")))
            else:
                raise ConfigurationError(f"{where}: schedules take `cron` or `interval`")
        specs.append(
            DeploymentSpec(
                name=d["name"],
                entrypoint=d["entrypoint"],
                work_pool=(d.get("work_pool") or {}).get("name"),
                description=d.get("description") or "",
                parameters=dict(d.get("parameters") or {}),
                schedules=tuple(schedules),
                concurrency_limit=d.get("concurrency_limit"),
                tags=tuple(d.get("tags") or ()),
            )
        )
    if not specs:
        raise ConfigurationError(f"{path} has no deployments")
    return specs


def import_entrypoint(entrypoint: str):
    """`castkeep.flows.audit:audit` -> the flow object (the form `prefect deploy` and a worker
    import too, from the installed package)."""
    module_name, _, attr = entrypoint.partition(":")
    if not attr or not module_name.startswith(ENTRYPOINT_PACKAGE) or "/" in module_name:
        raise ConfigurationError(
            f"entrypoint {entrypoint!r} must look like castkeep.flows.<module>:<flow> in prefect.yaml"
        )
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise ConfigurationError(f"entrypoint {entrypoint!r}: cannot import {module_name}: {exc}") from exc
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ConfigurationError(f"entrypoint {entrypoint!r}: {module_name} has no {attr!r}") from None


async def setup(plan: list[DeploymentSpec], *, gpu_slots: int) -> SetupResult:
    """Create (or keep) every work pool the plan names as a process pool, and upsert the `gpu`
    global concurrency limit. Safe to re-run."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import (
        GlobalConcurrencyLimitCreate,
        GlobalConcurrencyLimitUpdate,
        WorkPoolCreate,
    )
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
    from prefect.workers.process import ProcessWorker

    if gpu_slots < 1:
        raise ConfigurationError("CASTKEEP_PREFECT__GPU_CONCURRENCY must be at least 1")
    created, existing = [], []
    pools = sorted({d.work_pool for d in plan if d.work_pool})
    async with get_client() as client:
        for name in pools:
            try:
                await client.create_work_pool(
                    WorkPoolCreate(
                        name=name,
                        type="process",
                        base_job_template=ProcessWorker.get_default_base_job_template(),
                    )
                )
                created.append(name)
            except ObjectAlreadyExists:
                existing.append(name)
        try:
            await client.read_global_concurrency_limit_by_name(GPU_LIMIT)
            await client.update_global_concurrency_limit(
                GPU_LIMIT, GlobalConcurrencyLimitUpdate(limit=gpu_slots)
            )
        except ObjectNotFound:
            await client.create_global_concurrency_limit(
                GlobalConcurrencyLimitCreate(name=GPU_LIMIT, limit=gpu_slots, active=True)
            )
    return SetupResult(created, existing, gpu_slots)


def scale_out(flow: Any, dask_address: str | None) -> Any:
    """`flow` with its tasks sent to the Dask cluster at `dask_address` (e.g.
    tcp://scheduler:8786), or unchanged when no address is configured."""
    if not dask_address:
        return flow
    try:
        from prefect_dask import DaskTaskRunner
    except ImportError as exc:  # pragma: no cover - a dependency of castkeep
        raise ConfigurationError(
            "CASTKEEP_PREFECT__DASK_ADDRESS is set but prefect-dask is not installed: pip install prefect-dask"
        ) from exc
    return flow.with_options(task_runner=DaskTaskRunner(address=dask_address))


def to_runner_deployments(plan: list[DeploymentSpec], *, dask_address: str | None = None) -> list[Any]:
    """Runner deployments for `prefect.serve`; those tagged `dask` in prefect.yaml fan out on the
    Dask cluster when `dask_address` is given."""
    from prefect.types.entrypoint import EntrypointType
    from prefect.schedules import Cron, Interval

    deployments = []
    for spec in plan:
        flow = import_entrypoint(spec.entrypoint)
        if DASK_TAG in spec.tags:
            flow = scale_out(flow, dask_address)
        schedules = [
            Cron(s.cron, timezone=s.timezone) if s.cron else Interval(s.interval_s, timezone=s.timezone)
            for s in spec.schedules
        ]
        deployments.append(
            flow.to_deployment(
                name=spec.name,
                schedules=schedules or None,
                parameters=spec.parameters or None,
                description=spec.description or None,
                tags=list(spec.tags) or None,
                concurrency_limit=spec.concurrency_limit,
                # The module path, not a file path relative to the working directory: runs
                # import the installed package, wherever `castkeep serve` was started.
                entrypoint_type=EntrypointType.MODULE_PATH,
            )
        )
    return deployments


# --- a local Prefect server -------------------------------------------------------------------


def wait_healthy(api_url: str, *, timeout: float, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise ConfigurationError(f"the Prefect server exited early (code {proc.returncode})")
        try:
            with urllib.request.urlopen(f"{api_url}/health", timeout=2) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    raise ConfigurationError(f"the Prefect server at {api_url} was not healthy within {timeout:.0f}s")


def stop_process(proc: subprocess.Popen, *, terms: int = 2, grace: float = 10.0) -> int:
    """SIGTERM up to `terms` times (a Prefect worker only exits on the second), then SIGKILL."""
    for _ in range(terms):
        if proc.poll() is not None:
            break
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace)
    if proc.poll() is None:
        proc.kill()
    return proc.wait(timeout=grace)


def server_env(home: Path, api_url: str | None = None) -> dict[str, str]:
    """Environment for Prefect processes tied to one local server with its own home and sqlite."""
    env = dict(os.environ)
    env.update(
        PREFECT_HOME=str(home),
        PREFECT_API_DATABASE_CONNECTION_URL=f"sqlite+aiosqlite:///{home / 'prefect.db'}",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_UI_ENABLED="false",
        PREFECT_LOGGING_LEVEL=os.environ.get("PREFECT_LOGGING_LEVEL", "INFO"),
    )
    env.pop("PREFECT_API_URL", None)
    if api_url:
        env["PREFECT_API_URL"] = api_url
    return env


@contextlib.contextmanager
def local_server(home: Path, *, port: int | None = None, timeout: float = 180.0) -> Iterator[str]:
    """Run `prefect server start` on 127.0.0.1 with its state under `home`; yield its API URL."""
    home.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    log = open(home / "server.log", "ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=server_env(home),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_healthy(api_url, timeout=timeout, proc=proc)
        yield api_url
    finally:
        stop_process(proc, terms=1, grace=15.0)
        log.close()
