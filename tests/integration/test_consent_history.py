"""Consent rows against the terms and status their audit events record: consents granted by the
real repository (catalogue.get_or_create_consent) and changed by castkeep match; rows edited in SQL
behind castkeep's back are found, with the field that changed. Real PostgreSQL, rolled back."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
import sqlalchemy as sa

from castkeep.db import catalogue, compliance, schema
from castkeep.db.consent_history import consent_drift, recorded_terms
from castkeep.provenance.consent import ConsentManifest
from tests.plugins.ingest import manifest_doc

SHA = "c" * 64


@pytest.fixture
def granted(db_session):
    """Two talents, one consent each, granted the way ingest grants them."""
    out = []
    for ref in ("talent-x", "talent-y"):
        talent = catalogue.upsert_talent(db_session, display_name=ref, external_ref=ref, actor="tester")
        consent = catalogue.get_or_create_consent(
            db_session, talent_id=talent.id, manifest=ConsentManifest.model_validate(manifest_doc(["a.jpg"], ref=ref)),
            release_doc_sha256=SHA, release_doc_key=f"restricted/release-docs/cc/cc/{SHA}.txt", actor="tester",
        )
        out.append(consent)
    db_session.flush()
    return out


def _edit(session, consent, **values) -> None:
    session.execute(sa.update(schema.Consent).where(schema.Consent.id == consent.id).values(**values))
    session.expire_all()


def test_consents_granted_and_changed_by_castkeep_match(db_session, granted):
    assert consent_drift(db_session) == []
    compliance.set_consent_status(db_session, granted[0], "revoked", actor="tester", reason="withdrawn")
    assert consent_drift(db_session) == []


def test_scope_widened_in_sql_is_found_on_that_consent_only(db_session, granted):
    x, y = granted
    _edit(db_session, x, scope={**x.scope, "territories": ["FR", "DE", "US", "CN"]})
    [drift] = consent_drift(db_session)
    assert (drift.consent_id, drift.talent_id, drift.fields) == (str(x.id), str(x.talent_id), ("scope",))
    assert "edited outside castkeep" in drift.detail and '"CN"' in drift.detail
    assert consent_drift(db_session, talent_id=y.talent_id) == []
    assert [d.consent_id for d in consent_drift(db_session, talent_id=str(x.talent_id))] == [str(x.id)]


def test_dates_flags_and_document_edited_in_sql_are_found(db_session, granted):
    x, _ = granted
    later = x.valid_until + dt.timedelta(days=3650)
    _edit(db_session, x, valid_until=later, ai_training=True, release_doc_sha256="d" * 64)
    [drift] = consent_drift(db_session)
    assert drift.fields == ("release_doc_sha256", "valid_until", "ai_training")


def test_revoked_consent_reinstated_in_sql_is_found(db_session, granted):
    x, _ = granted
    compliance.set_consent_status(db_session, x, "revoked", actor="tester", reason="withdrawn")
    _edit(db_session, x, status="active")
    [drift] = consent_drift(db_session)
    assert drift.fields == ("status",) and "status revoked -> active" in drift.detail


def test_consent_inserted_without_castkeep_is_found(db_session, granted):
    now = dt.datetime.now(dt.timezone.utc)
    row = schema.Consent(
        id=uuid.uuid4(), talent_id=granted[0].talent_id, release_doc_sha256=SHA, release_doc_key="k",
        valid_from=now, valid_until=now + dt.timedelta(days=1), scope={}, status="active",
    )
    db_session.add(row)
    db_session.flush()
    [drift] = consent_drift(db_session)
    assert drift.consent_id == str(row.id) and "no consent.granted event" in drift.detail


def test_recorded_terms_are_json_values_of_the_row(db_session, granted):
    terms = recorded_terms(granted[0])
    assert terms["scope"]["territories"] == ["DE", "FR", "US"]
    assert terms["valid_until"].endswith("+00:00") and terms["talent_id"] == str(granted[0].talent_id)
    assert set(terms) >= {"release_doc_sha256", "valid_from", "synthetic_likeness", "ai_training", "minor"}
