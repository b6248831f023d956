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
    assert not any(line.startswith("assets checked") for line in result.stderr.splitlines())


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
    # Progress on stderr (plain lines: not a terminal), from none to all of the talent's assets.
    progress = [line for line in result.stderr.splitlines() if line.startswith("assets checked")]
    assert progress == ["assets checked 0/2 (0%)", "assets checked 2/2 (100%)"]
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


def _verify(cli) -> tuple[int, dict]:
    result = cli("audit", "verify-log", "--json")
    return result.exit_code, json.loads(result.stdout)


def test_verify_log_checkpoints_an_intact_log(compliance_catalogue, cli):
    cat = compliance_catalogue(untracked=False)
    code, out = _verify(cli)
    assert code == 0 and out["intact"] is True and out["checkpoints"] == 0
    with cat.runtime.engine.connect() as conn:
        newest = conn.execute(sa.text("SELECT max(seq) FROM audit_event")).scalar_one()
    assert out["checkpoint_written"]["seq"] == newest
    assert list(cat.runtime.store.list_keys("checkpoints")) == [out["checkpoint_written"]["key"]]
    assert (cat.home / "keys" / "audit-anchor.key").is_file()
    human = cli("audit", "verify-log")
    assert human.exit_code == 0 and "1 checkpoint(s): chain intact" in human.stdout
    assert f"checkpoint written: seq {newest}" in human.stdout


def test_verify_log_reports_the_newest_rows_deleted(compliance_catalogue, cli):
    from tests.plugins.compliance import delete_newest_audit_rows

    cat = compliance_catalogue(untracked=False)
    code, first = _verify(cli)
    assert code == 0
    head = first["checkpoint_written"]["seq"]
    delete_newest_audit_rows(cat.runtime.engine, 2)
    code, out = _verify(cli)
    assert code == 1 and out["intact"] is False and out["checkpoint_written"] is None
    assert [(b["kind"], b["seq"]) for b in out["breaks"]] == [("tail_truncated", head)]
    assert f"tail truncated: rows {head - 1}..{head} missing" in out["breaks"][0]["detail"]
    human = cli("audit", "verify-log")
    assert human.exit_code == 1 and f"tail truncated: rows {head - 1}..{head} missing" in human.stdout


def test_verify_log_reports_a_chain_rewritten_with_castkeeps_own_hash(compliance_catalogue, cli):
    from tests.plugins.compliance import rewrite_audit_chain

    cat = compliance_catalogue(untracked=False)
    code, first = _verify(cli)
    head = first["checkpoint_written"]["seq"]
    rewrite_audit_chain(cat.runtime.engine, 2, actor="mallory")
    code, out = _verify(cli)
    assert code == 1
    # No row breaks the chain: only the checkpoint shows the rewrite.
    assert [(b["kind"], b["seq"]) for b in out["breaks"]] == [("rewritten", head)]
    assert f"history rewritten at or before seq {head}" in out["breaks"][0]["detail"]


def test_verify_log_reports_a_forged_checkpoint(compliance_catalogue, cli):
    cat = compliance_catalogue(untracked=False)
    code, first = _verify(cli)
    store = cat.runtime.store
    record = json.loads(store.get_bytes(first["checkpoint_written"]["key"]))
    forged = store.put_bytes(json.dumps({**record, "seq": record["seq"] + 40}).encode(),
                             prefix="checkpoints", ext="json", media_type="application/json")
    code, out = _verify(cli)
    assert code == 1
    assert [(b["kind"], b["seq"]) for b in out["breaks"]] == [("checkpoint_invalid", record["seq"] + 40)]
    assert forged.key in out["breaks"][0]["detail"] and "MAC that does not verify" in out["breaks"][0]["detail"]


def test_audit_reports_a_consent_row_edited_in_sql(compliance_catalogue, cli):
    cat = compliance_catalogue(untracked=False)
    with cat.runtime.engine.begin() as conn:
        conn.execute(sa.text(
            "UPDATE consent SET scope = jsonb_set(scope, '{purposes}', '[\"advertising\", \"ai-training\"]') "
            "WHERE id = :id"), {"id": cat.consents["biden"]})
    result = cli("audit", "--json")
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert [(v["kind"], v["consent_id"]) for v in report["violations"]] == [
        ("consent_tampered", str(cat.consents["biden"]))
    ]
    assert "scope.purposes" in report["violations"][0]["detail"]
