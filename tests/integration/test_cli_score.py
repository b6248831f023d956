"""`castkeep score`: any image judged against reference portraits with the pipeline's scorers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from castkeep.flows import cli

cli._register()
runner = CliRunner()


def _score(*args):
    return runner.invoke(cli.app, ["score", *args])


def test_a_photo_scored_against_itself_and_against_someone_else(castkeep_home, fixtures_dir):
    ok = _score(str(fixtures_dir / "biden.jpg"), "--reference", str(fixtures_dir / "biden.jpg"),
                "--light", "azimuth=45", "--camera", "roll=0", "--json")
    assert ok.exit_code == 0, ok.output
    report = json.loads(ok.stdout)
    assert set(report) == {"passed", "scores", "reasons"}
    assert report["passed"] is True, report["reasons"]
    for kind in ("identity", "extra_faces", "lighting", "camera", "quality"):
        entry = report["scores"][kind]
        assert {"value", "threshold", "passed", "method"} <= set(entry), kind
        assert entry["method"], kind
    assert report["scores"]["lighting"]["method"] == "sh1-generic-face"  # not the ratio alone
    other = _score(str(fixtures_dir / "biden.jpg"), "--reference", str(fixtures_dir / "obama.jpg"),
                   "--json")
    report = json.loads(other.stdout)
    assert report["passed"] is False and report["scores"]["identity"]["passed"] is False
    assert report["reasons"][0].startswith("identity: talent obama.jpg distance")


def test_derived_output_gets_the_seam_check(castkeep_home, fixtures_dir):
    res = _score(str(fixtures_dir / "extreme_spec_classical_v1.jpg"), "--reference",
                 str(fixtures_dir / "obama.jpg"), "--light", "azimuth=-90,fill=0,hardness=hard",
                 "--derived", "--json")
    report = json.loads(res.stdout)
    assert report["passed"] is False
    assert report["scores"]["quality"]["detail"]["seam_ratio"] > 0.6
    assert "new-edge-energy-vs-reference" in report["scores"]["quality"]["method"]


def _console(*args):
    """The installed `castkeep` script: its error line and exit code come from cli.main()."""
    exe = Path(sys.executable).with_name("castkeep")
    return subprocess.run([str(exe), "score", *args], capture_output=True, text=True, timeout=120)


def test_bad_input_is_one_clear_error(castkeep_home, fixtures_dir, tmp_path):
    res = _console(str(tmp_path / "nope.jpg"), "--reference", str(fixtures_dir / "obama.jpg"))
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [f"error: image file not found: {tmp_path / 'nope.jpg'}"]
    bad = _console(str(fixtures_dir / "obama.jpg"), "--reference", str(fixtures_dir / "obama.jpg"),
                   "--light", "azimuth=400")
    assert bad.returncode == 2 and bad.stderr.startswith("error: ") and "azimuth" in bad.stderr
