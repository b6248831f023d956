"""db/schema.py agrees with the migrated database, and the database enforces its rules:
CHECK constraints, append-only history tables, per-encoder HNSW indexes."""

from __future__ import annotations

import hashlib
import uuid

import numpy as np
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from pgvector.sqlalchemy import HALFVEC
from sqlalchemy.exc import DBAPIError, IntegrityError

from castkeep.db import schema
from castkeep.db.schema import (
    FACE_HNSW_INDEXES,
    FACE_HNSW_TYPE,
    Asset,
    AuditEvent,
    Consent,
    ConsentEvent,
    Face,
    Lineage,
    ReferencePortrait,
    Talent,
    utcnow,
)

SHA = hashlib.sha256(b"x").hexdigest()


def test_schema_module_matches_the_migrated_database(db_engine):
    hnsw = {name for name, _dim, _pred in FACE_HNSW_INDEXES}

    def include_object(obj, name, type_, reflected, compare_to):
        # The partial HNSW indexes are migration-only (expression indexes on a cast).
        return not (type_ == "index" and name in hnsw)

    with db_engine.connect() as conn:
        ctx = MigrationContext.configure(
            conn, opts={"include_object": include_object, "compare_type": True,
                        "compare_server_default": True}
        )
        diff = compare_metadata(ctx, schema.Base.metadata)
    assert diff == []


def test_the_comparison_sees_drift(db_engine):
    # Guards the test above against passing vacuously.
    drifted = sa.MetaData()
    for table in schema.Base.metadata.sorted_tables:
        table.to_metadata(drifted)
    drifted.tables["talent"].append_column(sa.Column("nickname", sa.String(10)))
    with db_engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), drifted)
    assert [(d[0], d[2], d[3].name) for d in diff if d[0] == "add_column"] == [
        ("add_column", "talent", "nickname")
    ]


def test_hnsw_indexes_exist_with_their_predicates(db_session):
    rows = dict(db_session.execute(sa.text(
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'face' AND indexdef LIKE '%hnsw%'"
    )).all())
    assert set(rows) == {name for name, _, _ in FACE_HNSW_INDEXES}
    assert f"{FACE_HNSW_TYPE}(128)" in rows["ix_face_embedding_dlib_hnsw"]
    assert "'dlib-resnet-v1'" in rows["ix_face_embedding_dlib_hnsw"]
    assert f"{FACE_HNSW_TYPE}(512)" in rows["ix_face_embedding_512_hnsw"]
    assert f"{FACE_HNSW_TYPE}_cosine_ops" in rows["ix_face_embedding_512_hnsw"]


def _talent_consent_portrait(session) -> ReferencePortrait:
    talent = Talent(display_name="Test Person")
    session.add(talent)
    session.flush()
    consent = Consent(talent_id=talent.id, release_doc_sha256=SHA, release_doc_key="k",
                      valid_from=utcnow(), valid_until=utcnow())
    session.add(consent)
    session.flush()
    portrait = ReferencePortrait(talent_id=talent.id, consent_id=consent.id,
                                 sha256=hashlib.sha256(uuid.uuid4().bytes).hexdigest(),
                                 object_key="references/x", media_type="image/jpeg", width=10, height=10)
    session.add(portrait)
    session.flush()
    return portrait


def _unit(dim: int, seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=dim).astype(np.float32)
    return v / np.linalg.norm(v)


def test_dlib_nearest_neighbour_uses_its_hnsw_index(db_session):
    portrait = _talent_consent_portrait(db_session)
    for i in range(20):
        db_session.add(Face(reference_portrait_id=portrait.id, face_index=i, encoder="dlib-resnet-v1",
                            encoder_version="1", dim=128, embedding=_unit(128, i)))
    db_session.add(Face(reference_portrait_id=portrait.id, face_index=99, encoder="insightface-buffalo_l",
                        encoder_version="1", dim=512, embedding=_unit(512, 99)))
    db_session.flush()
    query = _unit(128, 7)
    # The index's own cast (FACE_HNSW_TYPE, half precision since 0005); the stored column is vector.
    dist = Face.embedding.cast(HALFVEC(128)).cosine_distance(query)
    stmt = (sa.select(Face.face_index, dist).where(Face.encoder == "dlib-resnet-v1", Face.dim == 128)
            .order_by(dist).limit(3))
    best = db_session.execute(stmt).all()
    assert best[0].face_index == 7 and best[0][1] == pytest.approx(0.0, abs=1e-3)
    db_session.execute(sa.text("SET LOCAL enable_seqscan = off"))
    plan = "\n".join(r[0] for r in db_session.execute(sa.text("EXPLAIN " + str(
        stmt.compile(db_session.bind, compile_kwargs={"literal_binds": True})))))
    assert "ix_face_embedding_dlib_hnsw" in plan


@pytest.mark.parametrize(
    "make, constraint",
    [
        (lambda p, a: Asset(sha256=SHA, object_key="k", media_type="image/png", width=1, height=1,
                            status="lost"), "ck_asset_status"),
        (lambda p, a: Asset(sha256="ABC", object_key="k", media_type="image/png", width=1, height=1),
         "ck_asset_sha256_hex"),
        (lambda p, a: Face(encoder="dlib-resnet-v1", encoder_version="1", dim=128,
                           embedding=_unit(128, 1)), "ck_face_one_owner"),
        (lambda p, a: Face(reference_portrait_id=p.id, asset_id=a.id, encoder="dlib-resnet-v1",
                           encoder_version="1", dim=128, embedding=_unit(128, 1)), "ck_face_one_owner"),
        (lambda p, a: Face(reference_portrait_id=p.id, encoder="x", encoder_version="1", dim=64,
                           embedding=_unit(128, 1)), "ck_face_dim_matches"),
        (lambda p, a: Lineage(asset_id=a.id, reference_portrait_id=p.id, relationship="cousinOf"),
         "ck_lineage_relationship"),
        (lambda p, a: Lineage(asset_id=a.id, relationship="parentOf"), "ck_lineage_has_source"),
        (lambda p, a: Consent(talent_id=p.talent_id, release_doc_sha256=SHA, release_doc_key="k",
                              valid_from=utcnow(), valid_until=utcnow(), status="paused"),
         "ck_consent_status"),
    ],
)
def test_check_constraints_reject_bad_rows(db_session, make, constraint):
    portrait = _talent_consent_portrait(db_session)
    asset = Asset(sha256=hashlib.sha256(b"asset").hexdigest(), object_key="assets/x",
                  media_type="image/png", width=1, height=1)
    db_session.add(asset)
    db_session.flush()
    with pytest.raises(IntegrityError, match=constraint):
        with db_session.begin_nested():
            db_session.add(make(portrait, asset))
            db_session.flush()


@pytest.mark.parametrize("statement", [
    "UPDATE consent_event SET reason = 'rewritten'",
    "DELETE FROM consent_event",
    "TRUNCATE consent_event CASCADE",
    "UPDATE audit_event SET actor = 'someone else'",
    "DELETE FROM audit_event",
    "TRUNCATE audit_event",
])
def test_history_tables_are_append_only(db_session, statement):
    portrait = _talent_consent_portrait(db_session)
    db_session.add(ConsentEvent(consent_id=portrait.consent_id, kind="granted", actor="tester"))
    db_session.add(AuditEvent(seq=1, actor="tester", kind="test", prev_hash="0" * 64, hash=SHA))
    db_session.flush()
    with pytest.raises(DBAPIError, match="append-only"):
        with db_session.begin_nested():
            db_session.execute(sa.text(statement))
    assert db_session.execute(sa.select(sa.func.count()).select_from(ConsentEvent)).scalar_one() == 1
    assert db_session.execute(sa.select(AuditEvent.actor)).scalar_one() == "tester"
