"""`castkeep tokens create|list|revoke`: API tokens (sent as `Authorization: Bearer TOKEN`)."""

from __future__ import annotations

import json

import typer

tokens_app = typer.Typer(help="API tokens: create one for a user (shown once), list a user's, "
                         "revoke one.",
                         no_args_is_help=True)


@tokens_app.command("create")
def create(
    user: str = typer.Argument(..., help="Username the token acts as (with that user's roles)."),
    label: str | None = typer.Option(None, "--label", help="What the token is for."),
    expires: float | None = typer.Option(None, "--expires", help="Days until it expires."),
    as_json: bool = typer.Option(False, "--json", help='Print JSON only: {"id", "token", ...}.'),
) -> None:
    """Create an API token. It is shown once; only its sha256 is stored."""
    from castkeep.flows.runtime import load_settings, open_runtime
    from castkeep.tasks.accounts import create_token

    settings = load_settings()
    with open_runtime(settings) as runtime:
        info = create_token(runtime, user, label=label, expires_days=expires,
                            actor=settings.acting_user)
    if as_json:
        typer.echo(json.dumps(info))
        return
    typer.echo(f"token {info['id']} for {info['user']}"
               + (f", expires {info['expires_at']}" if info["expires_at"] else ""))
    typer.echo(info["token"])


@tokens_app.command("list")
def list_(
    user: str = typer.Argument(..., help="Username (see `castkeep users list`)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON only."),
) -> None:
    """A user's API tokens: id, label, created, expiry and whether still live (never the token
    itself)."""
    from castkeep.flows.runtime import open_runtime
    from castkeep.tasks.accounts import list_tokens

    with open_runtime() as runtime:
        tokens = list_tokens(runtime, user)
    if as_json:
        typer.echo(json.dumps(tokens))
        return
    if not tokens:
        typer.echo(f"no API tokens for {user}; `castkeep tokens create {user}` makes one")
        return
    for t in tokens:
        state = "live" if t["live"] else "revoked" if t["revoked"] else "expired"
        expiry = f"expires {t['expires_at'][:19]}" if t["expires_at"] else "no expiry"
        typer.echo(f"{t['id']}  {state:<7}  created {t['created_at'][:19]}  {expiry}  "
                   f"{t['label'] or ''}".rstrip())


@tokens_app.command("revoke")
def revoke(token_id: str = typer.Argument(..., help="Token id (from `tokens create` or `tokens "
                                                    "list USER`).")) -> None:
    """Revoke an API token (requests with it are refused from now on)."""
    from castkeep.flows.runtime import load_settings, open_runtime
    from castkeep.tasks.accounts import revoke_token

    settings = load_settings()
    with open_runtime(settings) as runtime:
        revoke_token(runtime, token_id, actor=settings.acting_user)
    typer.echo(f"token {token_id} revoked")
