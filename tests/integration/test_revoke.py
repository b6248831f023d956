"""Revocation and expiry cascades on a real catalogue: exactly the derived and face-matched
assets are quarantined (status + legal hold, never deleted), every change is in the audit log
with the acting user, and a second run changes nothing."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import sqlalchemy as sa

pytestmark = pytest.mark.usefixtures("prefect_harness")


def _counts(cat) -> tuple[int, int]:
    from castkeep.db import schema

    with cat.runtime.sessions() as s:
        return (
            s.scalar(sa.select(sa.func.count()).select_from(schema.AuditEvent)),
            s.scalar(sa.select(sa.func.count()).select_from(schema.ConsentEvent)),
        )


@pytest.fixture
def actor(acting_as):
    return acting_as("compliance-officer-7")


def test_revoke_quarantines_exactly_derived_and_face_matched_assets(compliance_catalogue, actor):
    from castkeep.db import schema
    from castkeep.db.audit_log import verify_chain
    from castkeep.flows.revoke import revoke_consent

    cat = compliance_catalogue(untracked=True)
    result = revoke_consent(str(cat.consents["obama"]), reason="talent withdrew consent")

    assert cat.names(result["quarantined"]) == {"a_obama", "untracked"}
    assert cat.names(result["derived"]) == {"a_obama"}
    assert cat.names(result["face_matched"]) == {"untracked"}
    assert result["changed"] is True and result["status"] == "revoked"
    assert {n: cat.status(n) for n in cat.assets} == {
        "a_obama": "quarantined", "untracked": "quarantined", "b_biden": "published"
    }
    store = cat.runtime.store
    assert store.legal_hold(cat.keys["a_obama"]) and store.legal_hold(cat.keys["untracked"])
    assert not store.legal_hold(cat.keys["b_biden"])
    # Never deleted: the quarantined objects are still readable.
    assert store.exists(cat.keys["a_obama"]) and store.exists(cat.keys["untracked"])

    with cat.runtime.sessions() as s:
        consent = s.get(schema.Consent, cat.consents["obama"])
        assert consent.status == "revoked"
        events = s.scalars(
            sa.select(schema.ConsentEvent).where(schema.ConsentEvent.consent_id == consent.id)
        ).all()
        assert [(e.kind, e.actor, e.reason) for e in events] == [("revoked", actor, "talent withdrew consent")]
        audit = s.scalars(sa.select(schema.AuditEvent).where(schema.AuditEvent.actor == actor)).all()
        assert sorted(e.kind for e in audit) == ["asset.quarantined", "asset.quarantined", "consent.revoked"]
        assert {e.entity_id for e in audit if e.kind == "asset.quarantined"} == {
            str(cat.assets["a_obama"]), str(cat.assets["untracked"])
        }
        assert verify_chain(s) == []


def test_revoke_twice_is_a_no_op(compliance_catalogue, actor):
    from castkeep.flows.revoke import revoke_consent

    cat = compliance_catalogue(untracked=True)
    revoke_consent(str(cat.consents["obama"]), reason="withdrawn")
    before = _counts(cat)
    again = revoke_consent(str(cat.consents["obama"]), reason="withdrawn")
    assert again["changed"] is False and again["quarantined"] == [] and again["held"] == []
    assert _counts(cat) == before
    # The second run still knows what the consent covers.
    assert cat.names(again["derived"]) == {"a_obama"}


def test_revoke_reaches_assets_derived_from_derived_assets(
    compliance_catalogue, manifest_input_factory, portrait_rgb
):
    from castkeep.flows.revoke import revoke_consent
    from tests.plugins.compliance import add_asset

    cat = compliance_catalogue(untracked=False)
    # A crop of a_obama with no face recorded: only lineage can find it.
    add_asset(cat, "child", image="obama2", talent=None, parent="a_obama", faces=(),
              manifest_factory=manifest_input_factory, portrait_rgb={"obama2": portrait_rgb["obama2"][:200]})
    result = revoke_consent(str(cat.consents["obama"]), reason="withdrawn")
    assert cat.names(result["quarantined"]) == {"a_obama", "child"}
    assert cat.status("b_biden") == "published"


def test_face_match_covered_by_another_active_consent_is_left_alone(compliance_catalogue, actor):
    from castkeep.db import schema
    from castkeep.flows.revoke import revoke_consent

    cat = compliance_catalogue(untracked=True)
    # Obama signs a second, still valid consent that covers the `untracked` asset.
    with cat.runtime.sessions.begin() as s:
        old = s.get(schema.Consent, cat.consents["obama"])
        second = schema.Consent(
            talent_id=old.talent_id, external_ref="C-obama-2", release_doc_sha256="1" * 64,
            release_doc_key="restricted/release-docs/obama-2.pdf", valid_from=old.valid_from,
            valid_until=old.valid_until, scope=old.scope, status="active",
        )
        s.add(second)
        s.flush()
        s.add(schema.Lineage(asset_id=cat.assets["untracked"], reference_portrait_id=cat.references["obama"],
                             talent_id=old.talent_id, consent_id=second.id, relationship="componentOf"))
    result = revoke_consent(str(cat.consents["obama"]), reason="withdrawn")
    assert cat.names(result["quarantined"]) == {"a_obama"}
    assert cat.status("untracked") == "approved"


def test_expire_consents_runs_the_same_cascade_once(compliance_catalogue, actor):
    from castkeep.db import schema
    from castkeep.flows.revoke import expire_consents

    cat = compliance_catalogue(untracked=True)
    with cat.runtime.sessions.begin() as s:
        s.execute(
            sa.update(schema.Consent)
            .where(schema.Consent.id == cat.consents["biden"])
            .values(valid_until=dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1))
        )
    result = expire_consents()
    assert result["expired"] == [str(cat.consents["biden"])]
    # b_biden and untracked were both made under biden's consent; obama's asset is untouched.
    assert cat.names(result["quarantined"]) == {"b_biden", "untracked"}
    assert cat.status("a_obama") == "published"
    with cat.runtime.sessions() as s:
        assert s.get(schema.Consent, cat.consents["biden"]).status == "expired"
    before = _counts(cat)
    again = expire_consents()
    assert again["expired"] == [] and again["quarantined"] == []
    assert _counts(cat) == before


def test_revoking_an_expired_consent_records_the_revocation(compliance_catalogue, actor):
    from castkeep.db import schema
    from castkeep.tasks.revoke import revoke

    cat = compliance_catalogue(untracked=False)
    first = revoke(cat.runtime, consent_id=str(cat.consents["biden"]), reason="ended", status="expired", face=None)
    assert first.status == "expired" and cat.names(first.quarantined) == {"b_biden"}
    second = revoke(cat.runtime, consent_id="C-biden", reason="withdrawn too", face=None)
    assert second.changed and second.previous_status == "expired" and second.quarantined == []
    with cat.runtime.sessions() as s:
        kinds = s.scalars(
            sa.select(schema.ConsentEvent.kind).where(schema.ConsentEvent.consent_id == cat.consents["biden"])
            .order_by(schema.ConsentEvent.at)
        ).all()
    assert kinds == ["expired", "revoked"]
    # An expiry run never downgrades a revocation.
    third = revoke(cat.runtime, consent_id="C-biden", reason="due", status="expired", face=None)
    assert third.status == "revoked" and not third.changed


def test_bad_requests_are_clear_errors(compliance_catalogue):
    from castkeep.errors import NotFoundError
    from castkeep.errors import ConsentStateError
    from castkeep.tasks.revoke import revoke

    cat = compliance_catalogue(untracked=False)
    with pytest.raises(NotFoundError, match="no consent"):
        revoke(cat.runtime, consent_id="C-nobody", reason="x", face=None)
    with pytest.raises(ConsentStateError, match="--reason"):
        revoke(cat.runtime, consent_id=str(cat.consents["obama"]), reason="  ", face=None)
    assert cat.status("a_obama") == "published"


def _progress_lines(stderr: str) -> list[str]:
    # In process, stderr also carries the orchestrator's log lines (the CLI's main() quiets them).
    return [line for line in stderr.splitlines() if line.startswith("quarantine ")]


def test_cli_consent_revoke_json(compliance_catalogue, actor):
    from typer.testing import CliRunner

    from castkeep.flows.cli import _register, app

    _register()
    cat = compliance_catalogue(untracked=True)
    runner = CliRunner()
    result = runner.invoke(app, ["consent", "revoke", "C-obama", "--reason", "withdrawn", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert cat.names(out["quarantined"]) == {"a_obama", "untracked"}
    assert _progress_lines(result.stderr) == []  # --json: no progress
    again = runner.invoke(app, ["consent", "revoke", "C-obama", "--reason", "withdrawn"])
    assert again.exit_code == 0 and "already revoked; 0 asset(s) quarantined" in again.stdout
    # Progress (plain lines: stderr is not a terminal): both assets reached, none new.
    assert _progress_lines(again.stderr)[-1] == "quarantine 2/2 (100%): quarantined 0, held 0"
    missing = runner.invoke(app, ["consent", "revoke", "C-obama"])
    assert missing.exit_code != 0  # --reason is required


def test_revoking_a_consent_quarantines_what_the_real_flows_made_under_it(request_env, fulfil):
    """Ingest + fulfil_request for talent A and for talent B, then revoke A's consent: exactly A's
    request's assets are quarantined."""
    from castkeep.flows.revoke import revoke_consent
    from tests.plugins.request import request_doc

    easy = {"lighting": {"azimuth": 60}, "thresholds": {"lighting_azimuth_deg": 60}}
    a = fulfil(request_doc(**easy))
    b = fulfil(request_doc(talents=["demo-talent-b"], campaign="B campaign", **easy))
    a_ids = {x["id"] for x in a["assets"]}
    assert a_ids and {x["status"] for x in a["assets"]} == {"published"}
    result = revoke_consent(request_env.consent_ids["demo-talent-a"], reason="withdrawn")
    assert set(result["quarantined"]) == a_ids
    assert not set(result["quarantined"]) & {x["id"] for x in b["assets"]}
