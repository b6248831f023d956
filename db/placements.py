"""The publication register (placements) and takedown tasks, as rows and audit events.

Every change appends a hash-chained audit event in the caller's transaction. Values arrive
validated (tasks/placements.py, tasks/takedowns.py); this module only stores and reads them.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from castkeep.db import schema
from castkeep.db.audit_log import append_event

PLACED = "asset.placed"
TAKEDOWN_OPENED = "takedown.opened"
TAKEDOWN_DONE = "takedown.done"


@dataclass(frozen=True)
class PlacementView:
    id: str
    asset_id: str
    channel: str
    url: str
    territory: str
    until: str | None
    published_by: str
    created_at: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TakedownView:
    id: str
    asset_id: str
    placement_id: str
    channel: str
    url: str
    territory: str
    status: str
    reason: str
    opened_by: str
    opened_at: str
    done_by: str | None
    done_at: str | None
    note: str | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.astimezone(dt.timezone.utc).isoformat()


def placement_view(row: schema.Placement) -> PlacementView:
    return PlacementView(
        id=str(row.id), asset_id=str(row.asset_id), channel=row.channel, url=row.url,
        territory=row.territory, until=row.until.isoformat() if row.until else None,
        published_by=row.published_by, created_at=_iso(row.created_at),
    )


def takedown_view(row: schema.Takedown, placement: schema.Placement) -> TakedownView:
    return TakedownView(
        id=str(row.id), asset_id=str(row.asset_id), placement_id=str(row.placement_id),
        channel=placement.channel, url=placement.url, territory=placement.territory,
        status=row.status, reason=row.reason, opened_by=row.opened_by,
        opened_at=_iso(row.opened_at), done_by=row.done_by, done_at=_iso(row.done_at),
        note=row.note,
    )


def add_placement(session: Session, asset_id: uuid.UUID, *, channel: str, url: str,
                  territory: str, until: dt.date | None, actor: str) -> PlacementView:
    row = schema.Placement(asset_id=asset_id, channel=channel, url=url, territory=territory,
                           until=until, published_by=actor)
    session.add(row)
    session.flush()
    session.refresh(row)
    append_event(session, actor=actor, kind=PLACED, entity_type="asset", entity_id=str(asset_id),
                 payload={"placement_id": str(row.id), "channel": channel, "url": url,
                          "territory": territory,
                          "until": until.isoformat() if until else None})
    return placement_view(row)


def placements_of(session: Session, asset_ids: list[uuid.UUID]) -> list[schema.Placement]:
    if not asset_ids:
        return []
    return list(session.scalars(
        select(schema.Placement).where(schema.Placement.asset_id.in_(asset_ids))
        .order_by(schema.Placement.created_at, schema.Placement.id)))


def placements_without_takedown(session: Session,
                                asset_ids: list[uuid.UUID]) -> list[schema.Placement]:
    """Placements of these assets that no takedown has been opened for yet."""
    if not asset_ids:
        return []
    taken = select(schema.Takedown.placement_id)
    return list(session.scalars(
        select(schema.Placement)
        .where(schema.Placement.asset_id.in_(asset_ids), schema.Placement.id.not_in(taken))
        .order_by(schema.Placement.asset_id, schema.Placement.created_at, schema.Placement.id)))


def open_takedowns(session: Session, asset_ids: list[uuid.UUID], *, reason: str,
                   actor: str) -> list[TakedownView]:
    """One open takedown for each placement of these assets that has none yet (so a repeated
    cascade opens nothing twice), each with an audit event."""
    out = []
    for placement in placements_without_takedown(session, asset_ids):
        row = schema.Takedown(placement_id=placement.id, asset_id=placement.asset_id,
                              status="open", reason=reason, opened_by=actor)
        session.add(row)
        session.flush()
        session.refresh(row)
        append_event(session, actor=actor, kind=TAKEDOWN_OPENED, entity_type="takedown",
                     entity_id=str(row.id),
                     payload={"asset_id": str(placement.asset_id), "placement_id": str(placement.id),
                              "channel": placement.channel, "url": placement.url,
                              "reason": reason})
        out.append(takedown_view(row, placement))
    return out


def list_takedowns(session: Session, *, open_only: bool = False,
                   older_than: dt.datetime | None = None) -> list[TakedownView]:
    query = (select(schema.Takedown, schema.Placement)
             .join(schema.Placement, schema.Placement.id == schema.Takedown.placement_id))
    if open_only or older_than is not None:
        query = query.where(schema.Takedown.status == "open")
    if older_than is not None:
        query = query.where(schema.Takedown.opened_at < older_than)
    rows = session.execute(query.order_by(schema.Takedown.opened_at, schema.Takedown.id))
    return [takedown_view(t, p) for t, p in rows]


def get_takedown(session: Session, takedown_id: uuid.UUID, *,
                 lock: bool = False) -> schema.Takedown | None:
    query = select(schema.Takedown).where(schema.Takedown.id == takedown_id)
    if lock:
        query = query.with_for_update()
    return session.scalars(query).one_or_none()


def complete_takedown(session: Session, row: schema.Takedown, *, note: str | None,
                      actor: str) -> TakedownView:
    row.status = "done"
    row.done_by = actor
    row.done_at = schema.utcnow()
    row.note = note
    session.flush()
    placement = session.get(schema.Placement, row.placement_id)
    append_event(session, actor=actor, kind=TAKEDOWN_DONE, entity_type="takedown",
                 entity_id=str(row.id),
                 payload={"asset_id": str(row.asset_id), "url": placement.url, "note": note})
    return takedown_view(row, placement)
