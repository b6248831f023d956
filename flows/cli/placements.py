"""`castkeep asset publish ID --channel C --url U [--territory T] [--until DATE]` and
`castkeep asset placements ID`: the publication register (commands of the `asset` group)."""

from __future__ import annotations

import datetime as dt
import json

import typer


def publish(
    asset_id: str = typer.Argument(..., help="Asset id (a published asset)."),
    channel: str = typer.Option(..., "--channel", help="Where it went live: web, social, print, ..."),
    url: str = typer.Option(..., "--url", help="The page it is live at (http or https)."),
    territory: str = typer.Option(
        None, "--territory", help="ISO 3166-1 alpha-2 code (default: the asset's recorded territory)."),
    until: str = typer.Option(None, "--until", help="Last day it stays live (YYYY-MM-DD)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON only."),
) -> None:
    """Record where a published asset went live. The consent of every depicted talent is checked
    again for this channel and territory now (and until --until); refused: exit 3, withdrawn
    asset: exit 4. Recorded in the audit log with the acting user."""
    from castkeep.errors import SpecError
    from castkeep.flows.runtime import open_runtime
    from castkeep.tasks.placements import publish as record

    last_day = None
    if until is not None:
        try:
            last_day = dt.date.fromisoformat(until.strip())
        except ValueError:
            raise SpecError(f"--until {until!r} is not a date; use YYYY-MM-DD") from None
    with open_runtime() as runtime:
        placed = record(runtime, asset_id=asset_id, channel=channel, url=url, territory=territory,
                        until=last_day, actor=runtime.settings.acting_user)
    if as_json:
        typer.echo(json.dumps(placed))
        return
    state = "recorded" if placed["recorded"] else "already recorded"
    typer.echo(f"placement {placed['id']} {state}: asset {placed['asset_id']} on "
               f"{placed['channel']} in {placed['territory']} at {placed['url']}"
               + (f" until {placed['until']}" if placed["until"] else ""))


def placements(
    asset_id: str = typer.Argument(..., help="Asset id."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON only."),
) -> None:
    """Where an asset went live (the publication register), oldest first."""
    from castkeep.flows.runtime import open_runtime
    from castkeep.tasks.placements import asset_placements

    with open_runtime() as runtime:
        rows = asset_placements(runtime, asset_id)
    if as_json:
        typer.echo(json.dumps(rows))
        return
    if not rows:
        typer.echo(f"asset {asset_id} has no recorded placements")
    for p in rows:
        typer.echo(f"{p['id']}  {p['channel']:<9} {p['territory']:<5} {p['url']}"
                   + (f" (until {p['until']})" if p["until"] else ""))
