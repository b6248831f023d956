"""The assets repository on the real catalogue (each test's work is rolled back)."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from castkeep.db import assets_repo as repo
from castkeep.db import schema
from castkeep.errors import NotFoundError
from castkeep.models.scoring.records import ScoreRecord
from tests.plugins.request import request_doc


def _request(session):
    from castkeep.models.request_spec import request_from_mapping

    spec = request_from_mapping(request_doc(variants=3))
    return repo.create_request(session, spec=spec.canonical(), spec_sha256=spec.sha256(),
                               actor="tests")


def _gen(variant, attempt, passed):
    return repo.GenerationRecord(variant=variant, attempt=attempt, seed=100 + attempt,
                                 engine="classical", engine_version="1.0", device="cpu",
                                 passed=passed, timings={"engine_s": 0.1})


def _asset(tag, status="candidate"):
    sha = hashlib.sha256(tag.encode()).hexdigest()
    return repo.AssetRecord(sha256=sha, object_key=f"assets/{sha[:2]}/{sha[2:4]}/{sha}.jpg",
                            media_type="image/jpeg", width=64, height=80, status=status,
                            use={"channel": "social"})


SCORES = [ScoreRecord(kind="camera", value=1.5, threshold=5.0, passed=True),
          ScoreRecord(kind="quality", value=90.0, threshold=5.0, passed=True)]


def test_variant_rows_views_and_progress(db_session):
    req = _request(db_session)
    repo.record_attempt(db_session, req.id, _gen(0, 0, False),
                        [ScoreRecord(kind="camera", value=9.0, threshold=5.0, passed=False)])
    a0 = repo.record_variant(db_session, req.id, generation=_gen(0, 1, True), scores=SCORES,
                             asset=_asset("v0"), lineage=[], faces=[], actor="tests")
    progress = repo.variant_progress(db_session, req.id)
    assert progress.finished == {0: a0}
    assert progress.next_attempt == {0: 2}

    view = repo.request_view(db_session, req.id)
    assert view.status == "received" and view.rejected_attempts == 1
    (asset,) = view.assets
    assert (asset.variant, asset.attempt, asset.seed, asset.passed) == (0, 1, 101, True)
    assert asset.scores_summary() == {
        "camera": {"value": 1.5, "threshold": 5.0, "passed": True},
        "quality": {"value": 90.0, "threshold": 5.0, "passed": True},
    }
    # Scores of the failed attempt belong to its generation, not to the asset.
    assert db_session.scalar(select(func.count()).select_from(schema.Score)) == 3

    repo.set_asset_status(db_session, [a0], "published", actor="tests", reason="ok")
    repo.set_request_status(db_session, req.id, "completed", actor="tests")
    kinds = list(db_session.scalars(select(schema.AuditEvent.kind).order_by(schema.AuditEvent.seq)))
    assert kinds == ["request.created", "asset.created", "asset.published", "request.completed"]
    assert repo.asset_view(db_session, a0).status == "published"

    # One variant's progress (what a variant run reads) leaves the others out.
    repo.record_attempt(db_session, req.id, _gen(1, 0, False), [])
    assert repo.variant_progress(db_session, req.id, 1).finished == {}
    assert repo.variant_progress(db_session, req.id, 1).next_attempt == {1: 1}
    assert repo.variant_progress(db_session, req.id, 0).next_attempt == {0: 2}
    assert repo.variant_progress(db_session, req.id, 0).finished == {0: a0}
    assert repo.variant_progress(db_session, req.id).next_attempt == {0: 2, 1: 1}


def test_a_failed_variant_write_leaves_nothing(db_session):
    req = _request(db_session)
    repo.record_variant(db_session, req.id, generation=_gen(0, 0, True), scores=SCORES,
                        asset=_asset("same"), lineage=[], faces=[], actor="tests")
    before = {t: db_session.scalar(select(func.count()).select_from(t))
              for t in (schema.Generation, schema.Score, schema.Asset, schema.AuditEvent)}
    with pytest.raises(IntegrityError):
        with db_session.begin_nested():  # the caller's one transaction per variant
            repo.record_variant(db_session, req.id, generation=_gen(1, 0, True), scores=SCORES,
                                asset=_asset("same"), lineage=[], faces=[], actor="tests")
    after = {t: db_session.scalar(select(func.count()).select_from(t)) for t in before}
    assert after == before


def test_unknown_ids_are_typed_errors(db_session):
    with pytest.raises(NotFoundError, match="not a request id"):
        repo.get_request(db_session, "nope")
    with pytest.raises(NotFoundError, match="no asset"):
        repo.get_asset(db_session, "00000000-0000-0000-0000-000000000000")


def test_catalogued_asset_keys_cover_assets_and_reports(db_session):
    from castkeep.db.audit_log import append_event

    req = _request(db_session)
    repo.record_variant(db_session, req.id, generation=_gen(0, 0, True), scores=SCORES,
                        asset=_asset("k"), lineage=[], faces=[], actor="tests")
    append_event(db_session, actor="tests", kind="request.report", entity_type="asset_request",
                 entity_id=str(req.id), payload={"contact_sheet": "reports/aa/bb/x.png"})
    keys = repo.catalogued_asset_keys(db_session)
    assert _asset("k").object_key in keys and "reports/aa/bb/x.png" in keys


def test_a_request_that_succeeds_after_failing_drops_the_old_reason(db_session):
    req = _request(db_session)
    repo.set_request_status(db_session, req.id, "failed", actor="tests", refusals=["disk full"])
    repo.set_request_status(db_session, req.id, "running", actor="tests")
    assert req.refusals == ["disk full"]  # still the latest outcome while it runs again
    repo.set_request_status(db_session, req.id, "completed", actor="tests")
    assert repo.request_view(db_session, req.id).refusals == ()
    failed_event = db_session.scalars(select(schema.AuditEvent).where(
        schema.AuditEvent.kind == "request.failed")).one()
    assert failed_event.payload["refusals"] == ["disk full"]  # the history keeps it
