"""The dashboard (/): per role, my requests and their progress (requester), requests awaiting my
review (reviewer), consents expiring within 30 days and the latest audit result (compliance)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from castkeep.flows.web.pages.common import render, signed_in, state
from castkeep.tasks.accounts import Identity
from castkeep.vocab import Role

router = APIRouter(include_in_schema=False)


@router.get("/")
def dashboard(request: Request, who: Identity = Depends(signed_in)) -> HTMLResponse:
    from castkeep.tasks import page_views

    sections: dict = {}
    with state(request).runtime.sessions() as session:
        if who.has(Role.REQUESTER):
            sections["mine"] = page_views.my_requests(session, username=who.username,
                                                      team=who.team)
        if who.has(Role.REVIEWER):
            sections["review"] = page_views.awaiting_review(session)
        if who.has(Role.COMPLIANCE):
            sections["expiring"] = page_views.expiring_consents(session)
            sections["audit"] = page_views.latest_audit(session)
    return render(request, "dashboard.html", title="Dashboard", sections=sections,
                  expiring_days=page_views.EXPIRING_DAYS)
