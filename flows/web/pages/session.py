"""Sign-in and sign-out pages: /login (username and password, the same limiter, account check
and session cookie as POST /api/v1/session; "Sign in with SSO" when OIDC is configured) and
/logout (a confirm button; POST with the CSRF token clears the cookie)."""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from castkeep.flows.web.auth import SESSION_COOKIE, end_cookie_session, issue_session
from castkeep.flows.web.pages.common import (PageProblem, csrf_form, first, read_form, render,
                                             safe_next, signed_in, sso_configured, state,
                                             try_identity)
from castkeep.tasks.accounts import Identity, identity_for_password

router = APIRouter(include_in_schema=False)


def _login_page(request: Request, next_path: str, *, username: str = "", error: str = "",
                status_code: int = 200, headers: dict[str, str] | None = None) -> HTMLResponse:
    return render(request, "login.html", status_code=status_code, headers=headers,
                  title="Sign in", next_path=next_path, username=username, error=error,
                  sso=sso_configured(state(request).settings))


@router.get("/login")
def login_form(request: Request, next: str = "/") -> HTMLResponse:
    target = safe_next(next)
    if try_identity(request) is not None:
        return RedirectResponse(target, status_code=303)
    return _login_page(request, target)


@router.post("/login")
async def login(request: Request) -> HTMLResponse:
    # Sign-in has no session to hold a CSRF token yet: a browser's Origin must be this site,
    # so another site cannot sign a visitor in to an account of its choosing.
    origin = request.headers.get("origin")
    if origin is not None and urlsplit(origin).netloc != request.headers.get("host", ""):
        raise PageProblem(403, "Sign in from this site's own sign-in page.")
    form = await read_form(request)
    username = first(form, "username").strip()[:100]
    password = first(form, "password")[:1024]
    target = safe_next(first(form, "next"))
    if not username or not password:
        return _login_page(request, target, username=username, status_code=400,
                           error="Enter your username and password.")
    app = state(request)
    key = (username, request.client.host if request.client else "")
    wait = app.limiter.retry_after(key)
    if wait:
        minutes = max(1, round(wait / 60))
        return _login_page(request, target, username=username, status_code=429,
                           headers={"Retry-After": str(wait)},
                           error=f"Too many failed sign-ins. Try again in about {minutes} "
                                 f"minute{'s' if minutes != 1 else ''}.")
    who = identity_for_password(app.runtime, username, password)
    if who is None:
        app.limiter.failed(key)
        return _login_page(request, target, username=username, status_code=401,
                           error="Wrong username or password, or the account is disabled.")
    app.limiter.succeeded(key)
    cookie, _csrf = issue_session(app, who)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(SESSION_COOKIE, cookie, max_age=app.sessions.minutes * 60,
                        httponly=True, samesite="lax", secure=app.tls, path="/")
    return response


@router.get("/logout")
def logout_confirm(request: Request, who: Identity = Depends(signed_in)) -> HTMLResponse:
    return render(request, "logout.html", title="Sign out")


@router.post("/logout")
async def logout(request: Request, who: Identity = Depends(signed_in)) -> RedirectResponse:
    await csrf_form(request)
    end_cookie_session(state(request), request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax",
                           secure=state(request).tls)
    return response
