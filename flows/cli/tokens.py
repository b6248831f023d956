"""`castkeep tokens create|revoke`: API tokens (sent as `Authorization: Bearer TOKEN`)."""

from __future__ import annotations

import json

import typer

tokens_app = typer.Typer(help="API tokens: create one for a user (shown once), revoke one.",
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


@tokens_app.command("revoke")
def revoke(token_id: str = typer.Argument(..., help="Token id (from `tokens create`).")) -> None:
    """Revoke an API token (requests with it are refused from now on)."""
    from castkeep.flows.runtime import load_settings, open_runtime
    from castkeep.tasks.accounts import revoke_token

    settings = load_settings()
    with open_runtime(settings) as runtime:
        revoke_token(runtime, token_id, actor=settings.acting_user)
    typer.echo(f"token {token_id} revoked")
