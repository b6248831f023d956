"""`castkeep stop`: stop the servers castkeep runs in its data dir."""

from __future__ import annotations

import json

import typer


def stop(
    as_json: bool = typer.Option(False, "--json", help='Print only JSON: {"commands": bool, '
                                 '"prefect": bool, "database": bool} (true: it was running and '
                                 'is stopped).'),
) -> None:
    """Stop the command server, the local Prefect server and the bundled PostgreSQL of this data
    dir (each starts again on the next command that needs it; commands running on the command
    server finish first). Servers configured from outside (PREFECT_API_URL,
    CASTKEEP_DATABASE__URL) are left alone."""
    from castkeep.flows.command_server import stop_command_server
    from castkeep.flows.prefect_server import stop_server
    from castkeep.flows.runtime import load_settings
    from castkeep.tasks.catalogue_admin import stop_bundled_database

    settings = load_settings()
    stopped = {
        "commands": stop_command_server(settings.home),
        "prefect": stop_server(settings.home),
        "database": False if settings.database.url else stop_bundled_database(settings.home),
    }
    if as_json:
        typer.echo(json.dumps(stopped))
        return
    names = {"commands": "the command server", "prefect": "the local Prefect server", "database": "the bundled PostgreSQL"}
    for key, name in names.items():
        typer.echo(f"stopped {name}" if stopped[key] else f"{name} was not running")
