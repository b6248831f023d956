"""A consent's terms as castkeep recorded them in the hash-chained audit log, and the consent rows
that no longer match (edited outside castkeep, e.g. an UPDATE in SQL).

castkeep never changes a consent's terms after it is granted: `consent.granted` records them, and
each status change is a `consent.<status>` event (revoked, expired, ...). The audit log cannot be
edited without breaking its chain or its checkpoints (db/audit_anchor.py), so a row whose terms or
status differ from what its events say was changed behind castkeep's back.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from castkeep.db import schema

# What `consent.granted` records and the audit compares (talent_id included: a consent moved to
# another talent is as much an edit as a widened scope).
TERM_FIELDS = (
    "talent_id", "release_doc_sha256", "valid_from", "valid_until", "scope",
    "synthetic_likeness", "ai_training", "minor", "manifest_sha256",
)
_TIMES = ("valid_from", "valid_until")


@dataclass(frozen=True)
class ConsentDrift:
    consent_id: str
    talent_id: str
    fields: tuple[str, ...]
    detail: str


def _iso(at: dt.datetime) -> str:
    at = at if at.tzinfo else at.replace(tzinfo=dt.timezone.utc)
    return at.astimezone(dt.timezone.utc).isoformat(timespec="microseconds")


def recorded_terms(consent: schema.Consent) -> dict[str, Any]:
    """The terms of a consent row as JSON values: what `consent.granted` records."""
    return {
        "talent_id": str(consent.talent_id),
        "release_doc_sha256": consent.release_doc_sha256,
        "valid_from": _iso(consent.valid_from),
        "valid_until": _iso(consent.valid_until),
        "scope": dict(consent.scope or {}),
        "synthetic_likeness": bool(consent.synthetic_likeness),
        "ai_training": bool(consent.ai_training),
        "minor": bool(consent.minor),
        "manifest_sha256": consent.manifest_sha256,
    }


def _same(field: str, recorded: Any, current: Any) -> bool:
    if field in _TIMES:
        try:
            return dt.datetime.fromisoformat(str(recorded)) == dt.datetime.fromisoformat(str(current))
        except ValueError:
            return False
    return recorded == current


def consent_drift(session: Session, *, talent_id: str | uuid.UUID | None = None) -> list[ConsentDrift]:
    """Every consent (of one talent, or all) whose row differs from its audit events: a term that
    is not what `consent.granted` recorded, a status that is not the last `consent.<status>`
    event's, or no `consent.granted` event at all. Run it in one snapshot (REPEATABLE READ) so a
    status change committing meanwhile is seen in both or neither."""
    query = select(schema.Consent).order_by(schema.Consent.id)
    if talent_id is not None:
        query = query.where(schema.Consent.talent_id == uuid.UUID(str(talent_id)))
    consents = list(session.scalars(query))
    if not consents:
        return []
    events: dict[str, list[Any]] = {}
    rows = session.execute(
        select(schema.AuditEvent.entity_id, schema.AuditEvent.kind, schema.AuditEvent.payload)
        .where(
            schema.AuditEvent.entity_type == "consent",
            schema.AuditEvent.kind.like("consent.%"),
            schema.AuditEvent.entity_id.in_([str(c.id) for c in consents]),
        )
        .order_by(schema.AuditEvent.seq)
    )
    for entity_id, kind, payload in rows:
        events.setdefault(entity_id, []).append((kind, payload or {}))

    out = []
    for consent in consents:
        drift = _drift(consent, events.get(str(consent.id), []))
        if drift is not None:
            out.append(drift)
    return out


def _drift(consent: schema.Consent, events: list[tuple[str, dict[str, Any]]]) -> ConsentDrift | None:
    cid, tid = str(consent.id), str(consent.talent_id)
    expected: dict[str, Any] = {}
    status: str | None = None
    for kind, payload in events:
        if kind == "consent.granted":
            expected.update({f: payload[f] for f in TERM_FIELDS if f in payload})
            status = "active"
        elif kind.removeprefix("consent.") in schema.CONSENT_STATUSES:
            status = kind.removeprefix("consent.")
    if status is None:
        return ConsentDrift(cid, tid, ("granted",),
                            "no consent.granted event in the audit log: the row was written outside castkeep")
    current = recorded_terms(consent)
    fields = [f for f in TERM_FIELDS if f in expected and not _same(f, expected[f], current[f])]
    changes = [change for f in fields for change in _changes(f, expected[f], current[f])]
    if consent.status != status:
        fields.append("status")
        changes.append(f"status {status} -> {consent.status}")
    if not fields:
        return None
    return ConsentDrift(cid, tid, tuple(fields),
                        "edited outside castkeep (recorded -> now): " + "; ".join(changes))


def _changes(field: str, recorded: Any, current: Any) -> list[str]:
    """'field recorded -> now', per key for a mapping (the scope)."""
    if isinstance(recorded, dict) and isinstance(current, dict):
        return [
            f"{field}.{k} {_short(recorded.get(k))} -> {_short(current.get(k))}"
            for k in sorted(set(recorded) | set(current))
            if recorded.get(k) != current.get(k)
        ]
    return [f"{field} {_short(recorded)} -> {_short(current)}"]


def _short(value: Any, limit: int = 160) -> str:
    from castkeep.db.audit_log import canonical_json

    text = value if isinstance(value, str) else canonical_json(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
