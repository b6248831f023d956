"""Typed outputs of face detection and encoding, shared by encoders, engines and scorers."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

Point = tuple[float, float]


@dataclass(frozen=True)
class FaceQuality:
    face_px: int  # shorter side of the face box, in original pixels
    sharpness: float  # variance of the Laplacian over the face crop (grey, 0-255 scale)
    det_score: float  # detector confidence (encoder-specific scale)
    yaw: float  # approximate, degrees; positive = face turned towards image-right
    roll: float  # degrees; positive = eye line rotated clockwise in the image


@dataclass(frozen=True)
class DetectedFace:
    """One face in an image, in the original (EXIF-corrected) pixel frame."""

    box: tuple[float, float, float, float]  # x0, y0, x1, y1
    landmarks: tuple[Point, ...]  # the encoder's native 5 points
    eye_left: Point  # the eye on the image's left side
    eye_right: Point  # the eye on the image's right side
    nose: Point
    quality: FaceQuality
    encoder: str
    encoder_version: str
    embedding: np.ndarray | None = field(default=None, compare=False)  # L2-normalised


@dataclass(frozen=True)
class EncoderInfo:
    name: str
    version: str
    dim: int
    licence: str
    commercial_use: bool
    threshold: float  # same-person threshold on `distance`
    metric: str  # "euclidean" (dlib) or "cosine" (ArcFace) — what `distance` means
