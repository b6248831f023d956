"""The `castkeep` command. Each command group lives in its own module of this package, and
`_register` lists them all.

A command's own output is its result and, on failure, one `error:` line with an exit code
(0 ok, 1 partly done, 2 bad input or configuration, 3 refused by consent or licence, 4 withdrawn,
5 infrastructure unavailable). The orchestrator's console logs (Prefect's run logs, tracebacks of
failed runs, its temporary API server's messages) still reach the Prefect API, not this terminal;
`-v/--verbose` shows them here too, `--debug` also tracebacks and debug logs. Prefect's
telemetry stays off (`flows/prefect_server.py`). Flow commands (SERVED) run on the data dir's
command server when it can take them (flows/command_server.py), else in this process.
"""

from __future__ import annotations

import itertools
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

_state = {"debug": False, "registered": False}

# Top-level loggers of the orchestration stack, kept off the console unless --debug.
ORCHESTRATION_LOGGERS = frozenset({"prefect", "docket", "uvicorn", "fastapi", "httpx", "httpcore"})
# Commands that run on (a scheduler, a server): their orchestration logs are their output.
LONG_RUNNING = frozenset({"serve", "web"})


def _print_version(value: bool) -> None:
    if value:
        from castkeep import __version__

        typer.echo(f"castkeep {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks and debug logs."),
    verbose: bool = typer.Option(
        False, "--verbose", "-v", help="Also show Prefect's run logs (INFO) on stderr."
    ),
    version: bool = typer.Option(
        False, "--version", is_eager=True, callback=_print_version,
        help="Print castkeep's version and exit.",
    ),
) -> None:
    _state["debug"] = debug
    level = logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING
    logging.basicConfig(level=level)


# Read commands that run no flow and never import Prefect: the Prefect environment (settings
# read at start-up) is not set up for them. Anything else gets it, so a new command is safe.
PREFECT_FREE = {"status": None, "verify": None, "identify": None, "score": None,
                "talent": {"list", "show"}, "request": {"show", "list"},
                "asset": {"list", "show", "export"}}


def _needs_prefect(argv: list[str]) -> bool:
    words = [a for a in argv if not a.startswith("-")]
    if not words or words[0] not in PREFECT_FREE:
        return True
    sub = PREFECT_FREE[words[0]]
    return sub is not None and (len(words) < 2 or words[1] not in sub)


def _register() -> None:
    """Every command and command group, in the order `castkeep --help` lists them (top-level
    commands first, then groups). A new group module is added here by hand."""
    if _state.get("registered"):
        return
    _state["registered"] = True
    # Imported here, not at module import, so importing this package stays side-effect free.
    from castkeep.flows.cli import (
        audit,
        consent,
        db,
        demo,
        edit,
        faces,
        identify,
        ingest,
        keys,
        request,
        score,
        serve,
        status,
        stop,
        takedowns,
        talent,
        tokens,
        users,
        verify,
        web,
    )

    app.command("demo")(demo.demo)
    app.command("edit")(edit.edit)
    app.command("identify")(identify.identify)
    app.command("ingest")(ingest.ingest)
    app.command("approve")(request.approve)
    app.command("score")(score.score)
    app.command("serve")(serve.serve)
    app.command("status")(status.status)
    app.command("stop")(stop.stop)
    app.command("gc")(talent.gc)
    app.command("verify")(verify.verify)
    app.command("web")(web.web)
    app.add_typer(audit.audit_app, name="audit")
    app.add_typer(consent.consent_app, name="consent")
    app.add_typer(db.db_app, name="db")
    app.add_typer(faces.faces_app, name="faces")
    app.add_typer(keys.keys_app, name="keys")
    app.add_typer(request.request_app, name="request")
    app.add_typer(request.asset_app, name="asset")
    app.add_typer(takedowns.takedowns_app, name="takedowns")
    app.add_typer(talent.talent_app, name="talent")
    app.add_typer(tokens.tokens_app, name="tokens")
    app.add_typer(users.users_app, name="users")
    # Click's plain help for every group: flags without a `<bool>` type, docstrings re-wrapped
    # (no ragged line breaks), and no rich markup parsed out of texts like `[--json]`.
    for typer_app in (app, *(g.typer_instance for g in app.registered_groups)):
        typer_app.rich_markup_mode = None


class _CommandOutputOnly(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        # Prefect's background services log under their class names (EventsWorker, ...).
        return (record.name.partition(".")[0] not in ORCHESTRATION_LOGGERS
                and _PREFECT_PACKAGE not in record.pathname)


_PREFECT_PACKAGE = f"{os.sep}prefect{os.sep}"


def quiet_orchestration() -> None:
    """Keep orchestration logs off this process's console and off that of the temporary Prefect
    API server it may start (a child process writing to the same stderr). Explicit PREFECT_
    settings in the environment win."""
    logging.basicConfig(level=logging.WARNING)
    for handler in logging.getLogger().handlers:
        handler.addFilter(_CommandOutputOnly())
    quiet_environment()


def quiet_environment() -> None:
    """The Prefect settings of a quiet command (read when Prefect is imported)."""
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


def _prefect_environment() -> None:
    """Point Prefect at this data dir's Prefect home (and keep its telemetry off) before anything
    imports Prefect. A bad setting is left for the command to report."""
    from pydantic import ValidationError

    from castkeep.flows.prefect_server import apply_client_environment
    from castkeep.flows.settings import get_settings

    try:
        home = get_settings().home
    except ValidationError:
        return
    apply_client_environment(home)


# Flow commands, run on the data dir's command server (flows/command_server.py) when it can
# take them: Prefect and the flow stack are imported there already.
SERVED = frozenset({"audit", "consent", "request", "ingest", "approve", "demo"})


def _served(argv: list[str], command: str | None, loud: bool) -> int | None:
    """The exit code of the command run on the command server, or None to run it here."""
    if (_state.get("in_server") or loud or command not in SERVED or not _needs_prefect(argv)):
        return None
    from castkeep.flows.command_client import run_served
    from castkeep.flows.read_settings import read_settings

    read = read_settings()
    if read is None:  # an environment only Settings reads: no server for it
        return None
    return run_served(argv, read.home)


def run_command(argv: list[str]) -> int:
    """`castkeep ARGV` in this process (the command server's child), as its exit code."""
    import traceback

    from castkeep.flows.settings import get_settings

    _state["in_server"] = True
    get_settings.cache_clear()  # the client's environment, not the server's
    sys.argv = ["castkeep", *argv]
    try:
        main()
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        print(exc.code, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        traceback.print_exc()
        return 130
    except Exception:  # noqa: BLE001 (printed as the interpreter would)
        traceback.print_exc()
        return 1
    return 0


def main() -> None:
    argv = sys.argv[1:]
    leading = [a for a in itertools.takewhile(lambda a: a.startswith("-"), argv)]
    if "--version" in leading:
        # Answered before any command module (or typer's help machinery) loads.
        from castkeep import __version__

        print(f"castkeep {__version__}")
        return
    command = next((a for a in argv if not a.startswith("-")), None)
    loud = bool({"--debug", "--verbose", "-v"} & set(leading))
    code = _served(argv, command, loud)
    if code is not None:
        sys.exit(code)
    if command is not None and _needs_prefect(argv):
        _prefect_environment()
    _register()
    if not loud and command not in LONG_RUNNING:
        quiet_orchestration()
    try:
        app(prog_name="castkeep")
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
