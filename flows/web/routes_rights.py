"""The publication register and takedowns: record where a published asset went live, list its
placements, list takedown tasks and record one done. The same tasks as `castkeep asset
publish|placements` and `castkeep takedowns list|done`; the actor is the signed-in user.

Answers: 201 with the placement when recorded (200 with `"recorded": false` when the same asset,
channel and URL was recorded before); 404 unknown asset or takedown; 410 withdrawn (quarantined
or rejected) asset; 409 asset not published, placement refused by consent (the problem carries
`reasons`, every failing clause), takedown already done; 422 invalid channel, territory, URL or
date. A consent refusal is a 409, not a 403: the caller's role allows the call and the request is
well formed, but it conflicts with the state of the talent's consent (which may change); 403
stays the answer about who the caller is.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from castkeep import errors
from castkeep.flows.web.auth import require
from castkeep.flows.web.problems import Problem
from castkeep.tasks.accounts import Identity
from castkeep.tasks.api_views import parse_id
from castkeep.vocab import Role

router = APIRouter(tags=["rights"])
PLACERS = (Role.REVIEWER, Role.COMPLIANCE)
READERS = (Role.REQUESTER, Role.REVIEWER, Role.COMPLIANCE)
# tasks/placements.publish refuses with "placement refused: <reason>; <reason>".


class Placement(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: str = Field(min_length=1, max_length=50)
    url: str = Field(min_length=1, max_length=2000)
    territory: str | None = Field(None, min_length=1, max_length=10)
    until: dt.date | None = None


class Done(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str | None = Field(None, max_length=2000)


def _runtime(request: Request):
    return request.app.state.castkeep.runtime


@router.post("/assets/{asset_id}/placements", status_code=201)
def publish(asset_id: str, body: Placement, request: Request, response: Response,
            who: Identity = Depends(require(*PLACERS))) -> dict[str, Any]:
    """Record where a published asset went live (reviewer or compliance). The consent of every
    depicted talent is checked again for this channel and territory, now and until `until`."""
    from castkeep.tasks.placements import publish as record

    aid = str(parse_id(asset_id, "asset"))
    try:
        placed = record(_runtime(request), asset_id=aid, channel=body.channel, url=body.url,
                        territory=body.territory, until=body.until, actor=who.username)
    except errors.Refused as exc:
        raise Problem(409, "placement refused: " + str(exc), title="Refused by consent",
                      type_="urn:castkeep:problem:consent",
                      extra={"reasons": exc.refusals}) from None
    if not placed["recorded"]:
        response.status_code = 200
    return placed


@router.get("/assets/{asset_id}/placements")
def placements(asset_id: str, request: Request,
               who: Identity = Depends(require(*READERS))) -> list[dict[str, Any]]:
    """Where an asset went live, oldest first (requester, reviewer, compliance)."""
    from castkeep.tasks.placements import asset_placements

    return asset_placements(_runtime(request), str(parse_id(asset_id, "asset")))


@router.get("/takedowns")
def takedowns(request: Request,
              open_only: bool = Query(False, alias="open",
                                      description="Only takedowns not yet done."),
              who: Identity = Depends(require(Role.COMPLIANCE))) -> list[dict[str, Any]]:
    """Takedown tasks, oldest first (compliance): one per placement of a quarantined asset."""
    from castkeep.tasks.takedowns import list_takedowns

    return list_takedowns(_runtime(request), open_only=open_only)


@router.post("/takedowns/{takedown_id}/done")
def takedown_done(takedown_id: str, request: Request, body: Done | None = None,
                  who: Identity = Depends(require(Role.COMPLIANCE))) -> dict[str, Any]:
    """Record a takedown done, with an optional note (compliance); 409 when already done."""
    from castkeep.tasks.takedowns import complete

    tid = str(parse_id(takedown_id, "takedown"))
    try:
        return complete(_runtime(request), takedown_id=tid, note=body.note if body else None,
                        actor=who.username)
    except errors.NotFoundError:
        raise Problem(404, f"no takedown {tid}; GET /api/v1/takedowns lists them") from None
    except errors.ConsentStateError as exc:  # already done: the state conflicts, not the input
        raise Problem(409, str(exc)) from None
