"""Approval: a request with approval_required waits with candidates; the approve flow publishes
the chosen ones and completes the request."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from castkeep.db import schema
from castkeep.errors import ConsentError, NotFoundError
from castkeep.errors import ApprovalError
from castkeep.flows.approve import approve_request
from tests.plugins.request import request_doc

pytestmark = pytest.mark.usefixtures("prefect_harness")


def _events(kind: str) -> list[schema.AuditEvent]:
    from castkeep.flows.runtime import open_runtime

    with open_runtime() as rt, rt.sessions() as s:
        return list(s.scalars(select(schema.AuditEvent).where(schema.AuditEvent.kind == kind)))


def test_request_waits_for_approval_then_publishes_the_chosen_assets(request_env, fulfil):
    waiting = fulfil(request_doc(approval_required=True, lighting={"azimuth": 60},
                                 thresholds={"lighting_azimuth_deg": 60}))
    assert waiting["status"] == "awaiting_approval"
    assert [a["status"] for a in waiting["assets"]] == ["candidate", "candidate"]
    chosen, other = waiting["assets"][0]["id"], waiting["assets"][1]["id"]

    # Not an asset of this request, and not yet decided: refused without changing anything.
    with pytest.raises(NotFoundError, match="not an asset of request .*; `castkeep request show "):
        approve_request(waiting["request_id"], ["00000000-0000-0000-0000-000000000001"], "Ana")

    # The other candidate keeps waiting for a decision.
    first = approve_request(waiting["request_id"], [chosen], "Ana Reviewer")
    assert first["status"] == "awaiting_approval"
    assert first["published"] == [chosen] and first["reviewer"] == "Ana Reviewer"
    assert {a["id"]: a["status"] for a in first["assets"]} == {chosen: "published",
                                                               other: "candidate"}
    (approved,) = _events("asset.approved")
    assert approved.entity_id == chosen and approved.payload["reviewer"] == "Ana Reviewer"
    with pytest.raises(ApprovalError, match="is published"):
        approve_request(waiting["request_id"], [chosen], "Ana Reviewer")

    # Approving the last candidate completes the request.
    done = approve_request(waiting["request_id"], [other], "Ana Reviewer")
    assert done["status"] == "completed" and done["published"] == [other]
    assert {a["status"] for a in done["assets"]} == {"published"}


def test_close_rejects_the_rest_as_not_selected(request_env, fulfil):
    waiting = fulfil(request_doc(variants=3, approval_required=True, lighting={"azimuth": 60},
                                 thresholds={"lighting_azimuth_deg": 60}))
    assert [a["status"] for a in waiting["assets"]] == ["candidate"] * 3
    chosen, *others = [a["id"] for a in waiting["assets"]]
    done = approve_request(waiting["request_id"], [chosen], "Ana Reviewer", close=True)
    assert done["status"] == "completed"
    status = {a["id"]: a["status"] for a in done["assets"]}
    assert status == {chosen: "published", **{o: "rejected" for o in others}}
    reasons = {a["id"]: a["reason"] for a in done["assets"]}
    assert all(reasons[o] == "not selected by reviewer Ana Reviewer" for o in others)
    with pytest.raises(ApprovalError, match="is completed, not awaiting_approval"):
        approve_request(waiting["request_id"], [others[0]], "Ana Reviewer")


def test_approval_rechecks_consent(request_env, fulfil):
    from castkeep.flows.runtime import open_runtime

    waiting = fulfil(request_doc(variants=1, approval_required=True, lighting={"azimuth": 60},
                                 thresholds={"lighting_azimuth_deg": 60}))
    assert waiting["status"] == "awaiting_approval"
    with open_runtime() as rt, rt.sessions.begin() as s:
        consent = s.get(schema.Consent, __import__("uuid").UUID(request_env.consent_ids["demo-talent-a"]))
        consent.status = "revoked"
    with pytest.raises(ConsentError, match="is revoked"):
        approve_request(waiting["request_id"], [waiting["assets"][0]["id"]], "Ana")
    with open_runtime() as rt, rt.sessions() as s:
        asset = s.scalar(select(schema.Asset))
        assert asset.status == "candidate"


def test_only_passing_candidates_can_be_approved(request_env, fulfil):
    waiting = fulfil(request_doc(variants=1, approval_required=True,
                                 engine_options={"scramble_face": True},
                                 thresholds={"max_retries": 0}))
    assert waiting["status"] == "awaiting_approval"
    (rejected,) = waiting["assets"]
    with pytest.raises(ApprovalError, match="only candidates that passed"):
        approve_request(waiting["request_id"], [rejected["id"]], "Ana")
    with pytest.raises(ApprovalError, match="--reviewer"):
        approve_request(waiting["request_id"], [rejected["id"]], "  ")
