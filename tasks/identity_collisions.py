"""Identity collisions at ingest: one person is one talent.

A new portrait's face is searched against the reference faces of every *other* talent (pgvector,
an exact scan, the encoder's same-person threshold), whatever the state of their consents
(revoked and expired included). A match rejects the portrait with a reason naming that talent's
external reference and the distance, unless the portrait's consent manifest declares the
relationship:

- ``same_person_as: <ref>``: the manifest's record and that catalogued talent are one person (a
  merged record). The portrait joins that talent, with this manifest's consent; the mislabel
  guard then checks it looks like that talent's references.
- ``lookalike_of: [{talent: <ref>, justification: ...}]``: a different person the encoder may take
  for this talent (an identical twin, a lookalike). Matches with that talent are let through.

Each declaration of an accepted portrait is an audit event (`identity.same_person`,
`identity.lookalike`) with the distance and, for a lookalike, the justification.

The check that decides runs inside the transaction that inserts the reference, after a
per-encoder advisory lock, so two concurrent ingests cannot each accept one face as a different
talent. A cheaper pre-check before objects are stored turns most collisions away early.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from castkeep.db import catalogue, schema
from castkeep.db.face_search import TalentMatch, lock_identities, nearest_talents
from castkeep.errors import IdentityError, ManifestError
from castkeep.models.faces.face_types import DetectedFace
from castkeep.provenance.consent import ConsentManifest

__all__ = [
    "Declaration",
    "check_identity",
    "existing_talent",
    "lock_identities",
    "mislabel_guard",
    "record_declarations",
]

# Matches looked at per portrait: enough to name the nearest undeclared talent after any
# declared ones.
_MATCHES = 10


@dataclass(frozen=True)
class Declaration:
    """A relationship a manifest declares, as recorded for an accepted portrait."""

    kind: str  # "same_person_as" | "lookalike_of"
    declared: str  # the reference as written in the manifest
    talent_id: uuid.UUID | None  # None: no such talent in the catalogue (yet)
    distance: float | None  # nearest reference face of that talent, in the encoder's metric
    justification: str | None = None


def existing_talent(session: Session, manifest: ConsentManifest) -> schema.Talent | None:
    """The catalogued talent a manifest's portraits join: the one `same_person_as` names (which
    must exist), else the manifest's own talent when it is already catalogued."""
    if manifest.same_person_as is not None:
        talent = catalogue.find_talent(session, manifest.same_person_as)
        if talent is None:
            raise ManifestError(
                f"same_person_as {manifest.same_person_as!r} is not in the catalogue; ingest that "
                "talent first, or remove same_person_as for a new talent")
        return talent
    ref = manifest.talent
    ident = ref.id if ref.id is not None else ref.external_ref
    return catalogue.find_talent(session, ident) if ident is not None else None


def mislabel_guard(session: Session, manifest: ConsentManifest, face: DetectedFace,
                   info: Any) -> schema.Talent | None:
    """A new portrait must look like the references of the talent it joins (its own, or the one
    `same_person_as` names), including ones accepted earlier in the same run (committed by
    then): mean distance within the encoder's same-person threshold. Returns that talent (None
    for a new one)."""
    talent = existing_talent(session, manifest)
    if talent is None:
        if manifest.talent.id is not None:
            raise ManifestError(
                f"talent id {manifest.talent.id} is not in the catalogue; use `external_ref` for "
                "a new talent")
        return None
    count, mean = catalogue.reference_distance(session, talent.id, info.name, face.embedding,
                                               info.metric)
    if count and mean is not None and mean > info.threshold:
        label = manifest.same_person_as or manifest.talent.external_ref or str(manifest.talent.id)
        raise IdentityError(
            f"face does not match talent {label}'s {count} other "
            f"reference{'s' if count != 1 else ''} (distance {mean:.2f} > "
            f"{info.threshold:.2f}); check the manifest names the right person")
    return talent


def check_identity(session: Session, manifest: ConsentManifest, face: DetectedFace, info: Any,
                   talent_id: uuid.UUID | None) -> list[Declaration]:
    """Search `face` against every talent but `talent_id` (the one the portrait joins; None for
    a new talent). Raises IdentityError for the nearest match the manifest does not
    declare; returns the manifest's declarations with their distances."""
    exclude = (talent_id,) if talent_id is not None else ()
    matches = nearest_talents(session, face.embedding, encoder=face.encoder, metric=info.metric,
                              within=info.threshold, exclude_talents=exclude, limit=_MATCHES)
    lookalikes = {item.talent: item for item in manifest.lookalike_of}
    declared_ids: dict[uuid.UUID, str] = {}
    for ref in lookalikes:
        talent = catalogue.find_talent(session, ref)
        if talent is not None and talent.id != talent_id:
            declared_ids[talent.id] = ref
    for match in matches:
        if match.talent_id not in declared_ids:
            raise IdentityError(_collision_reason(match, info))

    declarations: list[Declaration] = []
    if manifest.same_person_as is not None and talent_id is not None:
        declarations.append(Declaration("same_person_as", manifest.same_person_as, talent_id,
                                        _nearest(session, face, info, talent_id)))
    resolved = {ref: tid for tid, ref in declared_ids.items()}
    for ref, item in lookalikes.items():
        tid = resolved.get(ref)
        distance = _nearest(session, face, info, tid) if tid is not None else None
        declarations.append(Declaration("lookalike_of", ref, tid, distance, item.justification))
    return declarations


def _nearest(session: Session, face: DetectedFace, info: Any, talent_id: uuid.UUID) -> float | None:
    found = nearest_talents(session, face.embedding, encoder=face.encoder, metric=info.metric,
                            only_talents=(talent_id,), limit=1)
    return found[0].distance if found else None


def _collision_reason(match: TalentMatch, info: Any) -> str:
    return (
        f"face matches talent {match.label} (distance {match.distance:.2f} <= "
        f"{info.threshold:.2f}, reference {match.reference_portrait_id}); one person is one "
        f"talent: if this is that person, declare `same_person_as: {match.label}` in "
        f"the manifest; if it is another person (a twin, a lookalike), declare `lookalike_of` "
        f"{match.label} with a justification")


def record_declarations(session: Session, declarations: list[Declaration], *, reference_id: Any,
                        talent_id: Any, manifest: ConsentManifest, actor: str) -> None:
    """One audit event per declaration of an accepted portrait (in its transaction)."""
    from castkeep.db.audit_log import append_event

    for d in declarations:
        payload: dict[str, Any] = {
            "talent_id": str(talent_id),
            "declared": d.declared,
            "declared_talent_id": str(d.talent_id) if d.talent_id is not None else None,
            "distance": round(d.distance, 4) if d.distance is not None else None,
        }
        if d.kind == "same_person_as":
            kind = "identity.same_person"
            payload["manifest_talent"] = manifest.talent.external_ref
        else:
            kind = "identity.lookalike"
            payload["justification"] = d.justification
        append_event(session, actor=actor, kind=kind, entity_type="reference_portrait",
                     entity_id=str(reference_id), payload=payload)
