"""The command server (flows/command_server.py) under the real `castkeep` console script: flow
commands run there give what they give in their own process (output, exit code, files under the
working directory, a terminal's progress bar), Ctrl-C reaches the command, a client of another
environment or after a code change runs the command itself, another user is turned away, and
`castkeep stop` stops it."""

from __future__ import annotations

import json
import os
import pty
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from castkeep.flows.command_client import recv_message, send_message, socket_path
from castkeep.flows.command_server import command_server_info, stop_command_server
from tests.plugins.request import request_doc, write_request

CASTKEEP = str(Path(sys.executable).parent / "castkeep")


@pytest.fixture
def served(ingested_catalogue):
    """The environment of a user whose flow commands go to the command server (the default
    outside the tests); the server is stopped afterwards."""
    from prefect.settings import PREFECT_API_URL

    home = ingested_catalogue.home
    env = {**os.environ, "CASTKEEP_HOME": str(home), "PREFECT_API_URL": PREFECT_API_URL.value(),
           "CASTKEEP_COMMAND_SERVER": "on"}
    try:
        yield env, home, ingested_catalogue
    finally:
        info = command_server_info(home)
        stop_command_server(home)
        if info:
            assert _gone(info["pid"])


def _castkeep(*args: str, env: dict, cwd: Path | None = None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([CASTKEEP, *args], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=300, **kw)


def _gone(pid: int, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        # A child of this test process would stay a zombie: the server is not one.
        time.sleep(0.05)
    return False


def _off(env: dict) -> dict:
    return {**env, "CASTKEEP_COMMAND_SERVER": "off"}


def test_flow_commands_on_the_server_answer_as_in_their_own_process(served, tmp_path):
    env, home, _cat = served
    work = tmp_path / "work"
    work.mkdir()
    first = _castkeep("audit", "--json", "--out", "reports", env=env, cwd=work)
    assert first.returncode == 0, first.stderr
    info = command_server_info(home)
    assert info and info["served"] == 1  # started by that command, which it then ran
    served_report = json.loads(first.stdout)
    # The relative --out resolved against the client's working directory.
    assert sorted(p.suffix for p in (work / "reports").iterdir()) == [".csv", ".json", ".md"]

    own = _castkeep("audit", "--json", env=_off(env), cwd=work)
    assert own.returncode == 0, own.stderr
    own_report = json.loads(own.stdout)
    for key in ("checked", "violations", "expiring_within_days"):
        assert served_report[key] == own_report[key]
    assert first.stderr == own.stderr == ""

    # Bad input: the same one-line error and exit code, on the client's stderr.
    bad = _castkeep("consent", "revoke", "not-a-consent", "--reason", "x", env=env)
    bad_own = _castkeep("consent", "revoke", "not-a-consent", "--reason", "x", env=_off(env))
    assert bad.returncode == bad_own.returncode == 2
    assert bad.stderr == bad_own.stderr and bad.stderr.startswith("error: no consent")
    assert bad.stdout == ""
    again = command_server_info(home)
    assert again["pid"] == info["pid"] and again["served"] == 2

    # `castkeep status` reports it; `castkeep stop` stops it with the other servers.
    status = json.loads(_castkeep("status", "--json", env=env).stdout)
    assert status["commands"] == {"enabled": True, "running": True, "pid": info["pid"],
                                  "served": 2}
    stopped = _castkeep("stop", "--json", env=env)
    assert json.loads(stopped.stdout)["commands"] is True
    assert _gone(info["pid"]) and not socket_path(home).exists()


def test_another_environment_or_changed_code_runs_the_command_itself(served):
    env, home, _cat = served
    assert _castkeep("audit", "--json", env=env).returncode == 0
    pid = command_server_info(home)["pid"]

    # Another Prefect or castkeep setting: the server's imported state is not this client's.
    other = _castkeep("audit", "--json", env={**env, "PREFECT_CLIENT_MAX_RETRIES": "2"})
    assert other.returncode == 0, other.stderr
    info = command_server_info(home)
    assert info["pid"] == pid and info["served"] == 1

    # A castkeep module the server imported changes on disk: this command runs in its own
    # process, the server retires, and the next command starts a fresh one.
    import castkeep.flows.audit as audit_module

    path = Path(audit_module.__file__)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    try:
        changed = _castkeep("audit", "--json", env=env)
        assert changed.returncode == 0, changed.stderr
        assert _gone(pid)
        after = _castkeep("audit", "--json", env=env)
        assert after.returncode == 0, after.stderr
        fresh = command_server_info(home)
        assert fresh["pid"] != pid and fresh["served"] == 1
    finally:
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_a_terminal_gets_the_progress_bar(served):
    env, _home, _cat = served
    assert _castkeep("audit", env=env).returncode == 0  # server started
    plain = _castkeep("audit", env=env)
    assert "assets checked 0/" in plain.stderr  # not a terminal: plain lines

    main, child = pty.openpty()
    proc = subprocess.Popen([CASTKEEP, "audit"], env={**env, "TERM": "xterm", "COLUMNS": "100"},
                            stdout=subprocess.PIPE, stderr=child, text=True)
    os.close(child)
    out = proc.communicate(timeout=300)[0]
    terminal = b""
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:
            break
        if not chunk:
            break
        terminal += chunk
    os.close(main)
    assert proc.returncode == 0
    assert out.startswith("checked ")
    assert b"\x1b[" in terminal  # rich drew (and removed) a bar on the terminal
    assert b"assets checked 0/" not in terminal


def _request_progress() -> list[tuple[str, int]]:
    from castkeep.flows.read_catalogue import catalogue_connection

    with catalogue_connection() as conn:
        return conn.execute(
            "SELECT r.status, (SELECT count(*) FROM asset a WHERE a.request_id = r.id) "
            "FROM asset_request r").fetchall()


def test_ctrl_c_stops_the_command_it_runs(served, tmp_path):
    env, home, _cat = served
    assert _castkeep("keys", "init", env=env).returncode == 0
    assert _castkeep("audit", "--json", env=env).returncode == 0  # server started
    path = write_request(tmp_path, request_doc(variants=40), "long.json")
    proc = subprocess.Popen([CASTKEEP, "request", str(path), "--json"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not any(done for _, done in _request_progress()) and time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.1)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert time.monotonic() - t0 < 30  # not after the 40 variants
    assert proc.returncode != 0
    assert command_server_info(home)["running"] == 0
    (status, done), = _request_progress()
    assert status == "failed" and 1 <= done < 40, err


@pytest.mark.skipif(os.geteuid() != 0, reason="needs to switch to another user")
def test_another_user_is_turned_away(served):
    env, home, _cat = served
    assert _castkeep("audit", "--json", env=env).returncode == 0
    path = socket_path(home)
    # Open the way to the socket, so only the server's own check stands.
    os.chmod(path.parent, 0o711)
    os.chmod(path, 0o666)
    body = json.dumps({"op": "run", "argv": ["audit"], "env": env, "cwd": "/",
                       "umask": 18}).encode()
    request = struct.pack("!I", len(body)) + body
    readable, writable = os.pipe()
    try:
        pid = os.fork()
        if pid == 0:  # another user's process: plain system calls only, then out
            answer = b"?"
            try:
                os.setuid(65534)
                with socket.socket(socket.AF_UNIX) as sock:
                    sock.connect(str(path))
                    answer = b"connected"
                    socket.send_fds(sock, [request], [0, 1, 2])
                    answer = b"closed" if sock.recv(64) == b"" else b"answered"
            except (ConnectionResetError, BrokenPipeError):
                answer = b"closed"  # closed with the request unread
            except OSError as exc:
                answer += f" {exc}".encode()
            finally:
                os.write(writable, answer)
                os._exit(0)
        os.close(writable)
        os.waitpid(pid, 0)
        answer = os.read(readable, 256)
    finally:
        os.close(readable)
        os.chmod(path.parent, 0o700)
        os.chmod(path, 0o600)
    assert answer == b"closed"  # connected, then closed without an answer
    assert command_server_info(home)["served"] == 1


def test_only_this_user_can_reach_the_socket(served):
    env, home, _cat = served
    assert _castkeep("audit", "--json", env=env).returncode == 0
    directory = socket_path(home).parent
    assert directory.stat().st_mode & 0o777 == 0o700
    assert socket_path(home).stat().st_mode & 0o777 == 0o600
    # A client does not use a directory others can write to (another user's socket could be
    # put there): it runs the command itself.
    os.chmod(directory, 0o777)
    try:
        shared = _castkeep("audit", "--json", env=env)
    finally:
        os.chmod(directory, 0o700)
    assert shared.returncode == 0, shared.stderr
    assert command_server_info(home)["served"] == 1


def test_a_malformed_request_is_closed_without_running(served):
    env, home, _cat = served
    assert _castkeep("audit", "--json", env=env).returncode == 0
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(str(socket_path(home)))
        send_message(sock, {"op": "run", "argv": "audit", "env": {}, "cwd": "/", "umask": 18},
                     fds=[0, 1, 2])
        assert recv_message(sock)[0] == {"refused": "malformed request"}
    assert command_server_info(home)["served"] == 1


def test_a_killed_server_is_reported_after_its_command_ends(served, tmp_path):
    env, home, _cat = served
    assert _castkeep("keys", "init", env=env).returncode == 0
    assert _castkeep("audit", "--json", env=env).returncode == 0  # server started
    pid = command_server_info(home)["pid"]
    path = write_request(tmp_path, request_doc(variants=3), "three.json")
    proc = subprocess.Popen([CASTKEEP, "request", str(path), "--json"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while command_server_info(home)["running"] == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 5
    assert "command server stopped" in err
    # The command itself went on to its end, its output included, before the client returned.
    assert json.loads(out)["status"] == "completed"
    assert _request_progress() == [("completed", 3)]
    # The next command starts a new server.
    assert _castkeep("audit", "--json", env=env).returncode == 0
    assert command_server_info(home)["pid"] != pid
