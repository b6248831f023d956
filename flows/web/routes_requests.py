"""Requests: submit (fulfilled in the background), list, progress, approve, reject, close."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from castkeep.tasks.api_views import parse_id
from castkeep.flows.web.auth import require
from castkeep.flows.web.problems import Problem
from castkeep.tasks.accounts import Identity
from castkeep.vocab import Role

router = APIRouter(tags=["requests"])
VIEWERS = (Role.REQUESTER, Role.REVIEWER, Role.COMPLIANCE)


class Decision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    assets: list[str] = Field(default_factory=list, max_length=500)
    comment: str = Field(default="", max_length=2000)


class Close(BaseModel):
    model_config = ConfigDict(extra="forbid")

    comment: str = Field(min_length=1, max_length=2000)


def _state(request: Request):
    return request.app.state.castkeep


def _sees_all(who: Identity) -> bool:
    return who.has(Role.REVIEWER, Role.COMPLIANCE)


@router.post("/requests", status_code=202)
def submit(request: Request, body: dict[str, Any] = Body(..., description="A request document "
           "(the JSON of a request file)."),
           who: Identity = Depends(require(Role.REQUESTER))) -> JSONResponse:
    """Validate and catalogue a request; fulfilment runs in the background. 202 {"id"}."""
    from castkeep.flows.components import request_from_document
    from castkeep.flows.dispatch import start_fulfil_run
    from castkeep.flows.fulfil_request import submit_request
    from castkeep.flows.web import jobs

    state = _state(request)
    spec = request_from_document(body, state.settings)
    request_id = submit_request(state.runtime, spec, actor=who.username, team=who.team)
    if state.dispatch == "deployment":
        start_fulfil_run(str(request_id), who.username)
    else:
        state.jobs.submit("fulfil-request", jobs.fulfil, str(request_id), who.username)
    return JSONResponse({"id": str(request_id)}, status_code=202,
                        headers={"Location": f"{request.url.path}/{request_id}"})


@router.get("/requests")
def list_requests(request: Request,
                  who: Identity = Depends(require(*VIEWERS))) -> list[dict[str, Any]]:
    """Recent requests: all for reviewers and compliance, own and team ones for requesters."""
    from castkeep.tasks.api_views import visible_request_ids

    with _state(request).runtime.sessions() as session:
        return visible_request_ids(session, username=who.username,
                                   team=None if _sees_all(who) else who.team)


def _visible(session, request_id, who: Identity) -> None:
    from castkeep.tasks.api_views import request_owner

    submitted_by, team = request_owner(session, request_id)
    if not _sees_all(who) and submitted_by != who.username and (team is None or team != who.team):
        raise Problem(404, f"no request {request_id} that you can see")


@router.get("/requests/{request_id}")
def show(request_id: str, request: Request,
         who: Identity = Depends(require(*VIEWERS))) -> dict[str, Any]:
    """Status, progress (variants done/total), assets with scores and reasons, refusals."""
    from castkeep.tasks.api_views import request_document

    rid = parse_id(request_id, "request")
    with _state(request).runtime.sessions() as session:
        _visible(session, rid, who)
        return request_document(session, rid)


@router.post("/requests/{request_id}/approve")
def approve(request_id: str, body: Decision, request: Request,
            who: Identity = Depends(require(Role.REVIEWER))) -> dict[str, Any]:
    """Publish chosen candidates (consent re-checked under lock); the reviewer is the signed-in
    user. The other candidates wait for a decision (reject, or close the review); the request
    completes when none is left."""
    from castkeep.flows.approve import approve_assets

    rid = parse_id(request_id, "request")
    outcome = approve_assets(_state(request).runtime, rid, body.assets, who.username,
                             actor=who.username, comment=body.comment.strip() or None)
    return {"published": outcome["published"], "rejected": outcome["rejected"],
            "waiting": outcome["waiting"]}


@router.post("/requests/{request_id}/reject")
def reject(request_id: str, body: Decision, request: Request,
           who: Identity = Depends(require(Role.REVIEWER))) -> dict[str, Any]:
    """Reject chosen candidates with a comment."""
    from castkeep.flows.approve import reject_assets

    rid = parse_id(request_id, "request")
    return reject_assets(_state(request).runtime, rid, body.assets, actor=who.username,
                         comment=body.comment)


@router.post("/requests/{request_id}/close")
def close(request_id: str, body: Close, request: Request,
          who: Identity = Depends(require(Role.REVIEWER))) -> dict[str, Any]:
    """End the review: every remaining candidate is rejected with the comment."""
    from castkeep.flows.approve import reject_assets

    rid = parse_id(request_id, "request")
    return reject_assets(_state(request).runtime, rid, [], actor=who.username,
                         comment=body.comment, close=True)
