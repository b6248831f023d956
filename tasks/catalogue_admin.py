"""Looking after the catalogue: its database's health and schema revision, the bundled server,
objects no row points at, and the audit record of a forced export.

Plain functions of URLs, sessions and stores (settings are read at the edge). No Prefect.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from castkeep.db import migrate
from castkeep.db.engine import database_info, make_engine, redact

if TYPE_CHECKING:  # `castkeep status` imports this module: no ORM schema or repositories
    from sqlalchemy.orm import Session

    from castkeep.db.object_store import ObjectStore
    from castkeep.tasks.catalogue_views import AssetFile


def redact_url(url: str) -> str:
    """The database URL without its password, for output."""
    return redact(url)


def check_database(url: str) -> None:
    """Connect once: a one-line DatabaseError when the server is unreachable or lacks pgvector."""
    make_engine(url).dispose()


@dataclass(frozen=True)
class SchemaRevision:
    current: str | None  # None: never migrated
    head: str

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head


def schema_revision(url: str) -> SchemaRevision:
    """The revision the catalogue is on and the newest one available."""
    return SchemaRevision(current=migrate.current(url), head=migrate.head())


def upgrade_schema(url: str, revision: str = "head") -> tuple[str | None, str | None]:
    """Migrate the catalogue to `revision`; (revision before, revision after)."""
    before = migrate.current(url)
    return before, migrate.upgrade(url, revision)


@dataclass(frozen=True)
class DatabaseStatus:
    postgresql: str
    pgvector: str | None  # None: the vector extension is not created
    revision: str | None
    head: str


def database_status(url: str) -> DatabaseStatus:
    """Server and pgvector versions and the schema revision, after migrating a catalogue that is
    behind (as every other command would)."""
    engine = make_engine(url)
    try:
        migrate.upgrade_if_behind(url, engine)
        info = database_info(engine)
        return DatabaseStatus(postgresql=info.server_version, pgvector=info.pgvector_version,
                              revision=migrate.revision_of(engine), head=migrate.head())
    finally:
        engine.dispose()


def stop_bundled_database(home: Path) -> bool:
    """Stop the bundled PostgreSQL of the data dir `home`; False when it was not running."""
    from castkeep.db.server import stop_bundled_server

    return stop_bundled_server(home)


def collect_orphans(session: Session, store: ObjectStore, *, older_than: dt.timedelta,
                    dry_run: bool = False) -> list[str]:
    """Delete (unless `dry_run`) stored objects no catalogue row points at, stored more than
    `older_than` ago; returns their keys."""
    from castkeep.db import catalogue

    return catalogue.collect_orphans(session, store, older_than=older_than, dry_run=dry_run)


def record_forced_export(session: Session, asset: AssetFile, *, actor: str) -> None:
    """The audit event of exporting a withdrawn asset, in the session's transaction."""
    from castkeep.db.audit_log import append_event

    append_event(
        session, actor=actor, kind="asset.export_forced", entity_type="asset",
        entity_id=asset.id, payload={"status": asset.status, "sha256": asset.sha256},
    )
