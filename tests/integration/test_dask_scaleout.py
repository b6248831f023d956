"""Scale-out: with CASTKEEP_PREFECT__DASK_ADDRESS set, the audit's integrity fan-out runs on an
existing Dask cluster (here a real 2-process LocalCluster on 127.0.0.1) and finds exactly what
the default thread runner finds."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]


@pytest.fixture(scope="module")
def dask_cluster():
    from distributed import LocalCluster

    cluster = LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, host="127.0.0.1",
        dashboard_address=None, memory_limit="2GiB",
    )
    try:
        yield cluster
    finally:
        cluster.close()


def test_scale_out_is_a_no_op_without_an_address():
    from prefect_dask import DaskTaskRunner

    from castkeep.flows.audit import audit_checks
    from castkeep.flows.serve import scale_out

    assert scale_out(audit_checks, None) is audit_checks
    assert scale_out(audit_checks, "") is audit_checks
    scaled = scale_out(audit_checks, "tcp://127.0.0.1:8786")
    assert isinstance(scaled.task_runner, DaskTaskRunner)
    assert scaled.task_runner.address == "tcp://127.0.0.1:8786"


def test_audit_fan_out_runs_on_the_dask_cluster(compliance_catalogue, dask_cluster, monkeypatch):
    from distributed import Client, get_task_stream

    from castkeep.flows.audit import audit
    from castkeep.flows.settings import get_settings
    from tests.plugins.compliance import flip_byte

    cat = compliance_catalogue(untracked=True)
    # Tamper one object so the distributed check has something to find.
    flip_byte(cat.runtime.store, cat.keys["b_biden"])

    local = audit()
    monkeypatch.setenv("CASTKEEP_PREFECT__DASK_ADDRESS", dask_cluster.scheduler_address)
    get_settings.cache_clear()
    with Client(dask_cluster.scheduler_address) as client, get_task_stream(client) as stream:
        distributed = audit()
    ran_on = {t["worker"] for t in stream.data}
    # Every check task (5 kinds; one integrity chunk here) ran on the cluster's worker processes.
    assert len(stream.data) >= 5
    assert ran_on and ran_on <= set(dask_cluster.scheduler_info["workers"])

    strip = lambda r: sorted((v["kind"], v["asset_id"]) for v in r["violations"])  # noqa: E731
    assert strip(distributed) == strip(local)
    assert ("hash_mismatch", str(cat.assets["b_biden"])) in strip(distributed)
