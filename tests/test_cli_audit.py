"""`castkeep audit` and `castkeep audit verify-log` through the real CLI app (CliRunner) on a
real catalogue: exit codes, the --json shape, report files."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

pytestmark = pytest.mark.usefixtures("prefect_harness")


@pytest.fixture
def cli():
    from castkeep.flows.cli import _register, app

    _register()
    runner = CliRunner()
    return lambda *args: runner.invoke(app, list(args))


def _edit_audit_row(cat, seq: int) -> str:
    from castkeep.db import schema

    with cat.runtime.engine.connect() as conn:
        with conn.begin():
            conn.execute(sa.text("SET LOCAL session_replication_role = replica"))
            conn.execute(sa.update(schema.AuditEvent).where(schema.AuditEvent.seq == seq).values(kind="x.y"))
        return str(conn.execute(sa.select(schema.AuditEvent.id).where(schema.AuditEvent.seq == seq)).scalar_one())


def test_clean_audit_exits_zero_and_prints_json_only(compliance_catalogue, cli):
    compliance_catalogue(untracked=False)
    result = cli("audit", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["violations"] == [] and report["checked"] == 2


def test_violations_exit_one_with_the_documented_shape(compliance_catalogue, cli, tmp_path):
    cat = compliance_catalogue(untracked=True)
    result = cli("audit", "--json", "--out", str(tmp_path / "reports"))
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert report["checked"] == 3
    assert [(v["kind"], v["asset_id"]) for v in report["violations"]] == [
        ("untracked_face", str(cat.assets["untracked"]))
    ]
    assert set(report["violations"][0]) >= {"kind", "asset_id", "detail"}
    written = sorted(p.suffix for p in (tmp_path / "reports").iterdir())
    assert written == [".csv", ".json", ".md"]


def test_human_output_and_talent_filter(compliance_catalogue, cli):
    cat = compliance_catalogue(untracked=True)
    result = cli("audit", "--talent", "T-biden")
    assert result.exit_code == 0, result.output
    assert "checked 2 asset(s)" in result.stdout and "clean" in result.stdout
    assert "report: reports/" in result.stdout
    bad = cli("audit", "--talent", "T-obama")
    assert bad.exit_code == 1
    assert f"untracked_face: asset {cat.assets['untracked']}" in bad.stdout


def test_verify_log_reports_the_edited_row(compliance_catalogue, cli):
    cat = compliance_catalogue(untracked=False)
    ok = cli("audit", "verify-log", "--json")
    assert ok.exit_code == 0, ok.output
    intact = json.loads(ok.stdout)
    assert intact["intact"] is True and intact["events"] >= 4 and intact["breaks"] == []
    edited = _edit_audit_row(cat, seq=3)
    broken = cli("audit", "verify-log", "--json")
    assert broken.exit_code == 1
    out = json.loads(broken.stdout)
    assert out["intact"] is False
    assert [b["id"] for b in out["breaks"]][0] == edited
    human = cli("audit", "verify-log")
    assert human.exit_code == 1 and f"seq 3 id {edited}" in human.stdout


def test_help_is_available(cli):
    for args in (("audit", "--help"), ("audit", "verify-log", "--help"), ("consent", "revoke", "--help")):
        result = cli(*args)
        assert result.exit_code == 0 and "Usage" in result.stdout, args
