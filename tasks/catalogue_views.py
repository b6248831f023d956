"""Read-only views of the catalogue for the command line (and any other edge): talent, consents,
requests, assets, and the lookup of a file by its content.

Plain functions over an open session (and the object store where a view shows where a file
lives). No Prefect and no models are imported here, so the read-only commands start fast.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from castkeep.db import assets_repo, catalogue, schema
from castkeep.db.ids import parse_id
from castkeep.db.object_store import ObjectStore, object_location
from castkeep.provenance.consent import ConsentTerms
from castkeep.vocab import WITHDRAWN_ASSET_STATUSES

__all__ = [
    "AssetFile",
    "asset_file",
    "consent_details",
    "parse_request_id",
    "report_keys",
    "request_summary",
]


def parse_request_id(value: str | uuid.UUID) -> uuid.UUID:
    """A request id from a command line, or NotFoundError saying a UUID was expected."""
    return parse_id(value, "request")


def consent_details(session: Session, consent_id: str) -> dict[str, Any]:
    """JSON-ready view of a consent (by id or the agency's reference): terms, status history
    and the portraits it covers."""
    row = catalogue.get_consent(session, consent_id)
    terms = ConsentTerms.from_row(row)
    talent = session.get(schema.Talent, row.talent_id)
    refs = session.scalars(select(schema.ReferencePortrait).where(
        schema.ReferencePortrait.consent_id == row.id).order_by(schema.ReferencePortrait.created_at))
    return {
        "id": terms.id,
        "consent_ref": row.external_ref,
        "talent": {"id": str(talent.id), "external_ref": talent.external_ref,
                   "display_name": talent.display_name},
        "status": terms.status,
        "valid_from": terms.valid_from.isoformat(),
        "valid_until": terms.valid_until.isoformat(),
        "scope": terms.scope_summary(),
        "synthetic_likeness": terms.synthetic_likeness,
        "ai_training": terms.ai_training,
        "minor": terms.minor,
        "guardian": row.guardian,
        "signed_by": row.signed_by,
        "notes": row.notes,
        "release_doc_sha256": row.release_doc_sha256,
        "events": [{"kind": e.kind, "at": e.at.isoformat(), "actor": e.actor, "reason": e.reason}
                   for e in catalogue.consent_events(session, row.id)],
        "references": [{"id": str(r.id), "sha256": r.sha256, "source_name": r.source_name}
                       for r in refs],
    }


def request_summary(session: Session, store: ObjectStore, request_id: uuid.UUID) -> dict[str, Any]:
    """{"request_id", "status", "campaign", "assets": [{"id", "variant", "path", "passed",
    "status", "reason", "scores"}], "refusals", "rejected_attempts", "contact_sheet"}: the same
    document the request flow returns."""
    view = assets_repo.request_view(session, request_id)
    keys = report_keys(session, request_id) or {}
    sheet_key = keys.get("contact_sheet")
    return {
        "request_id": view.id,
        "status": view.status,
        "campaign": view.campaign,
        "assets": [
            {
                "id": a.id,
                "variant": a.variant,
                "path": object_location(store, a.object_key),
                "passed": a.passed,
                "status": a.status,
                "reason": a.status_reason,
                "scores": a.scores_summary(),
            }
            for a in view.assets
        ],
        "refusals": list(view.refusals),
        "rejected_attempts": view.rejected_attempts,
        "contact_sheet": object_location(store, sheet_key) if sheet_key else None,
    }


def report_keys(session: Session, request_id: uuid.UUID) -> dict[str, str] | None:
    """Object keys of the latest report of a request (from its audit event); None before the
    request has one."""
    payload = session.scalar(
        select(schema.AuditEvent.payload)
        .where(
            schema.AuditEvent.kind == "request.report",
            schema.AuditEvent.entity_id == str(request_id),
        )
        .order_by(schema.AuditEvent.seq.desc())
        .limit(1)
    )
    return dict(payload) if payload else None


@dataclass(frozen=True)
class AssetFile:
    """Where an asset's signed file is, what it must hash to, and whether it was withdrawn."""

    id: str
    object_key: str
    sha256: str
    status: str
    withdrawn: bool  # quarantined or rejected: it must not be used


def asset_file(session: Session, asset_id: str) -> AssetFile:
    """The stored file of an asset (NotFoundError says how to find asset ids)."""
    row = assets_repo.get_asset(session, asset_id)
    return AssetFile(id=str(row.id), object_key=row.object_key, sha256=row.sha256,
                     status=row.status, withdrawn=row.status in WITHDRAWN_ASSET_STATUSES)
