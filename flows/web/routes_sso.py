"""Single sign-on through OpenID Connect (settings `web.oidc`; flows/web/oidc.py is the client):
GET /sso/login sends the browser to the provider (code flow, PKCE S256), GET /sso/callback
completes it and sets the same session cookie as a password sign-in, then redirects to the page
the sign-in began from. Both are public; with SSO not configured they answer 404.

Between the two, the state, nonce and PKCE verifier wait in a short-lived HttpOnly cookie signed
with the session key (so any server process of the deployment can complete the sign-in). The
callback is refused (problem details, 400/401/403, never a traceback) for a missing or tampered
state, a provider error, a bad code or ID token, and a person castkeep will not let in.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import threading
import time

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse

from castkeep.flows.web.auth import SESSION_COOKIE, issue_session
from castkeep.flows.web.oidc import OidcClient, OidcConfig, Pending, error_code
from castkeep.flows.web.problems import Problem
from castkeep.tasks.sso_accounts import SignInRefused, sign_in_provider_user

logger = logging.getLogger(__name__)

router = APIRouter(tags=["sso"])

PENDING_COOKIE = "castkeep_sso"
PENDING_PATH = "/sso"
PENDING_S = 10 * 60
_lock = threading.Lock()


def _client(request: Request) -> OidcClient:
    """This app's OIDC client (built once), or 404 when single sign-on is not configured."""
    app_state = request.app.state
    with _lock:
        client = getattr(app_state, "castkeep_oidc", None)
        if client is None:
            config = OidcConfig.from_settings(app_state.castkeep.settings.web.oidc)
            client = OidcClient(config) if config is not None else False
            app_state.castkeep_oidc = client
    if client is False:
        raise Problem(404, "single sign-on is not configured on this server")
    return client


def safe_next(value: str | None) -> str:
    """A path on this server to return to after sign-in; anything else (another host,
    a scheme, `//host`, control characters) becomes `/`."""
    if (not value or not value.startswith("/") or value.startswith(("//", "/\\"))
            or any(not c.isprintable() or c == "\\" for c in value)):
        return "/"
    return value


def _redirect_uri(request: Request, client: OidcClient) -> str:
    return client.config.redirect_uri or str(request.url_for("sso_callback"))


# --- the pending sign-in cookie ------------------------------------------------------------------

def _mac(key: bytes, encoded: str) -> str:
    return hmac.new(key, b"castkeep sso\0" + encoded.encode(), hashlib.sha256).hexdigest()


def seal(key: bytes, pending: Pending, now: float | None = None) -> str:
    body = json.dumps({"st": pending.state, "n": pending.nonce, "v": pending.verifier,
                       "nx": pending.next_path, "exp": int((now or time.time()) + PENDING_S)},
                      separators=(",", ":")).encode()
    encoded = base64.urlsafe_b64encode(body).decode().rstrip("=")
    return f"{encoded}.{_mac(key, encoded)}"


def unseal(key: bytes, value: str | None) -> Pending | None:
    """The pending sign-in of a cookie signed with `key` and not expired, else None."""
    encoded, _, mac = (value or "").partition(".")
    if not encoded or not hmac.compare_digest(mac, _mac(key, encoded)):
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
        if int(data["exp"]) < time.time():
            return None
        return Pending(state=str(data["st"]), nonce=str(data["n"]), verifier=str(data["v"]),
                       next_path=safe_next(str(data["nx"])))
    except (ValueError, KeyError, TypeError):
        return None


# --- routes --------------------------------------------------------------------------------------

@router.get("/sso/login", name="sso_login")
def sso_login(request: Request,
              next_path: str = Query("/", alias="next", max_length=2000)) -> RedirectResponse:
    """Send the browser to the identity provider; `next`: the page to return to."""
    client = _client(request)
    state = request.app.state.castkeep
    url, pending = client.authorization_url(_redirect_uri(request, client), safe_next(next_path))
    response = RedirectResponse(url, status_code=303)
    response.set_cookie(PENDING_COOKIE, seal(state.sessions.key, pending), max_age=PENDING_S,
                        httponly=True, samesite="lax", secure=state.tls, path=PENDING_PATH)
    return response


@router.get("/sso/callback", name="sso_callback")
def sso_callback(request: Request,
                 state_param: str | None = Query(None, alias="state", max_length=512),
                 code: str | None = Query(None, max_length=4096),
                 error: str | None = Query(None, max_length=256),
                 iss: str | None = Query(None, max_length=2000)) -> RedirectResponse:
    """Complete a sign-in the provider sends back: state, code, ID token and person checked."""
    client = _client(request)
    state = request.app.state.castkeep
    pending = unseal(state.sessions.key, request.cookies.get(PENDING_COOKIE))
    if pending is None:
        raise Problem(400, "this sign-in expired or began in another browser; start it again "
                      "from the sign-in page")
    if not state_param or not hmac.compare_digest(state_param.encode(), pending.state.encode()):
        raise Problem(400, "the sign-in's state does not match the one this browser started; "
                      "start it again from the sign-in page")
    if iss is not None and iss != client.config.issuer:  # RFC 9207: a mixed-up provider
        raise Problem(400, "the sign-in answer comes from another identity provider")
    if error is not None:
        raise Problem(401, f"the identity provider refused the sign-in ({error_code(error)})",
                      title="Single sign-on failed")
    if not code:
        raise Problem(400, "the identity provider sent no authorization code")
    claims = client.claims(pending, code, _redirect_uri(request, client))
    try:
        who = sign_in_provider_user(state.runtime, client.username(claims), client.roles(claims),
                                    team=client.team(claims), create=client.config.create_users)
    except SignInRefused as exc:
        logger.info("single sign-on refused: %s", exc)
        raise Problem(403, str(exc), title="Single sign-on refused") from None
    cookie, _csrf = issue_session(state, who)
    logger.info("single sign-on of %s with roles %s", who.username, ",".join(sorted(who.roles)))
    response = RedirectResponse(pending.next_path, status_code=303)
    response.set_cookie(SESSION_COOKIE, cookie, max_age=state.sessions.minutes * 60,
                        httponly=True, samesite="lax", secure=state.tls, path="/")
    response.delete_cookie(PENDING_COOKIE, path=PENDING_PATH, httponly=True, samesite="lax",
                           secure=state.tls)
    return response
