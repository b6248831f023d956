"""Alembic migrations, driven from code (no alembic.ini needed): `upgrade`, `current`, `head`.

The schema is created only by these migrations. Concurrent upgrades (two processes starting
at once) are serialised by an advisory lock taken in migrations/env.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from castkeep.db.engine import normalise_url, redact
from castkeep.db.migration_head import MIGRATIONS_DIR, head, is_current
from castkeep.errors import DatabaseError

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = ["MIGRATIONS_DIR", "head"]  # re-exported: callers import them from here too


def alembic_config(url: str | None = None) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        # Passed as an attribute, not a main option: configparser would choke on '%' in passwords.
        cfg.attributes["url"] = normalise_url(url)
    return cfg


def _engine(url: str) -> sa.Engine:
    return sa.create_engine(normalise_url(url), poolclass=NullPool)


def current(url: str) -> str | None:
    """The revision the database at `url` is on (None: never migrated)."""
    engine = _engine(url)
    try:
        with engine.connect() as conn:
            return _revision(conn)
    except DBAPIError as exc:
        raise DatabaseError(f"cannot read the schema revision of {redact(url)}: {exc.orig}") from exc
    finally:
        engine.dispose()


def upgrade(url: str, revision: str = "head") -> str | None:
    """Migrate the database at `url` to `revision`; returns the revision it is on afterwards."""
    from alembic import command

    engine = _engine(url)
    cfg = alembic_config(url)
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
    except DBAPIError as exc:
        first_line = str(exc.orig).splitlines()[0]
        if "extension" in first_line and getattr(exc.orig, "sqlstate", None) == "42501":
            # pgvector is not a trusted extension: only a superuser creates it.
            raise DatabaseError(
                f"migrating {redact(url)} failed: {first_line}; the vector extension must be "
                "created by a superuser first: have the database administrator run "
                "`CREATE EXTENSION vector;` in this database"
            ) from exc
        raise DatabaseError(
            f"migrating {redact(url)} failed: {first_line}; the database user "
            "needs to own the schema (and the vector extension must exist in the database)"
        ) from exc
    finally:
        engine.dispose()
    return current(url)


def downgrade(url: str, revision: str) -> None:
    """Migrate down to `revision` ("base" drops everything castkeep created)."""
    from alembic import command

    engine = _engine(url)
    cfg = alembic_config(url)
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, revision)
    finally:
        engine.dispose()


def _revision(conn: sa.Connection) -> str | None:
    if conn.execute(sa.text("SELECT to_regclass('alembic_version')")).scalar() is None:
        return None
    return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()


def revision_of(engine: sa.Engine) -> str | None:
    """The schema revision through an open engine (None: never migrated)."""
    try:
        with engine.connect() as conn:
            return _revision(conn)
    except DBAPIError as exc:
        raise DatabaseError(f"cannot read the schema revision of {redact(str(engine.url))}: "
                            f"{exc.orig}") from exc


def upgrade_if_behind(url: str, engine: sa.Engine | None = None) -> bool:
    """Migrate a catalogue that is behind the code's newest revision; True when it did. With
    `engine`, an up-to-date catalogue costs one query on it and no alembic import."""
    now = revision_of(engine) if engine is not None else current(url)
    if is_current(now):
        return False
    upgrade(url)
    return True
