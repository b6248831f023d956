"""`castkeep db ...`: schema migrations and the bundled server."""

from __future__ import annotations

import json

import typer

db_app = typer.Typer(help="Catalogue database: migrations and the bundled server.", no_args_is_help=True)


def _url() -> tuple[str, bool]:
    from castkeep.flows.runtime import database_url, load_settings
    from castkeep.tasks.catalogue_admin import check_database

    url, bundled = database_url(load_settings())
    check_database(url)  # one-line DatabaseError if unreachable or without pgvector
    return url, bundled


@db_app.command("upgrade")
def upgrade(
    revision: str = typer.Argument("head", help="Target revision."),
) -> None:
    """Migrate the catalogue schema to the newest revision (or REVISION)."""
    from castkeep.tasks.catalogue_admin import redact_url, upgrade_schema

    url, _ = _url()
    before, after = upgrade_schema(url, revision)
    verb = "already at" if before == after else f"upgraded from {before or 'empty'} to"
    typer.echo(f"{redact_url(url)}: {verb} {after}")


@db_app.command("current")
def current(
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show the schema revision of the catalogue and the newest one available."""
    from castkeep.tasks.catalogue_admin import schema_revision

    url, bundled = _url()
    rev = schema_revision(url)
    if as_json:
        typer.echo(json.dumps({"current": rev.current, "head": rev.head,
                               "up_to_date": rev.up_to_date, "bundled": bundled}))
    else:
        state = "up to date" if rev.up_to_date else "run `castkeep db upgrade`"
        typer.echo(f"{rev.current or 'none'} (head {rev.head}; {state})")


@db_app.command("stop")
def stop() -> None:
    """Stop the bundled PostgreSQL of this data dir (it starts again on the next command)."""
    from castkeep.flows.runtime import load_settings
    from castkeep.tasks.catalogue_admin import stop_bundled_database

    settings = load_settings()
    if settings.database.url:
        typer.echo("an external database is configured (CASTKEEP_DATABASE__URL); nothing to stop")
        return
    stopped = stop_bundled_database(settings.home)
    typer.echo("stopped the bundled PostgreSQL" if stopped else "the bundled PostgreSQL was not running")
