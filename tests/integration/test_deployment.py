"""The real distributed path, end to end: `prefect server start` on 127.0.0.1 (own PREFECT_HOME,
sqlite), `castkeep serve --setup` creates the process work pools and the gpu limit, `prefect
deploy` registers the audit deployment from prefect.yaml, a `prefect worker` on the cpu pool picks
up a triggered run, and the run completes against the test catalogue."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from castkeep.flows import serve as serve_mod

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
while not (ROOT / "pyproject.toml").exists():  # the repository root (prefect.yaml links to the shipped one)
    ROOT = ROOT.parent
RUN_TIMEOUT = 300.0


def _run(args: list[str], env: dict[str, str], timeout: float = 180.0) -> str:
    proc = subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{args} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


def _flow_run_state(env: dict[str, str], flow_run_id: str) -> str:
    out = _run(
        [sys.executable, "-c",
         "import asyncio, sys\n"
         "from prefect.client.orchestration import get_client\n"
         "async def main():\n"
         "    async with get_client() as c:\n"
         "        r = await c.read_flow_run(sys.argv[1])\n"
         "        print(r.state.type.value)\n"
         "asyncio.run(main())\n",
         flow_run_id],
        env,
        timeout=60,
    )
    return out.strip().splitlines()[-1]


def test_worker_runs_the_deployed_audit_flow(runtime_env: Path, clean_db: str, tmp_path: Path):
    prefect_home = tmp_path / "prefect-home"
    with serve_mod.local_server(prefect_home) as api_url:
        env = serve_mod.server_env(prefect_home, api_url)
        env.update(
            CASTKEEP_HOME=str(runtime_env),
            CASTKEEP_DATABASE__URL=clean_db,
            CASTKEEP_ACTOR="deployment-test",
            CASTKEEP_PREFECT__GPU_CONCURRENCY="2",
            PREFECT_LOGGING_LEVEL="WARNING",
        )
        castkeep = str(Path(sys.executable).with_name("castkeep"))
        setup_out = _run([castkeep, "serve", "--setup", "--no-serve"], env)
        assert "work pools created: cpu, gpu" in setup_out

        _run(
            [sys.executable, "-m", "prefect", "--no-prompt", "deploy", "--prefect-file", "prefect.yaml",
             "--name", "audit-nightly"],
            env,
        )
        # Trigger a run (what `prefect deployment run` does), with a parameter override.
        flow_run_id = _run(
            [sys.executable, "-c",
             "from prefect.deployments import run_deployment\n"
             "r = run_deployment('audit/audit-nightly', parameters={'expiring_within_days': 7}, timeout=0)\n"
             "print(r.id)\n"],
            env,
            timeout=60,
        ).strip().splitlines()[-1]

        log = open(tmp_path / "worker.log", "wb")
        worker = subprocess.Popen(
            [sys.executable, "-m", "prefect", "worker", "start", "--pool", "cpu", "--type", "process",
             "--prefetch-seconds", "5"],
            env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        try:
            deadline = time.monotonic() + RUN_TIMEOUT
            state = "SCHEDULED"
            while time.monotonic() < deadline:
                state = _flow_run_state(env, flow_run_id)
                if state in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
                    break
                assert worker.poll() is None, "the worker exited early"
                time.sleep(2)
        finally:
            # A Prefect worker stops only on its second SIGTERM.
            code = serve_mod.stop_process(worker, terms=2, grace=15)
            log.close()
        worker_log = (tmp_path / "worker.log").read_text(errors="replace")
        assert state == "COMPLETED", worker_log[-4000:]
        assert code is not None

    # The run really audited this catalogue: its audit event and stored report are there.
    from castkeep.db import schema
    from castkeep.db.engine import make_engine

    engine = make_engine(clean_db)
    try:
        with engine.connect() as conn:
            row = conn.execute(
                sa.select(schema.AuditEvent.actor, schema.AuditEvent.payload)
                .where(schema.AuditEvent.kind == "audit.completed")
            ).one()
    finally:
        engine.dispose()
    assert row.actor == "deployment-test"
    from castkeep.flows.runtime import build_store
    from castkeep.flows.settings import get_settings

    report = json.loads(build_store(get_settings()).get_bytes(row.payload["report_key"]))
    assert report["expiring_within_days"] == 7 and report["checked"] == 0 and report["clean"] is True


def _deployments(env: dict[str, str]) -> dict[str, dict]:
    out = _run(
        [sys.executable, "-c",
         "import asyncio, json\n"
         "from prefect.client.orchestration import get_client\n"
         "async def main():\n"
         "    async with get_client() as c:\n"
         "        ds = await c.read_deployments()\n"
         "        print(json.dumps({d.name: {'schedules': [s.schedule.model_dump(mode='json') for s in d.schedules],\n"
         "                                   'parameters': d.parameters} for d in ds}))\n"
         "asyncio.run(main())\n"],
        env,
        timeout=60,
    )
    return json.loads(out.strip().splitlines()[-1])


def test_castkeep_serve_registers_every_deployment_with_its_schedule(runtime_env: Path, tmp_path: Path):
    prefect_home = tmp_path / "prefect-home"
    with serve_mod.local_server(prefect_home) as api_url:
        env = serve_mod.server_env(prefect_home, api_url)
        env.update(CASTKEEP_HOME=str(runtime_env), PREFECT_LOGGING_LEVEL="WARNING")
        log = open(tmp_path / "serve.log", "wb")
        serve = subprocess.Popen(
            [str(Path(sys.executable).with_name("castkeep")), "serve"],
            env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 120
            found: dict[str, dict] = {}
            while time.monotonic() < deadline and len(found) < 5:
                assert serve.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
                found = _deployments(env)
                time.sleep(2)
        finally:
            code = serve_mod.stop_process(serve, terms=2, grace=15)
            log.close()
    assert sorted(found) == [
        "audit-nightly", "expire-consents", "fulfil-request", "fulfil-variant", "ingest"
    ]
    assert found["audit-nightly"]["schedules"][0]["cron"] == "0 2 * * *"
    assert found["expire-consents"]["schedules"][0]["cron"] == "30 1 * * *"
    assert found["ingest"]["schedules"][0]["interval"] == 900.0
    assert found["ingest"]["parameters"] == {"source": "/drop"}
    assert found["fulfil-request"]["schedules"] == []
    assert found["fulfil-variant"]["schedules"] == []
    assert code is not None
