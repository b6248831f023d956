"""A revoked consent never publishes anything: publishing (request finish, approve) and a
revocation run concurrently against the real catalogue, with the interleaving forced both ways by
a third connection that holds a row lock, and in a real running request.

Outcomes allowed: the publish commits first and the cascade then quarantines what it published,
or the publish sees the revocation and refuses. Either way no asset of the request ends published.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select, text

from castkeep.db import schema
from castkeep.errors import ConsentError
from tests.plugins.request import request_doc

pytestmark = pytest.mark.usefixtures("prefect_harness")


class Worker(threading.Thread):
    """Runs fn in a thread and keeps its result or exception."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        super().__init__(daemon=True)
        self.fn, self.result, self.error = fn, None, None

    def run(self) -> None:
        try:
            self.result = self.fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            self.error = exc


def _lock_waiters(rt) -> int:
    with rt.engine.connect() as conn:
        return conn.execute(text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock'"
        )).scalar_one()


def _wait_for_waiters(rt, n: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while _lock_waiters(rt) < n:
        assert time.monotonic() < deadline, f"expected {n} transaction(s) waiting on a lock"
        time.sleep(0.05)


def _statuses(rt, request_id: str) -> dict[str, str]:
    with rt.sessions() as s:
        rows = s.scalars(select(schema.Asset).where(schema.Asset.request_id == uuid.UUID(request_id)))
        return {str(a.id): a.status for a in rows}


def _request_status(rt, request_id: str) -> str:
    with rt.sessions() as s:
        return s.get(schema.AssetRequest, uuid.UUID(request_id)).status


def _waiting_request(fulfil) -> dict[str, Any]:
    waiting = fulfil(request_doc(approval_required=True, lighting={"azimuth": 60},
                                 thresholds={"lighting_azimuth_deg": 60}))
    assert waiting["status"] == "awaiting_approval"
    assert [a["status"] for a in waiting["assets"]] == ["candidate", "candidate"]
    return waiting


def _publisher(rt, path: str, waiting: dict[str, Any]) -> Callable[[], Any]:
    """The publish under test: `finish` of a request that needs no approval, or `approve`."""
    from castkeep.flows.approve import approve_assets
    from castkeep.flows.fulfil_request import finish
    from castkeep.models.request_spec import RequestSpec

    rid = uuid.UUID(waiting["request_id"])
    ids = [a["id"] for a in waiting["assets"]]
    if path == "approve":
        return lambda: approve_assets(rt, rid, ids, "Ana Reviewer", actor="reviewer")
    with rt.sessions() as s:
        doc = dict(s.get(schema.AssetRequest, rid).spec)
    spec = RequestSpec.model_validate({**doc, "approval_required": False})
    return lambda: finish(rt, rid, spec, actor="publisher")


def _interleave(rt, waiting: dict[str, Any], first: Worker, second: Worker) -> None:
    """Force the order: a third connection holds one of the request's asset rows, `first`
    starts and blocks (on that row), `second` starts and blocks (behind `first`), then the row
    is released and both run to the end."""
    with rt.engine.connect() as blocker:
        blocker.execute(text("SELECT 1 FROM asset WHERE id = :id FOR UPDATE"),
                        {"id": waiting["assets"][0]["id"]})
        first.start()
        _wait_for_waiters(rt, 1)
        second.start()
        _wait_for_waiters(rt, 2)
        blocker.rollback()
    first.join(60), second.join(60)


def _revoker(rt, consent_id: str) -> Callable[[], Any]:
    from castkeep.tasks.revoke import revoke

    return lambda: revoke(rt, consent_id=consent_id, reason="talent withdrew", face=None)


@pytest.mark.parametrize("path", ["finish", "approve"])
def test_publish_holding_the_consent_lock_commits_then_the_cascade_quarantines(request_env, fulfil,
                                                                             path):
    from castkeep.flows.runtime import open_runtime

    waiting = _waiting_request(fulfil)
    consent = request_env.consent_ids["demo-talent-a"]
    with open_runtime() as rt:
        publish, revoke = Worker(_publisher(rt, path, waiting)), Worker(_revoker(rt, consent))
        # The publish takes its consent locks, then waits on the held asset row; the
        # revocation then queues behind the publish's FOR SHARE.
        _interleave(rt, waiting, publish, revoke)
        assert publish.error is None and revoke.error is None, (publish.error, revoke.error)

        # The publish committed first (it published), and the cascade reached what it published.
        assert _request_status(rt, waiting["request_id"]) == "completed"
        assert sorted(revoke.result.quarantined) == sorted(a["id"] for a in waiting["assets"])
        statuses = _statuses(rt, waiting["request_id"])
        assert "published" not in statuses.values()
        published_then = [e.entity_id for e in _events(rt, "asset.published")]
        assert published_then, "the publish should have committed before the revocation"
        assert all(statuses[a] == "quarantined" for a in published_then)


@pytest.mark.parametrize("path", ["finish", "approve"])
def test_publish_waiting_for_a_revocation_sees_it_and_refuses(request_env, fulfil, path):
    from castkeep.flows.runtime import open_runtime

    waiting = _waiting_request(fulfil)
    consent = request_env.consent_ids["demo-talent-a"]
    with open_runtime() as rt:
        publish, revoke = Worker(_publisher(rt, path, waiting)), Worker(_revoker(rt, consent))
        # The revocation takes its FOR UPDATE on the consent, then waits on the held asset row;
        # the publish then queues behind the revocation's consent lock.
        _interleave(rt, waiting, revoke, publish)
        assert revoke.error is None, revoke.error

        statuses = _statuses(rt, waiting["request_id"])
        assert set(statuses.values()) == {"quarantined"}
        assert _events(rt, "asset.published") == []
        if path == "approve":
            assert isinstance(publish.error, ConsentError), publish.error
            assert "is revoked" in str(publish.error)
            assert _request_status(rt, waiting["request_id"]) == "awaiting_approval"
        else:
            assert publish.error is None, publish.error
            assert _request_status(rt, waiting["request_id"]) == "refused"
            with rt.sessions() as s:
                req = s.get(schema.AssetRequest, uuid.UUID(waiting["request_id"]))
                assert any("is revoked" in r for r in req.refusals), req.refusals


def _events(rt, kind: str) -> list[schema.AuditEvent]:
    with rt.sessions() as s:
        return list(s.scalars(select(schema.AuditEvent).where(schema.AuditEvent.kind == kind)))


def test_revocation_during_a_running_request_stops_it_and_publishes_nothing(request_env, fulfil):
    """A real request (no approval needed, 6 variants) and a real revocation made while it runs,
    as soon as its first asset exists."""
    from castkeep.flows.runtime import open_runtime

    consent = request_env.consent_ids["demo-talent-a"]
    doc = request_doc(variants=6, approval_required=False, lighting={"azimuth": 60},
                      thresholds={"lighting_azimuth_deg": 60})
    running = Worker(lambda: fulfil(doc))
    running.start()
    with open_runtime() as rt:
        deadline = time.monotonic() + 240
        while True:
            with rt.sessions() as s:
                n = s.scalar(text("SELECT count(*) FROM asset"))
            if n >= 1 or not running.is_alive():
                break
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert running.is_alive(), "the request finished before the revocation could race it"
        cascade = _revoker(rt, consent)()
        running.join(240)
        assert running.error is None, running.error
        result = running.result

        assert result["status"] == "refused"
        assert any("is revoked" in r for r in result["refusals"]), result["refusals"]
        statuses = _statuses(rt, result["request_id"])
        assert statuses and "published" not in statuses.values()
        assert set(statuses.values()) == {"quarantined"}
        # Generation stopped: not every variant was made after the revocation.
        assert len(statuses) < 6
        assert set(cascade.quarantined) <= set(statuses)
        assert _events(rt, "asset.published") == []
