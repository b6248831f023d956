"""A psycopg connection for read-only commands, opened without SQLAlchemy or alembic.

Only for a catalogue that is already usable: the bundled server running (or an external URL
that answers) and the schema at the code's revision. Anything else answers None and the caller
takes the full path (flows/runtime.open_runtime), which starts the server, migrates, and
reports problems in castkeep's words. The connection is read-only: a read command cannot write.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from castkeep.db.migration_head import is_current

_SCHEMES = ("postgresql+psycopg://", "postgresql://", "postgres://")


def libpq_url(url: str) -> str | None:
    """A castkeep database URL in libpq's form, or None for one only SQLAlchemy can read."""
    for scheme in _SCHEMES:
        if url.startswith(scheme):
            return "postgresql://" + url[len(scheme):]
    return None


def shown_url(url: str) -> str:
    """The URL with its password hidden (as db/engine.redact shows it), for output."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    userinfo, _, host = parts.netloc.rpartition("@")
    user = userinfo.partition(":")[0]
    return parts._replace(netloc=f"{user}:***@{host}").geturl()


def reading_connection(home: Path, url: str = "") -> Any | None:
    """A read-only psycopg connection to the catalogue at `url` (empty: the bundled server of
    data dir `home`), or None when the full path is needed."""
    if url:
        conninfo = libpq_url(url)
    else:
        from castkeep.db.server import running_server

        server = running_server(home)
        conninfo = libpq_url(server.url()) if server is not None and server.app_password else None
    if conninfo is None:
        return None
    import psycopg

    try:
        conn = psycopg.connect(conninfo, connect_timeout=5)
    except psycopg.Error:
        return None
    try:
        conn.read_only = True
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except psycopg.Error:
        conn.close()
        return None
    if row is None or not is_current(row[0]):
        conn.close()
        return None
    return conn
