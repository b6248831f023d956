"""The documents the web API answers with, built from the catalogue: a request with its progress,
an asset with its history and Content Credentials summary, talents (full for compliance, names
and a usable flag for requesters), who owns a request, and a consent's restricted release
document (each read an audit event). Plain functions over a session or a Runtime."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from castkeep.db import assets_repo, catalogue, catalogue_reads, schema
from castkeep.db.audit_log import append_event
from castkeep.db.ids import parse_id  # noqa: F401 - also what the web app validates ids with
from castkeep.db.object_store import ObjectStore
from castkeep.errors import NotFoundError, ObjectNotFoundError, ObjectStoreError
from castkeep.provenance.consent import ConsentTerms
from castkeep.vocab import ConsentStatus, WITHDRAWN_ASSET_STATUSES

# Audit event kinds that belong to an asset's history, and the payload field holding a comment.
_COMMENT_FIELDS = ("comment", "reason")


def request_owner(session: Session, request_id: uuid.UUID) -> tuple[str | None, str | None]:
    """(submitted_by, team) of a request (NotFoundError when there is none)."""
    row = assets_repo.get_request(session, request_id)
    return row.submitted_by, row.team


def request_document(session: Session, request_id: uuid.UUID, *,
                     store: ObjectStore | None = None) -> dict[str, Any]:
    """{"id", "status", "campaign", "submitted_by", "progress": {"done", "total"}, "assets":
    [{"id", "variant", "status", "passed", "scores", "reasons"}], "refusals"}: what the API
    answers and `castkeep request show --json` prints (db/catalogue_reads.request_document).
    With the object `store` (the CLI runs where the objects are) each asset also has its `path`
    and the document the request's `contact_sheet` (None before its report); the API never
    sends store locations."""
    found = catalogue_reads.request_document(catalogue_reads.driver_connection(session), request_id)
    return found.with_locations(store) if store is not None else found.document


def visible_request_ids(session: Session, *, username: str, team: str | None,
                        limit: int = 50) -> list[dict[str, Any]]:
    """Recent requests, newest first; with `team`, a requester's own and their team's."""
    return catalogue_reads.recent_requests(catalogue_reads.driver_connection(session),
                                           limit=limit, username=username, team=team)


def asset_history(session: Session, asset_id: uuid.UUID) -> list[dict[str, Any]]:
    """[{"event", "actor", "at", "comment"}] from the audit log, oldest first."""
    rows = session.scalars(
        select(schema.AuditEvent)
        .where(schema.AuditEvent.entity_id == str(asset_id))
        .order_by(schema.AuditEvent.seq)
    )
    out = []
    for e in rows:
        payload = dict(e.payload or {})
        comment = next((payload[k] for k in _COMMENT_FIELDS if payload.get(k)), None)
        out.append({"event": e.kind, "actor": e.actor, "at": e.at.isoformat(),
                    "comment": comment})
    return out


def asset_document(session: Session, store: ObjectStore, asset_id: str, *,
                   trust_anchors: list) -> dict[str, Any]:
    """An asset's status, scores, lineage, Content Credentials summary (the `verify --json`
    fields of its stored file) and history."""
    from castkeep.provenance.verify import verify_bytes

    aid = parse_id(asset_id, "asset")
    v = assets_repo.asset_view(session, aid)
    data = store.get_bytes(v.object_key)
    report = verify_bytes(data, v.media_type, trust_anchors=trust_anchors).to_dict()
    return {
        "id": v.id, "request_id": v.request_id, "variant": v.variant, "status": v.status,
        "reason": v.status_reason, "passed": v.passed, "sha256": v.sha256,
        "media_type": v.media_type, "width": v.width, "height": v.height, "engine": v.engine,
        "scores": v.scores_summary(),
        "lineage": {"talents": list(v.talent_ids), "consents": list(v.consent_ids),
                    "references": list(v.reference_ids)},
        "c2pa": {k: report.get(k) for k in (
            "state", "failures", "signer", "signed_at", "actions", "ingredients", "consent",
            "scores", "training_mining", "has_manifest", "sha256")},
        "history": asset_history(session, aid),
    }


def asset_download(session: Session, store: ObjectStore, asset_id: str) -> dict[str, Any]:
    """{"status", "withdrawn", "data", "media_type", "filename"} of a catalogued asset's signed
    file (read by its catalogued key only); filename = campaign-talents-variant.ext."""
    aid = parse_id(asset_id, "asset")
    row = assets_repo.get_asset(session, aid)
    withdrawn = row.status in WITHDRAWN_ASSET_STATUSES
    out: dict[str, Any] = {"id": str(row.id), "status": row.status, "withdrawn": withdrawn}
    if withdrawn:
        return out
    v = assets_repo.asset_view(session, aid)
    campaign = "asset"
    if row.request_id is not None:
        campaign = assets_repo.get_request(session, row.request_id).campaign
    names = []
    for tid in v.talent_ids:
        talent = session.get(schema.Talent, uuid.UUID(tid))
        names.append(talent.external_ref or talent.display_name if talent else tid[:8])
    ext = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}.get(v.media_type, "bin")
    out.update(data=store.get_bytes(row.object_key), media_type=v.media_type, sha256=row.sha256,
               filename=safe_filename("-".join([campaign, *names, f"v{v.variant}"])) + "." + ext)
    return out


def safe_filename(text: str) -> str:
    """Letters, digits, dot, dash and underscore only (spaces become dashes), at most 120."""
    cleaned = "".join(c if c.isascii() and (c.isalnum() or c in "._-") else "-"
                      for c in text.strip().replace(" ", "-"))
    while "--" in cleaned:
        cleaned = cleaned.replace("--", "-")
    return cleaned.strip("-.")[:120] or "asset"


def _usable(terms: list[ConsentTerms], *, channel: str | None, territory: str | None,
            now: dt.datetime) -> bool:
    for t in terms:
        if t.status != ConsentStatus.ACTIVE or not (t.valid_from <= now <= t.valid_until):
            continue
        if channel and channel not in t.channels:
            continue
        if territory and territory not in t.territories:
            continue
        return True
    return False


def talents_document(session: Session, *, full: bool, channel: str | None = None,
                     territory: str | None = None) -> list[dict[str, Any]]:
    """Every talent: {"id", "display_name", "usable"} (+ "external_ref" and "consents" with
    scope and validity when `full`)."""
    now = dt.datetime.now(dt.timezone.utc)
    out = []
    for summary in catalogue.list_talent(session):
        detail = catalogue.show_talent(session, str(summary.id))
        entry: dict[str, Any] = {
            "id": str(summary.id), "display_name": summary.display_name,
            "usable": _usable(detail.consents, channel=channel, territory=territory, now=now),
        }
        if full:
            entry["external_ref"] = summary.external_ref
            entry["consents"] = [
                {"id": t.id, "status": t.status, "valid_from": t.valid_from.isoformat(),
                 "valid_until": t.valid_until.isoformat(), "scope": t.scope_summary(),
                 "synthetic_likeness": t.synthetic_likeness, "ai_training": t.ai_training}
                for t in detail.consents
            ]
        out.append(entry)
    return out


def thumbnail_bytes(data: bytes, size: int) -> bytes:
    """A JPEG rendition at most `size` pixels a side (no metadata carried over)."""
    import io

    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        image = image.convert("RGB")
        image.thumbnail((size, size))
        out = io.BytesIO()
        image.save(out, format="JPEG", quality=80)
    return out.getvalue()


def latest_audit_report(session: Session, store: ObjectStore) -> dict[str, Any] | None:
    """The JSON report of the newest audit run, or None before the first."""
    import json

    payload = session.scalar(
        select(schema.AuditEvent.payload)
        .where(schema.AuditEvent.kind == "audit.completed")
        .order_by(schema.AuditEvent.seq.desc())
        .limit(1)
    )
    if not payload or not payload.get("report_key"):
        return None
    return json.loads(store.get_bytes(payload["report_key"]))


# Release documents are what ingest stored: these extensions, else served as opaque bytes.
_DOC_MEDIA_TYPES = {"pdf": "application/pdf", "txt": "text/plain; charset=utf-8",
                    "jpg": "image/jpeg", "jpeg": "image/jpeg", "png": "image/png",
                    "tif": "image/tiff", "tiff": "image/tiff"}
RELEASE_DOCUMENT_READ = "consent.release_document_read"


def read_release_document(runtime, consent_id: str, *, actor: str) -> dict[str, Any]:
    """A consent's release document for a compliance reader: {"state": "ok", "data",
    "media_type", "filename", "sha256"} after checking the stored bytes against the catalogued
    sha256; {"state": "mismatch" | "missing"} (no bytes) otherwise. Each delivered read appends
    an audit event (actor, consent id, sha256) in the transaction that read the row, so a read
    is never served without its record. The store key never leaves this function."""
    import hashlib

    cid = parse_id(consent_id, "consent")
    with runtime.sessions.begin() as session:
        consent = session.get(schema.Consent, cid)
        if consent is None:
            raise NotFoundError(f"no consent {cid}; `castkeep talent show TALENT` lists a "
                                "talent's consents")
        try:
            data = runtime.store.get_bytes(consent.release_doc_key)
        except ObjectNotFoundError:
            return {"state": "missing"}
        except ObjectStoreError:  # its message names the store path: not for the client
            return {"state": "unreadable"}
        if hashlib.sha256(data).hexdigest() != consent.release_doc_sha256:
            return {"state": "mismatch"}
        talent = session.get(schema.Talent, consent.talent_id)
        ext = consent.release_doc_key.rsplit(".", 1)[-1]
        name = safe_filename("-".join(["release", (talent.external_ref if talent else None)
                                       or "talent", consent.external_ref or str(cid)[:8]]))
        append_event(session, actor=actor, kind=RELEASE_DOCUMENT_READ, entity_type="consent",
                     entity_id=str(cid), payload={"sha256": consent.release_doc_sha256})
        return {"state": "ok", "data": data, "sha256": consent.release_doc_sha256,
                "media_type": _DOC_MEDIA_TYPES.get(ext, "application/octet-stream"),
                "filename": f"{name}.{ext if ext in _DOC_MEDIA_TYPES else 'bin'}"}
