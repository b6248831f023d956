"""The Prefect API every castkeep process talks to: the one in PREFECT_API_URL when that is set,
else a long-lived local Prefect server that castkeep runs in its data dir, like the bundled
PostgreSQL (db/server.py).

    with local_prefect(settings):
        fulfil_request(...)          # the run lands in the local server's history

Layout under ``<CASTKEEP_HOME>/prefect`` (also PREFECT_HOME of every castkeep process, so
nothing Prefect writes lands under ``~/.prefect``):

    prefect.db    the server's SQLite database: flow runs, task runs, logs, artifacts
    server.json   port and pid of the last start (the port is reused across restarts)
    server.log    the server's log
    .lock         file lock: one process at a time starts, inspects or stops the server

The server listens on 127.0.0.1 with its UI at the root URL and its API under ``/api``;
analytics and promotional content are off (it cannot reach the internet and must not try).
It outlives the process that started it, so every castkeep process of that data dir shares it.
A server whose pid is gone, or that no longer answers ``/api/health``, is replaced on the next
need. `stop_server` (``castkeep stop``) stops it.

This module imports no Prefect at import time: `castkeep status` reports on the server without
loading it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from castkeep.state_file import locked, read_state, write_state
from castkeep.net import free_port, port_free
from castkeep.errors import InfrastructureError

if TYPE_CHECKING:
    from castkeep.flows.settings import Settings

logger = logging.getLogger(__name__)

__all__ = ["LocalServer", "PrefectStatus", "client_environment", "configured_api_url",
           "ensure_server", "local_prefect", "prefect_home", "prefect_status", "running_server",
           "stop_server"]

_START_TIMEOUT_S = 180.0
_HEALTH_TIMEOUT_S = 2.0
# A live server that stops answering gets this long to answer again before it is replaced.
_STALE_GRACE_S = 10.0


def prefect_home(home: Path) -> Path:
    """PREFECT_HOME for the data dir `home`: ``<home>/prefect``."""
    return Path(home).expanduser().resolve() / "prefect"


def client_environment(home: Path) -> dict[str, str]:
    """Prefect settings for every castkeep process of data dir `home`: its Prefect home under the
    data dir, and no telemetry or analytics. Applied with `os.environ.setdefault`, so a
    variable set explicitly wins."""
    return {
        "PREFECT_HOME": str(prefect_home(home)),
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT": "false",
    }


def apply_client_environment(home: Path) -> None:
    """Set `client_environment(home)` on this process (before Prefect is imported, so its
    settings read them); explicit variables are kept. Creates the Prefect home, which Prefect
    expects to exist."""
    for key, value in client_environment(home).items():
        os.environ.setdefault(key, value)
    with contextlib.suppress(OSError):  # unusable: the command reports the data dir itself
        Path(os.environ["PREFECT_HOME"]).mkdir(parents=True, exist_ok=True, mode=0o700)


@dataclass(frozen=True)
class LocalServer:
    """A running local Prefect server."""

    home: Path  # its PREFECT_HOME
    pid: int
    port: int

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass(frozen=True)
class PrefectStatus:
    """What `castkeep status` reports: which API, its UI, and whether it answers."""

    mode: str  # "local" (castkeep's server) or "external" (PREFECT_API_URL)
    api_url: str | None
    ui_url: str | None
    healthy: bool
    running: bool

    def as_dict(self) -> dict:
        return {"mode": self.mode, "api_url": self.api_url, "ui_url": self.ui_url,
                "healthy": self.healthy, "running": self.running}


# --- paths, lock, state -----------------------------------------------------------------------


def _paths(home: Path) -> dict[str, Path]:
    root = prefect_home(home)
    return {
        "root": root,
        "db": root / "prefect.db",
        "state": root / "server.json",
        "log": root / "server.log",
        "lock": root / ".lock",
    }


def _log_tail(p: dict[str, Path], lines: int = 15) -> str:
    try:
        return "\n".join(p["log"].read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no server log)"


# --- probing ----------------------------------------------------------------------------------


def health(api_url: str, timeout: float = _HEALTH_TIMEOUT_S) -> bool:
    """Whether the Prefect API at `api_url` (ending in /api) answers its health check."""
    try:
        with urllib.request.urlopen(f"{api_url.rstrip('/')}/health", timeout=timeout) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _is_server(pid: int, port: int) -> bool:
    """Whether `pid` is a live `prefect server start` on `port` (not a recycled pid)."""
    import psutil

    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        cmdline = proc.cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False
    joined = " ".join(cmdline)
    return "prefect" in joined and "server start" in joined and str(port) in cmdline


def _recorded(p: dict[str, Path]) -> LocalServer | None:
    """The server server.json names, if that process is still a Prefect server (answering or
    not); None when it is gone."""
    state = read_state(p["state"])
    try:
        pid, port = int(state["pid"]), int(state["port"])
    except (KeyError, TypeError, ValueError):
        return None
    if not _is_server(pid, port):
        return None
    return LocalServer(p["root"], pid, port)


def running_server(home: Path) -> LocalServer | None:
    """The live, answering local server of data dir `home`, or None (never starts one)."""
    p = _paths(home)
    server = _recorded(p)
    if server is None or not health(server.api_url):
        return None
    return server


def configured_api_url() -> str | None:
    """The Prefect API this process is told to use: PREFECT_API_URL from the environment, or,
    when Prefect is already loaded (an embedding application, the test harness), its current
    setting. None means castkeep's local server."""
    url = os.environ.get("PREFECT_API_URL", "").strip()
    if url:
        return url
    if "prefect.settings" in sys.modules:
        from prefect.settings import PREFECT_API_URL

        return PREFECT_API_URL.value() or None
    return None


# --- lifecycle --------------------------------------------------------------------------------


def _server_env(p: dict[str, Path], port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in {"PREFECT_API_URL", "PREFECT_API_KEY", "PREFECT_PROFILE"}}
    env.update(
        PREFECT_HOME=str(p["root"]),
        PREFECT_API_DATABASE_CONNECTION_URL=f"sqlite+aiosqlite:///{p['db']}",
        PREFECT_UI_ENABLED="true",
        # The UI in the browser calls this API; Prefect's default is port 4200, not ours.
        PREFECT_UI_API_URL=LocalServer(p["root"], 0, port).api_url,
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT="false",
        DO_NOT_TRACK="1",
    )
    return env


def _gone(pid: int, timeout: float) -> bool:
    """Wait up to `timeout` for `pid` to exit (a zombie counts as gone: its parent may never reap
    it); True when it did."""
    import psutil

    deadline = time.monotonic() + timeout
    while True:
        try:
            proc = psutil.Process(pid)
            if proc.status() == psutil.STATUS_ZOMBIE:
                with contextlib.suppress(ChildProcessError, OSError):
                    os.waitpid(pid, os.WNOHANG)  # reap it when it is ours
                return True
        except psutil.NoSuchProcess:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)


def _terminate(pid: int, timeout: float) -> None:
    """SIGTERM the server's process group (it leads its own session), then SIGKILL."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGTERM)
    if _gone(pid, timeout):
        return
    logger.warning("the Prefect server (pid %s) ignored SIGTERM; killing it", pid)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    _gone(pid, timeout)


def _start(p: dict[str, Path], port: int, timeout: float) -> LocalServer:
    p["root"].mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(p["log"], "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "prefect", "server", "start",
             "--host", "127.0.0.1", "--port", str(port)],
            env=_server_env(p, port),
            cwd=p["root"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            # Its own session: it outlives this process and a Ctrl-C in this terminal.
            start_new_session=True,
        )
    server = LocalServer(p["root"], proc.pid, port)
    deadline = time.monotonic() + timeout
    while not health(server.api_url):
        if proc.poll() is not None:
            raise InfrastructureError(
                f"the local Prefect server exited while starting (code {proc.returncode}); "
                f"{p['log']} ends with:\n{_log_tail(p)}\nor set PREFECT_API_URL to a running server"
            )
        if time.monotonic() > deadline:
            _terminate(proc.pid, 10)
            raise InfrastructureError(
                f"the local Prefect server did not answer within {timeout:.0f}s; {p['log']} ends "
                f"with:\n{_log_tail(p)}\nor set PREFECT_API_URL to a running server"
            )
        time.sleep(0.3)
    # Popen would warn that the (deliberately) still running child was never waited for.
    proc.returncode = 0
    return server


def ensure_server(home: Path, *, timeout: float = _START_TIMEOUT_S) -> LocalServer:
    """The local Prefect server of data dir `home`: the running one, or a fresh one started on
    127.0.0.1 (on the remembered port when it is free). A server whose process is gone, or that
    has stopped answering, is replaced."""
    p = _paths(home)
    server = _recorded(p)
    if server is not None and health(server.api_url):
        return server  # the common case, without waiting for the lock
    with locked(p["lock"], mode=0o700):
        server = _recorded(p)
        if server is not None:
            deadline = time.monotonic() + _STALE_GRACE_S
            while time.monotonic() < deadline:
                if health(server.api_url):
                    return server
                time.sleep(0.5)
            logger.warning("the local Prefect server (pid %s) does not answer; restarting it",
                           server.pid)
            _terminate(server.pid, 10)
        remembered = int(read_state(p["state"]).get("port") or 0)
        port = remembered if remembered and port_free(remembered) else free_port()
        t0 = time.monotonic()
        try:
            server = _start(p, port, timeout)
        except InfrastructureError:
            if port_free(port):
                raise
            # Lost a race for the port: one retry on a fresh one.
            server = _start(p, free_port(), timeout)
        logger.info("local Prefect server started in %.1fs at %s", time.monotonic() - t0,
                    server.ui_url)
        write_state(p["state"], {"port": server.port, "pid": server.pid})
        return server


def stop_server(home: Path, *, timeout: float = 20.0) -> bool:
    """Stop the local Prefect server of data dir `home`. True if one was running. Its port stays
    remembered for the next start."""
    p = _paths(home)
    if not p["state"].exists():
        return False
    with locked(p["lock"], mode=0o700):
        server = _recorded(p)
        if server is None:
            return False
        _terminate(server.pid, timeout)
        write_state(p["state"], {"port": server.port})
        return True


# --- the entry point --------------------------------------------------------------------------


def prefect_status(home: Path) -> PrefectStatus:
    """Which Prefect API castkeep uses for data dir `home` and whether it answers. Starts
    nothing: the local server starts with the first flow run."""
    url = os.environ.get("PREFECT_API_URL", "").strip()
    if url:
        ui = os.environ.get("PREFECT_UI_URL", "").strip() or url.rstrip("/").removesuffix("/api")
        ok = health(url)
        return PrefectStatus("external", url, ui, ok, ok)
    p = _paths(home)
    server = _recorded(p)
    if server is not None:
        return PrefectStatus("local", server.api_url, server.ui_url, health(server.api_url), True)
    port = int(read_state(p["state"]).get("port") or 0)
    if not port:
        return PrefectStatus("local", None, None, False, False)
    stopped = LocalServer(p["root"], 0, port)
    return PrefectStatus("local", stopped.api_url, stopped.ui_url, False, False)


@contextlib.contextmanager
def _prefect_settings(api_url: str, own_ui_url: str | None) -> Iterator[None]:
    """Prefect's settings for the body: `api_url`, and on castkeep's own server (`own_ui_url`
    given) its UI URL and no flow-run heartbeats. Nothing on that server watches heartbeats (only
    an automation a team adds to its server marks a silent run crashed; `castkeep request resume`
    is the recovery here), and Prefect joins the heartbeat thread, which sleeps in 1 s steps, at
    the end of every run: up to a second lost per command.

    The settings are copied with these few values rather than rebuilt (`temporary_settings`
    validates Prefect's whole settings model again from the environment: 0.25 s a command on
    2 cores); the values are already valid: a URL that answered, the UI at its root, and None,
    Prefect's "no heartbeats"."""
    import prefect.context

    context = prefect.context.get_settings_context()
    current = context.settings
    if own_ui_url is None:
        if current.api.url == api_url:  # PREFECT_API_URL was set when Prefect read it
            yield
            return
        from prefect.settings import PREFECT_API_URL, temporary_settings

        with temporary_settings(updates={PREFECT_API_URL: api_url}):
            yield
        return
    update = {"api": current.api.model_copy(update={"url": api_url}),
              "flows": current.flows.model_copy(update={"heartbeat_frequency": None})}
    if "ui_url" not in current.model_fields_set:  # an explicit PREFECT_UI_URL stays
        update["ui_url"] = own_ui_url
    with prefect.context.SettingsContext(profile=context.profile,
                                         settings=current.model_copy(update=update)):
        yield


@contextlib.contextmanager
def local_prefect(settings: Settings | None = None) -> Iterator[str]:
    """Run the body against castkeep's Prefect API and yield its URL: PREFECT_API_URL when
    configured (checked to answer), else the local server of the data dir (started if needed).
    Sets PREFECT_HOME and PREFECT_API_URL for this process and the processes it starts; the
    previous API URL comes back on exit. `settings` default to the environment's."""
    if settings is None:
        from castkeep.flows.runtime import load_settings

        settings = load_settings()
    home = settings.home
    apply_client_environment(home)
    url = configured_api_url()
    own_server = not url
    if url:
        if not health(url, timeout=5):
            raise InfrastructureError(
                f"the Prefect API at {url} does not answer; start it, or unset PREFECT_API_URL "
                "to let castkeep run its own"
            )
    else:
        server = ensure_server(home)
        url = server.api_url
    previous = os.environ.get("PREFECT_API_URL")
    os.environ["PREFECT_API_URL"] = url
    try:
        with _prefect_settings(url, server.ui_url if own_server else None):
            yield url
    finally:
        if previous is None:
            os.environ.pop("PREFECT_API_URL", None)
        else:
            os.environ["PREFECT_API_URL"] = previous
