"""Adherence scorers: did the edit do what the lighting/camera spec asked?

* Lighting: key azimuth/elevation matched against the shading a key light gives on the head
  normal map (relight.HeadModel), searched over the front hemisphere. With the reference (the
  face before the edit) the relight ratio edited/reference is fitted: skin albedo cancels and
  light already in the photo is not credited to the edit. Without it, the left-right shading
  asymmetry is fitted (albedo is near mirror-symmetric): weaker, as the photo's own light and a
  turned head add asymmetry. Error: degrees of azimuth vs the spec (elevation reported).
* Camera: roll from the eye line; yaw/pitch (approximate) from where the nose sits relative to
  the eyes; framing from the face box's share of the frame height, binned like reframe.py.
  With ``reference_face`` (the same face before the edit) roll/yaw/pitch are measured as changes,
  so a subject who tilts their head is not mistaken for a Dutch angle.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import cv2
import numpy as np

from castkeep.models.faces.face_types import DetectedFace
from castkeep.models.engines.reframe import face_share, shot_of_share
from castkeep.models.engines.relight import AMBIENT, HeadModel, shading
from castkeep.models.specs import CameraSpec, LightingSpec, ShotSize

LIGHTING_AZIMUTH_THRESHOLD = 35.0
CAMERA_ROLL_THRESHOLD = 5.0
# How far the 5-point "nose" landmark (base of the nose) sits in front of the eye plane, in eye
# distances: turns its sideways / vertical shift into approximate yaw / pitch.
NOSE_DEPTH = 0.35
NOSE_DROP = 0.72  # eyes-to-nose-base distance of a level frontal face, in eye distances
FIT_SIZE = 96
MODEL_FILL = 0.3  # the face crop is fitted at this width (speed; shading is low-frequency)
SHOT_ORDER = (ShotSize.close_up, ShotSize.medium, ShotSize.full)


@dataclass(frozen=True)
class AdherenceScore:
    kind: str  # "lighting" | "camera"
    error: float  # degrees (azimuth for lighting, roll for camera)
    threshold: float
    passed: bool
    detail: dict[str, Any] = field(default_factory=dict)


def _angle_diff(a: float, b: float) -> float:
    return (a - b + 180.0) % 360.0 - 180.0


def _srgb_to_linear(x: np.ndarray) -> np.ndarray:
    x = x / 255.0
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def _fit(lum: np.ndarray, n: np.ndarray, robust: bool = True) -> tuple[float, float]:
    a = np.column_stack([np.ones(len(lum)), n])
    wts = np.ones(len(lum))
    coef = np.zeros(4)
    for _ in range(4 if robust else 1):  # reweight: eyes, teeth, brows break the shading model
        coef, *_ = np.linalg.lstsq(a * wts[:, None], lum * wts, rcond=None)
        resid = lum - a @ coef
        scale = 1.4826 * np.median(np.abs(resid)) + 1e-9
        wts = 1.0 / np.maximum(1.0, np.abs(resid) / (2.0 * scale))
    level = float(np.mean(a @ coef)) + 1e-9
    return float(coef[1] / level), float(coef[2] / level)


def _search_many(cost_many) -> tuple[float, float, float]:
    """Minimise cost over the front hemisphere: a 10-degree grid, then a 2.5-degree grid around
    the best coarse cell. cost_many(az, el) costs a whole grid in one call (equal-length arrays
    in, costs out); ties go to the first candidate, elevation-major."""
    def scan(azs, els, best):
        el_g, az_g = np.meshgrid(els, azs, indexing="ij")  # elevation outer, azimuth inner
        costs = cost_many(az_g.ravel(), el_g.ravel())
        i = int(np.argmin(costs))
        if costs[i] < best[0]:
            best = (float(costs[i]), float(az_g.ravel()[i]), float(el_g.ravel()[i]))
        return best

    best = scan(np.arange(-90.0, 90.1, 10.0), np.arange(-30.0, 75.1, 10.0), (float("inf"), 0.0, 0.0))
    _, az0, el0 = best
    return scan(
        np.arange(max(-90.0, az0 - 10.0), min(90.0, az0 + 10.0) + 0.1, 2.5),
        np.arange(max(-30.0, el0 - 10.0), min(75.0, el0 + 10.0) + 0.1, 2.5),
        best,
    )


def _directions(az: np.ndarray, el: np.ndarray) -> np.ndarray:
    """3 x K unit vectors towards lights at azimuths/elevations (degrees); see light_direction."""
    a, e = np.radians(az), np.radians(el)
    return np.stack([np.sin(a) * np.cos(e), np.sin(e), np.cos(a) * np.cos(e)]).astype(np.float32)


def _soft_response_many(d: np.ndarray, n: np.ndarray) -> np.ndarray:
    """K x N: relight._response(n . l, soft) for the K directions `d` (3 x K): the wrap
    clip((n.l + 0.5) / 1.5, 0) ** 1.3, the power taken as exp(1.3 log x) (vectorised; within
    ~2e-6 relative of `**`), the dot product as three broadcast products (a 3-term matmul is
    slower)."""
    out = np.multiply.outer(d[0], n[:, 0])
    out += np.multiply.outer(d[1], n[:, 1])
    out += np.multiply.outer(d[2], n[:, 2])
    out += 0.5
    out /= 1.5
    np.maximum(out, 0.0, out=out)
    with np.errstate(divide="ignore"):  # log 0 = -inf, and exp(-inf) = 0 as 0 ** 1.3
        np.log(out, out=out)
    out *= 1.3
    np.exp(out, out=out)
    return out


def _model_shading_many(n: np.ndarray, az: np.ndarray, el: np.ndarray) -> np.ndarray:
    """K x N: relight.shading of the scorer's model light (soft key, MODEL_FILL fill, at eye
    level half-way to the mirror of the key) for K candidate keys at once. Candidates are rows,
    so per-candidate reductions (median, mean) run along contiguous memory."""
    key = _soft_response_many(_directions(az, el), n)
    # The fill depends on the key's azimuth alone: shade each distinct azimuth once (a search
    # grid repeats every azimuth at each elevation).
    fill_az, which = np.unique(az, return_inverse=True)
    fill = _soft_response_many(_directions(-fill_az / 2.0, np.zeros_like(fill_az)), n)
    fill *= MODEL_FILL
    key += fill[which.ravel()]
    key += AMBIENT
    return key


def _row_medians(x: np.ndarray) -> np.ndarray:
    """np.median(x, axis=1, keepdims=True) for NaN-free x, several times faster: one
    single-kth partition (np.median also partitions for a NaN check, which takes a slow path);
    x is reordered in place."""
    h = x.shape[1] // 2
    x.partition(h, axis=1)
    hi = x[:, h:h + 1]
    if x.shape[1] % 2:
        return hi.copy()
    return (x[:, :h].max(axis=1, keepdims=True) + hi) / 2


def _ratio_estimate(
    rgb: np.ndarray, face: DetectedFace, reference: np.ndarray, reference_face: DetectedFace
) -> dict[str, float]:
    """Relight ratio: the edited face divided by the reference face aligned onto it. Skin albedo
    cancels, leaving new shading / old shading, matched against the head model's shading ratio
    for each candidate key (taking the reference's own light as flat frontal)."""
    src = np.array([reference_face.eye_left, reference_face.eye_right, reference_face.nose], np.float32)
    dst = np.array([face.eye_left, face.eye_right, face.nose], np.float32)
    m, _ = cv2.estimateAffinePartial2D(src, dst)
    if m is None:
        raise ValueError("cannot align the reference face onto the edited face")
    h, w = rgb.shape[:2]
    head = HeadModel.from_face(face)
    ext = 1.1 * max(head.a, head.b)
    x0, y0 = max(0, int(head.cx - ext)), max(0, int(head.cy - ext))
    x1, y1 = min(w, int(head.cx + ext) + 1), min(h, int(head.cy + ext) + 1)
    if x1 - x0 < 1 or y1 - y0 < 1:
        raise ValueError("the face lies outside the edited image")
    # The reference aligned onto the output, warped only where the head is (the same samples
    # as warping the whole frame and cropping, at a fraction of the pixels).
    m_crop = m.copy()
    m_crop[:, 2] -= (x0, y0)
    aligned = cv2.warpAffine(reference, m_crop, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_REPLICATE)
    s = FIT_SIZE / float(max(8, x1 - x0))
    size = (FIT_SIZE, max(8, int(round((y1 - y0) * s))))
    crop_o = cv2.resize(rgb[y0:y1, x0:x1], size, interpolation=cv2.INTER_AREA)
    crop_r = cv2.resize(aligned, size, interpolation=cv2.INTER_AREA)
    local = replace(head, cx=(head.cx - x0) * s, cy=(head.cy - y0) * s, a=head.a * s,
                    b=head.b * s, c=head.c * s, eye_dist=head.eye_dist * s,
                    nose=((head.nose[0] - x0) * s, (head.nose[1] - y0) * s))

    def lum(c):
        lin = _srgb_to_linear(c.astype(np.float32))
        return 0.2126 * lin[..., 0] + 0.7152 * lin[..., 1] + 0.0722 * lin[..., 2]

    lo, lr = lum(crop_o), lum(crop_r)
    p, q = local.local(crop_o.shape)
    ok = ((p * p + q * q) < 0.8**2) & (lr > 0.01) & (lo > 0.002) & (lo < 0.98) & (lr < 0.98)
    if ok.sum() < 50:
        raise ValueError("too little usable skin to compare with the reference")
    n = local.normals(crop_o.shape)[ok]
    log_ratio = np.log(lo[ok] / lr[ok])
    flat = shading(n, LightingSpec(key_azimuth=0.0, key_elevation=0.0, fill_ratio=MODEL_FILL))

    def cost(az: np.ndarray, el: np.ndarray) -> np.ndarray:
        d = _model_shading_many(n, az, el)  # K candidates x N pixels, reused in place
        d /= flat
        np.log(d, out=d)
        np.subtract(log_ratio, d, out=d)
        # Unknown overall exposure (the median's partial sort reorders d; the mean below
        # does not care).
        d -= _row_medians(d)
        np.square(d, out=d)
        np.minimum(d, 0.25, out=d)  # features that moved: capped
        return np.mean(d, axis=1)

    best = _search_many(cost)
    return {"azimuth": best[1], "elevation": best[2], "residual": math.sqrt(best[0])}


def _symmetry_estimate(rgb: np.ndarray, face: DetectedFace) -> dict[str, float]:
    """Absolute estimate from left-right asymmetry. Faces are close to mirror-symmetric in
    albedo, so log I(p, q) - log I(-p, q) is the shading asymmetry alone; it is matched against
    the head model's asymmetry for each candidate key. Elevation comes from the vertical
    brightness slope (weakly determined without a reference)."""
    head = HeadModel.from_face(face)
    ext = 1.1 * max(head.a, head.b)
    size = FIT_SIZE
    s = size / (2.0 * ext)
    # Upright, face-centred crop: the eye line horizontal, the head centre at the middle.
    m = cv2.getRotationMatrix2D((head.cx, head.cy), math.degrees(head.roll), s)
    m[:, 2] += np.array([size / 2.0 - head.cx, size / 2.0 - head.cy])
    crop = cv2.warpAffine(rgb, m, (size, size), flags=cv2.INTER_AREA,
                          borderMode=cv2.BORDER_REPLICATE)
    local = replace(head, cx=(size - 1) / 2.0, cy=(size - 1) / 2.0, a=head.a * s, b=head.b * s,
                    c=head.c * s, roll=0.0, eye_dist=head.eye_dist * s, nose=(size / 2.0, size / 2.0))
    lin = _srgb_to_linear(crop.astype(np.float32))
    lum = 0.2126 * lin[..., 0] + 0.7152 * lin[..., 1] + 0.0722 * lin[..., 2]
    mirror = lum[:, ::-1]
    p, q = local.local(crop.shape)
    tot = crop.astype(np.float32).sum(axis=-1) + 1e-3
    chroma = crop.astype(np.float32)[..., :2] / tot[..., None]
    centre = (p * p + q * q) < 0.35**2
    ref_c = np.median(chroma[centre], axis=0)
    skin = np.abs(chroma - ref_c).max(axis=-1) < 0.05
    ok = ((p * p + q * q) < 0.8**2) & (p > 0.08) & skin & skin[:, ::-1] \
        & (lum > 0.003) & (mirror > 0.003)
    if ok.sum() < 30:
        raise ValueError("too little skin on both sides of the face for a lighting estimate")
    n = local.normals(crop.shape)[ok]
    n_m = n * np.array([-1.0, 1.0, 1.0], np.float32)
    d = np.log(lum[ok] / mirror[ok])
    fit = _fit(lum[ok], n)

    def cost(az: np.ndarray, el: np.ndarray) -> np.ndarray:
        dm = np.log(_model_shading_many(n, az, el) / _model_shading_many(n_m, az, el))
        return np.mean(np.minimum((d - dm) ** 2, 0.25), axis=1)

    best = _search_many(cost)
    return {"azimuth": best[1], "elevation": best[2], "residual": math.sqrt(best[0]),
            "beta_y": fit[1]}


def estimate_light(
    rgb: np.ndarray,
    face: DetectedFace,
    *,
    reference: np.ndarray | None = None,
    reference_face: DetectedFace | None = None,
) -> dict[str, float]:
    """Key light azimuth/elevation (degrees, spec conventions; front hemisphere) over a face.

    See the module docstring for the two modes (with / without the reference).
    """
    if reference is not None and reference_face is not None:
        return _ratio_estimate(rgb, face, reference, reference_face)
    return _symmetry_estimate(rgb, face)


def score_lighting(
    rgb: np.ndarray,
    face: DetectedFace,
    spec: LightingSpec,
    *,
    reference: np.ndarray | None = None,
    reference_face: DetectedFace | None = None,
    threshold: float = LIGHTING_AZIMUTH_THRESHOLD,
) -> AdherenceScore:
    est = estimate_light(rgb, face, reference=reference, reference_face=reference_face)
    az_err = abs(_angle_diff(est["azimuth"], spec.key_azimuth))
    el_err = abs(est["elevation"] - spec.key_elevation)
    return AdherenceScore(
        kind="lighting",
        error=round(az_err, 2),
        threshold=threshold,
        passed=az_err <= threshold,
        detail={
            "estimated_azimuth": round(est["azimuth"], 2),
            "estimated_elevation": round(est["elevation"], 2),
            "spec_azimuth": spec.key_azimuth,
            "spec_elevation": spec.key_elevation,
            "elevation_error": round(el_err, 2),
            "relative_to_reference": reference is not None and reference_face is not None,
            "fit_residual": round(est["residual"], 4),
        },
    )


def face_pose(face: DetectedFace) -> dict[str, float]:
    """Roll (degrees, + clockwise), approximate yaw and pitch (camera-orbit conventions of
    CameraSpec) from the eyes and nose."""
    (lx, ly), (rx, ry) = face.eye_left, face.eye_right
    ed = math.hypot(rx - lx, ry - ly) or 1.0
    roll = math.atan2(ry - ly, rx - lx)
    mx, my = (lx + rx) / 2.0, (ly + ry) / 2.0
    dx, dy = face.nose[0] - mx, face.nose[1] - my
    along = (dx * math.cos(roll) + dy * math.sin(roll)) / ed
    down = (-dx * math.sin(roll) + dy * math.cos(roll)) / ed
    # Camera yaw + moves the nose to image-left; camera pitch + (from above) moves it down.
    yaw = -math.degrees(math.asin(float(np.clip(along / NOSE_DEPTH, -1.0, 1.0))))
    pitch = math.degrees(math.asin(float(np.clip((down - NOSE_DROP) / NOSE_DEPTH, -1.0, 1.0))))
    return {"roll": math.degrees(roll), "yaw": yaw, "pitch": pitch, "nose_along": along,
            "nose_down": down}


def score_camera(
    rgb: np.ndarray,
    face: DetectedFace,
    spec: CameraSpec,
    *,
    reference_face: DetectedFace | None = None,
    threshold: float = CAMERA_ROLL_THRESHOLD,
) -> AdherenceScore:
    pose = face_pose(face)
    base = face_pose(reference_face) if reference_face is not None else None
    roll = pose["roll"] - (base["roll"] if base else 0.0)
    yaw = pose["yaw"] - (base["yaw"] if base else 0.0)
    pitch = pose["pitch"] - (base["pitch"] if base else 0.0)
    roll_err = abs(_angle_diff(roll, spec.roll))
    share = face_share(face, rgb.shape[0])
    shot = shot_of_share(share)
    detail: dict[str, Any] = {
        "measured_roll": round(roll, 2),
        "measured_yaw": round(yaw, 2),
        "measured_pitch": round(pitch, 2),
        "yaw_error": round(abs(yaw - spec.yaw), 2),
        "pitch_error": round(abs(pitch - spec.pitch), 2),
        "relative_to_reference": base is not None,
        "face_height_share": round(share, 4),
        "measured_shot": shot.value,
        "spec_shot": spec.shot.value if spec.shot else None,
    }
    shot_ok = True
    if spec.shot is not None:
        bins = SHOT_ORDER.index(shot) - SHOT_ORDER.index(spec.shot)
        detail["shot_bin_error"] = bins
        shot_ok = bins == 0
    return AdherenceScore(
        kind="camera",
        error=round(roll_err, 2),
        threshold=threshold,
        passed=roll_err <= threshold and shot_ok,
        detail=detail,
    )


def detect_with_roll_hint(encoder, rgb: np.ndarray, roll_hint: float = 0.0) -> list[DetectedFace]:
    """Detect faces; if none are found and the image was rolled by about `roll_hint` degrees,
    detect in the image turned back upright and map the landmarks into this image. Frontal face
    detectors miss faces tilted by more than ~30 degrees; the landmarks, not the hint, then give
    the measured roll."""
    faces = encoder.detect(rgb, embed=True)
    if faces or not roll_hint:
        return faces
    h, w = rgb.shape[:2]
    centre = (w / 2.0, h / 2.0)
    # cv2's positive angle is counter-clockwise; undo a clockwise roll.
    m = cv2.getRotationMatrix2D(centre, roll_hint, 1.0)
    upright = cv2.warpAffine(rgb, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    inv = cv2.invertAffineTransform(m)

    def back(pt):
        return (float(inv[0, 0] * pt[0] + inv[0, 1] * pt[1] + inv[0, 2]),
                float(inv[1, 0] * pt[0] + inv[1, 1] * pt[1] + inv[1, 2]))

    out = []
    for f in encoder.detect(upright, embed=True):
        x0, y0, x1, y1 = f.box
        cx, cy = back(((x0 + x1) / 2.0, (y0 + y1) / 2.0))
        hw, hh = (x1 - x0) / 2.0, (y1 - y0) / 2.0
        out.append(replace(
            f,
            box=(cx - hw, cy - hh, cx + hw, cy + hh),
            landmarks=tuple(back(p) for p in f.landmarks),
            eye_left=back(f.eye_left),
            eye_right=back(f.eye_right),
            nose=back(f.nose),
        ))
    return out
