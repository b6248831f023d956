"""Talent, consent and reference-portrait repository.

Plain functions over a SQLAlchemy Session. Writers add rows and audit events but never commit:
the caller owns the transaction, so an ingest writes talent, consent, reference, face and audit
rows atomically (all or nothing).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from castkeep.db import schema
from castkeep.db.catalogue_reads import (  # noqa: F401 - TalentSummary & co. are also imported from here
    ReferenceSummary,
    TalentDetail,
    TalentSummary,
    driver_connection,
    talent_detail,
    talent_summaries,
)
from castkeep.db.ids import where_listed
from castkeep.errors import ManifestError, NotFoundError
from castkeep.provenance.consent import ConsentManifest, ConsentTerms

if TYPE_CHECKING:  # numpy only where vectors are written or searched (imported there)
    import numpy as np

    from castkeep.models.faces.face_types import DetectedFace

REFERENCES_PREFIX = "references"
RELEASE_DOCS_PREFIX = "restricted/release-docs"


@dataclass(frozen=True)
class ReferenceEmbedding:
    """One reference face of a talent, with its embedding (for identity checks and engines)."""

    reference_portrait_id: uuid.UUID
    face_id: uuid.UUID
    consent_id: uuid.UUID
    sha256: str
    object_key: str
    media_type: str
    embedding: np.ndarray
    encoder: str
    encoder_version: str


def _parse_uuid(value: str | uuid.UUID) -> uuid.UUID | None:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def _lock(session: Session, key: str) -> None:
    # Serialises concurrent creators of the same talent/consent until the transaction ends.
    session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": key})


def _audit(session: Session, **kw) -> None:
    from castkeep.db.audit_log import append_event

    append_event(session, **kw)


# ---------------------------------------------------------------- talent


def find_talent(session: Session, ident: str | uuid.UUID) -> schema.Talent | None:
    """A talent by castkeep id (UUID) or by external reference."""
    tid = _parse_uuid(ident)
    if tid is not None:
        found = session.get(schema.Talent, tid)
        if found is not None:
            return found
    return session.scalar(select(schema.Talent).where(schema.Talent.external_ref == str(ident)))


def resolve_talent(session: Session, ident: str | uuid.UUID) -> schema.Talent:
    talent = find_talent(session, ident)
    if talent is None:
        raise NotFoundError(
            f"no talent {ident!r} in the catalogue: give a talent id or external reference "
            f"({where_listed('talent')})"
        )
    return talent


def upsert_talent(
    session: Session,
    *,
    display_name: str,
    external_ref: str | None = None,
    talent_id: uuid.UUID | None = None,
    actor: str,
) -> schema.Talent:
    """The talent with this id (must exist) or external reference (created when new)."""
    if talent_id is not None:
        talent = session.get(schema.Talent, talent_id)
        if talent is None:
            raise ManifestError(
                f"talent id {talent_id} is not in the catalogue; use `external_ref` for a new talent"
            )
        return talent
    if not external_ref:
        raise ManifestError("a talent needs an id or an external_ref")
    _lock(session, f"talent:{external_ref}")
    talent = session.scalar(
        select(schema.Talent).where(schema.Talent.external_ref == external_ref)
    )
    if talent is not None:
        return talent
    talent = schema.Talent(external_ref=external_ref, display_name=display_name)
    session.add(talent)
    session.flush()
    # No display name in the audit payload: the log is shared more widely than the catalogue.
    _audit(session, actor=actor, kind="talent.created", entity_type="talent",
           entity_id=str(talent.id), payload={"external_ref": external_ref})
    return talent


def list_talent(session: Session) -> list[TalentSummary]:
    return talent_summaries(driver_connection(session))


def show_talent(session: Session, ident: str | uuid.UUID) -> TalentDetail:
    return talent_detail(driver_connection(session), ident)


# ---------------------------------------------------------------- consent


def get_consent(session: Session, consent_id: str | uuid.UUID) -> schema.Consent:
    """A consent by id or by the agency's consent reference; NotFoundError otherwise."""
    cid = _parse_uuid(consent_id)
    row = session.get(schema.Consent, cid) if cid is not None else None
    if row is None:
        row = session.scalar(
            select(schema.Consent).where(schema.Consent.external_ref == str(consent_id))
        )
    if row is None:
        raise NotFoundError(f"no consent {consent_id!r} in the catalogue: give a consent id or the "
                            f"agency's consent reference ({where_listed('consent')})")
    return row


def consent_terms(session: Session, consent_id: str | uuid.UUID) -> ConsentTerms:
    return ConsentTerms.from_row(get_consent(session, consent_id))


def consents_of_talent(
    session: Session, talent_id: uuid.UUID, *, status: str | None = None
) -> list[ConsentTerms]:
    query = select(schema.Consent).where(schema.Consent.talent_id == talent_id)
    if status is not None:
        query = query.where(schema.Consent.status == status)
    query = query.order_by(schema.Consent.created_at, schema.Consent.id)
    return [ConsentTerms.from_row(row) for row in session.scalars(query)]


def consent_events(session: Session, consent_id: uuid.UUID) -> list[schema.ConsentEvent]:
    return list(session.scalars(select(schema.ConsentEvent).where(
        schema.ConsentEvent.consent_id == consent_id).order_by(schema.ConsentEvent.at)))


def get_or_create_consent(
    session: Session,
    *,
    talent_id: uuid.UUID,
    manifest: ConsentManifest,
    release_doc_sha256: str,
    release_doc_key: str,
    actor: str,
) -> schema.Consent:
    """The consent recorded from these exact terms, or a new one (with a 'granted' event).

    The same terms (same manifest digest) for the same talent map to one consent, so re-runs and
    manifests covering several portraits never duplicate it. A `consent_ref` already used for
    different terms is a ManifestError: a consent's terms never change after the fact.
    """
    digest = manifest.terms_digest()
    _lock(session, f"consent:{talent_id}:{digest}")
    existing = session.scalar(select(schema.Consent).where(
        schema.Consent.talent_id == talent_id, schema.Consent.manifest_sha256 == digest))
    if existing is not None:
        return existing
    if manifest.consent_ref:
        clash = session.scalar(select(schema.Consent).where(
            schema.Consent.external_ref == manifest.consent_ref))
        if clash is not None:
            raise ManifestError(
                f"consent_ref {manifest.consent_ref!r} is already recorded (consent {clash.id}) "
                "with different terms; a new agreement needs a new consent_ref"
            )
    scope = manifest.scope
    consent = schema.Consent(
        talent_id=talent_id,
        external_ref=manifest.consent_ref,
        release_doc_sha256=release_doc_sha256,
        release_doc_key=release_doc_key,
        valid_from=manifest.valid_from,
        valid_until=manifest.valid_until,
        scope={"channels": list(scope.channels), "territories": list(scope.territories),
               "purposes": list(scope.purposes), "edits": list(scope.edits)},
        synthetic_likeness=manifest.synthetic_likeness,
        ai_training=manifest.ai_training,
        minor=manifest.minor,
        guardian=manifest.guardian,
        signed_by=manifest.signed_by,
        notes=manifest.notes,
        status="active",
        manifest_sha256=digest,
    )
    session.add(consent)
    session.flush()
    session.add(schema.ConsentEvent(consent_id=consent.id, kind="granted", actor=actor,
                                    data={"manifest_sha256": digest}))
    _audit(session, actor=actor, kind="consent.granted", entity_type="consent",
           entity_id=str(consent.id),
           payload={"talent_id": str(talent_id), "release_doc_sha256": release_doc_sha256,
                    "valid_until": manifest.valid_until.isoformat(),
                    "scope": consent.scope, "synthetic_likeness": manifest.synthetic_likeness,
                    "ai_training": manifest.ai_training})
    return consent


# ---------------------------------------------------------------- references


def reference_by_sha256(session: Session, sha256: str) -> schema.ReferencePortrait | None:
    return session.scalar(
        select(schema.ReferencePortrait).where(schema.ReferencePortrait.sha256 == sha256)
    )


def add_reference(
    session: Session,
    *,
    talent_id: uuid.UUID,
    consent_id: uuid.UUID,
    sha256: str,
    object_key: str,
    media_type: str,
    width: int,
    height: int,
    face: DetectedFace,
    source_name: str | None,
    actor: str,
    ingest_run: str | None = None,
) -> schema.ReferencePortrait:
    """A reference portrait with its one face (embedding) and an audit event (naming the ingest
    run that added it, when given)."""
    from castkeep.db.face_search import add_face

    q = face.quality
    ref = schema.ReferencePortrait(
        talent_id=talent_id, consent_id=consent_id, sha256=sha256, object_key=object_key,
        media_type=media_type, width=width, height=height, source_name=source_name,
        quality={"face_px": q.face_px, "sharpness": q.sharpness, "det_score": q.det_score,
                 "yaw": q.yaw, "roll": q.roll},
    )
    session.add(ref)
    session.flush()
    add_face(session, face, reference_portrait_id=ref.id)
    payload = {"talent_id": str(talent_id), "consent_id": str(consent_id), "sha256": sha256,
               "object_key": object_key, "encoder": face.encoder}
    if ingest_run is not None:
        payload["ingest_run"] = ingest_run
    _audit(session, actor=actor, kind="reference.added", entity_type="reference_portrait",
           entity_id=str(ref.id), payload=payload)
    return ref


def added_by_ingest_run(session: Session, reference_id: uuid.UUID, ingest_run: str) -> bool:
    """Whether ingest run `ingest_run` added this reference (its `reference.added` event says so):
    how a retried chunk tells its own commits from another run's."""
    return session.scalar(
        select(func.count()).select_from(schema.AuditEvent).where(
            schema.AuditEvent.kind == "reference.added",
            schema.AuditEvent.entity_id == str(reference_id),
            schema.AuditEvent.payload["ingest_run"].astext == ingest_run)) > 0


def reference_embeddings(
    session: Session, talent_id: uuid.UUID, encoder: str
) -> list[ReferenceEmbedding]:
    """Every reference face of a talent embedded by `encoder` (vectors of other encoders are
    never returned: they live in a different space)."""
    import numpy as np

    rows = session.execute(
        select(schema.Face, schema.ReferencePortrait)
        .join(schema.ReferencePortrait,
              schema.Face.reference_portrait_id == schema.ReferencePortrait.id)
        .where(schema.ReferencePortrait.talent_id == talent_id, schema.Face.encoder == encoder)
        .order_by(schema.ReferencePortrait.created_at, schema.ReferencePortrait.id)
    )
    return [
        ReferenceEmbedding(
            reference_portrait_id=ref.id, face_id=face.id, consent_id=ref.consent_id,
            sha256=ref.sha256, object_key=ref.object_key, media_type=ref.media_type,
            embedding=np.asarray(face.embedding, dtype=np.float32), encoder=face.encoder,
            encoder_version=face.encoder_version,
        )
        for face, ref in rows
    ]


def reference_distance(
    session: Session, talent_id: uuid.UUID, encoder: str, embedding: np.ndarray, metric: str
) -> tuple[int, float | None]:
    """(number of reference faces of a talent under `encoder`, mean distance of `embedding` to
    them), computed in the database. `metric` is the encoder's: "euclidean" or "cosine"
    (1 - cosine similarity), the same numbers the encoder's `distance` gives."""
    import numpy as np

    vec = np.asarray(embedding, dtype=np.float32).reshape(-1)
    dist = (schema.Face.embedding.l2_distance(vec) if metric == "euclidean"
            else schema.Face.embedding.cosine_distance(vec))
    count, mean = session.execute(
        select(func.count(schema.Face.id), func.avg(dist))
        .join(schema.ReferencePortrait,
              schema.Face.reference_portrait_id == schema.ReferencePortrait.id)
        .where(schema.ReferencePortrait.talent_id == talent_id, schema.Face.encoder == encoder,
               schema.Face.dim == vec.shape[0])
    ).one()
    return int(count), (float(mean) if mean is not None else None)


def catalogued_object_keys(session: Session) -> set[str]:
    """Object keys the catalogue points at under the prefixes gc scans: reference portraits and
    release documents (ingest), and assets plus request reports (request runs)."""
    from castkeep.db.assets_repo import catalogued_asset_keys

    keys = set(session.scalars(select(schema.ReferencePortrait.object_key)))
    keys.update(session.scalars(select(schema.Consent.release_doc_key)))
    keys.update(catalogued_asset_keys(session))
    return keys


# Object metadata key recording when ingest or a request run stored an object (gc's grace period
# reads it).
STORED_AT_META = "stored-at"
ASSETS_PREFIX = "assets"
# reports/ is not scanned: an audit's Markdown and CSV reports are named by no row or event (its
# `audit.completed` event records only the JSON key), so gc could not tell them from orphans.
GC_PREFIXES = (REFERENCES_PREFIX, "restricted", ASSETS_PREFIX)


def stored_at_stamp(now: dt.datetime | None = None) -> dict[str, str]:
    """Metadata for put_bytes that starts an object's gc grace period."""
    now = now or dt.datetime.now(dt.timezone.utc)
    return {STORED_AT_META: now.isoformat(timespec="seconds")}


def orphan_objects(store: Any, keep: set[str], *, stored_before: dt.datetime) -> Iterator[str]:
    """Keys under references/, restricted/ and assets/ that no catalogue row names, stored before
    `stored_before` (objects without a stored-at stamp count as old), and not on legal hold."""
    for prefix in GC_PREFIXES:
        for key in store.list_keys(prefix):
            if key in keep:
                continue
            meta = store.stat(key).metadata or {}
            stamp = meta.get(STORED_AT_META)
            if stamp:
                try:
                    when = dt.datetime.fromisoformat(stamp)
                except ValueError:
                    when = None
                if when is not None and _aware(when) >= stored_before:
                    continue
            if store.legal_hold(key):
                continue
            yield key


def _aware(t: dt.datetime) -> dt.datetime:
    return t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc)


def collect_orphans(
    session: Session, store: Any, *, older_than: dt.timedelta, now: dt.datetime | None = None,
    dry_run: bool = False,
) -> list[str]:
    """Delete (unless `dry_run`) objects under references/, restricted/ and assets/ that no
    catalogue row points at, stored more than `older_than` ago (younger ones may belong to an
    ingest or request run that has not committed yet). Returns their keys."""
    now = now or dt.datetime.now(dt.timezone.utc)
    keep = catalogued_object_keys(session)
    removed = list(orphan_objects(store, keep, stored_before=now - older_than))
    if not dry_run:
        for key in removed:
            store.delete(key)
    return removed
