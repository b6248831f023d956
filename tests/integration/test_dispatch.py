"""Requests as runs of the fulfil-request deployment (flows/dispatch.py): `castkeep request submit
FILE --detach` refuses in one line (exit 5) when nothing serves the deployment, and otherwise
returns at once while a runner fulfils the request."""

from __future__ import annotations

import json
import os
import time

import sqlalchemy as sa

from tests.plugins.prefect_harness import run_castkeep
from tests.plugins.request import request_doc, write_request


def _forget_deployment() -> None:
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:  # an earlier test may have registered it
        try:
            client.delete_deployment(client.read_deployment_by_name(
                "fulfil-request/fulfil-request").id)
        except ObjectNotFound:
            pass


def _requests() -> list[tuple[str, str]]:
    engine = sa.create_engine(os.environ["CASTKEEP_DATABASE__URL"])
    try:
        with engine.connect() as conn:
            return [(str(i), s) for i, s in conn.execute(sa.text(
                "SELECT id, status FROM asset_request ORDER BY created_at"))]
    finally:
        engine.dispose()


def test_detach_without_a_worker_exits_5_and_catalogues_nothing(request_env, prefect_harness,
                                                                 tmp_path):
    _forget_deployment()
    path = write_request(tmp_path, request_doc(variants=1))
    result = run_castkeep("request", "submit", str(path), "--detach", home=request_env.home)
    assert result.returncode == 5, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: nothing serves the fulfil-request/fulfil-request deployment")
    assert result.stdout == "" and _requests() == []


def test_detach_returns_while_the_runner_fulfils(request_env, prefect_harness, tmp_path):
    from castkeep.flows.dispatch import FulfilRunner, fulfil_deployment_ready

    _forget_deployment()
    runner = FulfilRunner()
    runner.start()
    try:
        deadline = time.monotonic() + 120
        while not fulfil_deployment_ready():
            assert time.monotonic() < deadline, "the runner never polled its deployment"
            time.sleep(1)
        path = write_request(tmp_path, request_doc(variants=1))
        result = run_castkeep("request", "submit", str(path), "--detach", "--json",
                              home=request_env.home)
        assert result.returncode == 0, result.stderr
        out = json.loads(result.stdout)
        assert out["status"] == "received" and out["flow_run_id"]
        deadline = time.monotonic() + 600
        while dict(_requests())[out["request_id"]] in ("received", "running"):
            assert time.monotonic() < deadline
            time.sleep(1)
        assert dict(_requests())[out["request_id"]] == "completed"
    finally:
        runner.stop()
