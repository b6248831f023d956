"""Classical camera changes: small head turns by depth parallax, and one affine warp for roll
(Dutch angle about the face), zoom for shot size or focal length, and output scaling.

What is rendered and what is not:
* roll: exact (rotation about the face centre), corners filled by zooming in slightly;
* shot size: crop/zoom so the face box height is the bin's share of the frame; framing wider
  than the reference (zoom-out) only by a little, with the edge pixels extended;
* focal length (no shot given): field of view only, taking the reference as shot at 50 mm;
  perspective compression is not simulated;
* yaw/pitch: up to 15 degrees, by moving head pixels by their height on an ellipsoid head
  model (the nose moves most, the silhouette not at all). Larger turns need a generative engine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from castkeep.models.faces.face_types import DetectedFace
from castkeep.models.engines.relight import HeadModel
from castkeep.models.specs import CameraSpec, ShotSize

MAX_YAW = 15.0
MAX_PITCH = 15.0
MAX_ROLL = 45.0
MIN_ZOOM = 0.8  # widest framing relative to the reference (edge pixels extended beyond)
MAX_ZOOM = 4.0
REFERENCE_FOCAL = 50.0
MAX_OUTPUT_SIDE = 1600
# Face box height as a share of the frame height, per shot size: (lower bound, target).
SHOT_SHARES: dict[ShotSize, tuple[float, float]] = {
    ShotSize.close_up: (0.38, 0.50),
    ShotSize.medium: (0.17, 0.26),
    ShotSize.full: (0.0, 0.11),
}
# Where the face centre sits in the frame for each shot (fraction of height from the top).
SHOT_FACE_Y = {ShotSize.close_up: 0.45, ShotSize.medium: 0.36, ShotSize.full: 0.28}


def shot_of_share(share: float) -> ShotSize:
    """The shot size bin of a face box height share of the frame."""
    if share >= SHOT_SHARES[ShotSize.close_up][0]:
        return ShotSize.close_up
    if share >= SHOT_SHARES[ShotSize.medium][0]:
        return ShotSize.medium
    return ShotSize.full


def face_share(face: DetectedFace, image_height: int) -> float:
    return float(face.box[3] - face.box[1]) / float(image_height)


def parallax_warp(rgb: np.ndarray, head: HeadModel, yaw: float, pitch: float) -> np.ndarray:
    """Turn the head by (yaw, pitch) degrees of camera orbit, by depth parallax.

    Camera yaw + (to camera-right) moves near points (the nose) to image-left; pitch + (camera
    above) moves them down. Background pixels stay where they are."""
    if not yaw and not pitch:
        return rgb
    shape = rgb.shape
    z = head.depth(shape)
    m = head.mask(shape, feather=0.35)
    h, w = shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    ty, tp = math.radians(yaw), math.radians(pitch)
    dx = m * ((xs - head.cx) * (math.cos(ty) - 1.0) - z * math.sin(ty))
    dy = m * ((ys - head.cy) * (math.cos(tp) - 1.0) + z * math.sin(tp))
    # Backward map: sample where each output pixel came from (first-order inverse; the field is
    # smooth and small for |angle| <= 15 degrees).
    map_x = (xs - dx).astype(np.float32)
    map_y = (ys - dy).astype(np.float32)
    return cv2.remap(rgb, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


@dataclass(frozen=True)
class Framing:
    matrix: np.ndarray  # 2x3 affine, source pixel -> output pixel
    size: tuple[int, int]  # output (width, height)
    zoom: float  # magnification relative to the reference framing (1 = unchanged)
    cover_zoom: float  # extra zoom used so rotated corners stay inside the picture
    border_fraction: float  # share of output pixels that were outside the source


def plan_framing(
    shape: tuple[int, ...],
    face: DetectedFace,
    head: HeadModel,
    camera: CameraSpec,
    *,
    zoom_jitter: float = 1.0,
    shift: tuple[float, float] = (0.0, 0.0),
) -> Framing:
    """Choose the affine for roll + zoom. Raises ValueError with a reason when the zoom-out
    needed is beyond MIN_ZOOM (the caller turns it into a SpecError).

    `zoom_jitter` (a factor on the zoom) and `shift` (where the face sits, as fractions of the
    output width/height) vary the framing between seeded variants; the crop window is still kept
    inside the photo, so a shift only takes effect where a zoom leaves room for it."""
    h, w = shape[:2]
    k = min(1.0, MAX_OUTPUT_SIDE / float(max(h, w)))
    wo, ho = max(16, int(round(w * k))), max(16, int(round(h * k)))
    c_src = np.array([head.cx, head.cy], dtype=np.float64)
    if camera.shot is not None:
        share = face_share(face, h)
        if shot_of_share(share) is camera.shot:
            zoom = 1.0
            c_out = c_src * k
        else:
            zoom = SHOT_SHARES[camera.shot][1] / share
            c_out = np.array([wo / 2.0, ho * SHOT_FACE_Y[camera.shot]])
    else:
        zoom = camera.focal_length / REFERENCE_FOCAL
        c_out = c_src * k
    if zoom < MIN_ZOOM:
        raise ValueError(f"needs a zoom-out of x{1.0 / zoom:.1f} beyond the reference's framing")
    jittered = zoom * zoom_jitter
    upper = {ShotSize.medium: SHOT_SHARES[ShotSize.close_up][0],
             ShotSize.full: SHOT_SHARES[ShotSize.medium][0]}.get(camera.shot)
    if upper is not None:
        # The jitter varies the framing within the shot size, never into the next tighter one.
        jittered = max(zoom, min(jittered, 0.8 * upper / face_share(face, h)))
    zoom = min(jittered, MAX_ZOOM)
    c_out = c_out + np.array([shift[0] * wo, shift[1] * ho])
    theta = math.radians(camera.roll)
    rot = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    corners = np.array([[0, 0], [wo - 1, 0], [0, ho - 1], [wo - 1, ho - 1]], dtype=np.float64)
    # 1. Keep the crop window inside the photo (as an upright crop would): shift, don't pad.
    scale = k * zoom
    anchor = c_src.copy()
    win = np.array([wo, ho]) / scale
    lo = anchor - c_out / scale
    for axis, limit in enumerate((w, h)):
        if win[axis] <= limit:
            anchor[axis] += max(0.0, -lo[axis]) - max(0.0, lo[axis] + win[axis] - limit)
    # 2. Roll: zoom in a little about the face until the turned frame's corners are covered.
    cover, cover_max = 1.0, 1.6
    if camera.shot is not None:
        # The cover zoom must not push the face into the next tighter shot size (margin: a
        # detector's box on a tilted face runs larger).
        upper = {ShotSize.medium: SHOT_SHARES[ShotSize.close_up][0],
                 ShotSize.full: SHOT_SHARES[ShotSize.medium][0]}.get(camera.shot)
        if upper is not None:
            cover_max = min(cover_max, 0.85 * upper / (face_share(face, h) * zoom))
    while cover < cover_max and theta:
        inv = np.linalg.inv(scale * cover * rot)
        src = anchor + (corners - c_out) @ inv.T
        if (src >= -0.5).all() and (src[:, 0] <= w - 0.5).all() and (src[:, 1] <= h - 0.5).all():
            break
        cover *= 1.02
    lin = k * zoom * cover * rot
    matrix = np.hstack([lin, (c_out - lin @ anchor)[:, None]])
    # Measure how much of the output came from outside the source.
    inside = cv2.warpAffine(
        np.ones((h, w), np.uint8), matrix, (wo, ho), flags=cv2.INTER_NEAREST,
        borderMode=cv2.BORDER_CONSTANT, borderValue=0,
    )
    border = 1.0 - float(inside.mean())
    return Framing(matrix=matrix, size=(wo, ho), zoom=zoom, cover_zoom=cover, border_fraction=border)


def apply_framing(rgb: np.ndarray, framing: Framing) -> np.ndarray:
    scale2 = framing.matrix[0, 0] ** 2 + framing.matrix[1, 0] ** 2
    interp = cv2.INTER_LINEAR if scale2 < 1 else cv2.INTER_CUBIC
    return cv2.warpAffine(
        rgb, framing.matrix, framing.size, flags=interp, borderMode=cv2.BORDER_REPLICATE
    )


def transform_point(matrix: np.ndarray, point: tuple[float, float]) -> tuple[float, float]:
    x, y = point
    return (
        float(matrix[0, 0] * x + matrix[0, 1] * y + matrix[0, 2]),
        float(matrix[1, 0] * x + matrix[1, 1] * y + matrix[1, 2]),
    )
