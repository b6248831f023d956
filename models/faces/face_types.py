"""Typed outputs of face detection and encoding, shared by encoders, engines and scorers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

Point = tuple[float, float]


@dataclass(frozen=True)
class FaceQuality:
    face_px: int  # shorter side of the face box, in original pixels
    sharpness: float  # variance of the Laplacian over the face crop (grey, 0-255 scale)
    det_score: float  # detector confidence (encoder-specific scale)
    yaw: float  # approximate, degrees; positive = face turned towards image-right
    roll: float  # degrees; positive = eye line rotated clockwise in the image

    def as_dict(self) -> dict[str, float]:
        return {
            "face_px": int(self.face_px),
            "sharpness": round(float(self.sharpness), 3),
            "det_score": round(float(self.det_score), 4),
            "yaw": round(float(self.yaw), 2),
            "roll": round(float(self.roll), 2),
        }


@dataclass(frozen=True)
class DetectedFace:
    """One face in an image, in the original (EXIF-corrected) pixel frame.

    `embedding` is the vector the encoder's `distance` and `threshold` are defined on:
    - dlib-resnet-v1: dlib's raw 128-d descriptor (norm about 1.4, float32). It is deliberately
      not rescaled: dlib's 0.6 same-person threshold is a euclidean distance between raw
      descriptors, and unit-normalising shrinks distances by ~28% (different people would pass).
    - ArcFace (insightface): L2-normalised, compared by cosine distance.
    `unit_embedding` is always the L2-normalised vector (what cosine similarity and the pgvector
    cosine index use).
    """

    box: tuple[float, float, float, float]  # x0, y0, x1, y1 (clipped to the image)
    landmarks: tuple[Point, ...]  # the encoder's native 5 points
    eye_left: Point  # the eye on the image's left side
    eye_right: Point  # the eye on the image's right side
    nose: Point
    quality: FaceQuality
    encoder: str
    encoder_version: str
    embedding: np.ndarray | None = field(default=None, compare=False)

    @property
    def area(self) -> float:
        x0, y0, x1, y1 = self.box
        return max(0.0, x1 - x0) * max(0.0, y1 - y0)

    @property
    def unit_embedding(self) -> np.ndarray | None:
        if self.embedding is None:
            return None
        return l2_normalise(self.embedding)

    def as_dict(self, *, include_embedding: bool = False) -> dict[str, Any]:
        """JSON-ready description (box, landmarks, quality); the embedding only on request."""
        out: dict[str, Any] = {
            "box": [round(float(v), 1) for v in self.box],
            "landmarks": [[round(float(x), 1), round(float(y), 1)] for x, y in self.landmarks],
            "eye_left": [round(float(v), 1) for v in self.eye_left],
            "eye_right": [round(float(v), 1) for v in self.eye_right],
            "nose": [round(float(v), 1) for v in self.nose],
            "quality": self.quality.as_dict(),
            "encoder": self.encoder,
            "encoder_version": self.encoder_version,
        }
        if include_embedding and self.embedding is not None:
            out["embedding"] = [float(v) for v in self.embedding]
        return out


@dataclass(frozen=True)
class EncoderInfo:
    name: str
    version: str
    dim: int
    licence: str
    commercial_use: bool
    threshold: float  # same-person threshold on `distance` (same person when distance <= threshold)
    metric: str  # "euclidean" (dlib) or "cosine" (ArcFace) — what `distance` means

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "dim": self.dim,
            "licence": self.licence,
            "commercial_use": self.commercial_use,
            "threshold": self.threshold,
            "metric": self.metric,
        }


def l2_normalise(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float32)
    n = float(np.linalg.norm(v))
    return v / n if n > 0 else v


def box_iou(a, b) -> float:
    """Intersection over union of two (x0, y0, x1, y1) boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0
