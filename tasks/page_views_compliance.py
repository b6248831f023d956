"""What the asset, talent and audit pages show, built from the catalogue: the consent register
(each talent's consents with scope, validity, expiring-soon flag and status), one talent's
references and the assets that depict it, an asset's lineage by name, the assets a revocation
would quarantine (with channel and campaign), and the audit report's violations grouped by
kind. Plain functions over a session."""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from castkeep.db import catalogue, schema
from castkeep.db.ids import parse_id
from castkeep.errors import NotFoundError
from castkeep.provenance.consent import ConsentTerms
from castkeep.vocab import WITHDRAWN_ASSET_STATUSES, ConsentStatus

EXPIRING_DAYS = 30


def _now(now: dt.datetime | None) -> dt.datetime:
    return now or dt.datetime.now(dt.timezone.utc)


def consent_view(terms: ConsentTerms, *, external_ref: str | None,
                 now: dt.datetime) -> dict[str, Any]:
    """A consent as the register shows it: scope, validity, days left, and a state that says
    whether it can be used now (active and in its window), ends soon, or not."""
    active = terms.status == ConsentStatus.ACTIVE
    started = terms.valid_from <= now
    ended = terms.valid_until < now
    days_left = (terms.valid_until - now).days
    if not active:
        state = str(terms.status)
    elif ended:
        state = "lapsed"
    elif not started:
        state = "not_yet_valid"
    elif days_left <= EXPIRING_DAYS:
        state = "expiring"
    else:
        state = "valid"
    return {
        "id": terms.id, "external_ref": external_ref, "status": terms.status, "state": state,
        "valid_from": terms.valid_from, "valid_until": terms.valid_until,
        "days_left": max(0, days_left), "channels": list(terms.channels),
        "territories": list(terms.territories), "purposes": list(terms.purposes),
        "edits": list(terms.edits), "synthetic_likeness": terms.synthetic_likeness,
        "ai_training": terms.ai_training, "minor": terms.minor,
        "revocable": active,
    }


def _consent_refs(session: Session, ids: list[str]) -> dict[str, str | None]:
    if not ids:
        return {}
    rows = session.execute(select(schema.Consent.id, schema.Consent.external_ref)
                           .where(schema.Consent.id.in_([uuid.UUID(i) for i in ids])))
    return {str(cid): ref for cid, ref in rows}


def _asset_counts(session: Session) -> dict[str, dict[str, int]]:
    """talent id -> {asset status: count} over the assets whose lineage names the talent."""
    rows = session.execute(
        select(schema.Lineage.talent_id, schema.Asset.id, schema.Asset.status)
        .join(schema.Asset, schema.Asset.id == schema.Lineage.asset_id)
        .where(schema.Lineage.talent_id.is_not(None)).distinct())
    out: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for tid, _aid, status in rows:
        out[str(tid)][status] += 1
    return out


def talent_register(session: Session, *, now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Every talent with its consents (see `consent_view`), reference count and the assets that
    depict it by status; talents whose consents need attention (expiring, lapsed, revoked) say
    so in `attention`."""
    now = _now(now)
    counts = _asset_counts(session)
    out = []
    for summary in catalogue.list_talent(session):
        detail = catalogue.show_talent(session, str(summary.id))
        refs = _consent_refs(session, [t.id for t in detail.consents])
        consents = [consent_view(t, external_ref=refs.get(t.id), now=now)
                    for t in detail.consents]
        by_status = dict(counts.get(str(summary.id), {}))
        out.append({
            "id": str(summary.id), "external_ref": summary.external_ref,
            "display_name": summary.display_name, "references": summary.references,
            "consents": consents, "assets": by_status, "asset_total": sum(by_status.values()),
            "usable": any(c["state"] in ("valid", "expiring") for c in consents),
            "attention": any(c["state"] not in ("valid",) for c in consents),
        })
    return out


def talent_page(session: Session, talent_id: str, *,
                now: dt.datetime | None = None) -> dict[str, Any]:
    """One talent: consents, reference portraits (catalogued rows only) and the assets that
    depict it (through lineage) with status, use and request; NotFoundError when unknown."""
    now = _now(now)
    tid = parse_id(talent_id, "talent")
    talent = session.get(schema.Talent, tid)
    if talent is None:
        raise NotFoundError(f"no talent {tid}; the register at /talents lists every talent")
    detail = catalogue.show_talent(session, str(tid))
    refs = _consent_refs(session, [t.id for t in detail.consents])
    consents = [consent_view(t, external_ref=refs.get(t.id), now=now) for t in detail.consents]
    for c in consents:
        c["ended"] = _ended(session, c["id"]) if c["status"] != ConsentStatus.ACTIVE else None
    references = [{"id": str(r.id), "consent_id": str(r.consent_id), "source_name": r.source_name,
                   "width": r.width, "height": r.height, "created_at": r.created_at}
                  for r in detail.references]
    rows = session.execute(
        select(schema.Asset, schema.Lineage.consent_id, schema.AssetRequest.campaign)
        .join(schema.Lineage, schema.Lineage.asset_id == schema.Asset.id)
        .outerjoin(schema.AssetRequest, schema.AssetRequest.id == schema.Asset.request_id)
        .where(schema.Lineage.talent_id == tid)
        .order_by(schema.Asset.created_at.desc(), schema.Asset.id))
    assets: dict[str, dict[str, Any]] = {}
    for asset, consent_id, campaign in rows:
        entry = assets.setdefault(str(asset.id), _asset_row(asset, campaign))
        if consent_id is not None:
            entry["consents"].append(str(consent_id))
    return {"id": str(tid), "external_ref": talent.external_ref,
            "display_name": talent.display_name, "consents": consents,
            "references": references, "assets": list(assets.values())}


def _ended(session: Session, consent_id: str) -> dict[str, Any] | None:
    """Who ended a consent (revoked or expired), when and why: its newest such event."""
    event = session.scalar(
        select(schema.ConsentEvent)
        .where(schema.ConsentEvent.consent_id == uuid.UUID(consent_id),
               schema.ConsentEvent.kind.in_([ConsentStatus.REVOKED, ConsentStatus.EXPIRED]))
        .order_by(schema.ConsentEvent.at.desc()).limit(1))
    if event is None:
        return None
    return {"kind": event.kind, "at": event.at, "actor": event.actor, "reason": event.reason}


def _asset_row(asset: schema.Asset, campaign: str | None) -> dict[str, Any]:
    use = dict(asset.use or {})
    return {"id": str(asset.id), "status": asset.status, "reason": asset.status_reason,
            "campaign": campaign, "channel": use.get("channel"), "territory": use.get("territory"),
            "purpose": use.get("purpose"), "created_at": asset.created_at,
            "withdrawn": asset.status in WITHDRAWN_ASSET_STATUSES, "consents": []}


def consent_page(session: Session, consent_id: str, *,
                 now: dt.datetime | None = None) -> dict[str, Any]:
    """A consent with its talent (for the revocation pages); NotFoundError when unknown."""
    cid = parse_id(consent_id, "consent")
    row = session.get(schema.Consent, cid)
    if row is None:
        raise NotFoundError(f"no consent {cid}; open the talent's page at /talents to find it")
    talent = session.get(schema.Talent, row.talent_id)
    return {**consent_view(ConsentTerms.from_row(row), external_ref=row.external_ref,
                           now=_now(now)),
            "talent_id": str(row.talent_id), "talent_ref": talent.external_ref,
            "talent_name": talent.display_name}


def assets_by_ids(session: Session, asset_ids: list[str]) -> list[dict[str, Any]]:
    """The catalogue rows of `asset_ids` (in that order) with use and campaign: what a revocation
    preview lists."""
    ids = [uuid.UUID(str(a)) for a in asset_ids]
    if not ids:
        return []
    rows = {a.id: (a, c) for a, c in session.execute(
        select(schema.Asset, schema.AssetRequest.campaign)
        .outerjoin(schema.AssetRequest, schema.AssetRequest.id == schema.Asset.request_id)
        .where(schema.Asset.id.in_(ids)))}
    return [_asset_row(*rows[i]) for i in ids if i in rows]


def asset_lineage(session: Session, lineage: dict[str, list[str]]) -> dict[str, Any]:
    """An asset's lineage ids (as the API document has them) by name: reference portraits with
    their talent, and consents with their reference, status and talent."""
    refs = []
    for rid in lineage.get("references", ()):
        row = session.get(schema.ReferencePortrait, uuid.UUID(rid))
        if row is None:
            continue
        talent = session.get(schema.Talent, row.talent_id)
        refs.append({"id": rid, "talent_id": str(row.talent_id),
                     "display_name": talent.display_name if talent else str(row.talent_id)[:8],
                     "source_name": row.source_name})
    consents = []
    for cid in lineage.get("consents", ()):
        row = session.get(schema.Consent, uuid.UUID(cid))
        if row is None:
            continue
        talent = session.get(schema.Talent, row.talent_id)
        consents.append({"id": cid, "external_ref": row.external_ref, "status": row.status,
                         "valid_until": row.valid_until, "talent_id": str(row.talent_id),
                         "display_name": talent.display_name if talent else ""})
    return {"references": refs, "consents": consents}


def campaign_of(session: Session, request_id: str | None) -> str | None:
    if not request_id:
        return None
    row = session.get(schema.AssetRequest, uuid.UUID(str(request_id)))
    return row.campaign if row is not None else None


def talent_names(session: Session, ids: set[str]) -> dict[str, str]:
    out = {}
    for tid in ids:
        try:
            talent = session.get(schema.Talent, uuid.UUID(tid))
        except ValueError:
            continue
        if talent is not None:
            out[tid] = talent.display_name
    return out


def audit_view(session: Session, report: dict[str, Any] | None) -> dict[str, Any] | None:
    """The latest audit report for its page: violations grouped by kind (largest first), the
    talents they name by display name, and the expiring consents with their talent."""
    if report is None:
        return None
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for v in report.get("violations", ()):
        groups[str(v.get("kind"))].append(v)
    named = {v.get("talent_id") for v in report.get("violations", ()) if v.get("talent_id")}
    named |= {e.get("talent_id") for e in report.get("expiring", ()) if e.get("talent_id")}
    return {
        "generated_at": report.get("generated_at"), "actor": report.get("actor"),
        "checked": report.get("checked", 0), "clean": bool(report.get("clean")),
        "events_checked": report.get("audit_events_checked", 0),
        "violations": len(report.get("violations", ())),
        "kinds": sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0])),
        "expiring": list(report.get("expiring", ())),
        "expiring_days": report.get("expiring_within_days"),
        "names": talent_names(session, {str(t) for t in named}),
    }
