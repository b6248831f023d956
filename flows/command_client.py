"""The client side of the command server (flows/command_server.py): hand a flow command to the
server of this data dir, or say that it cannot take it so the command runs in this process.

Kept to the standard library and cheap to import: it runs before anything else on every flow
command. The command's stdin, stdout and stderr are passed to the server as file descriptors,
so its output, prompts and progress bar reach this terminal as they would from this process.
Ctrl-C and other termination signals are forwarded to the process running the command.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import stat
import struct
import sys
import time
from pathlib import Path

SWITCH = "CASTKEEP_COMMAND_SERVER"  # "off": every command runs in its own process
_OFF = frozenset({"off", "0", "false", "no"})
# What shapes the server's imported state (Prefect reads its settings when imported; castkeep's
# settings come from CASTKEEP_): a client whose values differ runs in its own process.
_ENV_PREFIXES = ("PREFECT_", "CASTKEEP_", "PYTHON", "LC_", "XDG_")
_ENV_NAMES = frozenset({"LANG", "HOME", "TZ"})
START_TIMEOUT_S = 30.0  # a server that is not listening by then is not waited for
_FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)


def enabled(environ=None) -> bool:
    return (os.environ if environ is None else environ).get(SWITCH, "on").strip().lower() not in _OFF


def env_key(environ) -> str:
    """Fingerprint of the variables that shape the server's imported state, and of the Python
    environment (two virtual environments never share a server)."""
    items = sorted((k, v) for k, v in environ.items()
                   if k.startswith(_ENV_PREFIXES) or k in _ENV_NAMES)
    return hashlib.sha256(json.dumps([sys.prefix, items]).encode()).hexdigest()


def socket_dir() -> Path:
    # Short on purpose: a Unix socket path is limited to 107 bytes, data dirs can be long.
    return Path(os.environ.get("TMPDIR") or "/tmp") / f"castkeep-{os.getuid()}"


def socket_path(home: Path) -> Path:
    """The server socket of `home` for this Python environment."""
    key = hashlib.sha256(f"{Path(home).resolve()}\0{sys.prefix}".encode()).hexdigest()[:24]
    return socket_dir() / f"{key}.sock"


def private_dir(path: Path, *, create: bool) -> bool:
    """True when `path` is a directory only this user can use (created so when asked):
    another user's or a shared directory could hold a socket that is not ours."""
    if create:
        try:
            path.mkdir(mode=0o700, exist_ok=True)
        except OSError:
            return False
    try:
        st = path.lstat()
    except OSError:
        return False
    return (stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid()
            and not st.st_mode & 0o077)


# ---- framing: a 4-byte length, then a JSON object -------------------------------------------


def send_message(sock: socket.socket, message: dict, fds: list[int] | None = None) -> None:
    body = json.dumps(message).encode()
    head = struct.pack("!I", len(body))
    if fds:
        socket.send_fds(sock, [head], fds)  # the descriptors travel with the first bytes
        sock.sendall(body)
    else:
        sock.sendall(head + body)


def _recv_exact(sock: socket.socket, n: int) -> bytes | None:
    chunks = []
    while n:
        chunk = sock.recv(n)
        if not chunk:
            return None
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


MAX_MESSAGE = 4 << 20


def recv_message(sock: socket.socket, *, maxfds: int = 0) -> tuple[dict | None, list[int]]:
    """The next message and any descriptors sent with it; (None, fds) at end of stream or on a
    malformed message."""
    fds: list[int] = []
    if maxfds:
        head, fds, _flags, _addr = socket.recv_fds(sock, 4, maxfds)
        if len(head) < 4:
            rest = _recv_exact(sock, 4 - len(head)) if head else None
            if rest is None:
                return None, fds
            head += rest
    else:
        head = _recv_exact(sock, 4)
        if head is None:
            return None, fds
    (size,) = struct.unpack("!I", head)
    if size > MAX_MESSAGE:
        return None, fds
    body = _recv_exact(sock, size)
    try:
        message = json.loads(body) if body is not None else None
    except ValueError:
        message = None
    return (message if isinstance(message, dict) else None), fds


# ---- running a command on the server --------------------------------------------------------


def connect(path: Path) -> socket.socket | None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(str(path))
    except OSError:
        sock.close()
        return None
    return sock


def _start_server(home: Path, path: Path) -> socket.socket | None:
    """Start this data dir's server and wait until it listens; None if it does not."""
    import subprocess

    log = Path(home) / "logs"
    try:
        log.mkdir(parents=True, exist_ok=True)
        out = open(log / "command-server.log", "ab")  # noqa: SIM115 (handed to the child)
    except OSError:
        return None
    with out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "castkeep.flows.command_server", "--home",
             str(Path(home).resolve())],
            stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True,
            close_fds=True,
        )
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        sock = connect(path)
        if sock is not None:
            return sock
        if proc.poll() is not None:
            # Exited: another process's server may have won the start (it holds the lock).
            return connect(path)
        time.sleep(0.05)
    return None


def run_served(argv: list[str], home: Path) -> int | None:
    """Run `castkeep ARGV` on the command server of `home` and return its exit code, or None
    when the server cannot take it (switched off, not startable, another environment, code
    changed since it started): the caller then runs the command itself."""
    if not enabled():
        return None
    path = socket_path(home)
    if not private_dir(path.parent, create=True):
        return None
    sock = connect(path) or _start_server(home, path)
    if sock is None:
        return None
    with sock:
        try:
            umask = os.umask(0o022)
            os.umask(umask)
            send_message(sock, {"op": "run", "argv": list(argv), "env": dict(os.environ),
                                "cwd": os.getcwd(), "umask": umask}, fds=[0, 1, 2])
            started, _ = recv_message(sock)
        except OSError:
            return None
        if not started or not isinstance(started.get("pid"), int):
            return None
        return _wait(sock, started["pid"])


def _wait(sock: socket.socket, pid: int) -> int:
    """Forward termination signals to the command's process until the server reports its
    exit code."""
    def forward(signum, _frame):
        try:
            os.kill(pid, signum)
        except OSError:
            pass

    previous = {s: signal.signal(s, forward) for s in _FORWARDED}
    try:
        done, _ = recv_message(sock)
    except OSError:
        done = None
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if not done or not isinstance(done.get("exit"), int):
        # The server died (killed): the command may still be running and writing here; wait
        # for it so that the prompt does not come back under its output.
        _wait_for_exit(pid)
        sys.stderr.write("error: castkeep's command server stopped before the command "
                         "reported how it ended; check its result (e.g. `castkeep request "
                         "list`) and run it again if needed\n")
        return 5
    return done["exit"]


def _wait_for_exit(pid: int) -> None:
    import select

    try:
        fd = os.pidfd_open(pid)
    except OSError:
        return  # already gone
    try:
        select.select([fd], [], [])
    finally:
        os.close(fd)
