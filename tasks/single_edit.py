"""One edit of one or more portraits outside a request (`castkeep edit`): the request pipeline's
engine, scored by the request pipeline's scorer (models/scoring/variant.py) with the thresholds
a request gets by default, so a single edit and a request variant get the same numbers. Nothing
is catalogued or signed.

Plain functions; the engine and encoder come from the edge (flows/components.py)."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from castkeep.models.engines.base import EditInput, EngineInfo
from castkeep.models.faces.encoders import FaceEncoder, select_face
from castkeep.models.faces.face_types import DetectedFace
from castkeep.models.imaging import encode_image, load_image
from castkeep.models.request_spec import Thresholds
from castkeep.models.scoring.records import ScoreRecord
from castkeep.models.scoring.variant import VariantScores, jsonable, score_variant
from castkeep.models.specs import CameraSpec, LightingSpec, parse_camera, parse_lighting
from castkeep.tasks.generate import check_engine_request, loaded_engine


def parse_specs(light: str | None, camera: str | None) -> tuple[LightingSpec | None, CameraSpec | None]:
    """The lighting and camera specs of "key=value,..." texts (SpecError names a bad key)."""
    return (parse_lighting(light) if light else None, parse_camera(camera) if camera else None)


def request_thresholds(defaults: Mapping[str, Any]) -> Thresholds:
    """The thresholds a request without its own gets (from the threshold settings)."""
    return Thresholds(**{k: v for k, v in defaults.items() if k in Thresholds.model_fields})


@dataclass(frozen=True)
class Portrait:
    path: Path
    rgb: np.ndarray  # HxWx3 uint8
    face: DetectedFace  # the person: the photo's largest face, embedded


def load_portraits(encoder: FaceEncoder, photos: list[Path]) -> list[Portrait]:
    """Each photo's largest face is the person (NoFaceError names a photo without one)."""
    encoder.load()
    portraits = []
    for path in photos:
        rgb = load_image(path).rgb
        face = select_face(encoder.detect(rgb, embed=True), largest=True, what=str(path))
        portraits.append(Portrait(path=path, rgb=rgb, face=face))
    return portraits


@dataclass(frozen=True)
class SingleEdit:
    image: np.ndarray
    engine: EngineInfo
    edit_kinds: tuple[str, ...]
    scores: VariantScores
    encoder_name: str

    def report(self) -> dict[str, Any]:
        """JSON-ready verdict and scores: identity per input photo (in order), extra faces,
        lighting, camera and quality, as the request pipeline records them."""
        return score_report(self.scores, self.encoder_name)


def check_edit(engine_name: str, construct: Mapping[str, Any], options: Mapping[str, Any],
               scene: str | None) -> EngineInfo:
    """The engine name, its settings, options and scene, checked before any work (no weights
    are loaded)."""
    return check_engine_request(engine_name, dict(construct), dict(options), scene)


def edit_portraits(
    engine_name: str,
    construct: Mapping[str, Any],
    encoder: FaceEncoder,
    portraits: list[Portrait],
    *,
    lighting: LightingSpec | None,
    camera: CameraSpec | None,
    scene: str | None,
    seed: int,
    options: Mapping[str, Any],
    thresholds: Thresholds,
    allow_extra_faces: bool = False,
) -> SingleEdit:
    """Run the engine once and score its output exactly as a request variant is scored."""
    engine = loaded_engine(engine_name, dict(construct))
    out = engine.predict(EditInput(
        references=[p.rgb for p in portraits], faces=[p.face for p in portraits],
        lighting=lighting, camera=camera, scene=scene, seed=seed, options=dict(options),
    ))
    scores = score_against_portraits(
        out.image, encoder, portraits, labels=[str(p.path) for p in portraits],
        lighting=lighting, camera=camera, thresholds=thresholds,
        allow_extra_faces=allow_extra_faces,
        preserves_geometry=bool((out.metadata or {}).get("preserves_geometry")),
    )
    return SingleEdit(image=out.image, engine=engine.info, edit_kinds=tuple(out.edit_kinds),
                      scores=scores, encoder_name=encoder.info.name)


def score_against_portraits(
    rgb: np.ndarray,
    encoder: FaceEncoder,
    portraits: list[Portrait],
    *,
    labels: list[str],
    lighting: LightingSpec | None,
    camera: CameraSpec | None,
    thresholds: Thresholds,
    allow_extra_faces: bool,
    preserves_geometry: bool,
) -> VariantScores:
    """Score an image as a request variant is scored, the input photos standing in for the
    talent (one person each, in order, shown under `labels`)."""
    ids = [_input_id(i) for i in range(len(portraits))]
    return score_variant(
        rgb,
        encoder=encoder,
        talent_embeddings={t: [p.face.embedding] for t, p in zip(ids, portraits)},
        talent_labels=dict(zip(ids, labels)),
        reference_faces={t: p.face for t, p in zip(ids, portraits)},
        reference_images={t: p.rgb for t, p in zip(ids, portraits)},
        lighting=lighting,
        camera=camera,
        thresholds=thresholds,
        allow_extra_faces=allow_extra_faces,
        preserves_geometry=preserves_geometry,
    )


def _input_id(index: int) -> str:
    """The scorer keys people by id; here they are the input photos, in order."""
    return str(uuid.UUID(int=index))


def score_report(scores: VariantScores, encoder_name: str) -> dict[str, Any]:
    by_kind: dict[str, list[ScoreRecord]] = {}
    for r in scores.records:
        by_kind.setdefault(str(r.kind), []).append(r)
    ids = sorted(by_kind.get("identity", []), key=lambda r: r.talent_id.int)
    identity = {
        "encoder": encoder_name,
        "threshold": ids[0].threshold if ids else None,
        "faces_found": len(scores.faces),
        "faces": [
            {"reference": r.talent_id.int, "found": r.face_index is not None,
             "distance": r.value if r.face_index is not None else None,
             "face_index": r.face_index, "passed": r.passed}
            for r in ids
        ],
        "passed": all(r.passed for r in ids),
    }
    report: dict[str, Any] = {"passed": scores.passed, "reasons": list(scores.reasons),
                              "identity": identity}
    for kind in ("extra_faces", "lighting", "camera", "quality"):
        (record, *_) = by_kind.get(kind) or [None]
        report[kind] = None if record is None else {
            "value": record.value, "threshold": record.threshold, "passed": record.passed,
            "detail": jsonable(dict(record.detail or {})),
        }
    return report


def write_image(rgb: np.ndarray, out: Path) -> None:
    """JPEG, or PNG for a .png path; written beside the target and renamed, so a failed write
    never leaves half an image."""
    data = encode_image(rgb, fmt="PNG" if out.suffix.lower() == ".png" else "JPEG")
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".castkeep-", suffix=out.suffix, dir=out.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
