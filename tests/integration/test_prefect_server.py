"""flows/prefect_server.py: the Prefect API castkeep uses. Most tests read and write its state
files without starting anything; one starts the real long-lived local server from the `castkeep`
command (as a user would), in a temporary data dir, and stops it again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from castkeep.errors import InfrastructureError
from castkeep.flows import prefect_server as ps
from castkeep.flows.settings import Settings

CASTKEEP = str(Path(sys.executable).parent / "castkeep")


def _free_port() -> int:
    from castkeep.net import free_port

    return free_port()


def _dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    return int(proc.stdout)


def _write_state(home: Path, **state: int) -> None:
    root = ps.prefect_home(home)
    root.mkdir(parents=True)
    (root / "server.json").write_text(json.dumps(state))


@pytest.fixture
def no_api_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PREFECT_API_URL", raising=False)


def test_client_environment_keeps_prefect_in_the_data_dir_and_telemetry_off(tmp_path):
    env = ps.client_environment(tmp_path / "data")
    assert env["PREFECT_HOME"] == str((tmp_path / "data" / "prefect").resolve())
    assert env["DO_NOT_TRACK"] == "1"
    assert env["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false"


def test_apply_client_environment_keeps_explicit_variables(tmp_path, monkeypatch):
    for key in ps.client_environment(tmp_path):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "mine"))
    ps.apply_client_environment(tmp_path / "data")
    assert os.environ["PREFECT_HOME"] == str(tmp_path / "mine")
    assert os.environ["DO_NOT_TRACK"] == "1"
    assert (tmp_path / "mine").is_dir()  # Prefect expects its home to exist


def test_status_before_the_first_start(tmp_path, no_api_url):
    status = ps.prefect_status(tmp_path)
    assert status.as_dict() == {"mode": "local", "api_url": None, "ui_url": None,
                                "healthy": False, "running": False}
    assert not (tmp_path / "prefect").exists()  # asking starts nothing


def test_a_server_whose_process_is_gone_is_stale(tmp_path, no_api_url):
    port = _free_port()
    _write_state(tmp_path, pid=_dead_pid(), port=port)
    assert ps.running_server(tmp_path) is None
    status = ps.prefect_status(tmp_path)
    assert (status.running, status.healthy) == (False, False)
    # The remembered port is still reported: the next start reuses it.
    assert status.api_url == f"http://127.0.0.1:{port}/api"
    assert status.ui_url == f"http://127.0.0.1:{port}"
    assert ps.stop_server(tmp_path) is False


def test_a_live_process_that_is_not_a_prefect_server_is_not_taken_for_one(tmp_path, no_api_url):
    # This test process is alive (a recycled pid, say) but is no `prefect server start`.
    _write_state(tmp_path, pid=os.getpid(), port=_free_port())
    assert ps._recorded(ps._paths(tmp_path)) is None
    assert ps.prefect_status(tmp_path).running is False
    assert ps.stop_server(tmp_path) is False  # and it is never signalled


def test_an_external_api_that_does_not_answer(tmp_path, monkeypatch):
    url = f"http://127.0.0.1:{_free_port()}/api"
    monkeypatch.setenv("PREFECT_API_URL", url)
    status = ps.prefect_status(tmp_path)
    assert status.as_dict() == {"mode": "external", "api_url": url, "ui_url": url[:-4],
                                "healthy": False, "running": False}
    with pytest.raises(InfrastructureError, match="PREFECT_API_URL") as err:
        with ps.local_prefect(Settings(home=tmp_path)):
            pass
    assert err.value.exit_code == 5
    assert not (tmp_path / "prefect" / "server.json").exists()  # no local server instead


# --- the real server --------------------------------------------------------------------------


def _castkeep(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CASTKEEP, *args], env=env, capture_output=True, text=True, timeout=600)


def _state(home: Path) -> dict:
    return json.loads((home / "prefect" / "server.json").read_text())


def _audit_runs(api_url: str) -> list[str]:
    """States of the `audit` flow runs in the server's history."""
    from prefect.client.orchestration import SyncPrefectClient

    with SyncPrefectClient(api_url) as client:
        runs = client.read_flow_runs()
        names = {fid: client.read_flow(fid).name for fid in {r.flow_id for r in runs}}
        return sorted(r.state_type.value for r in runs if names[r.flow_id] == "audit")


@pytest.mark.slow
def test_flow_commands_share_one_long_lived_local_server(runtime_env: Path, tmp_path: Path):
    home = runtime_env
    user_home = tmp_path / "user-home"
    user_home.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in {"PREFECT_API_URL", "PREFECT_HOME"}}
    env["HOME"] = str(user_home)
    try:
        # Quiet by default: the result on stdout, nothing of Prefect's on stderr.
        first = _castkeep("audit", "--json", env=env)
        assert first.returncode == 0, first.stderr
        assert json.loads(first.stdout)["clean"] is True
        assert first.stderr == ""
        started = _state(home)

        status = _castkeep("status", "--json", env=env)
        assert status.returncode == 0, status.stderr
        port = started["port"]
        assert json.loads(status.stdout)["prefect"] == {
            "mode": "local", "api_url": f"http://127.0.0.1:{port}/api",
            "ui_url": f"http://127.0.0.1:{port}", "healthy": True, "running": True,
        }

        # The second command finds the same server; -v shows Prefect's run logs.
        second = _castkeep("-v", "audit", "--json", env=env)
        assert second.returncode == 0, second.stderr
        assert "Finished in state Completed" in second.stderr
        assert _state(home) == started
        api_url = f"http://127.0.0.1:{port}/api"
        assert _audit_runs(api_url) == ["COMPLETED", "COMPLETED"]

        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as page:
            assert page.status == 200
            assert b"<html" in page.read(4096).lower()
        # The UI in a browser is told to call this server's API (not Prefect's default port).
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ui-settings", timeout=10) as page:
            assert json.loads(page.read())["api_url"] == api_url

        # Everything Prefect wrote is in the data dir, nothing under the user's home.
        assert (home / "prefect" / "prefect.db").is_file()
        assert not (user_home / ".prefect").exists()

        # A server that died is replaced on the next need, on the remembered port, with the
        # history kept.
        os.kill(started["pid"], signal.SIGKILL)
        assert ps._gone(started["pid"], timeout=20)
        third = _castkeep("audit", "--json", env=env)
        assert third.returncode == 0, third.stderr
        restarted = _state(home)
        assert restarted["pid"] != started["pid"] and restarted["port"] == port
        assert _audit_runs(api_url) == ["COMPLETED"] * 3

        stopped = _castkeep("stop", "--json", env=env)
        assert stopped.returncode == 0, stopped.stderr
        # The catalogue is the test's external database: not castkeep's to stop.
        assert json.loads(stopped.stdout) == {"commands": False, "prefect": True, "database": False}
        assert not ps.health(api_url)
        assert not ps._is_server(restarted["pid"], port)
        assert _state(home) == {"port": port}
        assert not (user_home / ".prefect").exists()
    finally:
        ps.stop_server(home)


def test_runs_on_castkeeps_own_server_send_no_heartbeats(tmp_path, no_api_url):
    """Nothing watches heartbeats there, and Prefect waits up to a second for the heartbeat
    thread at the end of every run; a configured server keeps them (its automations may)."""
    from prefect.settings import PREFECT_API_URL, get_current_settings, temporary_settings

    home = tmp_path / "own"
    # No API configured in this process either (a harness elsewhere in the session may be).
    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        before = get_current_settings()
        try:
            with ps.local_prefect(Settings(home=home)) as url:
                inside = get_current_settings()
                assert inside.flows.heartbeat_frequency is None
                # The rest as Prefect itself derives it from that API URL: the run links the
                # log prints ("View at ...") point at this server's UI.
                assert inside.api.url == PREFECT_API_URL.value() == url
                derived = before.copy_with_update(updates={PREFECT_API_URL: url})
                assert inside.ui_url == derived.ui_url == url.removesuffix("/api")
                assert inside.api == derived.api and inside.home == derived.home
        finally:
            ps.stop_server(home)
        after = get_current_settings()
        assert after.flows.heartbeat_frequency == before.flows.heartbeat_frequency
        assert after.api.url == before.api.url and after.ui_url == before.ui_url


def test_runs_on_a_configured_server_keep_their_heartbeats(tmp_path, prefect_harness,
                                                           monkeypatch):
    from prefect.settings import PREFECT_API_URL, get_current_settings

    monkeypatch.setenv("PREFECT_API_URL", PREFECT_API_URL.value())  # as a user exports it
    with ps.local_prefect(Settings(home=tmp_path)) as url:
        assert get_current_settings().flows.heartbeat_frequency is not None
        assert get_current_settings().api.url == url == PREFECT_API_URL.value()
    assert not (tmp_path / "prefect" / "server.json").exists()  # no local server was started


def test_an_api_url_exported_after_prefect_loaded_is_used(tmp_path, prefect_harness, monkeypatch):
    """An embedding application may set PREFECT_API_URL after Prefect read its settings: the
    body still runs against it."""
    from prefect.settings import PREFECT_API_URL, get_current_settings, temporary_settings

    url = PREFECT_API_URL.value()
    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        assert get_current_settings().api.url is None
        monkeypatch.setenv("PREFECT_API_URL", url)
        with ps.local_prefect(Settings(home=tmp_path)):
            assert get_current_settings().api.url == url
            assert get_current_settings().ui_url == url.removesuffix("/api")
        assert get_current_settings().api.url is None
