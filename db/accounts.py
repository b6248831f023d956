"""Local accounts and API tokens: rows in, rows out. Hashing of passwords and tokens happens in
the caller (tasks/accounts.py); this module stores hashes only. Every change appends an audit
event naming the actor (ids only: a username is the actor, never a payload field)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from castkeep.db.audit_log import append_event
from castkeep.db.schema import ApiToken, AppUser, AuditEvent, utcnow
from castkeep.errors import AccountError


def get_user(session: Session, username: str) -> AppUser | None:
    return session.scalars(select(AppUser).where(AppUser.username == username)).one_or_none()


def require_user(session: Session, username: str) -> AppUser:
    user = get_user(session, username)
    if user is None:
        raise AccountError(f"no user named {username!r}; see `castkeep users list`")
    return user


def add_user(session: Session, *, username: str, team: str, roles: Sequence[str],
             password_hash: str | None, actor: str) -> AppUser:
    if get_user(session, username) is not None:
        raise AccountError(f"a user named {username!r} exists already")
    user = AppUser(username=username, team=team, roles=list(roles), password_hash=password_hash,
                   disabled=False)
    session.add(user)
    session.flush()
    append_event(session, actor=actor, kind="user.created", entity_type="app_user",
                 entity_id=str(user.id), payload={"roles": sorted(roles), "team": team})
    return user


def list_users(session: Session) -> list[AppUser]:
    return list(session.scalars(select(AppUser).order_by(AppUser.username)))


def disable_user(session: Session, username: str, *, actor: str) -> AppUser:
    user = require_user(session, username)
    if not user.disabled:
        user.disabled = True
        append_event(session, actor=actor, kind="user.disabled", entity_type="app_user",
                     entity_id=str(user.id))
    return user


def add_token(session: Session, *, user: AppUser, token_sha256: str, label: str | None,
              expires_at: dt.datetime | None, actor: str) -> ApiToken:
    token = ApiToken(user_id=user.id, token_sha256=token_sha256, label=label,
                     expires_at=expires_at, revoked=False)
    session.add(token)
    session.flush()
    append_event(session, actor=actor, kind="token.created", entity_type="api_token",
                 entity_id=str(token.id),
                 payload={"user_id": str(user.id),
                          "expires_at": expires_at.isoformat() if expires_at else None})
    return token


def revoke_token(session: Session, token_id: uuid.UUID, *, actor: str) -> ApiToken:
    token = session.get(ApiToken, token_id, with_for_update=True)
    if token is None:
        raise AccountError(f"no API token with id {token_id}")
    if not token.revoked:
        token.revoked = True
        append_event(session, actor=actor, kind="token.revoked", entity_type="api_token",
                     entity_id=str(token.id), payload={"user_id": str(token.user_id)})
    return token


def user_for_token(session: Session, token_sha256: str, *,
                   now: dt.datetime | None = None) -> AppUser | None:
    """The enabled user a live (not revoked, not expired) token acts as, else None."""
    now = now or utcnow()
    row = session.execute(
        select(ApiToken, AppUser)
        .join(AppUser, AppUser.id == ApiToken.user_id)
        .where(ApiToken.token_sha256 == token_sha256)
    ).one_or_none()
    if row is None:
        return None
    token, user = row
    if token.revoked or user.disabled or (token.expires_at is not None and token.expires_at <= now):
        return None
    return user


def user_tokens(session: Session, user: AppUser) -> list[ApiToken]:
    """A user's tokens, oldest first (ties by id, so the order is stable)."""
    return list(session.scalars(select(ApiToken).where(ApiToken.user_id == user.id)
                                .order_by(ApiToken.created_at, ApiToken.id)))


# --- browser sessions ---------------------------------------------------------------------------
# A signed-in browser session is an id inside the signed cookie. Sign-in and sign-out are audit
# events on that id (entity_type "web_session"): the log is where ended sessions are recorded, so
# every server process sharing the catalogue refuses a signed-out cookie without a table of its own.
SESSION_ENTITY = "web_session"
SESSION_STARTED = "session.started"
SESSION_ENDED = "session.ended"


def start_session(session: Session, *, session_id: str, user: AppUser) -> None:
    append_event(session, actor=user.username, kind=SESSION_STARTED, entity_type=SESSION_ENTITY,
                 entity_id=session_id, payload={"user_id": str(user.id)})


def end_session(session: Session, *, session_id: str, actor: str) -> None:
    if not session_ended(session, session_id):
        append_event(session, actor=actor, kind=SESSION_ENDED, entity_type=SESSION_ENTITY,
                     entity_id=session_id)


def session_ended(session: Session, session_id: str) -> bool:
    """Whether the session was signed out (one indexed lookup on the audit log's entity id)."""
    return session.scalar(
        select(AuditEvent.seq).where(AuditEvent.entity_id == session_id,
                                     AuditEvent.kind == SESSION_ENDED).limit(1)
    ) is not None
