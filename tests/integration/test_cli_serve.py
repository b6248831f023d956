"""`castkeep serve --setup` against a real Prefect API (the session's test harness), and the
serve module's plan reading. Serving with a worker on a real `prefect server start` is in
tests/integration/test_deployment.py."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from castkeep.errors import ConfigurationError
from castkeep.flows import serve as serve_mod


async def _pool(name: str):
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        return await client.read_work_pool(name)


async def _gpu_limit():
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        return await client.read_global_concurrency_limit_by_name(serve_mod.GPU_LIMIT)


def _plan(tmp_path: Path, pools: tuple[str, str]) -> Path:
    path = tmp_path / "prefect.yaml"
    path.write_text(
        f"""
deployments:
  - name: a
    entrypoint: castkeep.flows.audit:audit
    schedules: [{{cron: "0 2 * * *", timezone: UTC}}]
    work_pool: {{name: {pools[0]}}}
  - name: b
    entrypoint: castkeep.flows.revoke:expire_consents
    schedules: [{{interval: 60}}]
    parameters: {{x: 1}}
    work_pool: {{name: {pools[1]}}}
"""
    )
    return path


def test_setup_creates_process_pools_and_gpu_limit_idempotently(prefect_harness, tmp_path):
    pools = (f"cpu-{uuid.uuid4().hex[:8]}", f"gpu-{uuid.uuid4().hex[:8]}")
    plan = serve_mod.load_plan(_plan(tmp_path, pools))
    first = asyncio.run(serve_mod.setup(plan, gpu_slots=2))
    assert sorted(first.work_pools_created) == sorted(pools) and first.work_pools_existing == []
    for name in pools:
        pool = asyncio.run(_pool(name))
        assert pool.type == "process"
        assert "command" in pool.base_job_template["variables"]["properties"]
    assert asyncio.run(_gpu_limit()).limit == 2

    again = asyncio.run(serve_mod.setup(plan, gpu_slots=3))
    assert again.work_pools_created == [] and sorted(again.work_pools_existing) == sorted(pools)
    assert asyncio.run(_gpu_limit()).limit == 3


def test_setup_refuses_zero_gpu_slots(prefect_harness, tmp_path):
    plan = serve_mod.load_plan(_plan(tmp_path, ("p1", "p2")))
    with pytest.raises(ConfigurationError, match="CASTKEEP_PREFECT__GPU_CONCURRENCY"):
        asyncio.run(serve_mod.setup(plan, gpu_slots=0))


def test_cli_setup_only(prefect_harness, tmp_path, monkeypatch, castkeep_home):
    from castkeep.flows.cli import _register, app

    _register()
    pools = (f"c-{uuid.uuid4().hex[:8]}", f"g-{uuid.uuid4().hex[:8]}")
    monkeypatch.setenv("CASTKEEP_PREFECT__GPU_CONCURRENCY", "4")
    result = CliRunner().invoke(
        app, ["serve", "--setup", "--no-serve", "--prefect-file", str(_plan(tmp_path, pools))]
    )
    assert result.exit_code == 0, result.output
    assert "gpu concurrency limit: 4" in result.output
    assert asyncio.run(_pool(pools[1])).type == "process"
    assert asyncio.run(_gpu_limit()).limit == 4


def test_cli_rejects_unknown_deployment(tmp_path, castkeep_home):
    from castkeep.flows.cli import _register, app

    _register()
    result = CliRunner().invoke(
        app, ["serve", "--only", "nope", "--prefect-file", str(_plan(tmp_path, ("x", "y")))]
    )
    assert result.exit_code != 0
    assert "unknown deployment(s) nope" in str(result.exception)


def test_plan_reads_schedules_parameters_and_pools(tmp_path):
    plan = {d.name: d for d in serve_mod.load_plan(_plan(tmp_path, ("p1", "p2")))}
    assert plan["a"].schedules[0].cron == "0 2 * * *" and plan["a"].work_pool == "p1"
    assert plan["b"].schedules[0].interval_s == 60.0 and plan["b"].parameters == {"x": 1}


@pytest.mark.parametrize(
    "text, message",
    [
        ("deployments: []", "has no deployments"),
        ("deployments: [{name: a}]", "needs a name and an entrypoint"),
        ("deployments: [{name: a, entrypoint: castkeep.flows.x:y, schedules: [{rrule: x}]}]", "cron` or `interval"),
        ("deployments: [", "not valid YAML"),
    ],
)
def test_plan_errors_name_the_problem(tmp_path, text, message):
    path = tmp_path / "prefect.yaml"
    path.write_text(text)
    with pytest.raises(ConfigurationError, match=message):
        serve_mod.load_plan(path)


@pytest.mark.parametrize("entrypoint", ["flows/serve.py:load_plan", "elsewhere.x:y",
                                        "castkeep.flows.serve"])
def test_entrypoints_must_be_package_module_paths(entrypoint):
    with pytest.raises(ConfigurationError, match=r"castkeep\.flows\.<module>:<flow>"):
        serve_mod.import_entrypoint(entrypoint)


def test_entrypoints_resolve_to_package_modules():
    with pytest.raises(ConfigurationError, match="has no 'nope'"):
        serve_mod.import_entrypoint("castkeep.flows.serve:nope")
    with pytest.raises(ConfigurationError, match="cannot import castkeep.flows.nope"):
        serve_mod.import_entrypoint("castkeep.flows.nope:x")
    assert serve_mod.import_entrypoint("castkeep.flows.serve:load_plan") is serve_mod.load_plan


def test_serve_registers_fulfil_variant_under_the_name_fulfil_request_dispatches_to():
    # `castkeep serve` registers what to_runner_deployments builds from the project's prefect.yaml;
    # a scaled-out request reaches its variants only through this exact "<flow>/<deployment>".
    from castkeep.flows.fulfil_request import VARIANT_DEPLOYMENT

    deployments = serve_mod.to_runner_deployments(serve_mod.load_plan())
    by_name = {f"{d.flow_name}/{d.name}": d for d in deployments}
    assert VARIANT_DEPLOYMENT in by_name
    variant = by_name[VARIANT_DEPLOYMENT]
    # A module path: the run imports the installed package, wherever serve was started.
    assert variant.entrypoint == "castkeep.flows.fulfil_request.fulfil_variant"
    assert not variant.schedules
    assert "dask" not in (variant.tags or [])
    assert {"fulfil-request/fulfil-request", "audit/audit-nightly"} <= set(by_name)
