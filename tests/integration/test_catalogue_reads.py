"""db/catalogue_reads.py: plain-SQL reads agree with the catalogue as the ORM sees it."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

from castkeep.db import assets_repo
from castkeep.db.catalogue_reads import (
    catalogued_file,
    driver_connection,
    request_document,
    server_versions,
    talent_summaries,
)
from castkeep.errors import NotFoundError
from castkeep.flows.runtime import open_runtime
from castkeep.tasks.catalogue_views import report_keys
from tests.plugins.db import catalogue_sql
from tests.plugins.request import request_doc


@pytest.fixture
def fulfilled(request_env, fulfil):
    """Two variants, one retry each, both rejected by an unreachable lighting threshold: every
    branch of the document (scores, reasons, attempts beyond the final one) has data. The asked
    azimuth lies halfway between two steps of the lighting search (2.5 degrees apart), so no
    estimate is within 0.01 degrees of it (at 60, some seeds' estimate lands on it exactly)."""
    result = fulfil(request_doc(variants=2, lighting={"azimuth": 61.25},
                                thresholds={"lighting_azimuth_deg": 0.01, "max_retries": 1}))
    return uuid.UUID(result["request_id"])


def test_the_request_document_is_the_catalogues_request(fulfilled):
    with open_runtime() as rt, rt.sessions() as session:
        found = request_document(driver_connection(session), fulfilled)
        view = assets_repo.request_view(session, fulfilled)
        row = assets_repo.get_request(session, fulfilled)
        finished = assets_repo.variant_progress(session, fulfilled).finished
        sheet = (report_keys(session, fulfilled) or {}).get("contact_sheet")
    doc = found.document
    assert doc["id"] == str(fulfilled) and doc["status"] == view.status == row.status
    assert (doc["campaign"], doc["requester"], doc["submitted_by"], doc["team"]) == (
        view.campaign, view.requester, row.submitted_by, row.team)
    assert doc["progress"] == {"done": len(finished), "total": 2}
    assert view.rejected_attempts == 2  # the retries are generations, not assets
    assert [a["id"] for a in doc["assets"]] == [a.id for a in view.assets] and len(view.assets) == 2
    for got, want in zip(doc["assets"], view.assets):
        assert got["variant"] == want.variant and got["status"] == want.status == "rejected"
        assert got["passed"] is want.passed is False
        assert got["scores"] == want.scores_summary() and got["scores"]["lighting"]["passed"] is False
        assert got["reasons"] == [want.status_reason] and "lighting" in want.status_reason
    assert found.object_keys == tuple(a.object_key for a in view.assets)
    assert found.contact_sheet_key == sheet and sheet is not None
    assert doc["refusals"] == list(view.refusals)


def test_an_asset_record_is_the_catalogues_asset(fulfilled):
    from castkeep.db.catalogue_reads import asset_record

    with open_runtime() as rt, rt.sessions() as session:
        views = assets_repo.request_assets(session, fulfilled)
        records = [asset_record(driver_connection(session), v.id) for v in views]
        with pytest.raises(NotFoundError, match="castkeep asset list"):
            asset_record(driver_connection(session), uuid.uuid4())
    for v, r in zip(views, records):
        assert r == {
            "id": v.id, "request_id": v.request_id, "variant": v.variant, "attempt": v.attempt,
            "seed": v.seed, "status": v.status, "reason": v.status_reason, "passed": v.passed,
            "sha256": v.sha256, "media_type": v.media_type, "width": v.width, "height": v.height,
            "engine": v.engine, "licence_id": v.licence_id, "talents": list(v.talent_ids),
            "consents": list(v.consent_ids), "references": list(v.reference_ids), "use": v.use,
            "scores": v.scores_summary(), "object_key": v.object_key}
        assert r["talents"] and r["consents"] and r["references"] and r["scores"]["identity"]


def test_an_unknown_request_names_the_listing_command(runtime_env):
    with open_runtime() as rt, rt.sessions() as session:
        with pytest.raises(NotFoundError, match="castkeep request list"):
            request_document(driver_connection(session), uuid.uuid4())
        with pytest.raises(NotFoundError, match="not a request id"):
            request_document(driver_connection(session), "1; DROP TABLE asset")


def test_talent_summaries_count_references_and_consents(ingested_catalogue):
    a = ingested_catalogue.talent_ids["demo-talent-a"]
    # A second, revoked consent: counted, but not as active.
    catalogue_sql(
        "INSERT INTO consent (id, talent_id, release_doc_sha256, release_doc_key, valid_from,"
        " valid_until, scope, synthetic_likeness, ai_training, minor, status) VALUES"
        " (gen_random_uuid(), :t, :sha, 'k', now(), now() + interval '1 day', '{}', false, false,"
        " false, 'revoked')", t=a, sha="1" * 64)
    with open_runtime() as rt, rt.sessions() as session:
        rows = talent_summaries(driver_connection(session))
        refs = dict(session.execute(sa.text(
            "SELECT talent_id, count(*) FROM reference_portrait GROUP BY talent_id")).all())
    by_ref = {r.external_ref: r for r in rows}
    assert [(by_ref[t].references, by_ref[t].consents, by_ref[t].active_consents)
            for t in ("demo-talent-a", "demo-talent-b")] == [(2, 2, 1), (1, 1, 1)]
    assert [r.created_at for r in rows] == sorted(r.created_at for r in rows)
    assert {r.id: r.references for r in rows} == refs


def test_a_talent_is_found_by_id_or_external_ref_with_its_consents_and_portraits(
        ingested_catalogue):
    from castkeep.db.catalogue_reads import talent_detail

    a = ingested_catalogue.talent_ids["demo-talent-a"]
    with open_runtime() as rt, rt.sessions() as session:
        conn = driver_connection(session)
        by_ref = talent_detail(conn, "demo-talent-a")
        assert talent_detail(conn, a) == talent_detail(conn, str(a)) == by_ref
        with pytest.raises(NotFoundError, match="castkeep talent list"):
            talent_detail(conn, "nobody' OR 1=1 --")
        with pytest.raises(NotFoundError):
            talent_detail(conn, uuid.uuid4())
        portraits = session.execute(sa.text(
            "SELECT id, sha256 FROM reference_portrait WHERE talent_id = :t ORDER BY created_at, id"),
            {"t": a}).all()
    assert str(by_ref.talent.id) == str(a) and by_ref.talent.references == 2
    (consent,) = by_ref.consents
    assert consent.status == "active" and consent.talent_id == str(a)
    assert set(consent.territories) == {"US", "GB", "FR", "DE"} and "lighting" in consent.edits
    assert [(r.id, r.sha256) for r in by_ref.references] == [tuple(p) for p in portraits]


def test_a_file_is_found_by_its_content_or_by_the_asset_it_claims(request_env, fulfil):
    result = fulfil(request_doc(variants=1, lighting={"azimuth": 60}))
    (asset,) = result["assets"]
    with open_runtime() as rt, rt.sessions() as session:
        conn = driver_connection(session)
        row = assets_repo.get_asset(session, asset["id"])
        sha = row.sha256
        match = catalogued_file(conn, sha)
        assert match is not None and match.asset_id == asset["id"] and match.sha256_matches
        assert match.status == row.status and match.withdrawn is False
        tampered = catalogued_file(conn, "0" * 64, asset["id"])
        assert tampered.sha256_matches is False and tampered.catalogue_sha256 == sha
        assert catalogued_file(conn, "0" * 64) is None
        with pytest.raises(NotFoundError, match="castkeep asset list"):
            catalogued_file(conn, sha, str(uuid.uuid4()))
        postgresql, pgvector = server_versions(conn)
    assert postgresql[0].isdigit() and pgvector is not None and pgvector.startswith("0.")


def test_recent_requests_are_newest_first_and_a_requester_sees_own_and_team(db_session):
    from castkeep.db.catalogue_reads import recent_requests
    from castkeep.models.request_spec import request_from_mapping

    made = {}
    for campaign, actor, team in (("first", "ana", "red"), ("second", "bo", "red"),
                                  ("third", "cy", "blue"), ("fourth", "ana", None)):
        spec = request_from_mapping(request_doc(campaign=campaign))
        row = assets_repo.create_request(db_session, spec=spec.canonical(),
                                         spec_sha256=spec.sha256(), actor=actor, team=team)
        db_session.flush()
        made[campaign] = str(row.id)
    conn = driver_connection(db_session)
    # One transaction: now() is the same for all four; the id breaks the tie, stably.
    everything = recent_requests(conn)
    assert sorted(r["campaign"] for r in everything) == ["first", "fourth", "second", "third"]
    assert everything == sorted(everything, key=lambda r: (r["created_at"], r["id"]), reverse=True)
    assert {r["campaign"] for r in recent_requests(conn, username="ana", team="red")} == {
        "first", "second", "fourth"}
    assert {r["campaign"] for r in recent_requests(conn, username="cy", team="blue")} == {"third"}
    assert len(recent_requests(conn, limit=2)) == 2
    assert all(r["id"] == made[r["campaign"]] for r in everything)


def test_asset_rows_newest_first_with_their_variant_and_key(request_env, fulfil):
    from castkeep.db.catalogue_reads import asset_rows

    result = fulfil(request_doc(variants=2, lighting={"azimuth": 60}))
    with open_runtime() as rt, rt.sessions() as session:
        conn = driver_connection(session)
        rows = asset_rows(conn)
        views = {a.id: a for a in assets_repo.request_assets(session, result["request_id"])}
        assert asset_rows(conn, status="quarantined") == []
        assert len(asset_rows(conn, limit=1)) == 1
    assert {r["id"] for r in rows} == set(views) and len(rows) == 2
    assert [r["created_at"] for r in rows] == sorted((r["created_at"] for r in rows), reverse=True)
    for r in rows:
        v = views[r["id"]]
        assert (r["variant"], r["attempt"], r["status"], r["sha256"], r["object_key"]) == (
            v.variant, v.attempt, v.status, v.sha256, v.object_key)
        assert r["request_id"] == result["request_id"]
