"""`castkeep status`: where data lives and whether the catalogue and object store work."""

from __future__ import annotations

import json
import sys

import typer

from castkeep.errors import CastkeepError, ConfigurationError


def collect_status() -> tuple[dict, list[CastkeepError]]:
    """The status report and the problems found (empty when healthy). Starts the bundled server
    and migrates it when that is the configuration, like every other command."""
    from castkeep.flows.runtime import build_store, database_url, load_settings
    from castkeep.tasks.catalogue_admin import database_status, redact_url

    problems: list[CastkeepError] = []
    settings = load_settings()
    report: dict = {
        "data_dir": str(settings.home),
        "database": {"mode": "external" if settings.database.url else "bundled", "healthy": False},
        "object_store": {"kind": settings.storage.kind, "healthy": False},
    }
    db = report["database"]
    try:
        url, _bundled = database_url(settings)
        db["url"] = redact_url(url)
        info = database_status(url)
        db.update(
            postgresql=info.postgresql,
            pgvector=info.pgvector,
            revision=info.revision,
            head=info.head,
            healthy=info.pgvector is not None,
        )
        if info.pgvector is None:
            problems.append(
                ConfigurationError("the vector extension is not created; run `castkeep db upgrade`")
            )
    except CastkeepError as exc:
        db["error"] = str(exc)
        problems.append(exc)

    store_report = report["object_store"]
    try:
        store = build_store(settings)
        store_report["location"] = store.check()
        store_report["healthy"] = True
    except CastkeepError as exc:
        store_report["error"] = str(exc)
        problems.append(exc)
    report["healthy"] = not problems
    return report, problems


def _print_text(report: dict) -> None:
    db, store = report["database"], report["object_store"]
    ok = {True: "ok", False: "FAILED"}
    typer.echo(f"data dir:      {report['data_dir']}")
    typer.echo(f"database:      {ok[db['healthy']]} ({db['mode']}) {db.get('url', '')}".rstrip())
    if "postgresql" in db:
        typer.echo(f"  PostgreSQL {db['postgresql']}, pgvector {db['pgvector']}, "
                   f"schema {db['revision']} (head {db['head']})")
    typer.echo(f"object store:  {ok[store['healthy']]} {store.get('location', store['kind'])}")


def status(
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Show the data dir, PostgreSQL and pgvector versions, the object store, and their health.
    Exit code 0 when healthy, 5 when a service is unavailable, 2 when a setting is wrong."""
    report, problems = collect_status()
    if as_json:
        typer.echo(json.dumps(report, indent=2))
    else:
        _print_text(report)
    for problem in problems:
        typer.echo(f"error: {problem}", err=True)
    if problems:
        sys.exit(max(p.exit_code for p in problems))
