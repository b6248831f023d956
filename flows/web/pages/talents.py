"""The consent register (compliance only): /talents lists every talent with its consents' scope,
validity and status (ending soon highlighted); /talents/{id} adds the reference portraits, the
assets that depict the talent with their status, links to the restricted release documents
(each read an audit event, by the API route) and revocation: a dry-run preview listing every
asset that would be quarantined, then a confirmation that needs the talent's external ref."""

from __future__ import annotations

import hmac
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse

from castkeep import errors
from castkeep.flows.web.pages.common import csrf_form, first, page_role, render, state
from castkeep.tasks.accounts import Identity
from castkeep.tasks.api_views import parse_id
from castkeep.vocab import Role

router = APIRouter(include_in_schema=False)
COMPLIANCE = page_role(Role.COMPLIANCE)
RELEASE_DOCUMENT = "/api/v1/consents/{consent_id}/release-document"
MAX_REASON = 2000


@router.get("/talents")
def register(request: Request, who: Identity = Depends(COMPLIANCE)) -> HTMLResponse:
    from castkeep.tasks import page_views_compliance as views

    with state(request).runtime.sessions() as session:
        talents = views.talent_register(session)
    return render(request, "talents.html", title="Talents and consents", talents=talents,
                  expiring_days=views.EXPIRING_DAYS)


@router.get("/talents/{talent_id}")
def talent(talent_id: str, request: Request, revoked: str | None = None,
           who: Identity = Depends(COMPLIANCE)) -> HTMLResponse:
    from castkeep.tasks import page_views_compliance as views

    with state(request).runtime.sessions() as session:
        doc = views.talent_page(session, talent_id)
    done = next((c for c in doc["consents"] if c["id"] == revoked), None) if revoked else None
    return render(request, "talent.html", title=doc["display_name"], doc=doc, revoked=done,
                  release_document=RELEASE_DOCUMENT, expiring_days=views.EXPIRING_DAYS)


def _preview(request: Request, consent_id: str) -> dict[str, Any]:
    """The consent, its talent, the assets a revocation would quarantine now and the takedowns
    it would open (one per placement of those assets): the cascade's dry run, read only."""
    from castkeep.flows.components import encoder_profile
    from castkeep.tasks import page_views_compliance as views
    from castkeep.tasks import revoke as cascade

    app = state(request)
    cid = str(parse_id(consent_id, "consent"))
    with app.runtime.sessions() as session:
        consent = views.consent_page(session, cid)
    plan = cascade.dry_run(app.runtime, consent_id=cid, face=encoder_profile(app.settings.faces))
    with app.runtime.sessions() as session:
        assets = views.assets_by_ids(session, plan["quarantined"])
    return {"consent": consent, "assets": assets, "takedowns": plan.get("takedowns", [])}


def _revoke_page(request: Request, consent_id: str, *, reason: str = "", error: str = "",
                 status_code: int = 200) -> HTMLResponse:
    found = _preview(request, consent_id)
    return render(request, "talent_revoke.html", status_code=status_code,
                  title=f"Revoke consent of {found['consent']['talent_name']}", reason=reason,
                  error=error, max_reason=MAX_REASON, **found)


@router.get("/consents/{consent_id}/revoke")
def revoke_preview(consent_id: str, request: Request,
                   who: Identity = Depends(COMPLIANCE)) -> HTMLResponse:
    """The dry run: what a revocation would quarantine; nothing changes."""
    return _revoke_page(request, consent_id)


@router.post("/consents/{consent_id}/revoke")
async def revoke(consent_id: str, request: Request,
                 who: Identity = Depends(COMPLIANCE)):
    """step=preview: the dry run with the reason filled in (nothing changes). step=confirm: the
    revocation, when `confirm_ref` is the talent's external ref (or, for a talent without one,
    the consent id) and a reason is given."""
    form = await csrf_form(request)
    step, reason = first(form, "step", "preview"), first(form, "reason").strip()
    if len(reason) > MAX_REASON:
        return await run_in_threadpool(_revoke_page, request, consent_id,
                                       reason=reason[:MAX_REASON], status_code=422,
                                       error=f"Keep the reason under {MAX_REASON} characters.")
    if step != "confirm":
        return await run_in_threadpool(_revoke_page, request, consent_id, reason=reason)
    return await run_in_threadpool(_confirm, request, consent_id, reason,
                                   first(form, "confirm_ref").strip(), who)


def _confirm(request: Request, consent_id: str, reason: str, typed: str, who: Identity):
    from castkeep.flows.components import encoder_profile
    from castkeep.tasks import page_views_compliance as views
    from castkeep.tasks import revoke as cascade

    app = state(request)
    cid = str(parse_id(consent_id, "consent"))
    with app.runtime.sessions() as session:
        consent = views.consent_page(session, cid)
    expected = consent["talent_ref"] or cid
    if not reason:
        return _revoke_page(request, cid, reason=reason, status_code=422,
                            error="Give the reason for the revocation "
                                  "(it goes into the audit log).")
    if not hmac.compare_digest(typed.encode(), expected.encode()):
        return _revoke_page(request, cid, reason=reason, status_code=422,
                            error="The confirmation did not match: type the talent's external "
                            "reference exactly as shown.")
    try:
        cascade.revoke(app.runtime, consent_id=cid, reason=reason, actor=who.username,
                       face=encoder_profile(app.settings.faces))
    except errors.ConsentStateError as exc:
        return _revoke_page(request, cid, reason=reason, error=str(exc), status_code=409)
    return RedirectResponse(f"/talents/{consent['talent_id']}?revoked={cid}", status_code=303)
