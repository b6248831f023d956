"""The command server of a data dir: a long-lived process that has Prefect and castkeep's flows
imported already, and runs each flow command (`audit`, `consent revoke`, `request`, ...) in a
fork of itself.

Importing Prefect and castkeep's flow stack costs a flow command about 2.5 s before it does any
work; a fork costs milliseconds. Like the bundled PostgreSQL and the local Prefect server, it
starts on first need (flows/command_client.py starts it and waits until it listens), is shared
by every castkeep process of this data dir and Python environment, stops after
IDLE_EXIT_S without a command, and `castkeep stop` stops it. `CASTKEEP_COMMAND_SERVER=off`
runs every command in its own process instead.

Each command runs in a child forked from the server's single thread, with the client's stdin,
stdout and stderr (passed over the socket), environment, working directory and umask, so it
behaves as it would in the client's own process; the server reports its exit code back.

Only this user reaches it: the socket lives in a directory only this user can enter and the
server checks each connection's user (SO_PEERCRED). A client whose environment differs in what
shapes the imported state (PREFECT_*, CASTKEEP_*, ...) is turned away and runs the command
itself; so is every client once a castkeep module the server imported has changed on disk, and
the server then exits (the next command starts a fresh one).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import selectors
import signal
import socket
import struct
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from castkeep.flows.command_client import (
    connect,
    env_key,
    private_dir,
    recv_message,
    send_message,
    socket_path,
)

IDLE_EXIT_S = 30 * 60
HEADER_TIMEOUT_S = 10.0
# Imported once here so that no command pays for them; each is optional (a command imports
# what is missing itself).
PRELOAD = (
    "castkeep.flows.cli",
    "prefect",
    "prefect.main",
    "castkeep.flows.prefect_server",
    "castkeep.flows.runtime",
    "castkeep.flows.audit",
    "castkeep.flows.revoke",
    "castkeep.flows.approve",
    "castkeep.flows.ingest_references",
    "castkeep.flows.fulfil_request",
    "castkeep.flows.demo",
    "castkeep.flows.progress_display",
    "castkeep.db.schema",
    "castkeep.db.assets_repo",
    "psycopg",
    "numpy",
)


def preload(home: Path) -> None:
    """What a quiet flow command's start-up does before Prefect loads (its home, telemetry and
    console settings), then the imports."""
    import importlib

    from castkeep.flows.cli import _register, quiet_environment
    from castkeep.flows.prefect_server import apply_client_environment

    apply_client_environment(home)
    quiet_environment()
    for name in PRELOAD:
        with contextlib.suppress(Exception):
            importlib.import_module(name)
    _register()


def module_stamps() -> dict[str, tuple[int, int]]:
    """(mtime, size) of every castkeep module imported so far."""
    stamps = {}
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if path and getattr(module, "__name__", "").startswith("castkeep"):
            with contextlib.suppress(OSError):
                st = os.stat(path)
                stamps[path] = (st.st_mtime_ns, st.st_size)
    return stamps


def _changed(stamps: dict[str, tuple[int, int]]) -> bool:
    for path, stamp in stamps.items():
        try:
            st = os.stat(path)
        except OSError:
            return True
        if (st.st_mtime_ns, st.st_size) != stamp:
            return True
    return False


def _peer_uid(conn: socket.socket) -> int:
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", creds)[1]


@dataclass
class _Running:
    pid: int
    conn: socket.socket


@dataclass
class Server:
    home: Path
    path: Path
    env_key: str
    stamps: dict = field(default_factory=dict)
    served: int = 0
    stopping: bool = False
    running: dict = field(default_factory=dict)  # pidfd -> _Running
    last_active: float = field(default_factory=time.monotonic)

    def serve(self, listener: socket.socket, lock_fd: int) -> None:
        self._lock_fd = lock_fd
        self._listener = listener
        self._selector = selectors.DefaultSelector()
        self._selector.register(listener, selectors.EVENT_READ, "accept")
        self._inode = os.stat(self.path).st_ino
        while not (self.stopping and not self.running):
            for key, _ in self._selector.select(timeout=5.0):
                if key.data == "accept":
                    self._accept()
                elif key.data == "exit":
                    self._reap(key.fd)
                else:  # a client's connection readable while its command runs: it went away
                    self._client_gone(key.data)
            if self.running:
                self.last_active = time.monotonic()
            elif time.monotonic() - self.last_active > IDLE_EXIT_S or not self._still_ours():
                self.stop()
        self._selector.close()

    def _still_ours(self) -> bool:
        """The socket file is still ours and the data dir still exists."""
        try:
            return os.stat(self.path).st_ino == self._inode and self.home.is_dir()
        except OSError:
            return False

    def stop(self) -> None:
        """Take no more commands (unlink the socket); running ones finish."""
        if not self.stopping:
            self.stopping = True
            with contextlib.suppress(OSError, KeyError, ValueError):
                self._selector.unregister(self._listener)
            with contextlib.suppress(OSError):
                if os.stat(self.path).st_ino == self._inode:  # not a newer server's socket
                    os.unlink(self.path)
            self._listener.close()

    def _accept(self) -> None:
        try:
            conn, _ = self._listener.accept()
        except OSError:
            return
        self.last_active = time.monotonic()
        fds: list[int] = []
        try:
            if _peer_uid(conn) != os.getuid():
                conn.close()  # only this user's commands run as this user
                return
            conn.settimeout(HEADER_TIMEOUT_S)
            message, fds = recv_message(conn, maxfds=3)
            conn.settimeout(None)
            if message is None:
                raise OSError("malformed request")
            self._handle(conn, message, fds)
        except OSError:
            conn.close()
        finally:
            for fd in fds:
                with contextlib.suppress(OSError):
                    os.close(fd)

    def _handle(self, conn: socket.socket, message: dict, fds: list[int]) -> None:
        op = message.get("op")
        if op == "info":
            send_message(conn, {"pid": os.getpid(), "served": self.served,
                                "running": len(self.running)})
            conn.close()
        elif op == "stop":
            send_message(conn, {"stopping": True, "running": len(self.running)})
            conn.close()
            self.stop()
        elif op == "run":
            refusal = self._refusal(message, fds)
            if refusal:
                send_message(conn, {"refused": refusal})
                conn.close()
                return
            self._start(conn, message, fds)
        else:
            conn.close()

    def _refusal(self, message: dict, fds: list[int]) -> str | None:
        argv, env, cwd = message.get("argv"), message.get("env"), message.get("cwd")
        if (len(fds) != 3 or not isinstance(argv, list) or not all(isinstance(a, str) for a in argv)
                or not isinstance(env, dict) or not isinstance(cwd, str)
                or not isinstance(message.get("umask"), int)
                or not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items())):
            return "malformed request"
        if self.stopping:
            return "stopping"
        if env_key(env) != self.env_key:
            return "another environment"
        if _changed(self.stamps):
            self.stop()  # the next command starts a server with the new code
            return "castkeep changed on disk"
        return None

    def _start(self, conn: socket.socket, message: dict, fds: list[int]) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            self._child(conn, message, fds)  # never returns
        self.served += 1
        pidfd = os.pidfd_open(pid)
        self.running[pidfd] = _Running(pid, conn)
        self._selector.register(pidfd, selectors.EVENT_READ, "exit")
        send_message(conn, {"pid": pid})
        self._selector.register(conn, selectors.EVENT_READ, self.running[pidfd])

    def _reap(self, pidfd: int) -> None:
        run = self.running.pop(pidfd)
        self._selector.unregister(pidfd)
        _, status = os.waitpid(run.pid, 0)
        os.close(pidfd)
        code = os.waitstatus_to_exitcode(status)
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(run.conn)
        with contextlib.suppress(OSError):
            # Killed by a signal: the shell's convention, 128 + its number.
            send_message(run.conn, {"exit": code if code >= 0 else 128 - code})
        run.conn.close()

    def _client_gone(self, run: _Running) -> None:
        """The client's connection is readable mid-command: it closed (killed, or its terminal
        went away). Stop the command as its own terminal would have."""
        self._selector.unregister(run.conn)
        with contextlib.suppress(OSError):
            if run.conn.recv(1, socket.MSG_PEEK):
                return  # stray bytes: not a close
        with contextlib.suppress(OSError):
            os.kill(run.pid, signal.SIGHUP)

    # ---- the forked child ---------------------------------------------------------------

    def _child(self, conn: socket.socket, message: dict, fds: list[int]) -> None:
        code = 1
        try:
            for fd in (self._lock_fd, self._selector.fileno(), *self.running):
                with contextlib.suppress(OSError):
                    os.close(fd)
            self._listener.close()
            conn.close()
            for r in self.running.values():
                r.conn.close()
            for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
                signal.signal(signum, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            for target, fd in enumerate(fds):
                os.dup2(fd, target)
                os.close(fd)
            os.environ.clear()
            os.environ.update(message["env"])
            os.chdir(message["cwd"])
            os.umask(message["umask"])
            _fresh_stdio()
            from castkeep.flows.cli import run_command

            code = run_command(message["argv"])
        except BaseException:  # noqa: BLE001 (this process must end here, with a code)
            with contextlib.suppress(Exception):
                traceback.print_exc()
        finally:
            # What an interpreter exit runs, in its order: join the threads the command started,
            # then the exit handlers (Prefect drains its log and event workers there).
            with contextlib.suppress(Exception):
                import threading

                threading._shutdown()
            with contextlib.suppress(Exception):
                import atexit

                atexit._run_exitfuncs()
            with contextlib.suppress(Exception):
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(code)


def _fresh_stdio() -> None:
    """Text streams over the client's descriptors, buffered as Python buffers a terminal or a
    pipe (decided when the server started, on its own log file)."""
    import io

    def stream(fd: int, mode: str, **kw):
        raw = io.FileIO(fd, mode, closefd=False)
        tty = raw.isatty()
        if mode == "r":
            return io.TextIOWrapper(io.BufferedReader(raw), **kw)
        return io.TextIOWrapper(io.BufferedWriter(raw), line_buffering=tty, **kw)

    encoding = sys.stdout.encoding or "utf-8"
    sys.stdin = sys.__stdin__ = stream(0, "r", encoding=encoding)
    sys.stdout = sys.__stdout__ = stream(1, "w", encoding=encoding, errors="strict")
    sys.stderr = sys.__stderr__ = stream(2, "w", encoding=encoding, errors="backslashreplace",
                                         write_through=True)


def run(home: Path) -> int:
    """Serve `home`'s commands until stopped or idle. 0 also when another server already serves
    it."""
    path = socket_path(home)
    if not private_dir(path.parent, create=True):
        print(f"castkeep command server: {path.parent} is not a private directory", file=sys.stderr)
        return 2
    try:  # children are watched through pidfds (Linux 5.3+); without them, no server
        os.close(os.pidfd_open(os.getpid()))
    except (AttributeError, OSError):
        print("castkeep command server: this system has no pidfd_open; commands run in their "
              "own process", file=sys.stderr)
        return 2
    key = env_key(os.environ)  # the environment as the client gave it, before start-up adds to it
    lock_path = path.with_suffix(".lock")
    lock_fd = os.open(str(lock_path), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return 0  # another server holds it
    preload(home)
    server = Server(home=Path(home), path=path, env_key=key, stamps=module_stamps())
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    listener.bind(str(tmp))
    os.chmod(tmp, 0o600)
    listener.listen(32)
    os.replace(tmp, path)  # clients never see a socket that is not listening yet

    def terminate(_signum, _frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        server.serve(listener, lock_fd)
    except SystemExit:  # SIGTERM: no more commands; running ones go on without their report
        server.stop()
    finally:
        with contextlib.suppress(OSError):
            os.unlink(lock_path)  # still held: a server starting now waits for none
    return 0


def _ask(home: Path, op: str) -> dict | None:
    """One question to `home`'s running server; None when none answers."""
    sock = connect(socket_path(home))
    if sock is None:
        return None
    with sock:
        try:
            send_message(sock, {"op": op})
            return recv_message(sock)[0]
        except OSError:
            return None


def stop_command_server(home: Path, *, timeout: float = 10.0) -> bool:
    """Ask `home`'s command server to stop (commands it runs finish first); True if one was
    running."""
    reply = _ask(home, "stop")
    path = socket_path(home)
    deadline = time.monotonic() + timeout
    while reply and path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return bool(reply and reply.get("stopping"))


def command_server_info(home: Path) -> dict | None:
    """The running server's pid, commands served and running; None when none runs."""
    return _ask(home, "info")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="castkeep's command server for one data dir")
    parser.add_argument("--home", required=True, type=Path)
    args = parser.parse_args(argv)
    return run(args.home)


if __name__ == "__main__":
    sys.exit(main())
