"""The variant scorer: identity per talent, lighting and camera adherence, basic quality.

A group shot passes identity only if every talent is found and matched, and no unconsented extra
face is present unless the request allows extras. Every check yields a ScoreRecord (value,
threshold, pass/fail) so rejected variants are catalogued with the numbers that rejected them.
"""

from __future__ import annotations

import functools
import time
import uuid
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass

import cv2
import numpy as np

from castkeep.models.faces.assign import assign_faces
from castkeep.models.faces.encoders import FaceEncoder
from castkeep.models.faces.face_types import DetectedFace, box_iou
from castkeep.models.request_spec import Thresholds
from castkeep.models.scoring import artefacts, light_sh
from castkeep.models.scoring.adherence import (
    AdherenceScore,
    _angle_diff,
    detect_with_roll_hint,
    score_camera,
    score_lighting,
)
from castkeep.models.scoring.records import ScoreRecord
from castkeep.models.specs import CameraSpec, LightingSpec


# Recorded as the identity distance of a talent missing from the output (far beyond any threshold).
NOT_FOUND_DISTANCE = 99.0
# Detection runs coarse to fine (the detector's cost grows with the pixels it scans):
# 1. faces of at least 1/COARSE_FRACTION of the image's long side (a portrait's talent);
# 2. when every talent was found there, faces down to EXTRA_FACE_MIN_REL of the smallest
#    talent's face height (any other person that size is an extra face); embedded only if new;
# 3. otherwise the encoder's full detection (and the upright retry for large Dutch angles).
COARSE_FRACTION = 5.0
EXTRA_FACE_MIN_REL = 0.4


@dataclass(frozen=True)
class VariantScores:
    records: tuple[ScoreRecord, ...]
    faces: tuple[DetectedFace, ...]  # every face found in the output (catalogued with the asset)
    reasons: tuple[str, ...]  # why it failed (empty when it passed)
    seconds: float
    # of which: face detection + identity embedding, on the scorer's critical path
    detect_seconds: float = 0.0
    # the fine detection pass (wall), run alongside the other scorers (not in `seconds` twice)
    overlapped_detect_seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.reasons


def _blankness(rgb: np.ndarray) -> float:
    """Standard deviation of the grey image: ~0 for a blank or flat output."""
    # std(mean of channels) = std(sum of channels) / 3, the sum exact in uint16 (cv2's adds:
    # the same integers as numpy's sum over the channel axis, several times faster).
    r, g, b = cv2.split(rgb)
    total = cv2.add(cv2.add(r, g, dtype=cv2.CV_16U), b, dtype=cv2.CV_16U)
    return float(cv2.meanStdDev(total)[1][0, 0]) / 3.0


def score_variant(
    rgb: np.ndarray,
    *,
    encoder: FaceEncoder,
    talent_embeddings: dict[str, list[np.ndarray]],
    talent_labels: dict[str, str],
    reference_faces: dict[str, DetectedFace] | None = None,
    reference_images: dict[str, np.ndarray] | None = None,
    lighting: LightingSpec | None,
    camera: CameraSpec | None,
    thresholds: Thresholds,
    allow_extra_faces: bool,
    preserves_geometry: bool = False,
) -> VariantScores:
    """Score one output image. `talent_labels` maps talent id -> the request's name for it (used in
    reasons only; pseudonymous). `reference_faces` / `reference_images` (talent id -> the face and
    RGB of the reference portrait the engine was given) let adherence be measured as a change
    from the input photo: far more accurate than judging the output alone, but only meaningful
    when the engine declares `preserves_geometry` (its output is the reference under a
    similarity transform); lighting is then judged by both methods, never by the ratio alone."""
    t0 = time.perf_counter()
    judge = functools.partial(
        _judge, rgb, info=encoder.info, talent_embeddings=talent_embeddings,
        talent_labels=talent_labels, reference_faces=reference_faces,
        reference_images=reference_images, lighting=lighting, camera=camera,
        thresholds=thresholds, allow_extra_faces=allow_extra_faces,
        preserves_geometry=preserves_geometry,
    )
    faces, assignment, floor = _first_pass(
        rgb, encoder, talent_embeddings, camera.roll if camera is not None else 0.0
    )
    t_detect = time.perf_counter() - t0
    t_fine = 0.0
    if floor is None:
        records, reasons = judge(faces, assignment)
    else:
        # The fine pass only looks for faces the first pass missed, which is rare: judge the
        # first pass's faces on this thread meanwhile (the detector and the scorers' numpy and
        # OpenCV work share two cores), and judge again only if the fine pass found a new face.
        # Either way the records are those of the serial order.
        with ThreadPoolExecutor(1, thread_name_prefix="castkeep-fine-detect") as pool:
            fine_run = pool.submit(_timed, encoder.detect_min_face, rgb, floor, embed=False)
            try:
                records, reasons = judge(faces, assignment)
            finally:
                t_wait = time.perf_counter()
                wait([fine_run])
                t_detect += time.perf_counter() - t_wait
        fine, t_fine = fine_run.result()
        t_embed = time.perf_counter()
        new = _after_fine_pass(rgb, encoder, talent_embeddings, faces, fine, floor)
        t_detect += time.perf_counter() - t_embed
        if new is not None:
            faces, assignment = new
            records, reasons = judge(faces, assignment)
    return VariantScores(
        records=tuple(records),
        faces=tuple(faces),
        reasons=tuple(reasons),
        seconds=time.perf_counter() - t0,
        detect_seconds=t_detect,
        overlapped_detect_seconds=t_fine,
    )


def _timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def _judge(
    rgb: np.ndarray,
    faces: list[DetectedFace],
    assignment,
    *,
    info,
    talent_embeddings: dict[str, list[np.ndarray]],
    talent_labels: dict[str, str],
    reference_faces: dict[str, DetectedFace] | None,
    reference_images: dict[str, np.ndarray] | None,
    lighting: LightingSpec | None,
    camera: CameraSpec | None,
    thresholds: Thresholds,
    allow_extra_faces: bool,
    preserves_geometry: bool,
) -> tuple[list[ScoreRecord], list[str]]:
    """The score records and failure reasons of an output whose faces are `faces`, assigned to
    talents by `assignment` (see score_variant)."""
    records: list[ScoreRecord] = []
    reasons: list[str] = []
    id_threshold = thresholds.identity_distance or info.threshold

    matched_faces: list[DetectedFace] = []
    matched_talents: list[str] = []
    for talent_id in talent_embeddings:
        label = talent_labels.get(talent_id, talent_id)
        match = assignment.match_for(talent_id)
        if match.face_index is None or match.distance is None:
            records.append(
                ScoreRecord(
                    kind="identity",
                    value=NOT_FOUND_DISTANCE,
                    threshold=id_threshold,
                    passed=False,
                    talent_id=uuid.UUID(talent_id),
                    face_index=None,
                    detail={"found": False, "faces_in_output": len(faces),
                            "method": f"{info.name} {info.version}"},
                )
            )
            reasons.append(
                f"identity: talent {label} not found in the output ({len(faces)} face(s) detected)"
            )
            continue
        ok = match.distance <= id_threshold
        records.append(
            ScoreRecord(
                kind="identity",
                value=float(match.distance),
                threshold=id_threshold,
                passed=ok,
                talent_id=uuid.UUID(talent_id),
                face_index=int(match.face_index),
                detail={
                    "found": True,
                    "similarity": None if match.similarity is None else float(match.similarity),
                    "metric": info.metric,
                    "encoder": f"{info.name} {info.version}",
                    "method": f"{info.name} {info.version}",
                },
            )
        )
        matched_faces.append(faces[match.face_index])
        matched_talents.append(talent_id)
        if not ok:
            reasons.append(
                f"identity: talent {label} distance {match.distance:.3f} > {id_threshold:.3f}"
            )
    # Faces no talent was assigned to (a talent's poorly matching face is an identity failure,
    # not an extra person).
    taken = {m.face_index for m in assignment.matches if m.face_index is not None}
    extra = [i for i in range(len(faces)) if i not in taken]
    if extra and not allow_extra_faces:
        reasons.append(
            f"identity: {len(extra)} extra face(s) not in the request (faces {extra}); "
            "set allow_extra_faces: true in the request to accept them"
        )
    records.append(
        ScoreRecord(
            kind="extra_faces",
            value=float(len(extra)),
            threshold=None if allow_extra_faces else 0.0,
            passed=allow_extra_faces or not extra,
            detail={"faces": extra, "method": "face detection + talent assignment"},
        )
    )

    # Adherence is measured on the matched faces; the worst face decides.
    if lighting is not None:
        records.append(
            _adherence(
                "lighting",
                [
                    _score_lighting(
                        rgb, f, lighting,
                        reference=(reference_images or {}).get(t),
                        reference_face=(reference_faces or {}).get(t),
                        threshold=thresholds.lighting_azimuth_deg,
                        preserves_geometry=preserves_geometry,
                    )
                    for f, t in zip(matched_faces, matched_talents)
                ],
                thresholds.lighting_azimuth_deg,
                reasons,
            )
        )
    if camera is not None:
        records.append(
            _adherence(
                "camera",
                [
                    score_camera(
                        rgb, f, camera,
                        reference_face=(reference_faces or {}).get(t),
                        threshold=thresholds.camera_roll_deg,
                    )
                    for f, t in zip(matched_faces, matched_talents)
                ],
                thresholds.camera_roll_deg,
                reasons,
            )
        )

    # Basic quality: a visible, sharp enough face of every talent and a non-blank image.
    spread = _blankness(rgb)
    if matched_faces:
        face_px = min(f.quality.face_px for f in matched_faces)
        sharp = min(f.quality.sharpness for f in matched_faces)
    else:
        face_px, sharp = 0, 0.0
    # The seam check compares with the reference pixel for pixel: only meaningful when the
    # output is the reference's own pixels re-lit or re-composed (not a re-shoot or a re-render).
    seams = _seams(rgb, matched_faces, matched_talents, reference_images,
                   reference_faces) if preserves_geometry else []
    seam = max((v["seam_ratio"] for v in seams), default=None)
    seam_ok = seam is None or seam <= thresholds.max_seam_ratio
    q_ok = (face_px >= thresholds.min_face_px and sharp >= thresholds.min_sharpness
            and spread > 2.0 and seam_ok)
    records.append(
        ScoreRecord(
            kind="quality",
            value=float(sharp),
            threshold=thresholds.min_sharpness,
            passed=q_ok,
            detail={
                "min_face_px": int(face_px),
                "face_px_threshold": thresholds.min_face_px,
                "grey_std": round(spread, 2),
                "method": "laplacian-sharpness+" + (
                    artefacts.METHOD if seam is not None else "no-seam-check"),
                "seam_ratio": None if seam is None else round(seam, 3),
                "seam_threshold": thresholds.max_seam_ratio,
                "width": int(rgb.shape[1]),
                "height": int(rgb.shape[0]),
            },
        )
    )
    if not seam_ok:
        reasons.append(
            f"quality: seam or halo around a head (new-edge ratio {seam:.2f} > "
            f"{thresholds.max_seam_ratio:g})"
        )
    elif not q_ok and matched_faces:
        reasons.append(
            f"quality: smallest face {face_px} px (min {thresholds.min_face_px}), sharpness "
            f"{sharp:.1f} (min {thresholds.min_sharpness:g}), grey spread {spread:.1f}"
        )
    elif not q_ok and not reasons:
        reasons.append("quality: no usable face in the output")
    return records, reasons


def _detect_and_assign(rgb, encoder: FaceEncoder, talent_embeddings, roll_hint: float):
    """Faces in the output and their assignment to talents, coarse to fine (see COARSE_FRACTION).
    Finds every talent the full detection would, and every other face at least
    EXTRA_FACE_MIN_REL of the smallest talent's face height. (score_variant runs the same
    passes, the fine one alongside its other scorers.)"""
    faces, assignment, floor = _first_pass(rgb, encoder, talent_embeddings, roll_hint)
    if floor is None:
        return faces, assignment
    fine = encoder.detect_min_face(rgb, floor, embed=False)
    return (_after_fine_pass(rgb, encoder, talent_embeddings, faces, fine, floor)
            or (faces, assignment))


def _first_pass(rgb, encoder: FaceEncoder, talent_embeddings, roll_hint: float):
    """(faces, assignment, floor): the coarse pass, and the face height a fine pass must still
    search down to; floor None when nothing is left to search (every talent found and the
    floor at or above the coarse size, or a talent missing: then the full detection ran)."""
    info = encoder.info
    coarse = max(rgb.shape[:2]) / COARSE_FRACTION
    faces = encoder.detect_min_face(rgb, coarse, embed=True)
    assignment = assign_faces(talent_embeddings, faces, info)
    found = [faces[m.face_index] for m in assignment.matches if m.face_index is not None]
    if talent_embeddings and len(found) == len(talent_embeddings):
        floor = EXTRA_FACE_MIN_REL * min(f.box[3] - f.box[1] for f in found)
        return faces, assignment, (None if floor >= coarse else floor)
    # A Dutch angle beyond ~30 degrees hides faces from frontal detectors: detect upright too.
    faces = detect_with_roll_hint(encoder, rgb, roll_hint)
    return faces, assign_faces(talent_embeddings, faces, info), None


def _after_fine_pass(rgb, encoder: FaceEncoder, talent_embeddings, faces, fine, floor: float):
    """(faces, assignment) from the faces `fine` of the fine pass down to `floor` (found with
    embed=False), or None when it found nothing the first pass's `faces` missed."""
    if all(max((box_iou(f.box, g.box) for g in faces), default=0.0) >= 0.3 for f in fine):
        return None
    # The fine pass's own faces, embedded (an encoder that cannot embed found faces detects
    # again, with embeddings).
    embed_faces = getattr(encoder, "embed_faces", None)
    faces = (embed_faces(rgb, fine) if embed_faces is not None
             else encoder.detect_min_face(rgb, floor, embed=True))
    return faces, assign_faces(talent_embeddings, faces, encoder.info)


def _seams(rgb, faces, talents, reference_images, reference_faces) -> list[dict]:
    out = []
    for f, t in zip(faces, talents):
        ref, ref_face = (reference_images or {}).get(t), (reference_faces or {}).get(t)
        if ref is None or ref_face is None:
            continue
        try:
            out.append(artefacts.seam_ratio(rgb, f, ref, ref_face))
        except ValueError:
            continue
    return out


def _score_lighting(rgb, face, spec, *, reference, reference_face, threshold,
                    preserves_geometry=False) -> AdherenceScore:
    """Always the independent estimate (light_sh: the output alone, a face model and a fit the
    engine does not share). With the reference, and only when the engine preserves geometry,
    also the ratio against the reference (more exact, but built on the engine family's head
    model): both must pass, and the value is the ratio's error. Each method is in the detail."""
    methods: dict[str, dict] = {}
    try:
        est = light_sh.estimate_light_sh(rgb, face)
        err = abs(_angle_diff(est["azimuth"], spec.key_azimuth))
        ok, rule, limit = light_sh.judge_side(est["azimuth"], spec.key_azimuth, threshold)
        methods[light_sh.METHOD] = {"estimated_azimuth": round(est["azimuth"], 2),
                                    "error": round(err, 2), "threshold": limit, "passed": ok,
                                    "rule": rule, "fit_residual": round(est["residual"], 4)}
    except ValueError as exc:
        err, ok, limit = 180.0, False, threshold
        methods[light_sh.METHOD] = {"error": None, "passed": False, "why": str(exc)}
    # Alone, the independent estimate is the record (with its own rule's threshold); with the
    # ratio, the ratio's error against the request's threshold, and both must pass.
    value, used_threshold, detail = err, limit, {}
    if preserves_geometry and reference is not None and reference_face is not None:
        try:
            ratio = score_lighting(rgb, face, spec, reference=reference,
                                   reference_face=reference_face, threshold=threshold)
            methods["ratio-reference"] = {"error": ratio.error, "threshold": threshold,
                                          "passed": ratio.passed}
            value, detail, ok = ratio.error, dict(ratio.detail), ok and ratio.passed
            used_threshold = threshold
        except ValueError:
            pass
    detail.update({
        "method": "+".join(methods),
        "methods": methods,
        "spec_azimuth": spec.key_azimuth,
    })
    return AdherenceScore(kind="lighting", error=round(float(value), 2),
                          threshold=used_threshold, passed=ok, detail=detail)


def _adherence(kind: str, scores, threshold: float, reasons: list[str]) -> ScoreRecord:
    if not scores:
        # No matched face to measure on: identity already failed; record it as not measured.
        return ScoreRecord(
            kind=kind, value=-1.0, threshold=threshold, passed=False,
            detail={"measured": False},
        )
    failed = [s for s in scores if not s.passed]
    worst = max(failed or scores, key=lambda s: s.error)
    ok = not failed
    # The scorer's own threshold where it set one (lighting judged by the independent estimator
    # alone applies that method's rule); else the request's.
    threshold = worst.threshold if kind == "lighting" else threshold
    if not ok:
        methods = (worst.detail or {}).get("methods") or {}
        bad = [f"{name} error {m['error']:.1f} > {m['threshold']:g}"
               for name, m in methods.items()
               if not m.get("passed") and m.get("error") is not None and "threshold" in m]
        if kind == "lighting" and bad and worst.error <= threshold:
            reasons.append(f"{kind}: " + "; ".join(bad))
        else:
            reasons.append(f"{kind}: error {worst.error:.1f} > {threshold:g}")
    detail = dict(worst.detail or {})
    detail.setdefault("method", "landmark-pose-5pt" if kind == "camera" else kind)
    detail.update({"measured": True, "faces": len(scores), "scorer_threshold": worst.threshold})
    return ScoreRecord(kind=kind, value=float(worst.error), threshold=threshold, passed=ok,
                       detail=jsonable(detail))


def jsonable(value):
    """`value` with numpy scalars, enums and tuples turned into JSON types (NaN/inf -> None)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if hasattr(value, "value") and not isinstance(value, (int, float, str, bool)):
        return getattr(value, "value")
    return value

