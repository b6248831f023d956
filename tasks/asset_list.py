"""The catalogue's assets, newest first, optionally of one status (`castkeep asset list`). Read on
a psycopg connection (db/catalogue_reads: no ORM, the command reads a running catalogue
directly); the store, when given, adds where each file is."""

from __future__ import annotations

from typing import Any

from castkeep.db.catalogue_reads import asset_rows
from castkeep.db.object_store import ObjectStore, object_location
from castkeep.errors import SpecError
from castkeep.vocab import AssetStatus, values

MAX_LIMIT = 10_000


def list_assets(conn: Any, store: ObjectStore | None = None, *, status: str | None = None,
                limit: int = 100) -> list[dict[str, Any]]:
    """[{"id", "request_id", "variant", "attempt", "status", "reason", "sha256", "media_type",
    "width", "height", "created_at"} (+ "path" with `store`)], newest first, at most `limit`."""
    if status is not None and status not in values(AssetStatus):
        raise SpecError(f"unknown asset status {status!r}; use one of "
                        f"{', '.join(values(AssetStatus))}")
    if not 1 <= limit <= MAX_LIMIT:
        raise SpecError(f"--limit must be between 1 and {MAX_LIMIT}, not {limit}")
    rows = asset_rows(conn, status=status, limit=limit)
    for row in rows:
        key = row.pop("object_key")
        if store is not None:
            row["path"] = object_location(store, key)
    return rows
