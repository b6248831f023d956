"""How long everyday `castkeep` commands take from the shell, servers already running.

Sets up a temporary CASTKEEP_HOME, runs `castkeep demo` there once (it starts the bundled
PostgreSQL, the local Prefect server and the command server, and leaves data to look at), then
times each command `--runs` times (default 5; `consent revoke` for real only once each, last)
and prints JSON with the median wall time (and CPU time) of each, next to the median of
`python -c pass` measured in the same run as the reference (the interpreter's own start-up), and
the machine's load average. The flow commands (`audit`, `consent revoke`) are also timed in their
own process (CASTKEEP_COMMAND_SERVER=off), as they ran before the command server:

    python benchmarks/cli_latency.py [--runs 5] [--keep]

Every command is the real console script in a child process, as a user types it. The servers the
demo started are stopped at the end (`castkeep stop`) and the data dir removed, unless --keep.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CASTKEEP = str(Path(sys.executable).parent / "castkeep")


def _env(home: Path) -> dict[str, str]:
    # The embedded default of a fresh data dir: no CASTKEEP_ or Prefect API settings inherited.
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("CASTKEEP_") and k != "PREFECT_API_URL"}
    env["CASTKEEP_HOME"] = str(home)
    return env


def _time(argv: list[str], env: dict[str, str], runs: int) -> dict:
    """Median and min wall time, and the median CPU time (user + system) of the child: on a
    shared machine the wall time grows with the load, its CPU time much less."""
    seconds, cpu, codes = [], [], []
    for _ in range(runs):
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        _pid, status, usage = os.wait4(proc.pid, 0)
        seconds.append(time.perf_counter() - t0)
        cpu.append(usage.ru_utime + usage.ru_stime)
        codes.append(os.waitstatus_to_exitcode(status))
    return {"median_s": round(statistics.median(seconds), 3),
            "min_s": round(min(seconds), 3), "cpu_s": round(statistics.median(cpu), 3),
            "exit_codes": sorted(set(codes))}


def _demo(env: dict[str, str]) -> tuple[dict, float]:
    t0 = time.perf_counter()
    proc = subprocess.run([CASTKEEP, "demo", "--json"], env=env, capture_output=True, text=True,
                          timeout=3600)
    took = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"castkeep demo failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout), took


def _consent_of(env: dict[str, str], talent: str) -> str:
    shown = subprocess.run([CASTKEEP, "talent", "show", talent, "--json"], env=env,
                           capture_output=True, text=True, check=True)
    return json.loads(shown.stdout)["consents"][0]["id"]


def _revoke(consent_id: str, env: dict[str, str]) -> dict:
    t0 = time.perf_counter()
    revoked = subprocess.run([CASTKEEP, "consent", "revoke", consent_id, "--reason", "benchmark",
                              "--json"], env=env, capture_output=True, text=True)
    return {"seconds": round(time.perf_counter() - t0, 3), "exit_code": revoked.returncode,
            "quarantined": len(json.loads(revoked.stdout).get("quarantined") or [])
            if revoked.returncode == 0 else None}


def _command_server(env: dict[str, str]) -> dict:
    """How many of the commands above the command server ran (the others ran in their own
    process)."""
    shown = subprocess.run([CASTKEEP, "status", "--json"], env=env, capture_output=True,
                           text=True)
    return json.loads(shown.stdout).get("commands", {}) if shown.stdout else {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="leave the data dir and its servers")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="castkeep-latency-"))
    env = _env(home)
    try:
        demo, demo_s = _demo(env)
        request_id = demo["requests"][0]["request_id"]
        asset_path = demo["assets"][0]["path"]
        consent_id = _consent_of(env, "demo-talent-a")
        commands = {
            "castkeep --version": [CASTKEEP, "--version"],
            "castkeep status": [CASTKEEP, "status"],
            "castkeep talent list": [CASTKEEP, "talent", "list"],
            "castkeep request show ID": [CASTKEEP, "request", "show", request_id],
            "castkeep verify FILE": [CASTKEEP, "verify", asset_path],
            "castkeep request list": [CASTKEEP, "request", "list"],
            "castkeep audit": [CASTKEEP, "audit"],
            "castkeep consent revoke ID --dry-run": [
                CASTKEEP, "consent", "revoke", consent_id, "--reason", "benchmark", "--dry-run"],
        }
        # The flow commands again in their own process (no command server): what they cost
        # before it, measured in this run.
        own = {**env, "CASTKEEP_COMMAND_SERVER": "off"}
        own_process = {"castkeep audit", "castkeep consent revoke ID --dry-run"}
        reference = _time([sys.executable, "-c", "pass"], env, args.runs)
        results = {}
        for name, argv in commands.items():
            r = _time(argv, env, args.runs)
            r["over_reference_s"] = round(r["median_s"] - reference["median_s"], 3)
            results[name] = r
            if name in own_process:
                r = _time(argv, own, args.runs)
                r["over_reference_s"] = round(r["median_s"] - reference["median_s"], 3)
                results[f"{name} (own process)"] = r
        # Last, once each: they change the catalogue (the demo's assets of a talent are
        # quarantined): talent A's consent on the command server, talent B's in its own process.
        results["castkeep consent revoke ID (once)"] = _revoke(consent_id, env)
        results["castkeep consent revoke ID (once, own process)"] = _revoke(
            _consent_of(env, "demo-talent-b"), own)
        print(json.dumps({
            "runs": args.runs,
            "load_average_1m": round(os.getloadavg()[0], 2),
            "reference": {"python -c pass": reference},
            "commands": results,
            "command_server": _command_server(env),
            "demo_s": round(demo_s, 1),
        }, indent=2))
    finally:
        if not args.keep:
            stopped = subprocess.run([CASTKEEP, "stop"], env=env, capture_output=True, timeout=120)
            if stopped.returncode != 0:  # a castkeep without `stop`: the database at least
                subprocess.run([CASTKEEP, "db", "stop"], env=env, capture_output=True, timeout=120)
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
