"""Who is calling, and may they: `Authorization: Bearer <token>` (API tokens) or the session
cookie of a browser sign-in. Every route but sign-in declares its roles with `require(...)`;
the signed-in username is the actor of every audit event the request causes.

Session cookie: `<base64url JSON {"u": username, "s": session id, "c": csrf token, "exp": unix
time}>.<hmac>`, HttpOnly, SameSite=Lax, Secure when served over TLS. The HMAC key is shared by
every server process on the same data dir (`session_key`), so a session survives a restart and
works behind several processes. Sign-in and sign-out are audit events on the session id; a
signed-out session id is refused by every process (tasks/accounts.identity_for_session). A
state-changing request that signs in by cookie must repeat the session's CSRF token in the
`X-CSRF-Token` header. Sign-in attempts are limited per username and client address. Passwords,
tokens and the session key are never logged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import secrets
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import Request

from castkeep.errors import ConfigurationError
from castkeep.flows.settings import Settings
from castkeep.flows.web.problems import Problem
from castkeep.tasks.accounts import (Identity, end_session, identity_for_session,
                                     identity_for_token, start_session)
from castkeep.vocab import Role

logger = logging.getLogger(__name__)

SESSION_COOKIE = "castkeep_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LOGIN_WINDOW_S = 15 * 60
ANY_ROLE = tuple(Role)
SESSION_KEY_FILE = "web-session.key"
_SECRET_MIN = 32


def session_key(settings: Settings) -> bytes:
    """The key that signs session cookies: CASTKEEP_WEB__SESSION_SECRET when set (every server
    of a deployment configured alike), else <home>/keys/web-session.key, created 0600 on first
    use and then shared by every process on that data dir. Never logged."""
    secret = settings.web.session_secret.get_secret_value()
    if secret:
        if len(secret) < _SECRET_MIN:
            raise ConfigurationError(f"CASTKEEP_WEB__SESSION_SECRET needs at least {_SECRET_MIN} "
                                     "characters; generate one with `openssl rand -hex 32`")
        return hashlib.sha256(b"castkeep web session\0" + secret.encode()).digest()
    return _key_file(Path(settings.home).expanduser() / "keys" / SESSION_KEY_FILE)


def _key_file(path: Path) -> bytes:
    try:
        return _parse_key(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".web-session-")  # created 0600
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)  # atomic: a process that made it first wins, the others read it
            logger.info("created the web session key %s", path)
        except FileExistsError:
            pass
    finally:
        os.unlink(tmp)
    return _parse_key(path)


def _parse_key(path: Path) -> bytes:
    try:
        key = bytes.fromhex(path.read_text().strip())
    except ValueError:
        key = b""
    if len(key) < 16:
        raise ConfigurationError(f"the web session key {path} is not a hex key of at least 16 "
                                 "bytes; delete it (every browser signs in again) or set "
                                 "CASTKEEP_WEB__SESSION_SECRET")
    return key


@dataclass
class SessionCodec:
    """Signs and reads session cookies (default key: random, for this object only)."""

    minutes: int
    key: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)

    def issue(self, username: str) -> tuple[str, str]:
        """(cookie value, csrf token); the cookie carries a new session id ("s")."""
        csrf = secrets.token_urlsafe(24)
        body = json.dumps({"u": username, "s": str(uuid.uuid4()), "c": csrf,
                           "exp": int(time.time()) + self.minutes * 60},
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
    """At most `attempts` failed sign-ins per (username, client address) in a sliding window.

    The counts live in this process's memory: they reset when the server restarts, and N server
    processes allow up to N x `attempts` guesses per window. Sharing them (a table, or audit
    events for failures) would put an attacker-driven write on every failed attempt; the argon2
    cost per guess and the small window bound what the per-process count gives away."""

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
        found = cookie_identity(state, cookie)
        if found is None:
            raise _unauthenticated("the session has ended; sign in again")
        who, data = found
        if request.method not in SAFE_METHODS:
            sent = request.headers.get(CSRF_HEADER, "")
            if not sent or not hmac.compare_digest(sent, str(data.get("c", ""))):
                raise Problem(403, f"a signed-in change needs the session's {CSRF_HEADER} header")
        return who
    raise _unauthenticated("sign in: send an API token as `Authorization: Bearer TOKEN`")


def issue_session(state, who: Identity) -> tuple[str, str]:
    """A new signed-in session for `who`: (cookie value, csrf token); the sign-in is recorded."""
    cookie, csrf = state.sessions.issue(who.username)
    start_session(state.runtime, who.username, state.sessions.read(cookie)["s"])
    return cookie, csrf


def cookie_identity(state, cookie: str) -> tuple[Identity, dict] | None:
    """(identity, session data) of a session cookie: signed with our key, not expired, its user
    enabled, and not signed out; else None."""
    data = state.sessions.read(cookie)
    if data is None or not isinstance(data.get("s"), str) or not isinstance(data.get("u"), str):
        return None
    who = identity_for_session(state.runtime, data["u"], data["s"])
    return (who, data) if who is not None else None


def end_cookie_session(state, cookie: str | None) -> None:
    """Record the sign-out of a session cookie (no-op for one that is not a live session)."""
    data = state.sessions.read(cookie) if cookie else None
    if data and isinstance(data.get("s"), str) and isinstance(data.get("u"), str):
        end_session(state.runtime, data["u"], data["s"])


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
