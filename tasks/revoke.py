"""The revocation cascade: a consent ends (revoked by the talent, or expired), and every asset
derived under it (lineage) or showing the talent's face without other cover is quarantined:
status `quarantined` plus a legal hold in the object store. Nothing is ever deleted.

Idempotent: a second run finds the consent already in that state and every asset already
quarantined, and changes nothing.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import select

from castkeep.db import compliance, placements, schema
from castkeep.errors import ConsentStateError
from castkeep.models.faces.face_types import EncoderInfo
from castkeep.progress import report as report_progress


@dataclass(frozen=True)
class CascadeResult:
    consent_id: str
    talent_id: str
    status: str
    previous_status: str
    changed: bool  # the consent's status changed in this run
    quarantined: list[str]  # assets quarantined in this run
    derived: list[str] = field(default_factory=list)  # assets reached through lineage
    face_matched: list[str] = field(default_factory=list)  # assets reached through face search
    held: list[str] = field(default_factory=list)  # object keys put on legal hold in this run
    # takedowns opened in this run: one per placement of a quarantined asset
    takedowns: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _consent_for_update(session, consent_id: str | uuid.UUID) -> schema.Consent:
    from castkeep.db.catalogue import get_consent

    consent = get_consent(session, consent_id)
    # Row lock, taken before anything is recorded: two cascades on one consent run one after the
    # other, and it conflicts with the FOR SHARE a publish holds (db/compliance.py), so a publish
    # either commits first (and this cascade then sees and quarantines it) or sees this change.
    query = (
        select(schema.Consent)
        .where(schema.Consent.id == consent.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return session.scalars(query).one()


def cascade(
    session,
    store,
    *,
    consent_id: str | uuid.UUID,
    status: str,
    reason: str,
    actor: str,
    face: EncoderInfo | None,
) -> CascadeResult:
    """Move a consent to `status` (revoked|expired) and quarantine what it covered. Runs in the
    caller's transaction; legal holds are set before the caller commits, so a failure leaves the
    catalogue unchanged (a hold on an object is harmless and the next run completes the rest).

    `face`: the encoder (name, metric, threshold) for the face search, or None to skip it.
    """
    if status not in ("revoked", "expired"):
        raise ValueError(f"cascade status must be revoked or expired, not {status!r}")
    consent = _consent_for_update(session, consent_id)
    previous = consent.status
    if status == "expired" and previous == "revoked":
        # Revocation is the stronger fact; an expiry run leaves it as it is.
        status = "revoked"
    changed = previous != status
    if changed:
        compliance.set_consent_status(session, consent, status, actor=actor, reason=reason)

    derived, matched = _targets(session, consent, face)
    detail = {"consent_id": str(consent.id), "talent_id": str(consent.talent_id), "cascade": status}
    quarantined = compliance.quarantine_assets(
        session, [*derived, *matched], actor=actor, reason=f"consent {consent.id} {status}: {reason}", detail=detail
    )
    rows = compliance.assets_by_id(session, [*derived, *matched])
    # Every placement of every asset this cascade reaches that is quarantined (now or by an
    # earlier run) gets a takedown task, once.
    takedowns = placements.open_takedowns(
        session, [r.id for r in rows if r.status == "quarantined"], actor=actor,
        reason=f"consent {consent.id} {status}: {reason}")
    held = []
    # Holds for everything this consent's cascade has quarantined, so a run that crashed after
    # its commit but before a hold is completed by the next run.
    # Progress: the assets reached, each with its hold checked (the slow part on S3).
    for i, row in enumerate(rows):
        if row.status == "quarantined" and not store.legal_hold(row.object_key):
            store.set_legal_hold(row.object_key, True)
            held.append(row.object_key)
        report_progress("quarantine", i + 1, len(rows), quarantined=len(quarantined),
                        held=len(held))
    return CascadeResult(
        consent_id=str(consent.id),
        talent_id=str(consent.talent_id),
        status=status,
        previous_status=previous,
        changed=changed,
        quarantined=sorted(str(r.id) for r in quarantined),
        derived=[str(a) for a in derived],
        face_matched=[str(a) for a in matched],
        held=held,
        takedowns=[_takedown_ref(t) for t in takedowns],
    )


def _takedown_ref(t) -> dict[str, Any]:
    return {"id": t.id, "asset_id": t.asset_id, "channel": t.channel, "url": t.url,
            "territory": t.territory}


def _targets(session, consent: schema.Consent,
             face: EncoderInfo | None) -> tuple[list[uuid.UUID], list[uuid.UUID]]:
    """(derived through lineage, matched by face without other cover), in every status."""
    # All statuses: already-quarantined assets are skipped by the caller but get their hold checked.
    derived = compliance.assets_under_consent(session, consent.id, statuses=None)
    matched: list[uuid.UUID] = []
    if face is not None:
        hits = compliance.asset_faces_matching(
            session,
            encoder=face.name,
            metric=face.metric,
            threshold=float(face.threshold),
            talent_id=consent.talent_id,
            statuses=None,
        )
        candidates = sorted({uuid.UUID(h.asset_id) for h in hits} - set(derived), key=str)
        covered = compliance.other_active_consent_links(
            session, candidates, talent_id=consent.talent_id, excluding=consent.id
        )
        matched = [a for a in candidates if a not in covered]
    return derived, matched


def dry_run(runtime, *, consent_id: str, face: EncoderInfo | None) -> dict[str, Any]:
    """What a revocation of this consent would do now: the assets it would quarantine and the
    takedowns it would open. Reads only: no status, no event, no hold, no lock."""
    from castkeep.db.catalogue import get_consent

    with runtime.sessions() as session:
        consent = get_consent(session, consent_id)
        derived, matched = _targets(session, consent, face)
        rows = compliance.assets_by_id(session, [*derived, *matched])
        would = sorted(str(r.id) for r in rows if r.status != "quarantined")
        pending = placements.placements_without_takedown(session, [r.id for r in rows])
        return {
            "consent_id": str(consent.id),
            "status": consent.status,
            "dry_run": True,
            "quarantined": would,
            "derived": sorted(str(a) for a in derived),
            "face_matched": sorted(str(a) for a in matched),
            "takedowns": [{"asset_id": str(p.asset_id), "channel": p.channel, "url": p.url,
                           "territory": p.territory} for p in pending],
        }


def revoke(runtime, *, consent_id: str, reason: str, status: str = "revoked", face: EncoderInfo | None,
           actor: str | None = None) -> CascadeResult:
    """Run the cascade in its own transaction; `actor` defaults to the settings' acting user."""
    if not reason or not reason.strip():
        raise ConsentStateError("a revocation needs a reason: pass --reason TEXT")
    with runtime.sessions.begin() as session:
        return cascade(
            session,
            runtime.store,
            consent_id=consent_id,
            status=status,
            reason=reason.strip(),
            actor=actor or runtime.settings.acting_user,
            face=face,
        )


def due_consents(runtime, at: dt.datetime) -> list[str]:
    with runtime.sessions() as session:
        return [str(c.id) for c in compliance.consents_past_due(session, now=at)]
