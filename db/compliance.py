"""Catalogue queries for compliance: what to audit, which consents cover which assets, which
assets show a talent (by lineage or by face), and the quarantine of assets.

Plain functions over a SQLAlchemy Session; writers flush and append audit events but never
commit (the caller owns the transaction).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from castkeep.db import schema

# Assets that are (or may be) in use: what an audit checks and a revocation must reach.
AUDITED_STATUSES = ("approved", "published")
LIVE_STATUSES = ("candidate", "approved", "published")


@dataclass(frozen=True)
class ConsentLink:
    talent_id: str
    consent_id: str | None
    reference_portrait_id: str | None


@dataclass(frozen=True)
class AssetUnderAudit:
    id: str
    sha256: str
    object_key: str
    media_type: str
    status: str
    use: dict[str, Any]
    links: tuple[ConsentLink, ...]

    @property
    def talent_ids(self) -> tuple[str, ...]:
        return tuple(sorted({link.talent_id for link in self.links}))


@dataclass(frozen=True)
class CoveredConsent:
    consent_id: str
    talent_id: str
    valid_until: dt.datetime
    status: str
    asset_ids: tuple[str, ...]


@dataclass(frozen=True)
class FaceMatch:
    asset_id: str
    face_id: str
    face_index: int
    talent_id: str
    reference_portrait_id: str
    distance: float


def _uuid(value: str | uuid.UUID) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def _links(session: Session, asset_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[ConsentLink]]:
    out: dict[uuid.UUID, list[ConsentLink]] = defaultdict(list)
    if not asset_ids:
        return out
    rows = session.execute(
        select(
            schema.Lineage.asset_id,
            schema.Lineage.talent_id,
            schema.Lineage.consent_id,
            schema.Lineage.reference_portrait_id,
        ).where(schema.Lineage.asset_id.in_(asset_ids), schema.Lineage.talent_id.is_not(None))
    )
    for asset_id, talent_id, consent_id, ref_id in rows:
        out[asset_id].append(
            ConsentLink(
                str(talent_id),
                None if consent_id is None else str(consent_id),
                None if ref_id is None else str(ref_id),
            )
        )
    return out


def assets_for_audit(
    session: Session,
    *,
    statuses: tuple[str, ...] = AUDITED_STATUSES,
    talent_id: str | uuid.UUID | None = None,
) -> list[AssetUnderAudit]:
    """Assets in `statuses` with their consent links (lineage); only those linked to
    `talent_id` when given."""
    query = select(schema.Asset).where(schema.Asset.status.in_(statuses))
    if talent_id is not None:
        linked = select(schema.Lineage.asset_id).where(schema.Lineage.talent_id == _uuid(talent_id))
        query = query.where(schema.Asset.id.in_(linked))
    rows = list(session.scalars(query.order_by(schema.Asset.created_at, schema.Asset.id)))
    links = _links(session, [r.id for r in rows])
    return [
        AssetUnderAudit(
            id=str(r.id),
            sha256=r.sha256,
            object_key=r.object_key,
            media_type=r.media_type,
            status=r.status,
            use=dict(r.use or {}),
            links=tuple(links.get(r.id, ())),
        )
        for r in rows
    ]


def consents_by_id(session: Session, ids: set[str]) -> dict[str, schema.Consent]:
    if not ids:
        return {}
    rows = session.scalars(select(schema.Consent).where(schema.Consent.id.in_([_uuid(i) for i in ids])))
    return {str(r.id): r for r in rows}


def expiring_consents(
    session: Session,
    *,
    now: dt.datetime,
    within: dt.timedelta,
    talent_id: str | uuid.UUID | None = None,
    statuses: tuple[str, ...] = LIVE_STATUSES,
) -> list[CoveredConsent]:
    """Active consents whose valid_until falls in [now, now + within], with the live assets
    they cover (through lineage)."""
    query = select(schema.Consent).where(
        schema.Consent.status == "active",
        schema.Consent.valid_until >= now,
        schema.Consent.valid_until <= now + within,
    )
    if talent_id is not None:
        query = query.where(schema.Consent.talent_id == _uuid(talent_id))
    consents = list(session.scalars(query.order_by(schema.Consent.valid_until)))
    return [
        CoveredConsent(
            consent_id=str(c.id),
            talent_id=str(c.talent_id),
            valid_until=c.valid_until,
            status=c.status,
            asset_ids=tuple(str(a) for a in assets_under_consent(session, c.id, statuses=statuses)),
        )
        for c in consents
    ]


def consents_past_due(session: Session, *, now: dt.datetime) -> list[schema.Consent]:
    """Consents still marked active although valid_until has passed."""
    return list(
        session.scalars(
            select(schema.Consent)
            .where(schema.Consent.status == "active", schema.Consent.valid_until < now)
            .order_by(schema.Consent.valid_until, schema.Consent.id)
        )
    )


def assets_under_consent(
    session: Session,
    consent_id: str | uuid.UUID,
    *,
    statuses: tuple[str, ...] | None = LIVE_STATUSES,
) -> list[uuid.UUID]:
    """Assets derived under a consent: lineage rows naming it, then every asset derived from
    those (parent_asset_id), transitively."""
    found: set[uuid.UUID] = set(
        session.scalars(
            select(schema.Lineage.asset_id).where(schema.Lineage.consent_id == _uuid(consent_id))
        )
    )
    frontier = set(found)
    while frontier:
        children = set(
            session.scalars(
                select(schema.Lineage.asset_id).where(schema.Lineage.parent_asset_id.in_(frontier))
            )
        )
        frontier = children - found
        found |= frontier
    if not found:
        return []
    query = select(schema.Asset.id).where(schema.Asset.id.in_(found))
    if statuses is not None:
        query = query.where(schema.Asset.status.in_(statuses))
    return sorted(session.scalars(query), key=str)


def _distance(metric: str, query: np.ndarray):
    column = schema.Face.embedding
    vec = np.asarray(query, dtype=np.float32).tolist()
    if metric == "euclidean":
        return column.l2_distance(vec)
    if metric == "cosine":
        return column.cosine_distance(vec)
    raise ValueError(f"unknown face distance metric {metric!r}")


def reference_faces(
    session: Session, *, encoder: str, talent_id: str | uuid.UUID | None = None
) -> list[tuple[uuid.UUID, uuid.UUID, uuid.UUID, np.ndarray]]:
    """(face id, reference portrait id, talent id, embedding) of every reference face by `encoder`."""
    query = (
        select(schema.Face.id, schema.ReferencePortrait.id, schema.ReferencePortrait.talent_id, schema.Face.embedding)
        .join(schema.ReferencePortrait, schema.Face.reference_portrait_id == schema.ReferencePortrait.id)
        .where(schema.Face.encoder == encoder)
    )
    if talent_id is not None:
        query = query.where(schema.ReferencePortrait.talent_id == _uuid(talent_id))
    return [(f, r, t, np.asarray(e, dtype=np.float32)) for f, r, t, e in session.execute(query)]


def asset_faces_matching(
    session: Session,
    *,
    encoder: str,
    metric: str,
    threshold: float,
    talent_id: str | uuid.UUID | None = None,
    statuses: tuple[str, ...] | None = LIVE_STATUSES,
) -> list[FaceMatch]:
    """Faces in catalogued assets within `threshold` (the encoder's same-person distance) of any
    reference face of a talent (all talents, or one). One match per (asset face, talent): the
    nearest reference. Only vectors of the same encoder are compared."""
    best: dict[tuple[uuid.UUID, uuid.UUID], FaceMatch] = {}
    for _face_id, ref_id, t_id, embedding in reference_faces(session, encoder=encoder, talent_id=talent_id):
        dist = _distance(metric, embedding)
        query = (
            select(schema.Face.id, schema.Face.asset_id, schema.Face.face_index, dist.label("d"))
            .join(schema.Asset, schema.Asset.id == schema.Face.asset_id)
            .where(schema.Face.encoder == encoder, schema.Face.dim == int(embedding.shape[0]))
            .where(dist <= threshold)
        )
        if statuses is not None:
            query = query.where(schema.Asset.status.in_(statuses))
        for face_id, asset_id, face_index, d in session.execute(query):
            key = (face_id, t_id)
            if key not in best or d < best[key].distance:
                best[key] = FaceMatch(str(asset_id), str(face_id), int(face_index), str(t_id), str(ref_id), float(d))
    return sorted(best.values(), key=lambda m: (m.asset_id, m.face_index, m.talent_id))


def linked_talents(session: Session, asset_ids: list[str]) -> dict[str, set[str]]:
    links = _links(session, [_uuid(a) for a in asset_ids])
    return {str(a): {link.talent_id for link in ls} for a, ls in links.items()}


def assets_by_id(session: Session, ids: list[str | uuid.UUID], *, lock: bool = False) -> list[schema.Asset]:
    if not ids:
        return []
    query = select(schema.Asset).where(schema.Asset.id.in_([_uuid(i) for i in ids])).order_by(schema.Asset.id)
    if lock:
        query = query.with_for_update()
    return list(session.scalars(query))


def set_consent_status(
    session: Session,
    consent: schema.Consent,
    status: str,
    *,
    actor: str,
    reason: str | None,
    data: dict[str, Any] | None = None,
) -> None:
    """Change a consent's status with its consent_event row (append-only history) and a
    hash-chained audit event."""
    from castkeep.db.audit_log import append_event

    previous = consent.status
    session.execute(update(schema.Consent).where(schema.Consent.id == consent.id).values(status=status))
    session.add(
        schema.ConsentEvent(consent_id=consent.id, kind=status, actor=actor, reason=reason, data=data or {})
    )
    session.flush()
    session.refresh(consent)
    append_event(
        session,
        actor=actor,
        kind=f"consent.{status}",
        entity_type="consent",
        entity_id=str(consent.id),
        payload={"from": previous, "reason": reason, "talent_id": str(consent.talent_id), **(data or {})},
    )


def quarantine_assets(
    session: Session,
    asset_ids: list[str | uuid.UUID],
    *,
    actor: str,
    reason: str,
    detail: dict[str, Any] | None = None,
) -> list[schema.Asset]:
    """Set each (not yet quarantined) asset's status to quarantined, with one audit event per
    asset. Rows are locked first so two cascades never both change the same asset."""
    from castkeep.db.assets_repo import set_asset_status

    pending = [
        row.id for row in assets_by_id(session, asset_ids, lock=True) if row.status != "quarantined"
    ]
    return set_asset_status(
        session, pending, "quarantined", actor=actor, reason=reason, detail=detail
    )


def other_active_consent_links(
    session: Session, asset_ids: list[uuid.UUID], *, talent_id: uuid.UUID, excluding: uuid.UUID
) -> set[uuid.UUID]:
    """Assets linked to `talent_id` under another consent that is active and in force: a face
    match on those is covered, so revoking one consent leaves them alone."""
    if not asset_ids:
        return set()
    rows = session.scalars(
        select(schema.Lineage.asset_id)
        .join(schema.Consent, schema.Consent.id == schema.Lineage.consent_id)
        .where(
            schema.Lineage.asset_id.in_(asset_ids),
            schema.Lineage.talent_id == talent_id,
            schema.Consent.id != excluding,
            schema.Consent.status == "active",
            schema.Consent.valid_until > func.now(),
        )
    )
    return set(rows)


# ---- publish vs revoke -----------------------------------------------------------------------
# A publish holds FOR SHARE on the consent rows it relies on; a revocation or expiry takes FOR
# UPDATE on its consent row before it records the event and runs its cascade. So either the
# publish commits first and the cascade (which then sees it) quarantines what it published, or
# the publish waits, sees the revocation and refuses. Rows are locked in id order (no deadlock
# between two publishes of overlapping talents).


def lock_talent_consents(session: Session, talent_ids: list[str | uuid.UUID]) -> list[schema.Consent]:
    """FOR SHARE on every consent of these talents; returns the rows as committed now."""
    if not talent_ids:
        return []
    query = (
        select(schema.Consent)
        .where(schema.Consent.talent_id.in_([_uuid(t) for t in talent_ids]))
        .order_by(schema.Consent.id)
        .with_for_update(read=True)
        .execution_options(populate_existing=True)
    )
    return list(session.scalars(query))


def lock_consents(session: Session, consent_ids: list[str | uuid.UUID]) -> list[schema.Consent]:
    """FOR SHARE on these consent rows; returns them as committed now."""
    if not consent_ids:
        return []
    query = (
        select(schema.Consent)
        .where(schema.Consent.id.in_(sorted({_uuid(c) for c in consent_ids})))
        .order_by(schema.Consent.id)
        .with_for_update(read=True)
        .execution_options(populate_existing=True)
    )
    return list(session.scalars(query))


def withdrawn_consents(rows: list[schema.Consent], *, now: dt.datetime) -> list[schema.Consent]:
    """Consents that no longer cover anything: revoked, expired, or past valid_until (a
    timestamptz column: always aware)."""
    return [c for c in rows if c.status != "active" or c.valid_until < now]


def lineage_consent_ids(session: Session, asset_ids: list[str | uuid.UUID]) -> dict[uuid.UUID, set[uuid.UUID]]:
    """asset id -> the consents its lineage names."""
    out: dict[uuid.UUID, set[uuid.UUID]] = defaultdict(set)
    for asset_id, links in _links(session, [_uuid(a) for a in asset_ids]).items():
        out[asset_id].update(_uuid(link.consent_id) for link in links if link.consent_id)
    return out
