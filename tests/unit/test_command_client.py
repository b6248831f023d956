"""castkeep.flows.command_client: which clients share a server, where its socket lives, the
framing (with the terminal's descriptors), and when a command runs in its own process."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

from castkeep.flows import command_client as cc


def test_the_key_follows_what_shapes_the_servers_imports():
    base = {"PATH": "/usr/bin", "CASTKEEP_HOME": "/data", "PREFECT_API_URL": "http://x/api"}
    key = cc.env_key(base)
    assert cc.env_key({**base, "PATH": "/bin", "TERM": "xterm"}) == key  # read at run time
    assert cc.env_key({**base, "PREFECT_API_URL": "http://y/api"}) != key  # read at import
    assert cc.env_key({**base, "CASTKEEP_SIGNING__CREDIT": "x"}) != key
    assert cc.env_key({**base, "PYTHONPATH": "/x"}) != key
    assert cc.env_key({**base, "LC_ALL": "C"}) != key


def test_the_socket_path_is_short_for_any_data_dir_and_per_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("TMPDIR", raising=False)
    deep = tmp_path / ("x" * 200) / ("y" * 200)
    path = cc.socket_path(deep)
    assert len(str(path).encode()) < 108  # the limit of a Unix socket address
    assert path.parent == Path("/tmp") / f"castkeep-{os.getuid()}"
    assert cc.socket_path(deep) == path and cc.socket_path(tmp_path) != path
    monkeypatch.setattr(sys, "prefix", "/another/venv")
    assert cc.socket_path(deep) != path


def test_only_a_private_directory_of_this_user_is_used(tmp_path):
    mine = tmp_path / "mine"
    assert cc.private_dir(mine, create=True)
    assert mine.stat().st_mode & 0o777 == 0o700
    mine.chmod(0o755)
    assert not cc.private_dir(mine, create=False)  # others could swap the socket
    mine.chmod(0o700)
    link = tmp_path / "link"
    link.symlink_to(mine)
    assert not cc.private_dir(link, create=False)
    assert not cc.private_dir(tmp_path / "absent", create=False)


def test_messages_and_descriptors_cross_the_socket(tmp_path):
    left, right = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    target = tmp_path / "out.txt"
    with left, right, open(target, "w") as out:
        big = {"op": "run", "env": {f"K{i}": "v" * 100 for i in range(2000)}}  # > a socket buffer
        import threading

        sender = threading.Thread(target=cc.send_message, args=(left, big, [out.fileno()]))
        sender.start()
        message, fds = cc.recv_message(right, maxfds=3)
        sender.join()
        assert message == big and len(fds) == 1
        os.write(fds[0], b"through the passed descriptor")
        os.close(fds[0])
        cc.send_message(left, {"exit": 3})
        assert cc.recv_message(right) == ({"exit": 3}, [])
        left.shutdown(socket.SHUT_WR)
        assert cc.recv_message(right) == (None, [])  # end of stream
    assert target.read_text() == "through the passed descriptor"


def test_oversized_or_malformed_messages_are_none():
    import struct

    left, right = socket.socketpair()
    with left, right:
        left.sendall(struct.pack("!I", cc.MAX_MESSAGE + 1))
        assert cc.recv_message(right) == (None, [])
    left, right = socket.socketpair()
    with left, right:
        left.sendall(struct.pack("!I", 5) + b"[1,2]")
        assert cc.recv_message(right) == (None, [])  # not an object


def test_switched_off_the_command_runs_here(monkeypatch, tmp_path):
    for value in ("off", "OFF", "0", "false", "no"):
        monkeypatch.setenv(cc.SWITCH, value)
        assert not cc.enabled()
        assert cc.run_served(["audit"], tmp_path) is None
    monkeypatch.setenv(cc.SWITCH, "on")
    assert cc.enabled()
    monkeypatch.delenv(cc.SWITCH)
    assert cc.enabled()


def test_no_server_to_be_had_runs_the_command_here(monkeypatch, tmp_path):
    # The socket directory is not private: no server is started or used.
    monkeypatch.setenv(cc.SWITCH, "on")
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    shared = tmp_path / f"castkeep-{os.getuid()}"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)
    assert cc.run_served(["audit"], tmp_path / "home") is None
    assert list(shared.iterdir()) == []
