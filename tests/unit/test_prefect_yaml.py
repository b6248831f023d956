"""prefect.yaml against the code it deploys: every entrypoint is a real flow, parameters match the
flow signatures, scheduled deployments supply every required parameter, schedules parse, and
pools match the compose workers."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
import yaml
from prefect import Flow
from prefect.schedules import Cron

from castkeep.flows import serve as serve_mod

REPO = Path(__file__).resolve().parents[1]
while not (REPO / "pyproject.toml").exists():  # tests may live in a sub-folder
    REPO = REPO.parent

EXPECTED = {
    "ingest": ("castkeep.flows.ingest_references:ingest_references", "cpu"),
    "fulfil-request": ("castkeep.flows.fulfil_request:fulfil_request", "gpu"),
    "fulfil-variant": ("castkeep.flows.fulfil_request:fulfil_variant", "gpu"),
    "audit-nightly": ("castkeep.flows.audit:audit", "cpu"),
    "expire-consents": ("castkeep.flows.revoke:expire_consents", "cpu"),
}


@pytest.fixture(scope="module")
def plan():
    return {d.name: d for d in serve_mod.load_plan()}


def test_deployments_entrypoints_and_pools(plan):
    assert {n: (d.entrypoint, d.work_pool) for n, d in plan.items()} == EXPECTED


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_entrypoint_is_a_flow_taking_the_configured_parameters(plan, name):
    spec = plan[name]
    flow = serve_mod.import_entrypoint(spec.entrypoint)
    assert isinstance(flow, Flow)
    assert flow.fn.__name__ == spec.entrypoint.rsplit(":", 1)[1]
    params = inspect.signature(flow.fn).parameters
    assert set(spec.parameters) <= set(params), f"{name}: unknown parameter(s)"
    required = {p for p, v in params.items() if v.default is inspect.Parameter.empty}
    if spec.schedules:
        # A scheduled run has no one to supply a missing parameter.
        assert required <= set(spec.parameters), f"{name}: scheduled without {required - set(spec.parameters)}"


def test_schedules(plan):
    assert plan["audit-nightly"].schedules[0].cron == "0 2 * * *"
    assert plan["expire-consents"].schedules[0].cron == "30 1 * * *"
    assert plan["ingest"].schedules[0].interval_s == 900
    assert plan["fulfil-request"].schedules == ()
    assert plan["fulfil-variant"].schedules == ()
    for spec in plan.values():
        for s in spec.schedules:
            if s.cron:
                Cron(s.cron, timezone=s.timezone)  # raises on a bad cron string


def test_pools_match_the_compose_workers():
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    worker_pools = {
        s["command"][s["command"].index("--pool") + 1]
        for s in compose["services"].values()
        if isinstance(s.get("command"), list) and s["command"][:3] == ["prefect", "worker", "start"]
    }
    assert {d.work_pool for d in serve_mod.load_plan()} == worker_pools == {"cpu", "gpu"}


def test_dask_tag_marks_the_fan_out_deployments(plan):
    tagged = {n for n, d in plan.items() if serve_mod.DASK_TAG in d.tags}
    assert tagged == {"ingest", "fulfil-request"}


def test_fulfil_variant_is_the_deployment_fulfil_request_dispatches_to(plan):
    # run_deployment addresses "<flow name>/<deployment name>"; a mismatch only shows when a
    # scaled-out request runs (ObjectNotFound), so check it here.
    from castkeep.flows import fulfil_request as fr

    spec = plan["fulfil-variant"]
    flow = serve_mod.import_entrypoint(spec.entrypoint)
    assert flow is fr.fulfil_variant
    assert f"{flow.name}/{spec.name}" == fr.VARIANT_DEPLOYMENT
    assert spec.work_pool == "gpu"
    params = inspect.signature(flow.fn).parameters
    # _dispatch_remote passes exactly these parameters.
    assert set(params) == {"request_id", "variant"}


def test_the_deployments_ship_inside_the_package():
    # castkeep serve reads the copy inside castkeep.flows (package data), not a checkout's root;
    # the root's prefect.yaml (for `prefect deploy` in a checkout) is that same file.
    shipped = serve_mod.default_prefect_file()
    assert shipped.parent == Path(serve_mod.__file__).resolve().parent
    assert (REPO / "prefect.yaml").resolve() == shipped
    import tomllib

    package_data = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"]
    assert "prefect.yaml" in package_data["castkeep.flows"]


def test_entrypoints_are_module_paths_a_worker_can_import(plan):
    from prefect.utilities.importtools import import_object

    for spec in plan.values():
        assert spec.entrypoint.startswith("castkeep.flows.") and ".py" not in spec.entrypoint
        # What `prefect deploy` and a worker do with it.
        assert import_object(spec.entrypoint) is serve_mod.import_entrypoint(spec.entrypoint)
