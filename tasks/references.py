"""Reference selection: the best catalogued portrait of each cleared talent, decoded and with its
face located, plus every reference embedding of the talent for identity scoring.

One reference per talent: engines read ``references[i]`` as person ``i`` (several references
mean a group), so a second portrait of the same person would become a second head.
"""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from castkeep.db import catalogue, schema
from castkeep.errors import NoFaceError, SpecError
from castkeep.models.faces.encoders import FaceEncoder
from castkeep.models.faces.face_types import DetectedFace, box_iou
from castkeep.models.imaging import decode_image
from castkeep.tasks.consent_gate import TalentClearance


@dataclass(frozen=True)
class Reference:
    reference_portrait_id: uuid.UUID
    talent_id: str
    consent_id: str
    sha256: str
    object_key: str
    media_type: str
    data: bytes  # the stored original (a C2PA ingredient)
    rgb: np.ndarray
    face: DetectedFace
    quality: dict


@dataclass(frozen=True)
class ReferenceSet:
    references: tuple[Reference, ...]  # one per talent, in request order
    # talent id -> every reference embedding of that talent under the scoring encoder
    talent_embeddings: dict[str, list[np.ndarray]]


def quality_rank(q: dict) -> float:
    """Higher is better: big, sharp, frontal faces make the best references."""
    face_px = min(float(q.get("face_px", 0)), 400.0)
    sharp = min(float(q.get("sharpness", 0.0)) / 100.0, 1.0)
    yaw = min(abs(float(q.get("yaw", 0.0))), 60.0)
    roll = min(abs(float(q.get("roll", 0.0))), 45.0)
    return face_px * (0.5 + 0.5 * sharp) * (1.0 - yaw / 90.0) * (1.0 - roll / 90.0)


_DECODED: OrderedDict[tuple[str, str], tuple[np.ndarray, DetectedFace]] = OrderedDict()
_DECODED_LOCK = threading.Lock()
_DECODED_MAX = 32


def locate_reference_face(
    data: bytes, sha256: str, encoder: FaceEncoder, stored_box: Sequence[float] | None
) -> tuple[np.ndarray, DetectedFace]:
    """Decode a reference and find its catalogued face (cached per process by content hash)."""
    key = (sha256, f"{encoder.info.name}:{encoder.info.version}")
    with _DECODED_LOCK:
        hit = _DECODED.get(key)
        if hit is not None:
            _DECODED.move_to_end(key)
            return hit
    rgb = decode_image(data).rgb
    faces = encoder.detect(rgb, embed=False)
    if not faces:
        raise NoFaceError(
            f"reference {sha256[:12]} no longer shows a detectable face with {encoder.info.name}; "
            "re-ingest it or remove it from the catalogue"
        )
    face = max(faces, key=lambda f: box_iou(f.box, stored_box)) if stored_box else faces[0]
    with _DECODED_LOCK:
        _DECODED[key] = (rgb, face)
        while len(_DECODED) > _DECODED_MAX:
            _DECODED.popitem(last=False)
    return rgb, face


def select_references(
    session: Session,
    store,
    encoder: FaceEncoder,
    clearances: Sequence[TalentClearance],
    max_references: int,
    engine_name: str,
) -> ReferenceSet:
    if len(clearances) > max_references:
        raise SpecError(
            f"engine {engine_name} composes at most {max_references} people and the request names "
            f"{len(clearances)}; split the request or choose an engine that takes more references"
        )
    refs: list[Reference] = []
    embeddings: dict[str, list[np.ndarray]] = {}
    for clearance in clearances:
        talent_id = uuid.UUID(clearance.talent_id)
        allowed = [uuid.UUID(c) for c in clearance.consent_ids]
        rows = session.execute(
            select(schema.ReferencePortrait, schema.Face)
            .join(schema.Face, schema.Face.reference_portrait_id == schema.ReferencePortrait.id)
            .where(
                schema.ReferencePortrait.talent_id == talent_id,
                schema.ReferencePortrait.consent_id.in_(allowed),
                schema.Face.encoder == encoder.info.name,
            )
        ).all()
        if not rows:
            raise SpecError(
                f"talent {clearance.ref} has no reference portrait under an allowing consent "
                f"embedded by {encoder.info.name}; ingest a portrait with that consent"
            )
        best_ref, best_face = max(rows, key=lambda rf: (quality_rank(rf[0].quality or {}), rf[0].sha256))
        data = store.get_bytes(best_ref.object_key)
        rgb, face = locate_reference_face(data, best_ref.sha256, encoder, best_face.box)
        refs.append(
            Reference(
                reference_portrait_id=best_ref.id,
                talent_id=clearance.talent_id,
                consent_id=str(best_ref.consent_id),
                sha256=best_ref.sha256,
                object_key=best_ref.object_key,
                media_type=best_ref.media_type,
                data=data,
                rgb=rgb,
                face=face,
                quality=dict(best_ref.quality or {}),
            )
        )
        # Identity is scored against every reference of the talent (any consent): more
        # references make a steadier comparison, and nothing of them is published.
        embeddings[clearance.talent_id] = [
            e.embedding for e in catalogue.reference_embeddings(session, talent_id, encoder.info.name)
        ]
    return ReferenceSet(references=tuple(refs), talent_embeddings=embeddings)
