"""Accounts and API tokens for the CLI and the web API: argon2 password hashes (argon2-cffi),
random tokens stored as sha256 only, and the identity a password or token signs in as.

Plain functions over a Runtime; passwords and tokens are never logged or put in audit events.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from castkeep.db import accounts
from castkeep.db.ids import parse_id
from castkeep.db.schema import utcnow
from castkeep.errors import AccountError
from castkeep.vocab import Role

TOKEN_PREFIX = "ck_"
USERNAME_MAX = 100
_hasher = PasswordHasher()
# Verified against when a username is unknown, so a miss costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash("castkeep-no-such-user")


@dataclass(frozen=True)
class Identity:
    """Who is signed in: exactly the username (the actor of their audit events), team, roles."""

    username: str
    team: str
    roles: frozenset[str]

    def has(self, *roles: Role | str) -> bool:
        return any(str(r) in self.roles for r in roles)


def parse_roles(value: str | Iterable[str]) -> list[str]:
    """"reviewer,requester" -> ["requester", "reviewer"], or AccountError naming the roles."""
    parts = value.split(",") if isinstance(value, str) else list(value)
    roles = sorted({p.strip().lower() for p in parts if p.strip()})
    known = [r.value for r in Role]
    unknown = [r for r in roles if r not in known]
    if unknown or not roles:
        raise AccountError(f"unknown role(s) {', '.join(unknown) or '(none given)'}; "
                           f"roles are {', '.join(known)}")
    return roles


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _identity(user) -> Identity:
    return Identity(username=user.username, team=user.team, roles=frozenset(user.roles))


def add_user(runtime, username: str, roles: str | Iterable[str], *, team: str = "default",
             password: str | None, actor: str) -> dict[str, Any]:
    username = username.strip()
    if not username or len(username) > USERNAME_MAX or any(c.isspace() for c in username):
        raise AccountError(f"a username is 1-{USERNAME_MAX} characters without spaces")
    if password is not None and len(password) < 8:
        raise AccountError("a password needs at least 8 characters")
    role_list = parse_roles(roles)
    digest = hash_password(password) if password else None
    with runtime.sessions.begin() as session:
        user = accounts.add_user(session, username=username, team=team.strip() or "default",
                                 roles=role_list, password_hash=digest, actor=actor)
        return user_dict(user)


def user_dict(user) -> dict[str, Any]:
    return {"id": str(user.id), "username": user.username, "team": user.team,
            "roles": sorted(user.roles), "disabled": user.disabled,
            "created_at": user.created_at.isoformat() if user.created_at else None}


def list_users(runtime) -> list[dict[str, Any]]:
    with runtime.sessions() as session:
        return [user_dict(u) for u in accounts.list_users(session)]


def disable_user(runtime, username: str, *, actor: str) -> dict[str, Any]:
    with runtime.sessions.begin() as session:
        return user_dict(accounts.disable_user(session, username, actor=actor))


def create_token(runtime, username: str, *, label: str | None = None,
                 expires_days: float | None = None, actor: str) -> dict[str, Any]:
    """A new token for `username`: {"id", "token", "expires_at"}. The token is returned here
    only; the catalogue keeps its sha256."""
    if expires_days is not None and expires_days <= 0:
        raise AccountError("--expires takes a positive number of days")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    expires_at = utcnow() + dt.timedelta(days=expires_days) if expires_days else None
    with runtime.sessions.begin() as session:
        user = accounts.require_user(session, username)
        if user.disabled:
            raise AccountError(f"user {username!r} is disabled")
        row = accounts.add_token(session, user=user, token_sha256=token_digest(token),
                                 label=label, expires_at=expires_at, actor=actor)
        return {"id": str(row.id), "user": user.username, "label": label, "token": token,
                "expires_at": expires_at.isoformat() if expires_at else None}


def list_tokens(runtime, username: str) -> list[dict[str, Any]]:
    """A user's API tokens, oldest first: {"id", "label", "created_at", "expires_at", "revoked",
    "live"}. Never the token or its sha256."""
    now = utcnow()
    with runtime.sessions() as session:
        rows = accounts.user_tokens(session, accounts.require_user(session, username))
        return [{"id": str(t.id), "label": t.label, "created_at": t.created_at.isoformat(),
                 "expires_at": t.expires_at.isoformat() if t.expires_at else None,
                 "revoked": t.revoked,
                 "live": not t.revoked and (t.expires_at is None or t.expires_at > now)}
                for t in rows]


def revoke_token(runtime, token_id: str, *, actor: str) -> dict[str, Any]:
    tid = parse_id(token_id, "API token")
    with runtime.sessions.begin() as session:
        row = accounts.revoke_token(session, tid, actor=actor)
        return {"id": str(row.id), "revoked": row.revoked}


def identity_for_token(runtime, token: str) -> Identity | None:
    if not token:
        return None
    with runtime.sessions() as session:
        user = accounts.user_for_token(session, token_digest(token))
        return _identity(user) if user is not None else None


def identity_for_password(runtime, username: str, password: str) -> Identity | None:
    """The identity of an enabled user whose password matches, else None (same work either way)."""
    with runtime.sessions() as session:
        user = accounts.get_user(session, username)
        stored = user.password_hash if user is not None else None
        try:
            _hasher.verify(stored or _DUMMY_HASH, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return None
        if user is None or stored is None or user.disabled:
            return None
        return _identity(user)


def identity_for_user(runtime, username: str) -> Identity | None:
    """The identity of an enabled user by name."""
    with runtime.sessions() as session:
        user = accounts.get_user(session, username)
        return _identity(user) if user is not None and not user.disabled else None


def start_session(runtime, username: str, session_id: str) -> None:
    """Record a browser sign-in (an audit event on the session id, actor = the user)."""
    with runtime.sessions.begin() as session:
        accounts.start_session(session, session_id=session_id,
                               user=accounts.require_user(session, username))


def end_session(runtime, username: str, session_id: str) -> None:
    """Record a sign-out: every server process sharing the catalogue then refuses the session."""
    with runtime.sessions.begin() as session:
        accounts.end_session(session, session_id=session_id, actor=username)


def identity_for_session(runtime, username: str, session_id: str) -> Identity | None:
    """The identity of a session cookie: an enabled user whose session was not signed out."""
    with runtime.sessions() as session:
        user = accounts.get_user(session, username)
        if user is None or user.disabled or accounts.session_ended(session, session_id):
            return None
        return _identity(user)
