"""The `castkeep` command. Each command group lives in its own module (cli_*.py)."""

from __future__ import annotations

import logging
import sys

import typer

from castkeep.errors import CastkeepError

app = typer.Typer(
    help="castkeep: consented, identity-preserving, signed marketing assets.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

_state = {"debug": False}


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks and debug logs."),
) -> None:
    _state["debug"] = debug
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING)


def _register() -> None:
    # Imported here, not at module import, so `castkeep --help` stays fast and side-effect free.
    from castkeep.flows import cli_commands

    cli_commands.register(app)


def main() -> None:
    _register()
    try:
        app()
    except CastkeepError as exc:
        if _state["debug"]:
            raise
        typer.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
