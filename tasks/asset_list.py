"""The catalogue's assets, newest first, optionally of one status (`castkeep asset list`). A plain
function over a session; the store, when given, adds where each file is."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from castkeep.db import schema
from castkeep.db.object_store import ObjectStore, object_location
from castkeep.errors import SpecError
from castkeep.vocab import AssetStatus, values

MAX_LIMIT = 10_000


def list_assets(session: Session, store: ObjectStore | None = None, *, status: str | None = None,
                limit: int = 100) -> list[dict[str, Any]]:
    """[{"id", "request_id", "variant", "attempt", "status", "reason", "sha256", "media_type",
    "width", "height", "created_at"} (+ "path" with `store`)], newest first, at most `limit`."""
    if status is not None and status not in values(AssetStatus):
        raise SpecError(f"unknown asset status {status!r}; use one of "
                        f"{', '.join(values(AssetStatus))}")
    if not 1 <= limit <= MAX_LIMIT:
        raise SpecError(f"--limit must be between 1 and {MAX_LIMIT}, not {limit}")
    query = (select(schema.Asset, schema.Generation.variant, schema.Generation.attempt)
             .outerjoin(schema.Generation, schema.Generation.id == schema.Asset.generation_id)
             .order_by(schema.Asset.created_at.desc(), schema.Asset.id)
             .limit(limit))
    if status is not None:
        query = query.where(schema.Asset.status == status)
    rows = []
    for asset, variant, attempt in session.execute(query):
        row = {"id": str(asset.id),
               "request_id": str(asset.request_id) if asset.request_id else None,
               "variant": variant, "attempt": attempt, "status": asset.status,
               "reason": asset.status_reason, "sha256": asset.sha256,
               "media_type": asset.media_type, "width": asset.width, "height": asset.height,
               "created_at": asset.created_at.isoformat()}
        if store is not None:
            row["path"] = object_location(store, asset.object_key)
        rows.append(row)
    return rows
