"""Sign-in and accounts: POST/GET/DELETE /session (browser session cookie with a CSRF token;
signing out ends the session on every server process), GET /users (admin)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from castkeep.flows.web.auth import (SESSION_COOKIE, end_cookie_session, issue_session,
                                     require)
from castkeep.flows.web.problems import Problem
from castkeep.tasks.accounts import Identity, identity_for_password, list_users
from castkeep.vocab import Role

router = APIRouter(tags=["session"])


class Login(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=100)
    password: str = Field(min_length=1, max_length=1024, repr=False)


def _me(who: Identity) -> dict[str, Any]:
    return {"username": who.username, "team": who.team, "roles": sorted(who.roles)}


@router.post("/session")
def sign_in(body: Login, request: Request, response: Response) -> dict[str, Any]:
    """Sign in with username and password: sets the session cookie and answers the CSRF token
    to send as X-CSRF-Token with every change. Limited per username and client address."""
    state = request.app.state.castkeep
    key = (body.username, request.client.host if request.client else "")
    wait = state.limiter.retry_after(key)
    if wait:
        raise Problem(429, "too many failed sign-ins; try again later",
                      headers={"Retry-After": str(wait)})
    who = identity_for_password(state.runtime, body.username, body.password)
    if who is None:
        state.limiter.failed(key)
        raise Problem(401, "wrong username or password, or the account is disabled")
    state.limiter.succeeded(key)
    cookie, csrf = issue_session(state, who)
    response.set_cookie(SESSION_COOKIE, cookie, max_age=state.sessions.minutes * 60,
                        httponly=True, samesite="lax", secure=state.tls, path="/")
    return {**_me(who), "csrf_token": csrf}


@router.get("/session")
def whoami(who: Identity = Depends(require())) -> dict[str, Any]:
    """Who is signed in (any role)."""
    return _me(who)


@router.delete("/session", status_code=204)
def sign_out(request: Request, who: Identity = Depends(require())) -> Response:
    """End the browser session: recorded, so the cookie is refused from now on even if kept
    (a token caller has no session: nothing to end)."""
    if request.headers.get("authorization") is None:  # signed in by cookie
        end_cookie_session(request.app.state.castkeep, request.cookies.get(SESSION_COOKIE))
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax",
                           secure=request.app.state.castkeep.tls)
    return response


@router.get("/users")
def users(request: Request, who: Identity = Depends(require(Role.ADMIN))) -> list[dict[str, Any]]:
    """Every local account (admin)."""
    return list_users(request.app.state.castkeep.runtime)
