"""`castkeep status`: healthy report (text and JSON); otherwise a one-line error, exit 5 when a
service is unavailable and 2 when a setting is wrong."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from castkeep.flows import cli

CASTKEEP = str(Path(sys.executable).parent / "castkeep")


@pytest.fixture(scope="module")
def runner() -> CliRunner:
    cli._register()
    return CliRunner()


def test_status_text_is_healthy(runner: CliRunner, runtime_env: Path):
    result = runner.invoke(cli.app, ["status"])
    assert result.exit_code == 0, result.output
    assert f"data dir:      {runtime_env}" in result.stdout
    assert "database:      ok (external)" in result.stdout
    assert "PostgreSQL 1" in result.stdout and "pgvector 0." in result.stdout
    assert "object store:  ok" in result.stdout
    assert result.stderr == ""


def test_status_json_is_exactly_the_report(runner: CliRunner, runtime_env: Path):
    result = runner.invoke(cli.app, ["status", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["healthy"] is True
    assert report["data_dir"] == str(runtime_env)
    db = report["database"]
    assert db["mode"] == "external" and db["healthy"] is True
    assert db["revision"] == db["head"] == "0005"
    assert "***" in db["url"]
    assert report["object_store"]["healthy"] is True
    assert report["object_store"]["kind"] == os.environ.get("CASTKEEP_STORAGE__KIND", "filesystem")


def test_unreachable_database_exits_5_with_the_setting(runner: CliRunner, runtime_env: Path,
                                                        monkeypatch: pytest.MonkeyPatch):
    from castkeep.flows.settings import get_settings

    monkeypatch.setenv("CASTKEEP_DATABASE__URL", "postgresql+psycopg://u:pw@127.0.0.1:1/x")
    get_settings.cache_clear()
    result = runner.invoke(cli.app, ["status", "--json"])
    assert result.exit_code == 5
    report = json.loads(result.stdout)
    assert report["healthy"] is False and report["database"]["healthy"] is False
    assert report["object_store"]["healthy"] is True
    errors = result.stderr.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith("error: cannot use PostgreSQL")
    assert "CASTKEEP_DATABASE__URL" in errors[0]


def test_unreachable_s3_exits_5_naming_the_endpoint_setting(runner: CliRunner, runtime_env: Path,
                                                            monkeypatch: pytest.MonkeyPatch):
    from castkeep.flows.settings import get_settings
    from tests.plugins.db import _free_port

    monkeypatch.setenv("CASTKEEP_STORAGE__KIND", "s3")
    monkeypatch.setenv("CASTKEEP_STORAGE__ENDPOINT", f"127.0.0.1:{_free_port()}")
    monkeypatch.setenv("CASTKEEP_STORAGE__ACCESS_KEY", "a")
    monkeypatch.setenv("CASTKEEP_STORAGE__SECRET_KEY", "b")
    get_settings.cache_clear()
    result = runner.invoke(cli.app, ["status"])
    assert result.exit_code == 5
    assert "database:      ok" in result.stdout
    assert "object store:  FAILED" in result.stdout
    assert "CASTKEEP_STORAGE__ENDPOINT" in result.stderr


@pytest.mark.parametrize("env, words", [
    ({"CASTKEEP_DATABASE__URL": "mysql://u:pw@127.0.0.1:1/x"}, "castkeep needs PostgreSQL"),
    ({"CASTKEEP_STORAGE__KIND": "s3", "CASTKEEP_STORAGE__ACCESS_KEY": ""}, "needs credentials"),
])
def test_wrong_settings_exit_2(runner: CliRunner, runtime_env: Path, monkeypatch, env, words):
    from castkeep.flows.settings import get_settings

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    result = runner.invoke(cli.app, ["status"])
    assert result.exit_code == 2
    errors = result.stderr.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith("error: ") and words in errors[0]


def test_fresh_home_starts_the_bundled_server(bundled_data_dir: Path):
    """The real console script on an empty CASTKEEP_HOME, as a new user would run it."""
    home = bundled_data_dir
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASTKEEP_")}
    env["CASTKEEP_HOME"] = str(home)
    proc = subprocess.run([CASTKEEP, "status", "--json"], env=env, capture_output=True, text=True,
                          timeout=180)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["database"]["mode"] == "bundled"
    assert report["database"]["pgvector"]
    assert report["object_store"]["location"] == f"filesystem at {home / 'objects'}"
    assert (home / "pg" / "data" / "PG_VERSION").exists()


def test_status_reports_the_local_prefect_server_without_starting_it(
        runner: CliRunner, runtime_env: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    result = runner.invoke(cli.app, ["status", "--json"])
    assert result.exit_code == 0, result.output
    # Not started yet: it starts with the first flow run, so that is no problem.
    assert json.loads(result.stdout)["prefect"] == {
        "mode": "local", "api_url": None, "ui_url": None, "healthy": False, "running": False}
    assert not (runtime_env / "prefect" / "server.json").exists()
    text = runner.invoke(cli.app, ["status"])
    assert "prefect:       not running (local; starts with the first flow run)" in text.stdout


def test_unreachable_prefect_api_exits_5_naming_the_variable(
        runner: CliRunner, runtime_env: Path, monkeypatch: pytest.MonkeyPatch):
    from tests.plugins.db import _free_port

    url = f"http://127.0.0.1:{_free_port()}/api"
    monkeypatch.setenv("PREFECT_API_URL", url)
    result = runner.invoke(cli.app, ["status", "--json"])
    assert result.exit_code == 5
    report = json.loads(result.stdout)
    assert report["healthy"] is False and report["database"]["healthy"] is True
    assert report["prefect"] == {"mode": "external", "api_url": url, "ui_url": url[:-4],
                                 "healthy": False, "running": False}
    errors = result.stderr.strip().splitlines()
    assert len(errors) == 1 and "PREFECT_API_URL" in errors[0] and url in errors[0]
