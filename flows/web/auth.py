"""Who is calling, and may they: `Authorization: Bearer <token>` (API tokens) or the session
cookie of a browser sign-in. Every route but sign-in declares its roles with `require(...)`;
the signed-in username is the actor of every audit event the request causes.

Session cookie: `<base64url JSON {"u": username, "c": csrf token, "exp": unix time}>.<hmac>`,
HttpOnly, SameSite=Lax, Secure when served over TLS. A state-changing request that signs in by
cookie must repeat the session's CSRF token in the `X-CSRF-Token` header. Sign-in attempts are
limited per username and client address. Passwords and tokens are never logged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from fastapi import Request

from castkeep.flows.web.problems import Problem
from castkeep.tasks.accounts import Identity, identity_for_token, identity_for_user
from castkeep.vocab import Role

SESSION_COOKIE = "castkeep_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LOGIN_WINDOW_S = 15 * 60
ANY_ROLE = tuple(Role)


@dataclass
class SessionCodec:
    """Signs and reads session cookies with a key held by this server process."""

    minutes: int
    key: bytes = field(default_factory=lambda: secrets.token_bytes(32))

    def issue(self, username: str) -> tuple[str, str]:
        """(cookie value, csrf token)."""
        csrf = secrets.token_urlsafe(24)
        body = json.dumps({"u": username, "c": csrf, "exp": int(time.time()) + self.minutes * 60},
                          separators=(",", ":")).encode()
        encoded = base64.urlsafe_b64encode(body).decode().rstrip("=")
        return f"{encoded}.{self._mac(encoded)}", csrf

    def read(self, value: str) -> dict | None:
        encoded, _, mac = value.partition(".")
        if not encoded or not hmac.compare_digest(mac, self._mac(encoded)):
            return None
        try:
            data = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
        except ValueError:
            return None
        if not isinstance(data, dict) or int(data.get("exp", 0)) < time.time():
            return None
        return data

    def _mac(self, encoded: str) -> str:
        return hmac.new(self.key, encoded.encode(), hashlib.sha256).hexdigest()


class LoginLimiter:
    """At most `attempts` failed sign-ins per (username, client address) in a sliding window."""

    def __init__(self, attempts: int, window_s: float = LOGIN_WINDOW_S) -> None:
        self.attempts = attempts
        self.window_s = window_s
        self._failures: dict[tuple[str, str], list[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, key: tuple[str, str]) -> int:
        """Seconds until the next attempt is allowed (0: now)."""
        now = time.monotonic()
        with self._lock:
            recent = [t for t in self._failures.get(key, []) if now - t < self.window_s]
            self._failures[key] = recent
            if len(recent) < self.attempts:
                return 0
            return int(self.window_s - (now - recent[0])) + 1

    def failed(self, key: tuple[str, str]) -> None:
        with self._lock:
            self._failures.setdefault(key, []).append(time.monotonic())

    def succeeded(self, key: tuple[str, str]) -> None:
        with self._lock:
            self._failures.pop(key, None)


def _unauthenticated(detail: str) -> Problem:
    return Problem(401, detail, headers={"WWW-Authenticate": 'Bearer realm="castkeep"'})


def current_identity(request: Request) -> Identity:
    """The caller's identity, or 401. Cookie-signed state changes also need the CSRF header."""
    state = request.app.state.castkeep
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _unauthenticated("send an API token as `Authorization: Bearer TOKEN`")
        who = identity_for_token(state.runtime, token.strip())
        if who is None:
            raise _unauthenticated("the API token is unknown, revoked or expired, or its user "
                                   "is disabled")
        return who
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        data = state.sessions.read(cookie)
        who = identity_for_user(state.runtime, str(data.get("u"))) if data else None
        if who is None:
            raise _unauthenticated("the session has ended; sign in again")
        if request.method not in SAFE_METHODS:
            sent = request.headers.get(CSRF_HEADER, "")
            if not sent or not hmac.compare_digest(sent, str(data.get("c", ""))):
                raise Problem(403, f"a signed-in change needs the session's {CSRF_HEADER} header")
        return who
    raise _unauthenticated("sign in: send an API token as `Authorization: Bearer TOKEN`")


def require(*roles: Role) -> Callable[[Request], Identity]:
    """A dependency: the caller's identity when it holds one of `roles`, else 401/403."""
    allowed = tuple(roles) or ANY_ROLE

    def dependency(request: Request) -> Identity:
        who = current_identity(request)
        if not who.has(*allowed):
            raise Problem(403, "this needs the role " + " or ".join(str(r) for r in allowed))
        return who

    dependency.roles = allowed  # type: ignore[attr-defined]
    return dependency
