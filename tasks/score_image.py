"""Score any image (a re-shoot, another tool's output) against reference portraits with the
request pipeline's scorers and thresholds (`castkeep score`). Nothing is catalogued.

By default the image is judged on its own pixels: nothing vouches that it is the references'
pixels re-lit, so lighting is measured by the independent estimator only and the seam check
(which compares with the reference pixel for pixel) does not apply. `derived=True` (the caller
says it is the references' pixels edited, as the classical engine declares with
`preserves_geometry`) adds both, exactly as in the request pipeline.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from castkeep.models.faces.encoders import FaceEncoder
from castkeep.models.imaging import load_image
from castkeep.models.request_spec import Thresholds
from castkeep.models.scoring.variant import jsonable
from castkeep.models.specs import CameraSpec, LightingSpec
from castkeep.tasks.single_edit import load_portraits, score_against_portraits


def score_image(
    encoder: FaceEncoder,
    image: Path,
    references: list[Path],
    *,
    lighting: LightingSpec | None,
    camera: CameraSpec | None,
    thresholds: Thresholds,
    allow_extra_faces: bool = False,
    derived: bool = False,
) -> dict[str, Any]:
    """`{"passed", "scores": {kind: {"value", "threshold", "passed", "method", ...}},
    "reasons"}`; identity is the worst reference (each is listed under "references")."""
    portraits = load_portraits(encoder, references)
    rgb = load_image(image).rgb
    scores = score_against_portraits(
        rgb, encoder, portraits, labels=[p.path.name for p in portraits],
        lighting=lighting, camera=camera, thresholds=thresholds,
        allow_extra_faces=allow_extra_faces, preserves_geometry=derived,
    )
    out: dict[str, Any] = {}
    identity = [r for r in scores.records if r.kind == "identity"]
    if identity:
        worst = max(identity, key=lambda r: r.value)
        out["identity"] = {
            "value": worst.value, "threshold": worst.threshold,
            "passed": all(r.passed for r in identity),
            "method": worst.detail.get("method"),
            "references": [
                {"reference": portraits[r.talent_id.int].path.name, "distance": r.value,
                 "found": r.face_index is not None, "passed": r.passed}
                for r in sorted(identity, key=lambda r: r.talent_id.int)
            ],
        }
    for r in scores.records:
        if r.kind == "identity":
            continue
        out[str(r.kind)] = {"value": r.value, "threshold": r.threshold, "passed": r.passed,
                            "method": (r.detail or {}).get("method"),
                            "detail": dict(r.detail or {})}
    return jsonable({"passed": scores.passed, "scores": out, "reasons": list(scores.reasons)})
