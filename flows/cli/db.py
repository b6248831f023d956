"""`castkeep db ...`: schema migrations and the bundled server."""

from __future__ import annotations

import json

import typer

db_app = typer.Typer(help="Catalogue database: migrations and the bundled server.", no_args_is_help=True)


def _url() -> tuple[str, bool]:
    from castkeep.db.engine import make_engine
    from castkeep.flows.runtime import database_url, load_settings

    url, bundled = database_url(load_settings())
    make_engine(url).dispose()  # one-line DatabaseError if unreachable or without pgvector
    return url, bundled


@db_app.command("upgrade")
def upgrade(
    revision: str = typer.Argument("head", help="Target revision."),
) -> None:
    """Migrate the catalogue schema to the newest revision (or REVISION)."""
    from castkeep.db import migrate
    from castkeep.db.engine import redact

    url, _ = _url()
    before = migrate.current(url)
    after = migrate.upgrade(url, revision)
    verb = "already at" if before == after else f"upgraded from {before or 'empty'} to"
    typer.echo(f"{redact(url)}: {verb} {after}")


@db_app.command("current")
def current(
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show the schema revision of the catalogue and the newest one available."""
    from castkeep.db import migrate

    url, bundled = _url()
    cur, head = migrate.current(url), migrate.head()
    if as_json:
        typer.echo(json.dumps({"current": cur, "head": head, "up_to_date": cur == head,
                               "bundled": bundled}))
    else:
        state = "up to date" if cur == head else "run `castkeep db upgrade`"
        typer.echo(f"{cur or 'none'} (head {head}; {state})")


@db_app.command("stop")
def stop() -> None:
    """Stop the bundled PostgreSQL of this data dir (it starts again on the next command)."""
    from castkeep.db.server import stop_bundled_server
    from castkeep.flows.runtime import load_settings

    settings = load_settings()
    if settings.database.url:
        typer.echo("an external database is configured (CASTKEEP_DATABASE__URL); nothing to stop")
        return
    stopped = stop_bundled_server(settings.home)
    typer.echo("stopped the bundled PostgreSQL" if stopped else "the bundled PostgreSQL was not running")
