"""One temporary Prefect API for the whole test session (prefect_test_harness).

- `run_castkeep(*args, home=)`: the real `castkeep` console script in a child process, on the
  test catalogue (the CASTKEEP_ environment) and this session's Prefect API.
- `cli` (module): `cli(*args)` invokes the typer app in process (typer's CliRunner) and returns
  its Result, for tests where the child process's stderr and exit code are not the point.
- `stop_local_prefect_servers` (automatic, whole session): at the end of the session, stops every
  long-lived local Prefect server (flows/prefect_server.py) and command server
  (flows/command_server.py) that a test started in a data dir under pytest's temporary
  directory, so no test leaves one running.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.fixture(scope="session", autouse=True)
def stop_local_prefect_servers(tmp_path_factory: pytest.TempPathFactory):
    yield
    from castkeep.flows.command_server import stop_command_server
    from castkeep.flows.prefect_server import stop_server

    base = tmp_path_factory.getbasetemp()
    # Commands run with a user's default environment (the demo's test) use a command server.
    for log in base.rglob("logs/command-server.log"):
        stop_command_server(log.parent.parent)
    for state in base.rglob("prefect/server.json"):
        stop_server(state.parent.parent)


@pytest.fixture(scope="session")
def prefect_harness():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="module")
def cli():
    from typer.testing import CliRunner

    from castkeep.flows.cli import _register, app

    _register()
    runner = CliRunner()
    return lambda *args: runner.invoke(app, list(args))


def run_castkeep(*args: str, home: Path, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    """Run `castkeep ARGS` as a user would (needs the prefect_harness fixture active)."""
    from prefect.settings import PREFECT_API_URL

    env = {**os.environ, "CASTKEEP_HOME": str(home), "PREFECT_API_URL": PREFECT_API_URL.value()}
    # The venv's own entry point: CI does not put the venv on PATH.
    return subprocess.run([str(Path(sys.executable).parent / "castkeep"), *args], env=env,
                          capture_output=True, text=True, timeout=timeout)
