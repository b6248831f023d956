"""castkeep.flows.flow_type in a real flow command: `castkeep audit` runs its flow against the
Prefect API without loading FastAPI (Prefect's parameter encoder), and the run's parameters are
stored as Prefect would store them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

# Runs `castkeep ARGS` in a fresh interpreter; the last line reports which of the named modules
# the command loaded.
_PROBE = """
import json, sys
watch = set(json.loads(sys.argv[2]))
sys.argv = ["castkeep", *json.loads(sys.argv[1])]
from castkeep.flows.cli import main
code = 0
try:
    main()
except SystemExit as exit:
    code = exit.code
print(json.dumps({"code": code, "loaded": sorted({m.split(".")[0] for m in sys.modules} & watch)}))
"""


def test_audit_runs_its_flow_without_fastapi(runtime_env: Path, prefect_harness):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName
    from prefect.client.schemas.sorting import FlowRunSort
    from prefect.settings import PREFECT_API_URL

    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value()}
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(["audit", "--json", "--expiring-days", "45"]),
         json.dumps(["prefect", "fastapi"])],
        env=env, capture_output=True, text=True, timeout=300)
    *output, probe = proc.stdout.strip().splitlines()
    report = json.loads(probe)
    assert report["code"] == 0, proc.stderr[-2000:]
    assert json.loads("\n".join(output))["expiring_within_days"] == 45
    assert report["loaded"] == ["prefect"]

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=["audit"])),
                                     sort=FlowRunSort.START_TIME_DESC, limit=1)
    assert runs[0].parameters == {"talent": None, "expiring_within_days": 45, "out_dir": None,
                                  "actor": None, "inventory": False, "takedown_hours": None}
    assert runs[0].state.is_completed()
