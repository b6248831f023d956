"""What the web pages show, built from the catalogue: the dashboard's lists per role, the
request form's choices and each talent's availability for a use (with the failing clauses, by
the same consent gate the flow applies), the review gallery's talents and reference portraits,
and the stored bytes of a reference portrait. Plain functions over a session."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections import Counter
from typing import Any

from sqlalchemy import false, func, select
from sqlalchemy.orm import Session

from castkeep.db import assets_repo, catalogue, compliance, schema
from castkeep.db.ids import parse_id
from castkeep.db.object_store import ObjectStore
from castkeep.errors import NotFoundError
from castkeep.provenance.consent import WORLD
from castkeep.provenance.policy import Use
from castkeep.tasks.consent_gate import check_consent
from castkeep.tasks.page_views_compliance import EXPIRING_DAYS as EXPIRING_DAYS  # one window
from castkeep.tasks.page_views_compliance import talent_names as known_talent_names
from castkeep.vocab import AssetStatus, RequestStatus


def _progress(session: Session, request_ids: list[uuid.UUID]) -> dict[uuid.UUID, dict[str, int]]:
    """Assets per request by status, in one query."""
    out: dict[uuid.UUID, dict[str, int]] = {rid: {} for rid in request_ids}
    if not request_ids:
        return out
    rows = session.execute(
        select(schema.Asset.request_id, schema.Asset.status, func.count())
        .where(schema.Asset.request_id.in_(request_ids))
        .group_by(schema.Asset.request_id, schema.Asset.status))
    for rid, status, count in rows:
        out[rid][status] = int(count)
    return out


def _request_rows(session: Session, query, limit: int) -> list[dict[str, Any]]:
    rows = list(session.scalars(query.order_by(schema.AssetRequest.created_at.desc())
                                .limit(limit)))
    counts = _progress(session, [r.id for r in rows])
    out = []
    for r in rows:
        by_status = counts[r.id]
        total = int((r.spec or {}).get("variants") or 0)
        out.append({
            "id": str(r.id), "campaign": r.campaign, "status": r.status,
            "submitted_by": r.submitted_by, "channel": r.channel, "territory": r.territory,
            "created_at": r.created_at, "variants": total,
            "made": sum(by_status.values()),
            "candidates": by_status.get(AssetStatus.CANDIDATE, 0),
            "published": by_status.get(AssetStatus.PUBLISHED, 0),
        })
    return out


def my_requests(session: Session, *, username: str, team: str | None,
                limit: int = 20) -> list[dict[str, Any]]:
    """A requester's own and team requests, newest first, with asset counts."""
    query = select(schema.AssetRequest).where(
        (schema.AssetRequest.submitted_by == username)
        | ((schema.AssetRequest.team == team) if team else false()))
    return _request_rows(session, query, limit)


def awaiting_review(session: Session, limit: int = 50) -> list[dict[str, Any]]:
    """Requests whose candidates wait for a reviewer's decision, newest first."""
    query = select(schema.AssetRequest).where(
        schema.AssetRequest.status == RequestStatus.AWAITING_APPROVAL)
    return _request_rows(session, query, limit)


def expiring_consents(session: Session, *, now: dt.datetime | None = None,
                      days: int = EXPIRING_DAYS) -> list[dict[str, Any]]:
    """Active consents ending within `days`, soonest first, with the talent and live assets."""
    now = now or dt.datetime.now(dt.timezone.utc)
    found = compliance.expiring_consents(session, now=now, within=dt.timedelta(days=days))
    out = []
    for c in found:
        talent = session.get(schema.Talent, uuid.UUID(c.talent_id))
        until = c.valid_until if c.valid_until.tzinfo else c.valid_until.replace(
            tzinfo=dt.timezone.utc)
        out.append({"consent_id": c.consent_id, "talent_id": c.talent_id,
                    "display_name": talent.display_name if talent else c.talent_id,
                    "valid_until": until, "days_left": max(0, (until - now).days),
                    "live_assets": len(c.asset_ids)})
    return out


def latest_audit(session: Session) -> dict[str, Any] | None:
    """The newest audit run's outcome from its audit event: when, who, assets checked,
    violations by kind (the full report is on /audit)."""
    event = session.scalar(select(schema.AuditEvent)
                           .where(schema.AuditEvent.kind == "audit.completed")
                           .order_by(schema.AuditEvent.seq.desc()).limit(1))
    if event is None:
        return None
    payload = dict(event.payload or {})
    counts = {str(k): int(v) for k, v in dict(payload.get("counts") or {}).items()}
    return {"at": event.at, "actor": event.actor, "checked": int(payload.get("checked") or 0),
            "counts": counts, "violations": sum(counts.values())}


def form_choices(session: Session) -> dict[str, list[str]]:
    """Channels, territories and purposes named by any active consent (the form's suggestions)."""
    channels: Counter[str] = Counter()
    territories: Counter[str] = Counter()
    purposes: Counter[str] = Counter()
    for scope in session.scalars(select(schema.Consent.scope)
                                 .where(schema.Consent.status == "active")):
        scope = scope or {}
        channels.update(scope.get("channels", ()))
        territories.update(t for t in scope.get("territories", ()) if t != WORLD)
        purposes.update(scope.get("purposes", ()))
    return {"channels": sorted(channels), "territories": sorted(territories),
            "purposes": sorted(purposes)}


def talent_availability(session: Session, use: Use | None,
                        publish_date: dt.date | None) -> list[dict[str, Any]]:
    """Every talent with whether its consent covers `use` on `publish_date` and, if not, each
    failing clause (what the request's consent gate would refuse). Without a complete use, no
    talent is marked available and the reason says what to fill in."""
    out = []
    for summary in catalogue.list_talent(session):
        entry: dict[str, Any] = {"id": str(summary.id), "display_name": summary.display_name,
                                 "external_ref": summary.external_ref}
        if use is None or publish_date is None:
            entry.update(available=False, pending=True,
                         reasons=["describe the use first: channel, territory, purpose and "
                                  "publish date"])
        else:
            gate = check_consent(session, [str(summary.id)], use, publish_date)
            prefix = f"talent {summary.id}: "
            entry.update(available=gate.allowed, pending=False,
                         reasons=[readable_clause(r.removeprefix(prefix)) for r in gate.refusals])
        out.append(entry)
    return out


_CONSENT_ID = re.compile(r"\bconsent [0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_INSTANT = re.compile(r"\b(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2})(?::\d{2}(?:\.\d+)?)?(?:\+00:00|Z)")


def readable_clause(reason: str) -> str:
    """A consent clause for a page: "the consent" for its id, instants to the minute in UTC."""
    return _INSTANT.sub(r"\1 \2 UTC", _CONSENT_ID.sub("the consent", reason))


def talent_names(session: Session, talent_ids: list[str]) -> dict[str, str]:
    """talent id -> display name (ids that are not talents keep their short form)."""
    found = known_talent_names(session, set(talent_ids))
    return {tid: found.get(tid, tid[:8]) for tid in talent_ids}


def _request_references(session: Session, row: schema.AssetRequest,
                        talents: list[Any]) -> list[dict[str, Any]]:
    """The reference portraits a request's variants were made from (their lineage); before any
    variant exists, the portraits of the request's `talents` (those found, in request order).
    [{"id", "talent_id", "display_name"}], by talent in request order."""
    order = {t.id: i for i, t in enumerate(talents)}
    # One query over the lineage (the asset views would load every score and generation).
    refs = list(session.scalars(
        select(schema.ReferencePortrait)
        .where(schema.ReferencePortrait.id.in_(
            select(schema.Lineage.reference_portrait_id)
            .join(schema.Asset, schema.Asset.id == schema.Lineage.asset_id)
            .where(schema.Asset.request_id == row.id)))))
    if not refs:
        refs = list(session.scalars(select(schema.ReferencePortrait).where(
            schema.ReferencePortrait.talent_id.in_(list(order)))))
    refs.sort(key=lambda r: (order.get(r.talent_id, len(order)), r.created_at))
    names = talent_names(session, sorted({str(r.talent_id) for r in refs}))
    return [{"id": str(r.id), "talent_id": str(r.talent_id),
             "display_name": names[str(r.talent_id)]} for r in refs]


def reference_bytes(session: Session, store: ObjectStore, reference_id: str) -> dict[str, Any]:
    """{"data", "media_type", "sha256"} of a catalogued reference portrait, read by its
    catalogued key only (NotFoundError for an unknown id)."""
    rid = parse_id(reference_id, "reference portrait")
    row = session.get(schema.ReferencePortrait, rid)
    if row is None:
        raise NotFoundError(f"no reference portrait {rid}")
    return {"data": store.get_bytes(row.object_key), "media_type": row.media_type,
            "sha256": row.sha256, "talent_id": str(row.talent_id)}


def gallery_extras(session: Session, request_id: uuid.UUID, doc: dict[str, Any]) -> dict[str, Any]:
    """What a request's page adds to its API document: the submitted spec, the display names of
    the talents scored, and the reference portraits."""
    talent_ids = sorted({t for a in doc["assets"] for t in a["scores"].get("identity", {})})
    row = assets_repo.get_request(session, request_id)
    spec = dict(row.spec or {})
    refs = list(spec.get("talents", ()))
    found = [catalogue.find_talent(session, ref) for ref in refs]
    named = [t.display_name if t is not None else str(ref) for ref, t in zip(refs, found)]
    references = _request_references(session, row, [t for t in found if t is not None])
    return {"spec": spec, "talent_names": talent_names(session, talent_ids),
            "talent_list": named, "references": references}


def spec_ranges() -> dict[str, dict[str, Any]]:
    """The lighting and camera fields' bounds, defaults and descriptions, read from the specs
    the CLI parses (so the form offers exactly what a request file accepts)."""
    from annotated_types import Ge, Le

    from castkeep.models.specs import CameraSpec, LightingSpec

    out = {}
    for model in (LightingSpec, CameraSpec):
        for name, field in model.model_fields.items():
            lo = next((m.ge for m in field.metadata if isinstance(m, Ge)), None)
            hi = next((m.le for m in field.metadata if isinstance(m, Le)), None)
            if lo is None or hi is None:
                continue
            out[name] = {"min": lo, "max": hi, "default": field.default,
                         "description": field.description or ""}
    return out


def shot_sizes() -> list[str]:
    from castkeep.models.specs import ShotSize

    return [s.value for s in ShotSize]


def hardness_words() -> list[str]:
    from castkeep.models.specs import Hardness

    return [h.value for h in Hardness]


def max_variants() -> int:
    from castkeep.models.request_spec import MAX_VARIANTS

    return MAX_VARIANTS


def form_use(*, channel: str, territory: str, purpose: str, edits: tuple[str, ...],
             engine: str) -> Use | None:
    """The use a request form asks consent for (as `use_of` makes it from a request), or None
    while a field is missing."""
    from castkeep.provenance.policy import PHOTOGRAPHIC_ENGINES

    if not (channel.strip() and territory.strip() and purpose.strip()):
        return None
    return Use(channel=channel, territory=territory, purpose=purpose, edits=edits,
               synthetic_likeness=engine not in PHOTOGRAPHIC_ENGINES)
