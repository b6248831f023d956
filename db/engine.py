"""SQLAlchemy engine for the catalogue: connectivity and pgvector are checked up front so a bad
URL fails with one clear line instead of deep inside a flow, and a server that stops answering
later (connection refused, connection dropped) raises DatabaseError from any query, not a driver
traceback. Settings that are wrong (URL, credentials, database, pgvector) raise
DatabaseConfigurationError (exit 2); a server that is unavailable raises DatabaseError (exit 5)."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.orm import Session, sessionmaker

from castkeep.errors import DatabaseConfigurationError, DatabaseError

_FIX = "check CASTKEEP_DATABASE__URL (leave it empty to use the bundled PostgreSQL)"
# Connection failures that a setting causes (the server answered and refused), not an outage.
_MISCONFIGURED = ("authentication failed", "does not exist", "no pg_hba.conf entry",
                  "permission denied")


@dataclass(frozen=True)
class DatabaseInfo:
    url: str  # password hidden
    server_version: str
    pgvector_version: str | None  # None: available on the server but not yet created here
    is_superuser: bool


def redact(url: str) -> str:
    """The URL with its password hidden, safe for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable URL>"


def normalise_url(url: str) -> str:
    """Accept postgresql:// and postgres:// too; castkeep always talks psycopg 3."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise DatabaseConfigurationError(f"not a database URL: {redact(url)!r}; {_FIX}") from exc
    if parsed.get_backend_name() != "postgresql":
        raise DatabaseConfigurationError(
            f"castkeep needs PostgreSQL, got a {parsed.get_backend_name()!r} URL; {_FIX}"
        )
    if parsed.drivername != "postgresql+psycopg":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def _one_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    lines = [ln.strip() for ln in str(orig).splitlines() if ln.strip()]
    # psycopg: "connection failed: connection to server at ... failed: <reason>"
    text = lines[0] if lines else type(orig).__name__
    return text.removeprefix("connection failed: ")


def make_engine(url: str, *, check: bool = True, **kwargs) -> Engine:
    """An engine for `url`. With `check`, connect once and make sure pgvector can be used:
    DatabaseError (one line, naming the setting) when the server is unreachable, refuses the
    credentials, or has no pgvector extension."""
    url = normalise_url(url)
    kwargs.setdefault("pool_pre_ping", True)
    connect_args = dict(kwargs.pop("connect_args", {}))
    connect_args.setdefault("connect_timeout", 5)
    try:
        engine = sa.create_engine(url, connect_args=connect_args, **kwargs)
    except (ArgumentError, NoSuchModuleError) as exc:
        raise DatabaseConfigurationError(f"bad database URL {redact(url)}: {exc}; {_FIX}") from exc
    shown = redact(url)
    event.listen(engine, "handle_error", lambda ctx: _unavailable(ctx, shown))
    if check:
        try:
            database_info(engine)
        except DatabaseError:
            engine.dispose()
            raise
    return engine


def database_info(engine: Engine) -> DatabaseInfo:
    """Server and pgvector versions; DatabaseError if unreachable or pgvector is unavailable."""
    shown = redact(engine.url.render_as_string(hide_password=False))
    try:
        with engine.connect() as conn:
            version = conn.execute(sa.text("SHOW server_version")).scalar_one()
            superuser = conn.execute(sa.text("SHOW is_superuser")).scalar_one() == "on"
            installed = conn.execute(
                sa.text("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
            ).scalar_one_or_none()
            available = installed or conn.execute(
                sa.text("SELECT default_version FROM pg_available_extensions WHERE name = 'vector'")
            ).scalar_one_or_none()
    except DBAPIError as exc:
        raise connection_error(exc, shown) from exc
    if available is None:
        raise DatabaseConfigurationError(
            f"the PostgreSQL server at {shown} has no pgvector extension: install pgvector on it "
            f"(or use the pgvector/pgvector image); {_FIX}"
        )
    return DatabaseInfo(shown, str(version).split()[0], installed, superuser)


def connection_error(exc: BaseException, shown: str) -> DatabaseError:
    """The typed, one-line error for a connection that failed or dropped (`shown`: the URL with
    its password hidden)."""
    reason = _one_line(exc)
    if any(marker in reason for marker in _MISCONFIGURED):
        return DatabaseConfigurationError(f"cannot use PostgreSQL at {shown}: {reason}; {_FIX}")
    return DatabaseError(
        f"cannot use PostgreSQL at {shown}: {reason}; is the server running? (`castkeep status` "
        f"checks); {_FIX}"
    )


def _unavailable(ctx, shown: str) -> DatabaseError | None:
    """handle_error hook: connecting failed, or the connection dropped mid-query. Errors of a
    statement on a live connection (constraints, locks, serialisation) stay SQLAlchemy's."""
    if ctx.is_pre_ping:  # the pool reconnects on its own
        return None
    if ctx.connection is not None and not ctx.is_disconnect:
        return None
    return connection_error(ctx.original_exception, shown)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    # Objects stay readable after commit: flows hand committed rows to the next step.
    return sessionmaker(bind=engine, expire_on_commit=False)
