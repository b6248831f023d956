"""Encoder-independent face quality: sharpness, approximate head pose, box size."""

from __future__ import annotations

import math

import cv2
import numpy as np

from castkeep.models.faces.face_types import DetectedFace, FaceQuality, Point

# Sharpness is measured on the face crop resized to this size, so values compare across face sizes.
_SHARPNESS_SIZE = 112
# Depth of the nose base in front of the eye centres, in half inter-ocular distances (an adult
# average): turns the nose's sideways offset into a yaw angle.
_NOSE_DEPTH = 0.6


def clip_box(
    box: tuple[float, float, float, float], width: int, height: int
) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = box
    return (
        float(min(max(x0, 0.0), width)),
        float(min(max(y0, 0.0), height)),
        float(min(max(x1, 0.0), width)),
        float(min(max(y1, 0.0), height)),
    )


def sharpness(rgb: np.ndarray, box: tuple[float, float, float, float]) -> float:
    """Variance of the Laplacian of the grey face crop (0-255 scale), after resizing the crop to a
    fixed size. Blurred or heavily compressed faces score low."""
    h, w = rgb.shape[:2]
    x0, y0, x1, y1 = (int(round(v)) for v in clip_box(box, w, h))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return 0.0
    crop = cv2.cvtColor(np.ascontiguousarray(rgb[y0:y1, x0:x1]), cv2.COLOR_RGB2GRAY)
    interp = cv2.INTER_AREA if min(crop.shape) > _SHARPNESS_SIZE else cv2.INTER_LINEAR
    crop = cv2.resize(crop, (_SHARPNESS_SIZE, _SHARPNESS_SIZE), interpolation=interp)
    return float(cv2.Laplacian(crop, cv2.CV_64F).var())


def roll_degrees(eye_left: Point, eye_right: Point) -> float:
    """Angle of the eye line; positive = rotated clockwise in the image (y points down)."""
    return math.degrees(math.atan2(eye_right[1] - eye_left[1], eye_right[0] - eye_left[0]))


def yaw_degrees(eye_left: Point, eye_right: Point, nose: Point) -> float:
    """Approximate yaw from where the nose sits between the eyes, measured along the eye line
    (so roll does not leak in). Positive = face turned towards image-right."""
    ex, ey = eye_right[0] - eye_left[0], eye_right[1] - eye_left[1]
    iod = math.hypot(ex, ey)
    if iod <= 1e-6:
        return 0.0
    mx, my = (eye_left[0] + eye_right[0]) / 2, (eye_left[1] + eye_right[1]) / 2
    offset = ((nose[0] - mx) * ex + (nose[1] - my) * ey) / iod  # along the eye line
    return math.degrees(math.atan((offset / (iod / 2)) / _NOSE_DEPTH))


def face_quality(
    rgb: np.ndarray,
    box: tuple[float, float, float, float],
    eye_left: Point,
    eye_right: Point,
    nose: Point,
    det_score: float,
) -> FaceQuality:
    x0, y0, x1, y1 = box
    return FaceQuality(
        face_px=int(round(max(0.0, min(x1 - x0, y1 - y0)))),
        sharpness=sharpness(rgb, box),
        det_score=float(det_score),
        yaw=yaw_degrees(eye_left, eye_right, nose),
        roll=roll_degrees(eye_left, eye_right),
    )


def detected_face(
    rgb: np.ndarray,
    box: tuple[float, float, float, float],
    landmarks: tuple[Point, ...],
    eye_left: Point,
    eye_right: Point,
    nose: Point,
    det_score: float,
    *,
    encoder: str,
    encoder_version: str,
    embedding: np.ndarray | None,
) -> DetectedFace:
    """A DetectedFace with its box clipped to the image and its quality measured: the one way
    every encoder builds its output."""
    h, w = rgb.shape[:2]
    clipped = clip_box(box, w, h)
    return DetectedFace(
        box=clipped,
        landmarks=landmarks,
        eye_left=eye_left,
        eye_right=eye_right,
        nose=nose,
        quality=face_quality(rgb, clipped, eye_left, eye_right, nose, det_score),
        encoder=encoder,
        encoder_version=encoder_version,
        embedding=embedding,
    )
