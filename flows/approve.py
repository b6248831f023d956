"""Flow: a reviewer's approval of a request's assets (step 7 of fulfil_request).

Design: a request with `approval_required` ends its fulfilment in status `awaiting_approval`
with its passing variants as `candidate` assets; nothing is held open while it waits (no paused
flow run, no worker slot), so the embedded default (ephemeral Prefect, a CLI that exits) works the
same as a server. `castkeep approve REQUEST_ID --assets ... --reviewer NAME` runs this flow, which
resumes the request: it re-checks every talent's consent (it may have been revoked since) and
marks the chosen candidates approved then published, in one transaction with an audit event per
change. The other candidates wait for a later decision (approved, or rejected with a comment);
`--close` rejects them as not selected. The request completes when no candidate is left.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from prefect import get_run_logger

from castkeep.flows.flow_type import flow
from castkeep.db import assets_repo
from castkeep.errors import ApprovalError, ConsentError, NotFoundError
from castkeep.db.ids import parse_id
from castkeep.provenance.policy import use_of
from castkeep.flows.settings import get_settings
from castkeep.models.request_spec import RequestSpec
from castkeep.tasks.consent_gate import check_consent_for_publish


def approve_assets(
    runtime,
    request_id: uuid.UUID,
    asset_ids: Sequence[str],
    reviewer: str,
    *,
    actor: str,
    comment: str | None = None,
    close: bool = False,
) -> dict[str, Any]:
    """Plain function behind the flow (one transaction). `comment`: the reviewer's words, kept
    in each asset's audit event. The request's other candidates keep waiting for a decision
    (`close` rejects them as not selected); it completes when no candidate is left."""
    reviewer = reviewer.strip()
    if not reviewer:
        raise ApprovalError("give the reviewer's name with --reviewer")
    if not asset_ids:
        raise ApprovalError(
            "give at least one asset id with --assets (see `castkeep request show REQUEST_ID`)"
        )
    with runtime.sessions.begin() as session:
        req = assets_repo.get_request(session, request_id, lock=True)
        if req.status != "awaiting_approval":
            raise ApprovalError(
                f"request {request_id} is {req.status}, not awaiting_approval; only a request "
                "made with approval_required: true and fully generated can be approved"
            )
        spec = RequestSpec.model_validate(dict(req.spec))
        asset_refs = [str(parse_id(raw, "asset")) for raw in asset_ids]
        # Locks the consent rows (FOR SHARE) until this transaction ends: a revocation either
        # committed before (seen here: refused) or waits and then quarantines what we publish.
        gate = check_consent_for_publish(
            session, list(spec.talents), use_of(spec), spec.publish_date, asset_refs
        )
        if not gate.allowed:
            raise ConsentError(
                "consent no longer covers this request: " + "; ".join(gate.refusals)
            )
        # Read after the locks: a cascade that committed first has quarantined some.
        views = {a.id: a for a in assets_repo.request_assets(session, request_id)}
        chosen = _candidates(views, asset_ids, request_id, "approved")
        others = [a.id for a in views.values() if a.status == "candidate" and a.id not in chosen]
        detail = {"reviewer": reviewer, **({"comment": comment} if comment else {})}
        assets_repo.set_asset_status(session, chosen, "approved", actor=actor,
                                     reason=f"approved by {reviewer}", detail=detail)
        assets_repo.set_asset_status(session, chosen, "published", actor=actor, detail=detail)
        rejected = others if close else []
        assets_repo.set_asset_status(session, rejected, "rejected", actor=actor,
                                     reason=f"not selected by reviewer {reviewer}", detail=detail)
        waiting = [] if close else others
        if not waiting:
            assets_repo.set_request_status(session, request_id, "completed", actor=actor,
                                           detail={"reviewer": reviewer, "published": chosen})
    return {"request_id": str(request_id), "published": chosen, "rejected": rejected,
            "waiting": waiting, "reviewer": reviewer,
            "status": "awaiting_approval" if waiting else "completed"}


def reject_assets(runtime, request_id: uuid.UUID, asset_ids: Sequence[str], *, actor: str,
                  comment: str, close: bool = False) -> dict[str, Any]:
    """Reject chosen candidates of a request awaiting approval (with the reviewer's comment);
    `close` rejects every remaining candidate. When no candidate is left the request completes."""
    comment = (comment or "").strip()
    if not comment:
        raise ApprovalError("a rejection needs a comment saying why")
    with runtime.sessions.begin() as session:
        req = assets_repo.get_request(session, request_id, lock=True)
        if req.status != "awaiting_approval":
            raise ApprovalError(f"request {request_id} is {req.status}, not awaiting_approval")
        views = {a.id: a for a in assets_repo.request_assets(session, request_id)}
        chosen = _candidates(views, asset_ids, request_id, "rejected")
        if close:
            chosen += [a.id for a in views.values() if a.status == "candidate" and a.id not in chosen]
        chosen = list(dict.fromkeys(chosen))
        if not chosen:
            raise ApprovalError("give at least one candidate asset id to reject")
        assets_repo.set_asset_status(session, chosen, "rejected", actor=actor,
                                     reason=f"rejected by {actor}: {comment}",
                                     detail={"reviewer": actor, "comment": comment})
        left = [a for a in views.values() if a.status == "candidate" and a.id not in chosen]
        if not left:
            assets_repo.set_request_status(session, request_id, "completed", actor=actor,
                                           detail={"reviewer": actor, "rejected": chosen})
    return {"request_id": str(request_id), "rejected": chosen,
            "status": "awaiting_approval" if left else "completed"}


@flow(name="approve-request", persist_result=False, validate_parameters=True)
def approve_request(request_id: str, asset_ids: list[str], reviewer: str,
                    close: bool = False) -> dict[str, Any]:
    from castkeep.flows.fulfil_request import summarise
    from castkeep.flows.runtime import open_runtime
    from castkeep.tasks.report import publish_report

    logger = get_run_logger()
    settings = get_settings()
    rid = parse_id(request_id)
    with open_runtime(settings) as runtime:
        outcome = approve_assets(runtime, rid, asset_ids, reviewer, actor=settings.acting_user,
                                 close=close)
        logger.info("request %s: %d asset(s) published by %s", rid, len(outcome["published"]),
                    outcome["reviewer"])
        publish_report(runtime, rid)
        result = summarise(runtime, settings, rid)
    result["published"] = outcome["published"]
    result["reviewer"] = outcome["reviewer"]
    return result


def _candidates(views: dict[str, Any], asset_ids: Sequence[str], request_id: uuid.UUID,
                verb: str) -> list[str]:
    """The named assets (ids validated, in order, once each), all candidates of this request."""
    chosen = []
    for raw in asset_ids:
        aid = str(parse_id(raw, "asset"))
        view = views.get(aid)
        if view is None:
            raise NotFoundError(f"asset {raw} is not an asset of request {request_id}; "
                                f"`castkeep request show {request_id}` lists its assets")
        if view.status != "candidate":
            raise ApprovalError(
                f"asset {aid} is {view.status} ({view.status_reason or 'no reason'}); only "
                f"candidates that passed every threshold can be {verb}"
            )
        chosen.append(aid)
    return list(dict.fromkeys(chosen))
