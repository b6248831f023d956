"""Seams and halos: edges in the output that the reference photo does not have.

An edit that relights or recomposes should change light smoothly; a hard mask boundary (a relight
ellipse ending on the background, a matte that keeps a rim of the old backdrop) draws a new edge
where the photo had none. The reference is aligned onto the output by the eyes and nose, both are
taken to log luminance around the head at a fixed scale, and an output edge counts as new where
it exceeds the reference's local (dilated) edge strength by a margin. The score is the 99th
percentile of that new-edge strength in a ring around the head (where seams and halos sit),
relative to the median edge strength of the face's interior.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from castkeep.models.faces.face_types import DetectedFace

METHOD = "new-edge-energy-vs-reference"
EYE_PX = 40.0  # the comparison runs with this many pixels between the eyes
HALF_SIZE = 3.0  # eye distances either side of the head centre
RING_OUTER = 1.45  # head-ellipse units (1 = the head model's outline)


def _log_lum(rgb: np.ndarray) -> np.ndarray:
    x = rgb.astype(np.float32) / 255.0
    lin = np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)
    lum = 0.2126 * lin[..., 0] + 0.7152 * lin[..., 1] + 0.0722 * lin[..., 2]
    return np.log(cv2.GaussianBlur(lum, (0, 0), 1.0) + 0.01)


def _grad(x: np.ndarray) -> np.ndarray:
    return np.hypot(cv2.Sobel(x, cv2.CV_32F, 1, 0, ksize=3),
                    cv2.Sobel(x, cv2.CV_32F, 0, 1, ksize=3)) / 8.0


def seam_ratio(
    rgb: np.ndarray, face: DetectedFace, reference: np.ndarray, reference_face: DetectedFace
) -> dict[str, float]:
    """New-edge strength around the head relative to the face's own texture (0: none)."""
    src = np.array([reference_face.eye_left, reference_face.eye_right, reference_face.nose],
                   np.float32)
    dst = np.array([face.eye_left, face.eye_right, face.nose], np.float32)
    m, _ = cv2.estimateAffinePartial2D(src, dst)
    if m is None:
        raise ValueError("cannot align the reference face onto the output face")
    (lx, ly), (rx, ry) = face.eye_left, face.eye_right
    ed = max(4.0, math.hypot(rx - lx, ry - ly))
    roll = math.atan2(ry - ly, rx - lx)
    # Head centre: a quarter eye distance below the eye midpoint, down the face.
    cx = (lx + rx) / 2.0 - math.sin(roll) * 0.25 * ed
    cy = (ly + ry) / 2.0 + math.cos(roll) * 0.25 * ed
    s = EYE_PX / ed
    size = int(round(2 * HALF_SIZE * EYE_PX))
    crop_m = np.array([[s, 0.0, size / 2.0 - cx * s], [0.0, s, size / 2.0 - cy * s]])
    ref_m = crop_m @ np.vstack([m, [0.0, 0.0, 1.0]])
    out = cv2.warpAffine(rgb, crop_m, (size, size), flags=cv2.INTER_AREA,
                         borderMode=cv2.BORDER_REPLICATE)
    ref = cv2.warpAffine(reference, ref_m, (size, size), flags=cv2.INTER_AREA,
                         borderMode=cv2.BORDER_REPLICATE)
    # Only where both pictures have pixels (a crop edge is not a seam).
    valid = np.minimum(
        cv2.warpAffine(np.ones(rgb.shape[:2], np.uint8), crop_m, (size, size), flags=cv2.INTER_NEAREST),
        cv2.warpAffine(np.ones(reference.shape[:2], np.uint8), ref_m, (size, size),
                       flags=cv2.INTER_NEAREST))
    valid = cv2.erode(valid, np.ones((7, 7), np.uint8)) > 0
    g_out = _grad(_log_lum(out))
    g_ref = cv2.dilate(_grad(_log_lum(ref)), np.ones((5, 5), np.uint8))
    new = np.clip(g_out - 1.5 * g_ref, 0.0, None)
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    dx, dy = (xs - size / 2.0) / EYE_PX, (ys - size / 2.0) / EYE_PX
    u = dx * math.cos(roll) + dy * math.sin(roll)
    v = -dx * math.sin(roll) + dy * math.cos(roll)
    r = np.sqrt((u / 1.4) ** 2 + (v / 1.8) ** 2)  # head-sized ellipse units
    # The ring holds the hairline, ears and the edge of a head-sized relight mask; shoulders
    # (whose background a group composite replaces by design) lie outside it.
    interior, ring = r < 0.7, (r > 0.7) & (r < RING_OUTER) & valid
    texture = float(np.median(g_out[interior])) + 1e-4
    peak = float(np.percentile(new[ring], 99)) if ring.sum() > 50 else 0.0
    return {"seam_ratio": peak / texture, "new_edge_p99": peak, "face_texture": texture}
