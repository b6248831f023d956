"""`castkeep takedowns list [--open] [--json]` and `castkeep takedowns done ID [--note TEXT]`:
the takedown tasks that revocation and expiry open for every placement of a quarantined asset."""

from __future__ import annotations

import json

import typer

takedowns_app = typer.Typer(
    help="Takedown tasks: placements of quarantined assets that must come down.",
    no_args_is_help=True,
)


@takedowns_app.command("list")
def list_(
    open_only: bool = typer.Option(False, "--open", help="Only takedowns not yet done."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON only."),
) -> None:
    """Every takedown task, oldest first."""
    from castkeep.flows.runtime import open_runtime
    from castkeep.tasks.takedowns import list_takedowns

    with open_runtime() as runtime:
        rows = list_takedowns(runtime, open_only=open_only)
    if as_json:
        typer.echo(json.dumps(rows))
        return
    if not rows:
        typer.echo("no open takedowns" if open_only else "no takedowns")
    for t in rows:
        typer.echo(f"{t['id']}  {t['status']:<4}  opened {t['opened_at'][:16]}Z  asset "
                   f"{t['asset_id']} on {t['channel']} at {t['url']}")


@takedowns_app.command("done")
def done(
    takedown_id: str = typer.Argument(..., help="Takedown id (`castkeep takedowns list`)."),
    note: str = typer.Option(None, "--note", help="What was done (kept with the takedown)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON only."),
) -> None:
    """Record a takedown done (the acting user and the time are recorded in the audit log)."""
    from castkeep.flows.runtime import open_runtime
    from castkeep.tasks.takedowns import complete

    with open_runtime() as runtime:
        row = complete(runtime, takedown_id=takedown_id, note=note,
                       actor=runtime.settings.acting_user)
    if as_json:
        typer.echo(json.dumps(row))
        return
    typer.echo(f"takedown {row['id']} done: asset {row['asset_id']} at {row['url']}")
