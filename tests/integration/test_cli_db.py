"""`castkeep db upgrade|current|stop`, and how database errors reach the user: one line,
exit 2, a traceback only with --debug."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from castkeep.db import migrate
from castkeep.flows import cli
from castkeep.flows.settings import get_settings
from tests.plugins.db import _plain, _with_database

CASTKEEP = str(Path(sys.executable).parent / "castkeep")


@pytest.fixture(scope="module")
def runner() -> CliRunner:
    cli._register()
    return CliRunner()


@pytest.fixture
def empty_db(pg_server_url: str, runtime_env: Path, monkeypatch: pytest.MonkeyPatch):
    name = f"castkeep_cli_{secrets.token_hex(3)}"
    with psycopg.connect(_plain(pg_server_url), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = _with_database(pg_server_url, name)
    monkeypatch.setenv("CASTKEEP_DATABASE__URL", url)
    get_settings.cache_clear()
    yield url
    with psycopg.connect(_plain(pg_server_url), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASTKEEP_")}
    env.update(extra)
    return env


def test_upgrade_then_current(runner: CliRunner, empty_db: str):
    result = runner.invoke(cli.app, ["db", "current", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"current": None, "head": "0005", "up_to_date": False,
                                         "bundled": False}

    result = runner.invoke(cli.app, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert "upgraded from empty to 0005" in result.stdout
    assert make_url(empty_db).password not in result.stdout
    assert migrate.current(empty_db) == "0005"

    result = runner.invoke(cli.app, ["db", "upgrade"])
    assert "already at 0005" in result.stdout
    result = runner.invoke(cli.app, ["db", "current"])
    assert result.stdout.strip() == "0005 (head 0005; up to date)"


def test_stop_with_an_external_database_does_nothing(runner: CliRunner, runtime_env: Path):
    result = runner.invoke(cli.app, ["db", "stop"])
    assert result.exit_code == 0
    assert "external database is configured" in result.stdout


def test_wrong_password_is_one_line_exit_2(pg_url: str, tmp_path: Path):
    bad = make_url(pg_url).set(password="wrong-" + secrets.token_hex(4))
    env = _env(CASTKEEP_HOME=str(tmp_path), CASTKEEP_DATABASE__URL=bad.render_as_string(hide_password=False))
    proc = subprocess.run([CASTKEEP, "db", "current"], env=env, capture_output=True, text=True, timeout=60)
    if proc.returncode == 0:
        pytest.skip("the test server does not check passwords")
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: cannot use PostgreSQL") and "password authentication failed" in lines[0]
    assert bad.password not in proc.stderr


def test_debug_shows_the_traceback(tmp_path: Path):
    env = _env(CASTKEEP_HOME=str(tmp_path), CASTKEEP_DATABASE__URL="postgresql+psycopg://u:p@127.0.0.1:1/x")
    plain = subprocess.run([CASTKEEP, "db", "upgrade"], env=env, capture_output=True, text=True, timeout=60)
    assert plain.returncode == 5 and "Traceback" not in plain.stderr  # the server is unavailable
    debug = subprocess.run([CASTKEEP, "--debug", "db", "upgrade"], env=env, capture_output=True, text=True,
                           timeout=60)
    assert debug.returncode != 0
    assert "Traceback" in debug.stderr and "DatabaseError" in debug.stderr


def test_server_without_pgvector_is_one_line_exit_2(pg_server_url: str, tmp_path: Path):
    name = f"castkeep_novec_{secrets.token_hex(3)}"
    with psycopg.connect(_plain(pg_server_url), autocommit=True) as conn:
        if conn.execute("SHOW is_superuser").fetchone()[0] != "on" or conn.info.server_version < 180000:
            pytest.skip("needs a PostgreSQL >= 18 superuser to hide pgvector")
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        # PostgreSQL 18: an empty extension path hides the installed pgvector from this database.
        conn.execute(sql.SQL("ALTER DATABASE {} SET extension_control_path = '/nonexistent'")
                     .format(sql.Identifier(name)))
    try:
        env = _env(CASTKEEP_HOME=str(tmp_path), CASTKEEP_DATABASE__URL=_with_database(pg_server_url, name))
        proc = subprocess.run([CASTKEEP, "db", "upgrade"], env=env, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "no pgvector extension" in lines[0]
    finally:
        with psycopg.connect(_plain(pg_server_url), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def test_bundled_stop_through_the_cli(bundled_data_dir: Path):
    from castkeep.db.server import running_server

    env = _env(CASTKEEP_HOME=str(bundled_data_dir))
    first = subprocess.run([CASTKEEP, "db", "current", "--json"], env=env, capture_output=True,
                           text=True, timeout=180)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["bundled"] is True
    assert running_server(bundled_data_dir) is not None
    # The bundled catalogue is used through the role that owns it, not the superuser.
    upgrade = subprocess.run([CASTKEEP, "db", "upgrade"], env=env, capture_output=True, text=True, timeout=60)
    assert upgrade.returncode == 0, upgrade.stderr
    assert upgrade.stdout.startswith("postgresql+psycopg://castkeep:***@127.0.0.1:"), upgrade.stdout
    stop = subprocess.run([CASTKEEP, "db", "stop"], env=env, capture_output=True, text=True, timeout=60)
    assert stop.stdout.strip() == "stopped the bundled PostgreSQL"
    assert running_server(bundled_data_dir) is None
    again = subprocess.run([CASTKEEP, "db", "stop"], env=env, capture_output=True, text=True, timeout=60)
    assert again.stdout.strip() == "the bundled PostgreSQL was not running"
