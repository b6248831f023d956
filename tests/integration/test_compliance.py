"""db/compliance.py queries on the real compliance catalogue (see tests/plugins/compliance.py)."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from castkeep.db import compliance, schema

DLIB = dict(encoder="dlib-resnet-v1", metric="euclidean", threshold=0.6)


@pytest.fixture
def cat(compliance_catalogue):
    return compliance_catalogue(untracked=True)


def test_assets_for_audit_with_links_and_talent_filter(cat):
    with cat.runtime.sessions() as s:
        everything = compliance.assets_for_audit(s)
        obama = compliance.assets_for_audit(s, talent_id=cat.talents["obama"])
        published = compliance.assets_for_audit(s, statuses=("published",))
    assert cat.names(a.id for a in everything) == {"a_obama", "b_biden", "untracked"}
    assert cat.names(a.id for a in obama) == {"a_obama"}
    assert cat.names(a.id for a in published) == {"a_obama", "b_biden"}
    a = next(x for x in everything if x.id == str(cat.assets["a_obama"]))
    assert a.talent_ids == (str(cat.talents["obama"]),)
    assert a.links[0].consent_id == str(cat.consents["obama"])
    assert a.use["territory"] == "FR"


def test_face_matches_respect_threshold_metric_and_encoder(cat):
    with cat.runtime.sessions() as s:
        matches = compliance.asset_faces_matching(s, **DLIB)
        none = compliance.asset_faces_matching(s, **{**DLIB, "threshold": 0.0})
        other_encoder = compliance.asset_faces_matching(s, **{**DLIB, "encoder": "insightface-buffalo_l"})
        biden_only = compliance.asset_faces_matching(s, **DLIB, talent_id=cat.talents["biden"])
        with pytest.raises(ValueError, match="metric"):
            compliance.asset_faces_matching(s, **{**DLIB, "metric": "manhattan"})
    pairs = {(cat.asset_name(m.asset_id), m.talent_id) for m in matches}
    obama, biden = str(cat.talents["obama"]), str(cat.talents["biden"])
    assert pairs == {("a_obama", obama), ("untracked", obama), ("b_biden", biden)}
    assert all(0 <= m.distance <= 0.6 for m in matches)
    # Threshold 0: only b_biden, which shows the very picture of biden's reference (distance 0).
    assert [(cat.asset_name(m.asset_id), m.distance) for m in none] == [("b_biden", 0.0)]
    assert other_encoder == []
    assert {cat.asset_name(m.asset_id) for m in biden_only} == {"b_biden"}


def test_assets_under_consent_follow_derived_assets(cat, manifest_input_factory, portrait_rgb):
    from tests.plugins.compliance import add_asset

    add_asset(cat, "child", image="obama2", talent=None, parent="a_obama", faces=(),
              manifest_factory=manifest_input_factory, portrait_rgb=portrait_rgb)
    add_asset(cat, "grandchild", image="obama2", talent=None, parent="child", faces=(), status="rejected",
              manifest_factory=manifest_input_factory,
              portrait_rgb={"obama2": portrait_rgb["obama2"][:150]})
    with cat.runtime.sessions() as s:
        live = compliance.assets_under_consent(s, cat.consents["obama"])
        every = compliance.assets_under_consent(s, cat.consents["obama"], statuses=None)
    assert cat.names(live) == {"a_obama", "child"}
    assert cat.names(every) == {"a_obama", "child", "grandchild"}


def test_expiring_and_past_due_consents(cat):
    now = dt.datetime.now(dt.timezone.utc)
    with cat.runtime.sessions.begin() as s:
        s.execute(sa.update(schema.Consent).where(schema.Consent.id == cat.consents["obama"])
                  .values(valid_until=now + dt.timedelta(days=3)))
        s.execute(sa.update(schema.Consent).where(schema.Consent.id == cat.consents["biden"])
                  .values(valid_until=now - dt.timedelta(days=3)))
    with cat.runtime.sessions() as s:
        soon = compliance.expiring_consents(s, now=now, within=dt.timedelta(days=7))
        later = compliance.expiring_consents(s, now=now, within=dt.timedelta(days=2))
        due = compliance.consents_past_due(s, now=now)
    assert [(e.consent_id, cat.names(e.asset_ids)) for e in soon] == [(str(cat.consents["obama"]), {"a_obama"})]
    assert later == []
    assert [c.id for c in due] == [cat.consents["biden"]]


def test_quarantine_and_consent_status_write_history(cat):
    from castkeep.db.audit_log import verify_chain

    with cat.runtime.sessions.begin() as s:
        first = compliance.quarantine_assets(s, [cat.assets["a_obama"]], actor="officer", reason="test")
        again = compliance.quarantine_assets(s, [cat.assets["a_obama"]], actor="officer", reason="test")
        consent = s.get(schema.Consent, cat.consents["obama"])
        compliance.set_consent_status(s, consent, "revoked", actor="officer", reason="withdrawn")
    assert [r.id for r in first] == [cat.assets["a_obama"]] and again == []
    with cat.runtime.sessions() as s:
        events = s.execute(
            sa.select(schema.AuditEvent.kind, schema.AuditEvent.actor, schema.AuditEvent.payload)
            .where(schema.AuditEvent.actor == "officer").order_by(schema.AuditEvent.seq)
        ).all()
        history = s.scalars(sa.select(schema.ConsentEvent.kind)
                            .where(schema.ConsentEvent.consent_id == cat.consents["obama"])).all()
        assert verify_chain(s) == []
    assert [e.kind for e in events] == ["asset.quarantined", "consent.revoked"]
    assert events[0].payload["from"] == "published" and events[1].payload["from"] == "active"
    assert history == ["revoked"]
    assert cat.status("a_obama") == "quarantined"
