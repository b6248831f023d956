"""Talent / consent / reference repository against the real catalogue (rolled back per test)."""

from __future__ import annotations

import datetime as dt
import uuid

import numpy as np
import pytest
from sqlalchemy import select

from castkeep.db import catalogue, schema
from castkeep.errors import ManifestError, NotFoundError
from castkeep.models.faces.face_types import DetectedFace, FaceQuality
from castkeep.provenance.consent import ConsentManifest
from tests.plugins.ingest import manifest_doc

SHA_A, SHA_B, SHA_C = "a" * 64, "b" * 64, "c" * 64


def manifest(**kw) -> ConsentManifest:
    return ConsentManifest.model_validate(manifest_doc(["a.jpg"], **kw))


def face(vec, encoder="dlib-resnet-v1", version="1") -> DetectedFace:
    return DetectedFace(
        box=(10, 10, 110, 110), landmarks=((30, 40), (50, 40), (70, 40), (90, 40), (60, 70)),
        eye_left=(40, 40), eye_right=(80, 40), nose=(60, 70),
        quality=FaceQuality(face_px=100, sharpness=300.0, det_score=1.5, yaw=0.0, roll=0.0),
        encoder=encoder, encoder_version=version, embedding=np.asarray(vec, dtype=np.float32),
    )


def add_ref(session, talent, consent, sha, vec, **kw):
    return catalogue.add_reference(
        session, talent_id=talent.id, consent_id=consent.id, sha256=sha,
        object_key=f"references/{sha[:2]}/{sha[2:4]}/{sha}.jpg", media_type="image/jpeg",
        width=200, height=300, face=face(vec, **kw), source_name=f"{sha[:4]}.jpg", actor="tester")


@pytest.fixture
def talent_with_consent(db_session):
    t = catalogue.upsert_talent(db_session, display_name="Person X", external_ref="talent-x",
                                actor="tester")
    c = catalogue.get_or_create_consent(db_session, talent_id=t.id, manifest=manifest(),
                                        release_doc_sha256=SHA_C,
                                        release_doc_key=f"restricted/release-docs/cc/cc/{SHA_C}.txt",
                                        actor="tester")
    return t, c


def test_upsert_talent_is_idempotent_and_audited(db_session):
    a = catalogue.upsert_talent(db_session, display_name="A", external_ref="ext-1", actor="tester")
    b = catalogue.upsert_talent(db_session, display_name="Renamed", external_ref="ext-1", actor="tester")
    assert a.id == b.id and b.display_name == "A"
    events = db_session.scalars(select(schema.AuditEvent).where(
        schema.AuditEvent.kind == "talent.created")).all()
    assert [e.entity_id for e in events] == [str(a.id)]
    assert "A" not in str(events[0].payload.values())  # no display name (PII) in the log
    assert catalogue.upsert_talent(db_session, display_name="x", talent_id=a.id, actor="t").id == a.id
    with pytest.raises(ManifestError, match="not in the catalogue"):
        catalogue.upsert_talent(db_session, display_name="x", talent_id=uuid.uuid4(), actor="t")


def test_find_and_resolve_talent(db_session, talent_with_consent):
    t, _ = talent_with_consent
    assert catalogue.find_talent(db_session, "talent-x").id == t.id
    assert catalogue.resolve_talent(db_session, str(t.id)).id == t.id
    assert catalogue.find_talent(db_session, "nobody") is None
    with pytest.raises(NotFoundError, match="castkeep talent list"):
        catalogue.resolve_talent(db_session, str(uuid.uuid4()))


def test_consent_created_once_with_granted_event(db_session, talent_with_consent):
    t, c = talent_with_consent
    again = catalogue.get_or_create_consent(
        db_session, talent_id=t.id, manifest=ConsentManifest.model_validate(manifest_doc(["other.jpg"])),
        release_doc_sha256=SHA_C, release_doc_key="k", actor="tester")
    assert again.id == c.id  # same terms, different portrait list: one consent
    assert c.scope == {"channels": ["social", "web"], "territories": ["DE", "FR", "US"],
                       "purposes": ["advertising"], "edits": ["camera", "lighting"]}
    assert c.status == "active" and c.release_doc_sha256 == SHA_C and c.synthetic_likeness
    assert [e.kind for e in catalogue.consent_events(db_session, c.id)] == ["granted"]
    audit = db_session.scalars(select(schema.AuditEvent).where(
        schema.AuditEvent.kind == "consent.granted")).all()
    assert [a.entity_id for a in audit] == [str(c.id)]
    other = catalogue.get_or_create_consent(
        db_session, talent_id=t.id, manifest=manifest(ai_training=True), release_doc_sha256=SHA_C,
        release_doc_key="k", actor="tester")
    assert other.id != c.id


def test_consent_ref_reused_for_other_terms_is_refused(db_session, talent_with_consent):
    t, _ = talent_with_consent
    catalogue.get_or_create_consent(db_session, talent_id=t.id, manifest=manifest(consent_ref="c-1"),
                                    release_doc_sha256=SHA_C, release_doc_key="k", actor="t")
    with pytest.raises(ManifestError, match="consent_ref 'c-1' is already recorded"):
        catalogue.get_or_create_consent(
            db_session, talent_id=t.id, manifest=manifest(consent_ref="c-1", ai_training=True),
            release_doc_sha256=SHA_C, release_doc_key="k", actor="t")
    assert catalogue.get_consent(db_session, "c-1").external_ref == "c-1"


def test_consent_terms_and_lookup(db_session, talent_with_consent):
    t, c = talent_with_consent
    terms = catalogue.consent_terms(db_session, str(c.id))
    assert terms.id == str(c.id) and terms.talent_id == str(t.id)
    assert terms.territories == ("DE", "FR", "US") and terms.release_doc_sha256 == SHA_C
    assert terms.valid_until == dt.datetime(2035, 12, 31, 23, 59, 59, tzinfo=dt.timezone.utc)
    assert [x.id for x in catalogue.consents_of_talent(db_session, t.id, status="active")] == [str(c.id)]
    assert catalogue.consents_of_talent(db_session, t.id, status="revoked") == []
    with pytest.raises(NotFoundError):
        catalogue.get_consent(db_session, str(uuid.uuid4()))


def test_references_and_embeddings_per_encoder(db_session, talent_with_consent):
    t, c = talent_with_consent
    v1 = np.linspace(-0.2, 0.2, 128)
    r1 = add_ref(db_session, t, c, SHA_A, v1)
    add_ref(db_session, t, c, SHA_B, np.linspace(0.1, -0.1, 512), encoder="insightface-buffalo_l")
    embs = catalogue.reference_embeddings(db_session, t.id, "dlib-resnet-v1")
    assert [e.reference_portrait_id for e in embs] == [r1.id]
    assert embs[0].consent_id == c.id and embs[0].sha256 == SHA_A
    np.testing.assert_allclose(embs[0].embedding, v1, atol=1e-6)
    assert len(catalogue.reference_embeddings(db_session, t.id, "insightface-buffalo_l")) == 1
    assert catalogue.reference_by_sha256(db_session, SHA_A).id == r1.id
    assert catalogue.reference_by_sha256(db_session, "d" * 64) is None
    assert r1.quality["face_px"] == 100
    kinds = db_session.scalars(select(schema.AuditEvent.kind).order_by(schema.AuditEvent.seq)).all()
    assert kinds == ["talent.created", "consent.granted", "reference.added", "reference.added"]


def test_the_ingest_run_that_added_a_reference_is_recorded(db_session, talent_with_consent):
    t, c = talent_with_consent
    mine = catalogue.add_reference(
        db_session, talent_id=t.id, consent_id=c.id, sha256=SHA_A, object_key="references/a.jpg",
        media_type="image/jpeg", width=200, height=300, face=face(np.ones(128)),
        source_name="a.jpg", actor="tester", ingest_run="run-1")
    untagged = add_ref(db_session, t, c, SHA_B, np.zeros(128))
    assert catalogue.added_by_ingest_run(db_session, mine.id, "run-1")
    assert not catalogue.added_by_ingest_run(db_session, mine.id, "run-2")
    assert not catalogue.added_by_ingest_run(db_session, untagged.id, "run-1")


def test_reference_distance_matches_numpy(db_session, talent_with_consent):
    t, c = talent_with_consent
    rng = np.random.default_rng(7)
    vecs = [rng.normal(size=128).astype(np.float32) * 0.1 for _ in range(3)]
    for sha, v in zip((SHA_A, SHA_B, "e" * 64), vecs):
        add_ref(db_session, t, c, sha, v)
    q = rng.normal(size=128).astype(np.float32) * 0.1
    count, mean = catalogue.reference_distance(db_session, t.id, "dlib-resnet-v1", q, "euclidean")
    assert count == 3
    assert mean == pytest.approx(np.mean([np.linalg.norm(q - v) for v in vecs]), rel=1e-5)
    _, cos = catalogue.reference_distance(db_session, t.id, "dlib-resnet-v1", q, "cosine")
    expected = np.mean([1 - q @ v / (np.linalg.norm(q) * np.linalg.norm(v)) for v in vecs])
    assert cos == pytest.approx(expected, rel=1e-5)
    assert catalogue.reference_distance(db_session, t.id, "other-encoder", q, "cosine") == (0, None)


def test_list_and_show_talent(db_session, talent_with_consent):
    t, c = talent_with_consent
    add_ref(db_session, t, c, SHA_A, np.zeros(128) + 0.05)
    catalogue.upsert_talent(db_session, display_name="Other", external_ref="talent-y", actor="t")
    rows = {s.external_ref: s for s in catalogue.list_talent(db_session)}
    assert (rows["talent-x"].references, rows["talent-x"].consents, rows["talent-x"].active_consents) == (1, 1, 1)
    assert (rows["talent-y"].references, rows["talent-y"].consents) == (0, 0)
    detail = catalogue.show_talent(db_session, "talent-x")
    assert detail.talent.id == t.id and [x.id for x in detail.consents] == [str(c.id)]
    assert [r.sha256 for r in detail.references] == [SHA_A]
    assert catalogue.catalogued_object_keys(db_session) == {
        detail.references[0].object_key, c.release_doc_key}


def test_orphan_objects_respects_rows_grace_and_hold(fs_store):
    now = dt.datetime.now(dt.timezone.utc)
    old = {catalogue.STORED_AT_META: (now - dt.timedelta(days=2)).isoformat()}
    young = {catalogue.STORED_AT_META: now.isoformat()}
    kept = fs_store.put_bytes(b"kept", prefix="references", ext="jpg", media_type="image/jpeg", metadata=old)
    orphan = fs_store.put_bytes(b"orphan", prefix="references", ext="jpg", media_type="image/jpeg", metadata=old)
    doc = fs_store.put_bytes(b"doc", prefix="restricted/release-docs", ext="txt", media_type="text/plain")
    fresh = fs_store.put_bytes(b"fresh", prefix="references", ext="jpg", media_type="image/jpeg", metadata=young)
    held = fs_store.put_bytes(b"held", prefix="references", ext="jpg", media_type="image/jpeg", metadata=old)
    fs_store.set_legal_hold(held.key, True)
    asset = fs_store.put_bytes(b"asset", prefix="assets", ext="jpg", media_type="image/jpeg", metadata=old)
    report = fs_store.put_bytes(b"report", prefix="reports", ext="md", media_type="text/markdown",
                                metadata=old)
    found = set(catalogue.orphan_objects(fs_store, {kept.key}, stored_before=now - dt.timedelta(hours=1)))
    assert found == {orphan.key, doc.key, asset.key}
    # reports/ is never scanned: an audit's Markdown/CSV reports are named by no row or event.
    assert fresh.key not in found and report.key not in found and held.key not in found


def test_collect_orphans_keeps_catalogued_objects(db_session, fs_store, talent_with_consent):
    t, c = talent_with_consent
    kept = fs_store.put_bytes(b"portrait", prefix="references", ext="jpg", media_type="image/jpeg")
    doc = fs_store.put_bytes(b"release", prefix="restricted/release-docs", ext="txt",
                             media_type="text/plain")
    c.release_doc_key = doc.key
    ref = add_ref(db_session, t, c, kept.sha256, np.zeros(128) + 0.01)
    ref.object_key = kept.key
    db_session.flush()
    orphan = fs_store.put_bytes(b"left by a crash", prefix="references", ext="jpg",
                                media_type="image/jpeg")
    assert catalogue.collect_orphans(db_session, fs_store, older_than=dt.timedelta(hours=1),
                                     dry_run=True) == [orphan.key]
    assert fs_store.exists(orphan.key)
    assert catalogue.collect_orphans(db_session, fs_store, older_than=dt.timedelta(0)) == [orphan.key]
    assert set(fs_store.list_keys("references")) == {kept.key}
    assert fs_store.exists(doc.key)
    assert catalogue.collect_orphans(db_session, fs_store, older_than=dt.timedelta(0)) == []


def test_collect_orphans_covers_request_assets_within_the_grace_period(db_session, fs_store):
    """An asset object left by a request run that died before its rows committed is collected;
    a catalogued asset stays, and so does a fresh orphan (a run may still be committing it)."""
    from castkeep.db import assets_repo
    from castkeep.models.request_spec import request_from_mapping
    from tests.plugins.request import request_doc

    now = dt.datetime.now(dt.timezone.utc)
    old = catalogue.stored_at_stamp(now - dt.timedelta(days=2))
    catalogued = fs_store.put_bytes(b"signed asset", prefix="assets", ext="jpg",
                                    media_type="image/jpeg", metadata=old)
    crashed = fs_store.put_bytes(b"asset of a crashed run", prefix="assets", ext="jpg",
                                 media_type="image/jpeg", metadata=old)
    in_flight = fs_store.put_bytes(b"asset being catalogued", prefix="assets", ext="jpg",
                                   media_type="image/jpeg", metadata=catalogue.stored_at_stamp(now))
    spec = request_from_mapping(request_doc(variants=1))
    req = assets_repo.create_request(db_session, spec=spec.canonical(), spec_sha256=spec.sha256(),
                                     actor="tests")
    assets_repo.record_variant(
        db_session, req.id,
        generation=assets_repo.GenerationRecord(
            variant=0, attempt=0, seed=1, engine="classical", engine_version="1.0", device="cpu",
            passed=True, timings={}),
        scores=[], lineage=[], faces=[], actor="tests",
        asset=assets_repo.AssetRecord(
            sha256=catalogued.sha256, object_key=catalogued.key, media_type="image/jpeg",
            width=8, height=8, status="candidate", use={"channel": "social"}),
    )
    db_session.flush()
    assert catalogued.key in catalogue.catalogued_object_keys(db_session)

    grace = dt.timedelta(hours=24)
    assert catalogue.collect_orphans(db_session, fs_store, older_than=grace, now=now,
                                     dry_run=True) == [crashed.key]
    assert fs_store.exists(crashed.key)
    assert catalogue.collect_orphans(db_session, fs_store, older_than=grace, now=now) == [crashed.key]
    assert set(fs_store.list_keys("assets")) == {catalogued.key, in_flight.key}
    # Once the grace period has passed, the uncatalogued one is an orphan too.
    later = now + dt.timedelta(hours=25)
    assert catalogue.collect_orphans(db_session, fs_store, older_than=grace, now=later) == [in_flight.key]
    assert set(fs_store.list_keys("assets")) == {catalogued.key}
