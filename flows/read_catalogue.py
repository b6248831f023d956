"""The catalogue connection of read-only commands (talent list, request show, verify, status).

Straight to a running, up-to-date catalogue when the environment allows it
(flows/read_settings.py, db/read_connection.py): no Settings, SQLAlchemy or alembic imported.
Otherwise through open_runtime, which starts the bundled server, migrates, and turns a bad
setting into a ConfigurationError. Either way the queries are tasks/quick_reads'.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from castkeep.flows.read_settings import ReadSettings, read_settings


@contextlib.contextmanager
def catalogue_connection() -> Iterator[Any]:
    """A psycopg connection to the catalogue for the body's reads."""
    with _connection(read_settings()) as conn:
        yield conn


def object_store() -> Any:
    """The object store, for file locations: the data dir's filesystem store without Settings
    when that is the configuration, else the configured one."""
    return _store(read_settings())


@contextlib.contextmanager
def catalogue_and_store() -> Iterator[tuple[Any, Any]]:
    """Both, for reads that also name files (request show, asset list|show): the environment is
    read once for the two."""
    settings = read_settings()
    with _connection(settings) as conn:
        yield conn, _store(settings)


@contextlib.contextmanager
def _connection(settings: ReadSettings | None) -> Iterator[Any]:
    # settings None: the environment needs the full Settings (flows/read_settings.py).
    from castkeep.db.read_connection import reading_connection

    conn = reading_connection(settings.home, settings.database_url) if settings else None
    if conn is not None:
        with conn:
            yield conn
        return
    from castkeep.flows.runtime import open_runtime

    with open_runtime() as runtime:
        raw = runtime.engine.raw_connection()
        try:
            yield raw.driver_connection
        finally:
            raw.close()


def _store(settings: ReadSettings | None) -> Any:
    if settings is not None and settings.storage_kind == "filesystem":
        from castkeep.db.fs_store import FilesystemStore

        return FilesystemStore(settings.home / "objects", group=settings.storage_group or None)
    from castkeep.flows.runtime import build_store, load_settings

    return build_store(load_settings())
