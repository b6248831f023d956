"""The `castkeep` command. Each command group lives in its own module (cli_*.py).

A command's own output is its result and, on failure, one `error:` line with an exit code
(0 ok, 1 partly done, 2 bad input or configuration, 3 refused by consent or licence, 4 withdrawn,
5 infrastructure unavailable). The orchestrator's console logs (Prefect's run logs, tracebacks of
failed runs, its temporary API server's messages) still reach the Prefect API, not this terminal;
`--debug` shows them, and tracebacks, here too.
"""

from __future__ import annotations

import logging
import os
import sys

import typer

from castkeep.errors import CastkeepError

app = typer.Typer(
    help="castkeep: consented, identity-preserving, signed marketing assets.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

_state = {"debug": False}

# Top-level loggers of the orchestration stack, kept off the console unless --debug.
ORCHESTRATION_LOGGERS = frozenset({"prefect", "docket", "uvicorn", "fastapi", "httpx", "httpcore"})
# Commands that run on (a scheduler, a server): their orchestration logs are their output.
LONG_RUNNING = frozenset({"serve", "web"})


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


class _CommandOutputOnly(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.name.partition(".")[0] not in ORCHESTRATION_LOGGERS


def quiet_orchestration() -> None:
    """Keep orchestration logs off this process's console and off that of the temporary Prefect
    API server it may start (a child process writing to the same stderr). Explicit PREFECT_
    settings in the environment win."""
    logging.basicConfig(level=logging.WARNING)
    for handler in logging.getLogger().handlers:
        handler.addFilter(_CommandOutputOnly())
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


def unexpected_infrastructure_error(exc: BaseException) -> CastkeepError | None:
    """A database driver error that reached the command without being turned into a castkeep
    error (e.g. the server failed mid-statement), as one line naming what to check."""
    from sqlalchemy.exc import InterfaceError, OperationalError

    from castkeep.errors import DatabaseError

    if isinstance(exc, (OperationalError, InterfaceError)):
        orig = getattr(exc, "orig", None) or exc
        reason = next((ln.strip() for ln in str(orig).splitlines() if ln.strip()), "")
        return DatabaseError(
            f"the catalogue database failed: {reason or type(orig).__name__}; check that "
            "PostgreSQL is running (`castkeep status`) and CASTKEEP_DATABASE__URL"
        )
    return None


def main() -> None:
    _register()
    argv = sys.argv[1:]
    command = next((a for a in argv if not a.startswith("-")), None)
    if "--debug" not in argv and command not in LONG_RUNNING:
        quiet_orchestration()
    try:
        app()
    except CastkeepError as exc:
        if _state["debug"]:
            raise
        typer.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except Exception as exc:
        mapped = unexpected_infrastructure_error(exc)
        if mapped is None or _state["debug"]:
            raise
        typer.echo(f"error: {mapped}", err=True)
        sys.exit(mapped.exit_code)
