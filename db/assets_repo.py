"""Asset requests, generations, scores, assets and lineage.

Every write here runs inside the caller's transaction and only flushes: the request flow opens
one transaction per finished variant (`with sessions.begin() as s: record_variant(s, ...)`), so a
crash leaves either the whole variant (asset + generation + scores + lineage + faces + audit event)
or none of it. Objects are stored before their rows; an object whose rows never committed is an
orphan that `castkeep gc` removes.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from castkeep.db import schema
from castkeep.db.audit_log import append_event
from castkeep.db.catalogue_reads import ScoreView, scores_summary
from castkeep.db.ids import parse_id, where_listed
from castkeep.errors import NotFoundError

if TYPE_CHECKING:  # annotations only: reading the catalogue needs no numpy
    from castkeep.models.faces.face_types import DetectedFace
    from castkeep.models.scoring.records import ScoreRecord


# ---- inputs --------------------------------------------------------------------------------


@dataclass(frozen=True)
class GenerationRecord:
    variant: int
    attempt: int
    seed: int
    engine: str
    engine_version: str
    device: str
    passed: bool
    model_hashes: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, Any] = field(default_factory=dict)
    licence_id: str | None = None


@dataclass(frozen=True)
class LineageRecord:
    reference_portrait_id: uuid.UUID
    talent_id: uuid.UUID
    consent_id: uuid.UUID
    relationship: str  # parentOf (an edit of one reference) | componentOf (a group composite)


@dataclass(frozen=True)
class AssetRecord:
    sha256: str
    object_key: str
    media_type: str
    width: int
    height: int
    status: str  # candidate | rejected (a variant that failed its thresholds after retries)
    use: dict[str, Any]
    manifest_label: str | None = None
    status_reason: str | None = None


# ---- requests ------------------------------------------------------------------------------


def create_request(
    session: Session,
    *,
    spec: dict[str, Any],
    spec_sha256: str,
    actor: str,
    status: str = "received",
    flow_run_id: str | None = None,
    team: str | None = None,
) -> schema.AssetRequest:
    """Insert a request row (and its audit event) from the validated spec's canonical form;
    `actor` is recorded as its submitter."""
    row = schema.AssetRequest(
        campaign=spec["campaign"],
        requester=spec["requester"],
        channel=spec["channel"],
        territory=spec["territory"],
        purpose=spec["purpose"],
        publish_date=dt.date.fromisoformat(str(spec["publish_date"])),
        spec=spec,
        spec_sha256=spec_sha256,
        status=status,
        refusals=[],
        flow_run_id=flow_run_id,
        submitted_by=actor,
        team=team,
    )
    session.add(row)
    session.flush()
    append_event(
        session,
        actor=actor,
        kind="request.created",
        entity_type="asset_request",
        entity_id=str(row.id),
        payload={"spec_sha256": spec_sha256, "variants": spec.get("variants")},
    )
    return row


def get_request(session: Session, request_id: uuid.UUID | str, *, lock: bool = False):
    rid = _uuid(request_id, "request")
    stmt = select(schema.AssetRequest).where(schema.AssetRequest.id == rid)
    if lock:
        stmt = stmt.with_for_update()
    row = session.scalars(stmt).one_or_none()
    if row is None:
        raise NotFoundError(f"no request {request_id}; {where_listed('request')}")
    return row


def set_request_status(
    session: Session,
    request_id: uuid.UUID | str,
    status: str,
    *,
    actor: str,
    refusals: Sequence[str] | None = None,
    detail: dict[str, Any] | None = None,
) -> schema.AssetRequest:
    if status not in schema.REQUEST_STATUSES:
        raise ValueError(f"unknown request status {status!r}")
    row = get_request(session, request_id, lock=True)
    previous = row.status
    row.status = status
    if refusals is not None:
        row.refusals = list(refusals)
    elif status in ("awaiting_approval", "completed"):
        row.refusals = []  # an earlier failed run's reason; the audit log keeps it
    session.flush()
    append_event(
        session,
        actor=actor,
        kind=f"request.{status}",
        entity_type="asset_request",
        entity_id=str(row.id),
        payload={"from": previous, "refusals": list(refusals or []), **(detail or {})},
    )
    return row


def set_flow_run(session: Session, request_id: uuid.UUID | str, flow_run_id: str | None) -> None:
    session.execute(
        update(schema.AssetRequest)
        .where(schema.AssetRequest.id == _uuid(request_id, "request"))
        .values(flow_run_id=flow_run_id)
    )


# ---- variants ------------------------------------------------------------------------------


def record_attempt(
    session: Session,
    request_id: uuid.UUID,
    generation: GenerationRecord,
    scores: Iterable[ScoreRecord],
) -> uuid.UUID:
    """A failed attempt that will be retried with a new seed: generation + scores, no asset."""
    gen = _add_generation(session, request_id, generation)
    for score in scores:
        session.add(_score_row(score, gen.id, None))
    session.flush()
    return gen.id


def record_variant(
    session: Session,
    request_id: uuid.UUID,
    *,
    generation: GenerationRecord,
    scores: Iterable[ScoreRecord],
    asset: AssetRecord,
    lineage: Iterable[LineageRecord],
    faces: Sequence[DetectedFace],
    actor: str,
) -> uuid.UUID:
    """The final attempt of a variant: asset + generation + scores + lineage + faces + audit event.

    Call inside one transaction. Returns the asset id.
    """
    from castkeep.db.face_search import add_face  # sibling repo; imported late to keep import light

    gen = _add_generation(session, request_id, generation)
    row = schema.Asset(
        request_id=request_id,
        generation_id=gen.id,
        sha256=asset.sha256,
        object_key=asset.object_key,
        media_type=asset.media_type,
        width=asset.width,
        height=asset.height,
        status=asset.status,
        status_reason=asset.status_reason,
        use=asset.use,
        manifest_label=asset.manifest_label,
    )
    session.add(row)
    session.flush()
    score_list = list(scores)
    for score in score_list:
        session.add(_score_row(score, gen.id, row.id))
    lineage_list = list(lineage)
    for link in lineage_list:
        session.add(
            schema.Lineage(
                asset_id=row.id,
                reference_portrait_id=link.reference_portrait_id,
                talent_id=link.talent_id,
                consent_id=link.consent_id,
                relationship=link.relationship,
            )
        )
    session.flush()
    for index, face in enumerate(faces):
        if face.embedding is not None:
            add_face(session, face, asset_id=row.id, face_index=index)
    append_event(
        session,
        actor=actor,
        kind="asset.created",
        entity_type="asset",
        entity_id=str(row.id),
        payload={
            "request_id": str(request_id),
            "variant": generation.variant,
            "attempt": generation.attempt,
            "status": asset.status,
            "sha256": asset.sha256,
            "engine": f"{generation.engine} {generation.engine_version}",
            "licence_id": generation.licence_id,
            "talents": sorted({str(link.talent_id) for link in lineage_list}),
            "scores_passed": all(s.passed for s in score_list),
        },
    )
    session.flush()
    return row.id


def set_asset_status(
    session: Session,
    asset_ids: Iterable[uuid.UUID | str],
    status: str,
    *,
    actor: str,
    reason: str | None = None,
    detail: dict[str, Any] | None = None,
) -> list[schema.Asset]:
    if status not in schema.ASSET_STATUSES:
        raise ValueError(f"unknown asset status {status!r}")
    rows = []
    for asset_id in asset_ids:
        row = get_asset(session, asset_id, lock=True)
        previous = row.status
        row.status = status
        row.status_reason = reason
        session.flush()
        append_event(
            session,
            actor=actor,
            kind=f"asset.{status}",
            entity_type="asset",
            entity_id=str(row.id),
            payload={"from": previous, "reason": reason, **(detail or {})},
        )
        rows.append(row)
    return rows


def _add_generation(
    session: Session, request_id: uuid.UUID | None, g: GenerationRecord
) -> schema.Generation:
    gen = schema.Generation(
        request_id=request_id,
        variant=g.variant,
        attempt=g.attempt,
        seed=g.seed,
        engine=g.engine,
        engine_version=g.engine_version,
        model_hashes=g.model_hashes,
        params=g.params,
        device=g.device,
        timings=g.timings,
        licence_id=g.licence_id,
        passed=g.passed,
    )
    session.add(gen)
    session.flush()
    return gen


def _score_row(s: ScoreRecord, generation_id: uuid.UUID, asset_id: uuid.UUID | None):
    return schema.Score(
        generation_id=generation_id,
        asset_id=asset_id,
        kind=s.kind,
        talent_id=s.talent_id,
        face_index=s.face_index,
        value=float(s.value),
        threshold=None if s.threshold is None else float(s.threshold),
        passed=bool(s.passed),
        detail=s.detail,
    )


# ---- views ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class AssetView:
    id: str
    request_id: str | None
    variant: int
    attempt: int
    seed: int
    status: str
    status_reason: str | None
    sha256: str
    object_key: str
    media_type: str
    width: int
    height: int
    engine: str
    licence_id: str | None
    passed: bool
    scores: tuple[ScoreView, ...]
    talent_ids: tuple[str, ...]
    consent_ids: tuple[str, ...]
    reference_ids: tuple[str, ...]
    use: dict[str, Any]

    def scores_summary(self) -> dict[str, Any]:
        """{"identity": {talent: {...}}, "lighting": {...}, "camera": {...}, "quality": {...}}"""
        return scores_summary(self.scores)


@dataclass(frozen=True)
class RequestView:
    id: str
    campaign: str
    requester: str
    status: str
    channel: str
    territory: str
    purpose: str
    publish_date: str
    spec: dict[str, Any]
    refusals: tuple[str, ...]
    flow_run_id: str | None
    assets: tuple[AssetView, ...]
    rejected_attempts: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "request_id": self.id,
            "campaign": self.campaign,
            "status": self.status,
            "channel": self.channel,
            "territory": self.territory,
            "purpose": self.purpose,
            "publish_date": self.publish_date,
            "refusals": list(self.refusals),
            "rejected_attempts": self.rejected_attempts,
            "assets": [
                {
                    "id": a.id,
                    "variant": a.variant,
                    "status": a.status,
                    "passed": a.passed,
                    "sha256": a.sha256,
                    "scores": a.scores_summary(),
                }
                for a in self.assets
            ],
        }


def get_asset(session: Session, asset_id: uuid.UUID | str, *, lock: bool = False) -> schema.Asset:
    aid = _uuid(asset_id, "asset")
    stmt = select(schema.Asset).where(schema.Asset.id == aid)
    if lock:
        stmt = stmt.with_for_update()
    row = session.scalars(stmt).one_or_none()
    if row is None:
        raise NotFoundError(f"no asset {asset_id}; {where_listed('asset')}")
    return row


def asset_view(session: Session, asset_id: uuid.UUID | str) -> AssetView:
    return _asset_views(session, [get_asset(session, asset_id)])[0]


def request_assets(session: Session, request_id: uuid.UUID | str) -> list[AssetView]:
    rid = _uuid(request_id, "request")
    rows = session.scalars(select(schema.Asset).where(schema.Asset.request_id == rid)).all()
    return sorted(_asset_views(session, list(rows)), key=lambda a: (a.variant, a.attempt))


def request_view(session: Session, request_id: uuid.UUID | str) -> RequestView:
    req = get_request(session, request_id)
    assets = request_assets(session, req.id)
    finals = {a.variant: a.attempt for a in assets}
    gens = session.execute(
        select(schema.Generation.variant, schema.Generation.attempt).where(
            schema.Generation.request_id == req.id
        )
    ).all()
    rejected_attempts = sum(1 for v, a in gens if finals.get(v) != a)
    return RequestView(
        id=str(req.id),
        campaign=req.campaign,
        requester=req.requester,
        status=req.status,
        channel=req.channel,
        territory=req.territory,
        purpose=req.purpose,
        publish_date=req.publish_date.isoformat(),
        spec=dict(req.spec),
        refusals=tuple(req.refusals or ()),
        flow_run_id=req.flow_run_id,
        assets=tuple(assets),
        rejected_attempts=rejected_attempts,
    )


@dataclass(frozen=True)
class VariantProgress:
    """What a (re)started request has already done, so nothing finished is recomputed."""

    finished: dict[int, uuid.UUID]  # variant -> asset id
    next_attempt: dict[int, int]  # variant -> first attempt not yet recorded


def variant_progress(
    session: Session, request_id: uuid.UUID, variant: int | None = None
) -> VariantProgress:
    """What the request (or only its `variant`: what a variant run needs, without reading the
    rest of the request) has finished and attempted, in one query."""
    query = (
        select(schema.Generation.variant, schema.Generation.attempt, schema.Asset.id)
        .outerjoin(
            schema.Asset,
            (schema.Asset.generation_id == schema.Generation.id)
            & (schema.Asset.request_id == request_id),
        )
        .where(schema.Generation.request_id == request_id)
    )
    if variant is not None:
        query = query.where(schema.Generation.variant == int(variant))
    finished: dict[int, uuid.UUID] = {}
    next_attempt: dict[int, int] = {}
    for v, a, asset_id in session.execute(query):
        next_attempt[v] = max(next_attempt.get(v, 0), a + 1)
        if asset_id is not None:
            finished[v] = asset_id
    return VariantProgress(finished=finished, next_attempt=next_attempt)


def _asset_views(session: Session, rows: list[schema.Asset]) -> list[AssetView]:
    if not rows:
        return []
    ids = [r.id for r in rows]
    gens = {
        g.id: g
        for g in session.scalars(
            select(schema.Generation).where(
                schema.Generation.id.in_([r.generation_id for r in rows if r.generation_id])
            )
        )
    }
    scores: dict[uuid.UUID, list[ScoreView]] = {}
    for s in session.scalars(
        select(schema.Score).where(schema.Score.asset_id.in_(ids)).order_by(schema.Score.kind)
    ):
        scores.setdefault(s.asset_id, []).append(
            ScoreView(
                kind=s.kind,
                value=s.value,
                threshold=s.threshold,
                passed=s.passed,
                talent_id=str(s.talent_id) if s.talent_id else None,
                face_index=s.face_index,
                detail=dict(s.detail or {}),
            )
        )
    links: dict[uuid.UUID, list[schema.Lineage]] = {}
    for link in session.scalars(select(schema.Lineage).where(schema.Lineage.asset_id.in_(ids))):
        links.setdefault(link.asset_id, []).append(link)
    out = []
    for r in rows:
        g = gens.get(r.generation_id)
        ls = links.get(r.id, [])
        sv = tuple(scores.get(r.id, []))
        out.append(
            AssetView(
                id=str(r.id),
                request_id=str(r.request_id) if r.request_id else None,
                variant=g.variant if g else 0,
                attempt=g.attempt if g else 0,
                seed=g.seed if g else 0,
                status=r.status,
                status_reason=r.status_reason,
                sha256=r.sha256,
                object_key=r.object_key,
                media_type=r.media_type,
                width=r.width,
                height=r.height,
                engine=f"{g.engine} {g.engine_version}" if g else "",
                licence_id=g.licence_id if g else None,
                passed=bool(g.passed) if g and g.passed is not None else False,
                scores=sv,
                talent_ids=tuple(sorted({str(x.talent_id) for x in ls if x.talent_id})),
                consent_ids=tuple(sorted({str(x.consent_id) for x in ls if x.consent_id})),
                reference_ids=tuple(
                    sorted({str(x.reference_portrait_id) for x in ls if x.reference_portrait_id})
                ),
                use=dict(r.use or {}),
            )
        )
    return out


def _uuid(value: uuid.UUID | str, what: str) -> uuid.UUID:
    return parse_id(value, what)


def catalogued_asset_keys(session: Session) -> set[str]:
    """Object keys under assets/ and reports/ that the catalogue points at (for gc: an asset
    object stored by a run that died before its rows committed is an orphan)."""
    keys = set(session.scalars(select(schema.Asset.object_key)))
    for payload in session.scalars(
        select(schema.AuditEvent.payload).where(schema.AuditEvent.kind == "request.report")
    ):
        keys.update(v for v in (payload or {}).values() if isinstance(v, str))
    return keys
