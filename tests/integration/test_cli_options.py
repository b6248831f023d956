"""The root options of `castkeep` (castkeep.flows.cli): `--version` answered before anything heavy
loads, quiet orchestration by default, `-v/--verbose` to see Prefect's run logs, and the Prefect
environment every command gets (its home in the data dir, telemetry off)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import castkeep
from castkeep.flows import cli

HEAVY = ("prefect", "torch", "diffusers", "cv2", "dlib", "sqlalchemy", "pydantic_settings")

# Runs main() in a fresh interpreter and reports what it left behind (the process environment
# and the modules it loaded) as one JSON line after the command's own output.
_PROBE = """
import json, os, sys
heavy = set(json.loads(sys.argv[2]))
sys.argv = ["castkeep", *json.loads(sys.argv[1])]
from castkeep.flows.cli import main
try:
    main()
except SystemExit:
    pass
print(json.dumps({
    "env": {k: os.environ.get(k) for k in ("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "PREFECT_HOME",
                                           "DO_NOT_TRACK", "PREFECT_SERVER_ANALYTICS_ENABLED")},
    "heavy": sorted({m.split(".")[0] for m in sys.modules} & heavy),
}))
"""


def _probe(tmp_path: Path, *args: str) -> tuple[list[str], dict]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "CASTKEEP_"))}
    env.pop("DO_NOT_TRACK", None)
    env["CASTKEEP_HOME"] = str(tmp_path / "data")
    proc = subprocess.run([sys.executable, "-c", _PROBE, json.dumps(args), json.dumps(HEAVY)],
                          env=env, capture_output=True, text=True, timeout=120, check=True)
    *output, report = proc.stdout.strip().splitlines()
    return output, json.loads(report)


def test_version_is_printed_before_anything_heavy_loads(tmp_path):
    output, report = _probe(tmp_path, "--version")
    assert output == [f"castkeep {castkeep.__version__}"]
    assert report["heavy"] == []
    # Not even the Prefect environment is set up for it.
    assert report["env"]["PREFECT_HOME"] is None


def test_version_and_verbose_are_root_options():
    cli._register()
    result = CliRunner().invoke(cli.app, ["--version"])
    assert result.exit_code == 0 and result.stdout == f"castkeep {castkeep.__version__}\n"
    help_text = CliRunner().invoke(cli.app, ["--help"]).stdout
    assert "--verbose" in help_text and "-v" in help_text and "--version" in help_text


def test_commands_are_quiet_by_default_with_prefect_in_the_data_dir(tmp_path):
    _out, report = _probe(tmp_path, "faces", "--help")
    assert report["env"] == {
        "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "CRITICAL",
        "PREFECT_HOME": str((tmp_path / "data" / "prefect").resolve()),
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    assert (tmp_path / "data" / "prefect").is_dir()


def test_verbose_lets_prefect_logs_through_and_keeps_telemetry_off(tmp_path):
    for flag in ("-v", "--verbose"):
        _out, report = _probe(tmp_path, flag, "faces", "--help")
        assert report["env"]["PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL"] is None, flag
        assert report["env"]["DO_NOT_TRACK"] == "1"
        assert report["env"]["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false"


# What the everyday read commands must not load: no orchestration, ML, migration tooling or
# vector maths (none of them touches a vector), no signing stack except for `verify`, and, as
# they read an up-to-date catalogue directly, neither the ORM nor the full settings model
# (`status` validates every setting: it reports a wrong one).
READ_HEAVY = ("prefect", "torch", "diffusers", "cv2", "dlib", "onnxruntime", "numpy", "alembic",
              "PIL", "c2pa", "cryptography", "sqlalchemy", "pydantic_settings")


@pytest.mark.parametrize("args, allowed", [
    (("status",), ("pydantic_settings",)),
    (("talent", "list"), ()),
    (("talent", "show", "nobody"), ()),
    (("request", "list"), ()),
    (("asset", "list"), ()),
    (("asset", "show", "00000000-0000-4000-8000-000000000000"), ()),
    (("request", "show", "00000000-0000-4000-8000-000000000000"), ()),
    (("verify", "{fixtures}/obama.jpg"), ("c2pa", "cryptography")),
])
def test_read_commands_load_nothing_heavy_and_no_prefect(runtime_env: Path, fixtures_dir: Path,
                                                          args, allowed):
    from castkeep.flows.runtime import open_runtime

    open_runtime().close()  # the catalogue is current, as after any earlier command
    argv = [a.format(fixtures=fixtures_dir) for a in args]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.pop("DO_NOT_TRACK", None)
    proc = subprocess.run([sys.executable, "-c", _PROBE, json.dumps(argv), json.dumps(READ_HEAVY)],
                          env=env, capture_output=True, text=True, timeout=120)
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "Traceback" not in proc.stderr, proc.stderr
    assert report["heavy"] == sorted(allowed), argv
    # No Prefect environment either: these commands run no flow.
    assert report["env"]["PREFECT_HOME"] is None
    assert not (runtime_env / "prefect").exists()
