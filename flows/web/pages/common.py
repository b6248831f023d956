"""What every page shares: the Jinja2 environment (autoescape on), `render`, the signed-in
identity from the session cookie (anonymous visitors are sent to /login?next=<path>), role
checks answering a 403 page, and CSRF for forms (the session's token in a hidden `csrf_token`
field or the X-CSRF-Token header, checked on every POST)."""

from __future__ import annotations

import functools
import hmac
import http
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, quote

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse

from castkeep.flows.web.auth import CSRF_HEADER, SESSION_COOKIE, cookie_identity
from castkeep.tasks.accounts import Identity
from castkeep.vocab import Role

MAX_FORM_BYTES = 256 * 1024


class PageProblem(Exception):
    """Raise to answer with an error page (`status`, a one-line `detail` saying what to do)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class SignInRequired(Exception):
    """An anonymous visitor (or an ended session) on a page: 303 to /login?next=<path>."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


@functools.cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("castkeep.flows.web", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = _when
    env.filters["day"] = lambda value: _when(value)[:10]
    return env


def _when(value: Any) -> str:
    """An ISO timestamp or datetime as `2026-11-30 18:04 UTC` (minutes are enough on a page)."""
    import datetime as dt

    if value is None or value == "":
        return ""
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            return value
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.timezone.utc)
        return value.strftime("%Y-%m-%d %H:%M UTC")
    return str(value)


def state(request: Request):
    return request.app.state.castkeep


def sso_configured(settings: Any) -> bool:
    """Whether single sign-on is set up: an OIDC issuer in the web settings (`web.oidc`, or a
    top-level `oidc`); a build without OIDC settings has none."""
    for holder in (getattr(settings, "web", None), settings):
        oidc = getattr(holder, "oidc", None)
        if oidc is not None:
            return bool(getattr(oidc, "issuer", None))
    return False


def nav_for(who: Identity | None) -> list[tuple[str, str]]:
    """(href, label) of the header's links for the signed-in user's roles."""
    if who is None:
        return []
    links = [("/", "Dashboard")]
    if who.has(Role.REQUESTER):
        links.append(("/requests/new", "New request"))
    if who.has(Role.COMPLIANCE):
        links += [("/talents", "Talents"), ("/audit", "Audit")]
    return links


def render(request: Request, name: str, *, status_code: int = 200,
           headers: dict[str, str] | None = None, **ctx: Any) -> HTMLResponse:
    """The template `name` with the signed-in user, nav, CSRF token and `ctx`."""
    who = getattr(request.state, "identity", None)
    base = {
        "request": request,
        "identity": who,
        "nav": nav_for(who),
        "csrf_token": getattr(request.state, "csrf_token", ""),
        "current_path": request.url.path,
        "title": "",
    }
    html = environment().get_template(name).render(**{**base, **ctx})
    return HTMLResponse(html, status_code=status_code, headers=headers)


def error_page(request: Request, status: int, detail: str,
               headers: dict[str, str] | None = None) -> HTMLResponse:
    if not hasattr(request.state, "identity"):
        try:
            try_identity(request)
        except Exception:  # the catalogue may be what failed: the page still renders
            request.state.identity, request.state.csrf_token = None, ""
    return render(request, "error.html", status_code=status, headers=headers,
                  title=http.HTTPStatus(status).phrase, status=status, detail=detail)


def safe_next(value: str | None, default: str = "/") -> str:
    """A local path to return to after sign-in: one leading `/`, no `//`, no scheme, no
    backslash or control characters (anything else is the dashboard)."""
    if not value or not value.startswith("/") or value.startswith("//"):
        return default
    if "\\" in value or any(ord(c) < 32 or ord(c) == 127 for c in value):
        return default
    if ":" in value.split("?", 1)[0].split("/", 2)[1]:
        return default
    return value


def try_identity(request: Request) -> Identity | None:
    """The session cookie's identity (signed, not expired, user enabled, not signed out) or None;
    the same check as the API's (flows/web/auth.py)."""
    cookie = request.cookies.get(SESSION_COOKIE)
    found = cookie_identity(state(request), cookie) if cookie else None
    who, data = found if found else (None, {})
    request.state.identity = who
    request.state.csrf_token = str(data.get("c", "")) if who else ""
    return who


def signed_in(request: Request) -> Identity:
    """A dependency: the identity of the session cookie; anonymous visitors go to sign-in."""
    who = try_identity(request)
    if who is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInRequired(safe_next(target))
    return who


def page_role(*roles: Role) -> Callable[[Request], Identity]:
    """A dependency: the signed-in identity when it holds one of `roles`, else a 403 page."""

    def dependency(request: Request) -> Identity:
        who = signed_in(request)
        if roles and not who.has(*roles):
            raise PageProblem(403, "This page needs the role " + " or ".join(map(str, roles))
                            + ". Ask an administrator if you need it.")
        return who

    return dependency


def check_csrf(request: Request, sent: str | None) -> None:
    """403 page unless `sent` (form field or header) is the session's CSRF token."""
    expected = getattr(request.state, "csrf_token", "") or ""
    sent = sent or request.headers.get(CSRF_HEADER, "")
    if not expected or not sent or not hmac.compare_digest(sent, expected):
        raise PageProblem(403, "The form had expired or came from another site. Reload the page "
                        "and try again.")


async def read_form(request: Request) -> dict[str, list[str]]:
    """An application/x-www-form-urlencoded body as {name: [values]} (bounded in size)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise PageProblem(415, "Send the form as application/x-www-form-urlencoded.")
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise PageProblem(413, "The form is too large.")
    try:
        return parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=2000)
    except (UnicodeDecodeError, ValueError) as exc:
        raise PageProblem(400, "The form could not be read; reload the page and try again.") \
            from exc


async def csrf_form(request: Request) -> dict[str, list[str]]:
    """The posted form of a signed-in user, after its CSRF token is checked."""
    form = await read_form(request)
    check_csrf(request, (form.get("csrf_token") or [""])[0])
    return form


def first(form: dict[str, list[str]], name: str, default: str = "") -> str:
    values = form.get(name)
    return values[0] if values else default


def login_url(next_path: str) -> str:
    return "/login?next=" + quote(next_path, safe="/")
