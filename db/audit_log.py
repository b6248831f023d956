"""The audit log: append-only, hash-chained.

Each row stores ``prev_hash`` (the hash of the row before it; 64 zeros for the first row) and
``hash = sha256(prev_hash + canonical JSON of the row's own fields)``. The table rejects UPDATE,
DELETE and TRUNCATE (triggers from the migrations), and `verify_chain` finds what slipped past:
an edited row no longer matches its hash; a deleted row leaves the next row pointing at a hash
that is not there. Deleting the newest rows, or recomputing every hash, leaves no trace inside
the chain: signed checkpoints kept outside the database (db/audit_anchor.py) catch those.

Appends are serialised by a transaction-level advisory lock, so concurrent writers never fork
the chain; the lock is released when the caller's transaction ends.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from castkeep.db.schema import AuditEvent, utcnow

GENESIS_HASH = "0" * 64
# Any constant shared by every castkeep process; distinct from the migration lock.
_AUDIT_LOCK = 0x636B6175  # "ckau"
# session.info key: (first, last) seq appended in the session's current transaction, read by the
# checkpoint hook after commit (db/audit_anchor.py).
APPENDED_SPAN = "castkeep.audit_appended"


@dataclass(frozen=True)
class ChainBreak:
    seq: int | None
    id: uuid.UUID | None
    detail: str
    kind: str = "edited"  # edited | deleted | head_missing


@dataclass(frozen=True)
class ChainHead:
    seq: int
    hash: str


def canonical_json(value: Any) -> str:
    """Deterministic JSON: sorted keys, no spaces, UTF-8 kept. Datetimes, UUIDs and paths are
    written as strings; anything else that JSON cannot hold is refused."""

    def default(obj: Any) -> str:
        if isinstance(obj, dt.datetime):
            return _iso(obj)
        if isinstance(obj, (dt.date, uuid.UUID)):
            return str(obj) if not isinstance(obj, dt.date) else obj.isoformat()
        if hasattr(obj, "__fspath__"):
            return str(obj)
        raise TypeError(f"audit payloads hold JSON values only, not {type(obj).__name__}")

    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False, default=default)


def _iso(at: dt.datetime) -> str:
    if at.tzinfo is None:
        raise ValueError("audit times must be timezone-aware")
    return at.astimezone(dt.timezone.utc).isoformat(timespec="microseconds")


def _row_fields(
    *, seq: int, id: uuid.UUID, at: dt.datetime, actor: str, kind: str,
    entity_type: str | None, entity_id: str | None, payload: dict[str, Any],
) -> dict[str, Any]:
    return {
        "seq": seq,
        "id": str(id),
        "at": _iso(at),
        "actor": actor,
        "kind": kind,
        "entity_type": entity_type,
        "entity_id": entity_id,
        "payload": payload,
    }


def compute_hash(prev_hash: str, fields: dict[str, Any]) -> str:
    return hashlib.sha256((prev_hash + canonical_json(fields)).encode("utf-8")).hexdigest()


def event_hash(event: Any) -> str:
    """What `event.hash` should be, from the row's stored fields (an AuditEvent or a row)."""
    return compute_hash(
        event.prev_hash,
        _row_fields(
            seq=event.seq, id=event.id, at=event.at, actor=event.actor, kind=event.kind,
            entity_type=event.entity_type, entity_id=event.entity_id, payload=event.payload,
        ),
    )


def append_event(
    session: Session,
    *,
    actor: str,
    kind: str,
    entity_type: str | None = None,
    entity_id: str | uuid.UUID | None = None,
    payload: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event in the session's transaction (flushed, not committed). Payloads must not
    carry PII: ids and hashes, never names."""
    if not actor or not kind:
        raise ValueError("audit events need an actor and a kind")
    # Round-trip through canonical JSON: what is stored is exactly what was hashed.
    clean_payload = json.loads(canonical_json(payload or {}))
    if not isinstance(clean_payload, dict):
        raise ValueError("an audit payload is a JSON object")
    entity = str(entity_id) if entity_id is not None else None

    session.execute(sa.select(sa.func.pg_advisory_xact_lock(_AUDIT_LOCK)))
    prev = session.execute(
        sa.select(AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)
    ).scalar_one_or_none()
    prev_hash = prev or GENESIS_HASH
    # The seq is part of the hash, so take it from the sequence before inserting.
    seq = session.execute(
        sa.text("SELECT nextval(pg_get_serial_sequence('audit_event', 'seq'))")
    ).scalar_one()
    # Microsecond precision: what PostgreSQL keeps, so the hash recomputes from the stored row.
    at = utcnow()
    event = AuditEvent(
        seq=seq,
        id=uuid.uuid4(),
        at=at,
        actor=actor,
        kind=kind,
        entity_type=entity_type,
        entity_id=entity,
        payload=clean_payload,
        prev_hash=prev_hash,
    )
    event.hash = event_hash(event)
    session.add(event)
    session.flush()
    first, _ = session.info.get(APPENDED_SPAN, (seq, seq))
    session.info[APPENDED_SPAN] = (first, seq)
    return event


def chain_head(session: Session) -> ChainHead | None:
    row = session.execute(
        sa.select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)
    ).first()
    return ChainHead(row.seq, row.hash) if row else None


def verify_chain(session: Session, *, expected_head: ChainHead | None = None) -> list[ChainBreak]:
    """Every break in the chain, oldest first; empty when intact. `expected_head` (from an
    earlier `chain_head`) also catches deletion of the newest rows."""
    breaks: list[ChainBreak] = []
    prev_seq: int | None = None
    prev_hash = GENESIS_HASH
    seen_head = expected_head is None
    # Plain rows, not ORM objects: no stale identity-map copies, no memory growth.
    columns = [getattr(AuditEvent, c.key) for c in AuditEvent.__table__.columns]
    rows = session.execute(sa.select(*columns).order_by(AuditEvent.seq).execution_options(yield_per=1000))
    for event in rows:
        if event.prev_hash != prev_hash:
            where = f"after seq {prev_seq}" if prev_seq is not None else "at the start of the log"
            breaks.append(ChainBreak(
                event.seq, event.id,
                f"row(s) deleted or edited {where}: prev_hash does not match the hash before it",
                "deleted",
            ))
        if event_hash(event) != event.hash:
            breaks.append(ChainBreak(
                event.seq, event.id, "row content does not match its hash: the row was edited",
                "edited",
            ))
        if expected_head is not None and event.seq == expected_head.seq:
            seen_head = True
            if event.hash != expected_head.hash:
                breaks.append(ChainBreak(
                    event.seq, event.id, "the recorded head row has changed", "edited",
                ))
        prev_seq, prev_hash = event.seq, event.hash
    if not seen_head:
        assert expected_head is not None
        breaks.append(ChainBreak(
            expected_head.seq, None,
            f"the recorded head (seq {expected_head.seq}) is gone: newest rows were deleted",
            "head_missing",
        ))
    return breaks
