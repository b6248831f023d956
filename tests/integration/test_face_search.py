"""Face storage and pgvector search on the bundled PostgreSQL, with real dlib embeddings."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib

import numpy as np
import pytest
import sqlalchemy as sa

from castkeep.db import schema
from castkeep.db.face_search import add_face, metric_for, search, search_sql
from castkeep.errors import CastkeepError, EncoderMismatchError
from tests.plugins.faces import PERSON


def _talent_with_reference(session, name: str, tag: str):
    talent = schema.Talent(display_name=name, external_ref=f"ext-{tag}")
    session.add(talent)
    session.flush()
    now = dt.datetime.now(dt.timezone.utc)
    consent = schema.Consent(
        talent_id=talent.id,
        release_doc_sha256="0" * 64,
        release_doc_key="restricted/release-docs/x.pdf",
        valid_from=now,
        valid_until=now + dt.timedelta(days=365),
    )
    session.add(consent)
    session.flush()
    ref = schema.ReferencePortrait(
        talent_id=talent.id,
        consent_id=consent.id,
        sha256=hashlib.sha256(tag.encode()).hexdigest(),
        object_key=f"references/{tag}.jpg",
        media_type="image/jpeg",
        width=100,
        height=100,
    )
    session.add(ref)
    session.flush()
    return talent, ref


@pytest.fixture
def catalogue(db_session, portrait_faces):
    """obama (obama2, obama3 as references) and biden (biden as reference)."""
    obama, _ = _talent_with_reference(db_session, "Obama", "o-talent")
    biden, _ = _talent_with_reference(db_session, "Biden", "b-talent")
    refs = {}
    for name, talent in (("obama2", obama), ("obama3", obama), ("biden", biden)):
        ref = schema.ReferencePortrait(
            talent_id=talent.id,
            consent_id=db_session.scalars(sa.select(schema.Consent.id).where(schema.Consent.talent_id == talent.id)).one(),
            sha256=hashlib.sha256(name.encode()).hexdigest(),
            object_key=f"references/{name}.jpg",
            media_type="image/jpeg",
            width=10,
            height=10,
        )
        db_session.add(ref)
        db_session.flush()
        refs[name] = add_face(db_session, portrait_faces[name][0], reference_portrait_id=ref.id)
    return {"obama": obama, "biden": biden, "faces": refs}


def test_add_face_stores_the_raw_descriptor(db_session, catalogue, portrait_faces):
    row = catalogue["faces"]["biden"]
    db_session.expire_all()
    stored = db_session.get(schema.Face, row.id)
    assert (stored.encoder, stored.dim, stored.face_index) == ("dlib-resnet-v1", 128, 0)
    np.testing.assert_allclose(np.asarray(stored.embedding), portrait_faces["biden"][0].embedding, rtol=1e-6)
    assert stored.quality["face_px"] == portrait_faces["biden"][0].quality.face_px
    assert len(stored.landmarks) == 5 and len(stored.box) == 4


def test_add_face_is_idempotent(db_session, catalogue, portrait_faces):
    row = catalogue["faces"]["biden"]
    again = add_face(db_session, portrait_faces["biden"][0], reference_portrait_id=row.reference_portrait_id)
    assert again.id == row.id
    n = db_session.scalar(sa.select(sa.func.count()).select_from(schema.Face))
    assert n == 3


@pytest.mark.parametrize("query", ["obama", "obama_partial_face", "biden"])
def test_search_finds_the_right_talent(db_session, catalogue, portrait_faces, dlib_encoder, query):
    q = portrait_faces[query][0]
    hits = search(db_session, q.embedding, encoder="dlib-resnet-v1", k=10)
    assert len(hits) == 3
    assert [h.distance for h in hits] == sorted(h.distance for h in hits)
    top = hits[0]
    assert top.talent_id == catalogue[PERSON[query]].id
    assert top.asset_id is None and top.reference_portrait_id is not None
    # distance is dlib's euclidean on the raw descriptors, exactly what the encoder computes
    stored = {row.id: name for name, row in catalogue["faces"].items()}
    expected = dlib_encoder.distance(q, portrait_faces[stored[top.face_id]][0])
    assert top.distance == pytest.approx(expected, abs=1e-4)
    assert top.similarity == pytest.approx(dlib_encoder.similarity(q, portrait_faces[stored[top.face_id]][0]), abs=1e-5)
    assert (top.distance <= 0.6) and all(h.distance > 0.6 for h in hits if h.talent_id != top.talent_id)


def test_search_accepts_a_face_and_k(db_session, catalogue, portrait_faces):
    hits = search(db_session, portrait_faces["obama"][0], k=2)
    assert len(hits) == 2 and {h.talent_id for h in hits} == {catalogue["obama"].id}
    exact = search(db_session, portrait_faces["obama"][0], k=2, exact=True)
    assert [h.face_id for h in exact] == [h.face_id for h in hits]
    # The index ranks on half precision; the distances reported are the exact ones.
    for a, b in zip(hits, exact, strict=True):
        assert a.distance == pytest.approx(b.distance, abs=1e-6)
        assert a.similarity == pytest.approx(b.similarity, abs=1e-6)


def test_values_beyond_the_half_precision_index_are_refused(db_session, catalogue, portrait_faces):
    face = portrait_faces["obama"][0]
    huge = np.asarray(face.embedding, dtype=np.float32).copy()
    huge[3] = 1e5
    before = db_session.scalar(sa.select(sa.func.count()).select_from(schema.Face))
    ref_id = catalogue["faces"]["obama2"].reference_portrait_id
    with pytest.raises(EncoderMismatchError, match="half precision"):
        add_face(db_session, dataclasses.replace(face, embedding=huge), reference_portrait_id=ref_id,
                 face_index=7)
    assert db_session.scalar(sa.select(sa.func.count()).select_from(schema.Face)) == before
    with pytest.raises(EncoderMismatchError, match="half precision"):
        search(db_session, huge, encoder=face.encoder)
    # The exact path does not touch the index: it answers.
    assert len(search(db_session, huge, encoder=face.encoder, exact=True, k=1)) == 1


def test_other_encoders_are_never_compared(db_session, catalogue, portrait_faces):
    face = portrait_faces["obama"][0]
    other = dataclasses.replace(face, encoder="insightface-buffalo_l", encoder_version="w600k")
    assert search(db_session, other) == []  # no faces of that encoder stored
    assert search(db_session, face, encoder_version="resnet_v0") == []
    with pytest.raises(EncoderMismatchError):
        search(db_session, face, encoder="insightface-buffalo_l")
    with pytest.raises(EncoderMismatchError, match="encoder name"):
        search(db_session, face.embedding)
    with pytest.raises(CastkeepError, match="invalid encoder name"):
        search(db_session, face.embedding, encoder="x'; DROP TABLE face; --")


@pytest.mark.parametrize("with_version", [False, True])
def test_search_uses_the_partial_hnsw_index(db_session, catalogue, portrait_faces, with_version):
    db_session.execute(sa.text("SET LOCAL enable_seqscan = off"))  # tiny table: force the choice
    q = "[" + ",".join(str(float(v)) for v in portrait_faces["obama"][0].embedding) + "]"
    sql = search_sql("dlib-resnet-v1", 128, with_version=with_version)
    params = {"q": q, "k": 5, **({"ver": "resnet_v1+sp5"} if with_version else {})}
    plan = "\n".join(r[0] for r in db_session.execute(sa.text("EXPLAIN " + sql), params))
    assert "ix_face_embedding_dlib_hnsw" in plan
    exact = search_sql("dlib-resnet-v1", 128, exact=True)
    plan = "\n".join(r[0] for r in db_session.execute(sa.text("EXPLAIN " + exact), {"q": q, "k": 5}))
    assert "hnsw" not in plan


def test_asset_faces_and_owner_rules(db_session, catalogue, portrait_faces):
    asset = schema.Asset(sha256="a" * 64, object_key="assets/a.jpg", media_type="image/jpeg", width=10, height=10)
    db_session.add(asset)
    db_session.flush()
    add_face(db_session, portrait_faces["obama"][0], asset_id=asset.id, face_index=1)
    hits = search(db_session, portrait_faces["obama"][0], k=1)
    assert hits[0].asset_id == asset.id and hits[0].talent_id is None and hits[0].face_index == 1
    assert hits[0].distance == pytest.approx(0.0, abs=1e-5)
    with pytest.raises(CastkeepError, match="exactly one owner"):
        add_face(db_session, portrait_faces["obama"][0])
    with pytest.raises(EncoderMismatchError, match="embed=True"):
        add_face(db_session, dataclasses.replace(portrait_faces["obama"][0], embedding=None), asset_id=asset.id)


def test_metric_for():
    assert metric_for("dlib-resnet-v1") == "euclidean"
    assert metric_for("insightface-buffalo_l") == "cosine"


def test_nearest_talents_ranks_each_talent_by_its_nearest_reference(db_session, catalogue,
                                                                    portrait_faces, dlib_encoder):
    from castkeep.db.face_search import nearest_talents

    q = portrait_faces["obama"][0]
    obama, biden = catalogue["obama"].id, catalogue["biden"].id
    hits = nearest_talents(db_session, q.embedding, encoder=q.encoder)
    assert [h.talent_id for h in hits] == [obama, biden]  # one row per talent, nearest first
    own = {n: dlib_encoder.distance(q, portrait_faces[n][0]) for n in ("obama2", "obama3")}
    nearest_name = min(own, key=own.get)
    assert hits[0].distance == pytest.approx(own[nearest_name], abs=1e-4)
    assert hits[0].reference_portrait_id == catalogue["faces"][nearest_name].reference_portrait_id
    assert hits[0].label == "ext-o-talent"
    assert hits[1].distance == pytest.approx(
        dlib_encoder.distance(q, portrait_faces["biden"][0]), abs=1e-4)
    assert [h.talent_id for h in nearest_talents(db_session, q.embedding, encoder=q.encoder,
                                                 within=0.6)] == [obama]
    assert nearest_talents(db_session, q.embedding, encoder=q.encoder, within=0.6,
                           exclude_talents=(obama,)) == []
    assert [h.talent_id for h in nearest_talents(db_session, q.embedding, encoder=q.encoder,
                                                 only_talents=(biden,))] == [biden]
    assert nearest_talents(db_session, q.embedding, encoder="insightface-buffalo_l") == []
