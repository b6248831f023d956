"""`castkeep status`: where data lives and whether the catalogue and object store work."""

from __future__ import annotations

import json
import sys

import typer

from castkeep.errors import CastkeepError, ConfigurationError


def collect_status() -> tuple[dict, list[CastkeepError]]:
    """The status report and the problems found (empty when healthy). Starts the bundled server
    and migrates it when that is the configuration, like every other command."""
    from castkeep.flows.runtime import build_store, load_settings

    problems: list[CastkeepError] = []
    settings = load_settings()
    report: dict = {
        "data_dir": str(settings.home),
        "database": {"mode": "external" if settings.database.url else "bundled", "healthy": False},
        "object_store": {"kind": settings.storage.kind, "healthy": False},
    }
    db = report["database"]
    try:
        db.update(_database_report(settings))
        if db["pgvector"] is None:
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
    report["prefect"] = _prefect_report(settings.home, problems)
    report["commands"] = _commands_report(settings.home)
    report["healthy"] = not problems
    return report, problems


def _database_report(settings) -> dict:  # noqa: ANN001
    """URL (password hidden), versions and schema revision. A running catalogue at the code's
    revision is read directly; otherwise the full path starts the server and migrates."""
    from castkeep.tasks.quick_reads import running_database_report

    report = running_database_report(settings.home, settings.database.url)
    if report is not None:
        return report
    from castkeep.flows.runtime import database_url
    from castkeep.tasks.catalogue_admin import database_status, redact_url

    url, _bundled = database_url(settings)
    info = database_status(url)
    return {"url": redact_url(url), "postgresql": info.postgresql, "pgvector": info.pgvector,
            "revision": info.revision, "head": info.head, "healthy": info.pgvector is not None}


def _prefect_report(home, problems: list[CastkeepError]) -> dict:  # noqa: ANN001
    """The Prefect API in use. castkeep's local server starts with the first flow run, so one
    that is not running yet is no problem; an external one (PREFECT_API_URL) that does not
    answer is."""
    from castkeep.errors import InfrastructureError
    from castkeep.flows.prefect_server import prefect_status

    prefect = prefect_status(home)
    if prefect.mode == "external" and not prefect.healthy:
        problems.append(InfrastructureError(
            f"the Prefect API at {prefect.api_url} does not answer; start it, or check "
            "PREFECT_API_URL"
        ))
    return prefect.as_dict()


def _commands_report(home) -> dict:  # noqa: ANN001
    """The command server (flows/command_server.py): informational, never a problem (without it
    flow commands run in their own process)."""
    from castkeep.flows.command_client import enabled
    from castkeep.flows.command_server import command_server_info

    info = command_server_info(home) if enabled() else None
    report = {"enabled": enabled(), "running": info is not None}
    if info:
        report.update(pid=info.get("pid"), served=info.get("served"))
    return report


def _print_text(report: dict) -> None:
    db, store = report["database"], report["object_store"]
    ok = {True: "ok", False: "FAILED"}
    typer.echo(f"data dir:      {report['data_dir']}")
    typer.echo(f"database:      {ok[db['healthy']]} ({db['mode']}) {db.get('url', '')}".rstrip())
    if "postgresql" in db:
        typer.echo(f"  PostgreSQL {db['postgresql']}, pgvector {db['pgvector']}, "
                   f"schema {db['revision']} (head {db['head']})")
    typer.echo(f"object store:  {ok[store['healthy']]} {store.get('location', store['kind'])}")
    prefect = report["prefect"]
    if prefect["healthy"]:
        typer.echo(f"prefect:       ok ({prefect['mode']}) UI {prefect['ui_url']}, "
                   f"API {prefect['api_url']}")
    elif prefect["mode"] == "local" and not prefect["running"]:
        typer.echo("prefect:       not running (local; starts with the first flow run)")
    else:
        typer.echo(f"prefect:       FAILED ({prefect['mode']}) {prefect['api_url']}")
    commands = report["commands"]
    if commands["running"]:
        typer.echo(f"commands:      served (pid {commands['pid']}, {commands['served']} so far)")
    else:
        typer.echo("commands:      " + ("not running (starts with the first flow command)"
                                        if commands["enabled"] else
                                        "each in its own process (CASTKEEP_COMMAND_SERVER=off)"))


def status(
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Show the data dir, PostgreSQL and pgvector versions, the object store, the Prefect API
    and UI, and their health.
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
