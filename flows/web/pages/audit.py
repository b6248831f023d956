"""The audit page (/audit, compliance only): the latest report (violations by kind, linking to
the assets and talents they name), "Run audit now" (a CSRF-checked POST that starts the audit
in the background as POST /api/v1/audit does; the page then shows it running and reloads
itself when it ends), and the consents expiring within 30 days."""

from __future__ import annotations

from concurrent.futures import Future

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from castkeep.flows.web.pages.common import csrf_form, page_role, render, state
from castkeep.flows.web.problems import SafeJSONResponse
from castkeep.tasks.accounts import Identity
from castkeep.vocab import Role

router = APIRouter(include_in_schema=False)
COMPLIANCE = page_role(Role.COMPLIANCE)


def _runs(request: Request) -> list[str]:
    """Ids of the audit jobs started from this page in this server, oldest first."""
    runs = getattr(request.app.state, "page_audit_jobs", None)
    if runs is None:
        runs = request.app.state.page_audit_jobs = []
    return runs


def _job(request: Request) -> dict[str, str] | None:
    """The newest page-started audit: {"id", "state": running | done | failed}."""
    runs = _runs(request)
    if not runs:
        return None
    future: Future | None = state(request).jobs.futures.get(runs[-1])
    if future is None:
        return None
    if not future.done():
        return {"id": runs[-1], "state": "running"}
    failed = future.cancelled() or future.exception() is not None
    return {"id": runs[-1], "state": "failed" if failed else "done"}


@router.get("/audit")
def audit_page(request: Request, who: Identity = Depends(COMPLIANCE)) -> HTMLResponse:
    from castkeep.tasks import page_views, page_views_compliance as views
    from castkeep.tasks.api_views import latest_audit_report

    app = state(request)
    with app.runtime.sessions() as session:
        report = views.audit_view(session, latest_audit_report(session, app.runtime.store))
        expiring = page_views.expiring_consents(session, days=views.EXPIRING_DAYS)
    return render(request, "audit.html", title="Audit", report=report, expiring=expiring,
                  job=_job(request), expiring_days=views.EXPIRING_DAYS)


@router.post("/audit/run")
async def run_audit(request: Request, who: Identity = Depends(COMPLIANCE)):
    from castkeep.flows.web import jobs

    await csrf_form(request)
    current = _job(request)
    if current is None or current["state"] != "running":  # one run at a time from the page
        _runs(request).append(state(request).jobs.submit("audit", jobs.audit, who.username))
    return RedirectResponse("/audit", status_code=303)


@router.get("/audit/status")
def audit_status(request: Request, who: Identity = Depends(COMPLIANCE)) -> SafeJSONResponse:
    """{"state": none | running | done | failed}: what the page polls while an audit runs."""
    job = _job(request)
    return SafeJSONResponse({"state": job["state"] if job else "none"})
