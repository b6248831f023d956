"""The bundled PostgreSQL: cold start, reuse, two processes on one data dir, stale servers."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from castkeep.db import server
from castkeep.errors import DatabaseError


@pytest.fixture
def data_dir(bundled_data_dir: Path) -> Path:
    return bundled_data_dir


def _plain(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def _query(url: str, sql: str):
    with psycopg.connect(_plain(url), autocommit=True) as conn:
        cur = conn.execute(sql)
        return cur.fetchone() if cur.description else None


def test_cold_start_creates_database_with_pgvector(data_dir: Path):
    url = server.ensure_bundled_server(data_dir)
    assert url.startswith("postgresql+psycopg://postgres:")
    assert url.endswith("/castkeep")
    version, vector = _query(
        url, "SELECT current_setting('server_version_num')::int, "
             "(SELECT extversion FROM pg_extension WHERE extname = 'vector')"
    )
    assert version >= 150000
    assert vector is not None
    pg = data_dir / "pg"
    assert (pg / "data" / "PG_VERSION").read_text().strip() == str(version // 10000)
    assert stat.S_IMODE((pg / "password").stat().st_mode) == 0o600
    state = json.loads((pg / "server.json").read_text())
    assert f":{state['port']}/" in url
    # Loopback only, password required: a wrong password is refused.
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(host="127.0.0.1", port=state["port"], user="postgres", password="wrong",
                        dbname="castkeep", connect_timeout=3)


def test_second_call_reuses_the_running_server(data_dir: Path):
    first = server.start_bundled_server(data_dir)
    again = server.start_bundled_server(data_dir)
    assert again == first
    assert server.running_server(data_dir) == first


def test_stop_then_start_keeps_data_and_port(data_dir: Path):
    url = server.ensure_bundled_server(data_dir)
    _query(url, "CREATE TABLE kept (v int); INSERT INTO kept VALUES (42)")
    port = server.running_server(data_dir).port
    assert server.stop_bundled_server(data_dir) is True
    assert server.running_server(data_dir) is None
    assert server.stop_bundled_server(data_dir) is False
    url2 = server.ensure_bundled_server(data_dir)
    assert server.running_server(data_dir).port == port
    assert _query(url2, "SELECT v FROM kept") == (42,)


_CHILD = """
import sys, json
from pathlib import Path
from castkeep.db import server
url = server.ensure_bundled_server(Path(sys.argv[1]))
print(json.dumps({"pid": server.running_server(Path(sys.argv[1])).pid, "url": url}))
"""


def test_two_processes_share_one_server(data_dir: Path):
    procs = [
        subprocess.Popen([sys.executable, "-c", _CHILD, str(data_dir)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        results.append(json.loads(out))
    assert results[0] == results[1]
    # Both processes have exited; the server they share is still serving.
    live = server.running_server(data_dir)
    assert live is not None and live.pid == results[0]["pid"]
    assert _query(results[0]["url"], "SELECT 1") == (1,)
    log = (data_dir / "pg" / "server.log").read_text()
    assert log.count("database system is ready to accept connections") == 1


def test_server_killed_hard_is_restarted_with_data_intact(data_dir: Path):
    url = server.ensure_bundled_server(data_dir)
    _query(url, "CREATE TABLE survivor (v text); INSERT INTO survivor VALUES ('still here')")
    old = server.running_server(data_dir)
    os.kill(old.pid, signal.SIGKILL)
    deadline = time.time() + 10
    while server.running_server(data_dir) is not None and time.time() < deadline:
        time.sleep(0.1)
    # postmaster.pid is left behind, naming a dead process.
    assert (data_dir / "pg" / "data" / "postmaster.pid").exists() or server.running_server(data_dir) is None
    url2 = server.ensure_bundled_server(data_dir)
    new = server.running_server(data_dir)
    assert new.pid != old.pid
    assert _query(url2, "SELECT v FROM survivor") == ("still here",)


def test_stale_pid_file_naming_another_process_is_ignored(data_dir: Path):
    server.ensure_bundled_server(data_dir)
    server.stop_bundled_server(data_dir)
    pidfile = data_dir / "pg" / "data" / "postmaster.pid"
    # A leftover pid file whose pid now belongs to an unrelated live process (this one).
    lines = [str(os.getpid()), str(data_dir / "pg" / "data"), "0", "5432", "", "127.0.0.1",
             "0 0", "ready"]
    pidfile.write_text("\n".join(lines) + "\n")
    url = server.ensure_bundled_server(data_dir)
    assert _query(url, "SELECT 1") == (1,)
    assert server.running_server(data_dir).pid != os.getpid()


def test_interrupted_initdb_is_redone(data_dir: Path):
    pgdata = data_dir / "pg" / "data"
    pgdata.mkdir(parents=True)
    (pgdata / "PG_VERSION").write_text("18\n")  # half-written cluster, no "initialized" marker
    url = server.ensure_bundled_server(data_dir)
    assert _query(url, "SELECT 1") == (1,)
    assert (data_dir / "pg" / "initialized").exists()


def test_requested_port_in_use_names_the_setting(data_dir: Path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(DatabaseError, match="CASTKEEP_DATABASE__BUNDLED_PORT"):
            server.start_bundled_server(data_dir, port=port)
