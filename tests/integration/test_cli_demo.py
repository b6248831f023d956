"""`castkeep demo --json` on a fresh machine: nothing configured but CASTKEEP_HOME (bundled
PostgreSQL, filesystem store, development CA, the local Prefect server), then run again."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def _demo(env):
    castkeep = Path(sys.executable).parent / "castkeep"
    proc = subprocess.run([str(castkeep), "demo", "--json"], env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "demo steps" not in proc.stderr and "variants" not in proc.stderr  # --json: no progress
    return json.loads(proc.stdout)  # stdout is exactly the JSON


def _history(home: Path) -> tuple[dict[str, int], set[str]]:
    """Flow runs per flow name, and artifact keys, in the data dir's local Prefect server."""
    from collections import Counter

    from prefect.client.orchestration import SyncPrefectClient

    port = json.loads((home / "prefect" / "server.json").read_text())["port"]
    with SyncPrefectClient(f"http://127.0.0.1:{port}/api") as client:
        runs = client.read_flow_runs()
        names = {fid: client.read_flow(fid).name for fid in {r.flow_id for r in runs}}
        artifacts = {a.key for a in client.read_artifacts() if a.key}
    return dict(Counter(names[r.flow_id] for r in runs)), artifacts


def test_demo_on_a_fresh_home_and_again(tmp_path):
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CASTKEEP_", "PREFECT_"))}
    env.update(CASTKEEP_HOME=str(home))
    try:
        first = _demo(env)
        assert first["keys"] == "created"
        assert first["ingest"] == {"accepted": 3, "duplicates": 0, "rejected": []}
        labels = {r["label"]: r for r in first["requests"]}
        assert labels["single"]["status"] == "completed"
        assert labels["group"]["status"] == "completed"
        assert labels["refused"]["status"] == "refused"
        assert any("territory JP not in consent" in r for r in first["refusals"])
        assets = first["assets"]
        assert {a["request"] for a in assets} == {"single", "group"}
        assert len(assets) == 3
        for a in assets:
            assert set(a) >= {"id", "path", "state", "passed"}
            assert a["state"] == "Trusted" and Path(a["path"]).is_file()
            assert Path(a["path"]).resolve().is_relative_to(home.resolve())
        assert any(a["passed"] for a in assets)
        # The single request's passing variants look different, not one picture twice.
        assert labels["single"]["variety"] >= 8.0, labels["single"]
        assert labels["group"]["variety"] is None  # one variant: nothing to compare
        assert len(first["contact_sheets"]) == 3
        assert all(Path(p).read_bytes()[:4] == b"\x89PNG" for p in first["contact_sheets"])
        runs, artifacts = _history(home)
        # One history: the demo run with its ingest and its three requests as subflow runs.
        assert runs == {"castkeep-demo": 1, "ingest-references": 1, "fulfil-request": 3}
        requests = {r["request_id"] for r in first["requests"]}
        assert {f"request-{rid}-summary" for rid in requests} <= artifacts
        assert {f"request-{labels[k]['request_id']}-scores" for k in ("single", "group")} <= artifacts

        again = _demo(env)  # safe to re-run: nothing duplicated, keys kept
        assert again["keys"] == "existing"
        assert again["ingest"] == {"accepted": 0, "duplicates": 3, "rejected": []}
        assert {a["id"] for a in again["assets"]}.isdisjoint({a["id"] for a in assets})
        assert all(a["state"] == "Trusted" for a in again["assets"])

        # Without --json, stderr (a pipe here) gets plain progress lines; stdout the summary.
        human = subprocess.run([str(Path(sys.executable).parent / "castkeep"), "demo"], env=env,
                               capture_output=True, text=True, timeout=600)
        assert human.returncode == 0, human.stderr[-3000:]
        lines = human.stderr.splitlines()
        assert lines[0] == "demo steps 0/4 (0%)" and "demo steps 4/4 (100%)" in lines
        assert "portraits 3/3 (100%): accepted 0, duplicates 3, rejected 0" in lines
        assert any(line.startswith("variants 2/2 (100%): passed ") for line in lines)
        assert "castkeep demo (data dir" in human.stdout and "demo steps" not in human.stdout
        assert "variants differ by " in human.stdout
    finally:
        from castkeep.db.server import stop_bundled_server
        from castkeep.flows.prefect_server import stop_server

        stop_server(home)
        stop_bundled_server(home)
