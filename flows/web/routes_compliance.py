"""Compliance: talents and their consents, restricted release documents (each read audited),
revocation (with a dry run) and the takedowns it opens, audit reports."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from castkeep.flows.web.auth import require
from castkeep.flows.web.problems import Problem
from castkeep.tasks.accounts import Identity
from castkeep.tasks.api_views import parse_id
from castkeep.vocab import Role

router = APIRouter(tags=["compliance"])
logger = logging.getLogger(__name__)
RELEASE_DOCUMENT = "/api/v1/consents/{consent_id}/release-document"


class Revoke(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=2000)
    dry_run: bool = False


def _state(request: Request):
    return request.app.state.castkeep


@router.get("/talents")
def talents(request: Request, channel: str | None = Query(None, max_length=50),
            territory: str | None = Query(None, max_length=10),
            who: Identity = Depends(require(Role.REQUESTER, Role.COMPLIANCE)),
            ) -> list[dict[str, Any]]:
    """Every talent. Compliance: consents with scope and validity. Requesters: names and whether
    usable (an active consent valid now, covering `channel` and `territory` when given)."""
    from castkeep.tasks.api_views import talents_document

    full = who.has(Role.COMPLIANCE)
    with _state(request).runtime.sessions() as session:
        found = talents_document(session, full=full, channel=channel, territory=territory)
    return [_with_links(t) for t in found] if full else found


def _with_links(talent: dict[str, Any]) -> dict[str, Any]:
    """Each consent links to its release document (the store key stays in the catalogue)."""
    for consent in talent.get("consents", ()):
        consent["release_document"] = RELEASE_DOCUMENT.format(consent_id=consent["id"])
    return talent


@router.get("/talents/{talent_id}")
def talent(talent_id: str, request: Request,
           who: Identity = Depends(require(Role.COMPLIANCE))) -> dict[str, Any]:
    """One talent with consents (compliance)."""
    from castkeep.tasks.api_views import talents_document

    tid = str(parse_id(talent_id, "talent"))
    with _state(request).runtime.sessions() as session:
        found = [t for t in talents_document(session, full=True) if t["id"] == tid]
    if not found:
        raise Problem(404, f"no talent {tid}")
    return _with_links(found[0])


@router.get("/consents/{consent_id}/release-document")
def release_document(consent_id: str, request: Request,
                     who: Identity = Depends(require(Role.COMPLIANCE))) -> Response:
    """The signed release document of a consent (compliance only), checked against its
    catalogued sha256; each read is an audit event naming the reader."""
    from castkeep.tasks.api_views import read_release_document

    cid = str(parse_id(consent_id, "consent"))
    found = read_release_document(_state(request).runtime, cid, actor=who.username)
    if found["state"] != "ok":
        logger.warning("release document of consent %s is %s", cid, found["state"])
        what = {"mismatch": "does not match its catalogued sha256",
                "missing": "is missing from the object store",
                "unreadable": "cannot be read from the object store"}[found["state"]]
        raise Problem(500, f"the stored release document of consent {cid} {what}; run an "
                      "audit (POST /api/v1/audit or `castkeep audit`) and restore it from backup")
    return Response(found["data"], media_type=found["media_type"], headers={
        "Content-Disposition": f'attachment; filename="{found["filename"]}"',
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
    })


@router.post("/consents/{consent_id}/revoke")
def revoke(consent_id: str, body: Revoke, request: Request,
           who: Identity = Depends(require(Role.COMPLIANCE))) -> dict[str, Any]:
    """Revoke a consent, quarantine what it covered and open a takedown for every placement of
    those assets (`takedowns`, as `castkeep consent revoke --json` lists them); `dry_run` lists
    the assets that would be quarantined and the takedowns that would open, and changes
    nothing."""
    from castkeep.flows.components import encoder_profile
    from castkeep.tasks import revoke as cascade

    cid = str(parse_id(consent_id, "consent"))
    state = _state(request)
    face = encoder_profile(state.settings.faces)
    if body.dry_run:
        would = cascade.dry_run(state.runtime, consent_id=cid, face=face)
        return {"quarantined": would["quarantined"], "takedowns": would["takedowns"],
                "dry_run": True}
    result = cascade.revoke(state.runtime, consent_id=cid, reason=body.reason, face=face,
                            actor=who.username)
    return {"quarantined": result.quarantined, "takedowns": result.takedowns, "dry_run": False,
            "changed": result.changed, "status": result.status}


@router.get("/audit")
def latest_audit(request: Request,
                 who: Identity = Depends(require(Role.COMPLIANCE))) -> dict[str, Any]:
    """The latest audit report (404 before the first audit)."""
    from castkeep.tasks.api_views import latest_audit_report

    state = _state(request)
    with state.runtime.sessions() as session:
        report = latest_audit_report(session, state.runtime.store)
    if report is None:
        raise Problem(404, "no audit has run yet; POST /api/v1/audit starts one")
    return report


@router.post("/audit", status_code=202)
def start_audit(request: Request,
                who: Identity = Depends(require(Role.COMPLIANCE))) -> JSONResponse:
    """Start an audit run in the background. 202 {"job"}."""
    from castkeep.flows.web import jobs

    job = _state(request).jobs.submit("audit", jobs.audit, who.username)
    return JSONResponse({"job": job}, status_code=202)
