"""Accounts of single sign-on users: the identity provider vouches for the username, roles and
team; each sign-in writes them onto the castkeep account (created at first sign-in when allowed)
so that `require` and the audit log see what the provider says now.

A disabled account stays refused whatever the provider says; an SSO account has no password,
so it cannot sign in with one.
"""

from __future__ import annotations

from castkeep.db import accounts
from castkeep.db.audit_log import append_event
from castkeep.errors import SignInRefused
from castkeep.tasks.accounts import USERNAME_MAX, Identity, parse_roles

SSO_ACTOR = "sso"


def check_username(username: object) -> str:
    """A provider's username claim as a castkeep username, or SignInRefused saying why not."""
    if (not isinstance(username, str) or not username or len(username) > USERNAME_MAX
            or any(c.isspace() or not c.isprintable() for c in username)):
        raise SignInRefused(f"the identity provider's username is not a castkeep username "
                            f"(1-{USERNAME_MAX} printable characters without spaces)")
    return username


def sign_in_provider_user(runtime, username: str, roles: list[str], *, team: str | None,
                          create: bool) -> Identity:
    """The identity `username` signs in as, its roles (and team, when given) refreshed from the
    provider; a role or team change is an audit event. SignInRefused: no role, account disabled,
    or unknown while `create` is off."""
    username = check_username(username)
    if not roles:
        raise SignInRefused(f"{username} holds no castkeep role at the identity provider; ask "
                            "an administrator to grant one")
    role_list = parse_roles(roles)
    with runtime.sessions.begin() as session:
        user = accounts.get_user(session, username)
        if user is None:
            if not create:
                raise SignInRefused(f"there is no castkeep account named {username}; an "
                                    "administrator adds it with `castkeep users add`")
            user = accounts.add_user(session, username=username, team=team or "default",
                                     roles=role_list, password_hash=None, actor=SSO_ACTOR)
        elif user.disabled:
            raise SignInRefused(f"the castkeep account {username} is disabled")
        else:
            changes = {}
            if sorted(user.roles) != role_list:
                changes["roles"] = role_list
            if team and user.team != team:
                changes["team"] = team
            if changes:
                for name, value in changes.items():
                    setattr(user, name, value)
                append_event(session, actor=SSO_ACTOR, kind="user.updated",
                             entity_type="app_user", entity_id=str(user.id), payload=changes)
        return Identity(username=user.username, team=user.team, roles=frozenset(user.roles))
