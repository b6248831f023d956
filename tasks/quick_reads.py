"""Catalogue reads for short commands, in plain SQL on a psycopg connection (db/catalogue_reads):
nothing here imports SQLAlchemy, so `castkeep talent list|show`, `request list|show`, `asset
list|show`, `verify` and `status` start in a fraction of the time the ORM takes to import."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from castkeep.db.catalogue_reads import (
    CatalogueMatch,
    RequestDocument,
    catalogued_file,
    recent_requests,
    request_document,
    server_versions,
    talent_detail,
    talent_summaries,
)
from castkeep.db.ids import parse_id

__all__ = [
    "CatalogueMatch",
    "RequestDocument",
    "asset_details",
    "catalogued_file",
    "parse_id",
    "recent_requests",
    "request_document",
    "running_database_report",
    "talent_detail",
    "talent_summaries",
]


def asset_details(conn: Any, store: Any, asset_id: str) -> dict[str, Any]:
    """JSON-ready view of an asset: status, scores, lineage and where its file is."""
    from castkeep.db.catalogue_reads import asset_record
    from castkeep.db.object_store import object_location

    record = asset_record(conn, asset_id)
    record["path"] = object_location(store, record.pop("object_key"))
    return record


def running_database_report(home: Path, url: str = "") -> dict[str, Any] | None:
    """{"url" (password hidden), "postgresql", "pgvector", "revision", "head", "healthy"} of a
    catalogue that can be read as it is (db/read_connection.reading_connection), else None: the
    caller then takes the path that starts the server and migrates."""
    from castkeep.db.migration_head import head
    from castkeep.db.read_connection import reading_connection, shown_url

    if not url:  # the bundled server's, looked up once (reading_connection would again)
        from castkeep.db.server import running_server

        server = running_server(home)
        if server is None or not server.app_password:
            return None
        url = server.url()
    conn = reading_connection(home, url)
    if conn is None:
        return None
    with conn:
        postgresql, pgvector = server_versions(conn)
    revision = head()  # reading_connection checked the catalogue is at it
    return {"url": shown_url(url), "postgresql": postgresql, "pgvector": pgvector,
            "revision": revision, "head": revision, "healthy": pgvector is not None}
