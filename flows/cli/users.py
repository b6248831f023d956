"""`castkeep users add|list|disable`: local accounts of the web API. The acting user of these
commands (the audit events' actor) is the OS user."""

from __future__ import annotations

import json
import sys

import typer

users_app = typer.Typer(help="Local accounts for the web API: add, list, disable.",
                        no_args_is_help=True)


@users_app.command("add")
def add(
    name: str = typer.Argument(..., help="Username (what the user signs in with)."),
    role: str = typer.Option(
        ..., "--role", help="Role(s), comma-separated: requester, reviewer, compliance, admin."
    ),
    team: str = typer.Option("default", "--team", help="Team (requesters see their team's requests)."),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password from the first line of stdin."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON only."),
) -> None:
    """Add a user. Without --password-stdin the user can only use API tokens."""
    from castkeep.flows.runtime import load_settings, open_runtime
    from castkeep.tasks.accounts import add_user

    password = sys.stdin.readline().rstrip("\r\n") if password_stdin else None
    settings = load_settings()
    with open_runtime(settings) as runtime:
        user = add_user(runtime, name, role, team=team, password=password,
                        actor=settings.acting_user)
    if as_json:
        typer.echo(json.dumps(user))
    else:
        typer.echo(f"user {user['username']} added (team {user['team']}, roles "
                   f"{', '.join(user['roles'])})")


@users_app.command("list")
def list_(as_json: bool = typer.Option(False, "--json", help="Print JSON only.")) -> None:
    """Every user with team, roles and whether disabled."""
    from castkeep.flows.runtime import open_runtime
    from castkeep.tasks.accounts import list_users

    with open_runtime() as runtime:
        users = list_users(runtime)
    if as_json:
        typer.echo(json.dumps(users))
        return
    for u in users:
        state = " (disabled)" if u["disabled"] else ""
        typer.echo(f"{u['username']:<24} {u['team']:<16} {','.join(u['roles'])}{state}")


@users_app.command("disable")
def disable(name: str = typer.Argument(..., help="Username.")) -> None:
    """Disable a user: their password and tokens stop working (the account stays for the audit log)."""
    from castkeep.flows.runtime import load_settings, open_runtime
    from castkeep.tasks.accounts import disable_user

    settings = load_settings()
    with open_runtime(settings) as runtime:
        disable_user(runtime, name, actor=settings.acting_user)
    typer.echo(f"user {name} disabled")
