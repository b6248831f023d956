"""Person mattes for the classical engine: GrabCut seeded from the face, refined by a guided filter.

The detected face gives a sure-foreground core (the inner face and a strip down the neck and
chest), a probable-foreground head-and-shoulders silhouette and a sure-background frame along the
photo's top and sides; GrabCut (colour models + graph cut, OpenCV) settles the rest on a small
copy. The hard mask is then refined at full size by a guided filter on the photo (edges of hair
and collars follow the photo's own edges), and the colours of the soft edge are replaced by the
person's nearby colours ("decontamination"), so the old background does not ring the person as a
halo when they are placed on a new backdrop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from castkeep.models.engines.relight import HeadModel
from castkeep.models.faces.face_types import DetectedFace

WORK_SIDE = 360  # GrabCut runs on a copy this size (its cost grows with pixels; shapes are coarse)
GUIDE_SIDE = 900  # the guided filter runs at most at this size
GRABCUT_ITERATIONS = 4


@dataclass(frozen=True)
class PersonMatte:
    alpha: np.ndarray  # HxW float32 0..1, the person
    colours: np.ndarray  # HxWx3 float32 0..255, decontaminated person colours
    face_cover: float  # mean alpha over the inner face (a matte that loses the face is unusable)


def _ellipse(mask: np.ndarray, head: HeadModel, k: float, sa: float, sb: float, dy: float,
             value: int) -> None:
    centre = (int(round(head.cx * k)), int(round((head.cy + dy * head.b) * k)))
    axes = (max(1, int(round(head.a * sa * k))), max(1, int(round(head.b * sb * k))))
    cv2.ellipse(mask, centre, axes, np.degrees(head.roll), 0, 360, value, -1)


def _seed_mask(shape: tuple[int, int], face: DetectedFace, head: HeadModel, k: float) -> np.ndarray:
    h, w = shape
    mask = np.full((h, w), cv2.GC_PR_BGD, np.uint8)
    ed = head.eye_dist * k
    # Sure background: a frame along the top and the sides (the person continues off the bottom).
    band = max(2, int(round(0.02 * max(h, w))))
    mask[:band, :] = cv2.GC_BGD
    mask[:, :band] = cv2.GC_BGD
    mask[:, w - band:] = cv2.GC_BGD
    cx, chin = head.cx * k, (head.cy + 1.05 * head.b) * k
    # Probable person: head with hair, neck, and shoulders widening to the bottom of the photo.
    _ellipse(mask, head, k, 1.35, 1.3, -0.08, cv2.GC_PR_FGD)
    shoulder_y = chin + 1.3 * ed
    body = np.array([
        [cx - 0.9 * ed, chin - 0.3 * ed], [cx + 0.9 * ed, chin - 0.3 * ed],
        [cx + 3.0 * ed, shoulder_y], [cx + 3.4 * ed, h], [cx - 3.4 * ed, h],
        [cx - 3.0 * ed, shoulder_y],
    ], np.int32)
    cv2.fillPoly(mask, [body], cv2.GC_PR_FGD)
    # Sure background beside the head, above the shoulders (chairs, curtains, flags there have
    # suit-dark or skin-warm colours that GrabCut would otherwise keep).
    top = int(round(max(0.0, chin - 0.2 * ed)))
    for side in (-1.0, 1.0):
        x_near = cx + side * 1.9 * ed
        xa, xb = sorted((int(round(x_near)), int(round(x_near + side * w))))
        mask[:top, max(0, xa):max(0, min(w, xb))] = cv2.GC_BGD
    # Sure background beside the jaw, below the ears, down to the chin (clear of a turned
    # head's neck).
    eyes_y = (head.cy - 0.25 * head.eye_dist) * k
    y_a, y_b = int(round(eyes_y + 1.3 * ed)), top
    for side in (-1.0, 1.0):
        # A head turned away from this side (quality.yaw sign) shows more jaw and neck there.
        turn = max(0.0, -side * math.sin(math.radians(face.quality.yaw)) - math.sin(math.radians(10.0)))
        x_near = cx + side * (1.3 + 3.0 * turn) * ed
        xa, xb = sorted((int(round(x_near)), int(round(x_near + side * 0.8 * ed))))
        if y_b > y_a:
            mask[max(0, y_a):y_b, max(0, xa):max(0, min(w, xb))] = cv2.GC_BGD
    # Sure person: the inner face and a strip down the neck and chest.
    _ellipse(mask, head, k, 0.8, 1.0, -0.06, cv2.GC_FGD)  # up to the crown (dark hair)
    core = np.array([
        [cx - 0.35 * ed, chin - 0.2 * ed], [cx + 0.35 * ed, chin - 0.2 * ed],
        [cx + 1.2 * ed, h], [cx - 1.2 * ed, h],
    ], np.int32)
    cv2.fillPoly(mask, [core], cv2.GC_FGD)
    return mask


def guided_filter(guide: np.ndarray, src: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """He et al.'s guided filter (grey guide), with box filters: edges of `src` snap to `guide`'s."""
    def box(x):
        return cv2.boxFilter(x, -1, (2 * radius + 1, 2 * radius + 1), borderType=cv2.BORDER_REFLECT)

    mean_i, mean_p = box(guide), box(src)
    cov = box(guide * src) - mean_i * mean_p
    var = box(guide * guide) - mean_i * mean_i
    a = cov / (var + eps)
    b = mean_p - a * mean_i
    return box(a) * guide + box(b)


def person_matte(rgb: np.ndarray, face: DetectedFace, *, colours: bool = True) -> PersonMatte:
    """The person (head, hair, shoulders) of a portrait as a soft alpha. Deterministic.
    `colours=False` skips the edge decontamination (when the person stays on their own
    background, the edge colours are already right)."""
    h, w = rgb.shape[:2]
    head = HeadModel.from_face(face)
    k = min(1.0, WORK_SIDE / float(max(h, w)))
    small = cv2.resize(rgb, (max(8, int(round(w * k))), max(8, int(round(h * k)))),
                       interpolation=cv2.INTER_AREA)
    mask = _seed_mask(small.shape[:2], face, head, k)
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(0)  # GrabCut's k-means start: fixed, so the matte is deterministic
    cv2.grabCut(np.ascontiguousarray(small[..., ::-1]), mask, None, bgd, fgd,
                GRABCUT_ITERATIONS, cv2.GC_INIT_WITH_MASK)
    fg = ((mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)).astype(np.uint8)
    # Keep the component that holds the face; close small holes (eyes, buttons).
    count, labels = cv2.connectedComponents(fg)
    if count > 2:
        cy = int(np.clip(head.cy * k, 0, fg.shape[0] - 1))
        cx = int(np.clip(head.cx * k, 0, fg.shape[1] - 1))
        keep = labels[cy, cx] or int(np.argmax(np.bincount(labels.ravel())[1:]) + 1)
        fg = (labels == keep).astype(np.uint8)
    fg = cv2.morphologyEx(fg, cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))
    # Refine at up to GUIDE_SIDE: the hard mask's edges follow the photo's own edges.
    g = min(1.0, GUIDE_SIDE / float(max(h, w)))
    gw, gh = max(8, int(round(w * g))), max(8, int(round(h * g)))
    guide = cv2.cvtColor(cv2.resize(rgb, (gw, gh), interpolation=cv2.INTER_AREA),
                         cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
    hard = cv2.resize(fg.astype(np.float32), (gw, gh), interpolation=cv2.INTER_LINEAR)
    radius = max(2, int(round(0.06 * head.eye_dist * g)))
    soft = guided_filter(guide, hard, radius, 1e-3)
    # Pull the soft edge slightly inwards: a thin rim of old background reads as a halo.
    soft = np.clip((soft - 0.2) / 0.7, 0.0, 1.0)
    alpha = cv2.resize(soft, (w, h), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    fixed = _decontaminate(rgb, alpha) if colours else rgb.astype(np.float32)
    p, q = head.local((h, w))
    inner = (p * p + q * q) < 0.6**2
    cover = float(alpha[inner].mean()) if inner.any() else 0.0
    return PersonMatte(alpha=alpha, colours=fixed, face_cover=cover)


def _decontaminate(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Colours for the soft edge from the sure person pixels nearby (normalised convolution)."""
    img = rgb.astype(np.float32)
    sure = (alpha > 0.97).astype(np.float32)
    sigma = max(2.0, 0.004 * max(rgb.shape[:2]))
    num = cv2.GaussianBlur(img * sure[..., None], (0, 0), sigma)
    den = cv2.GaussianBlur(sure, (0, 0), sigma)[..., None]
    spread = num / np.maximum(den, 1e-4)
    edge = ((alpha > 0.01) & (alpha < 0.97) & (den[..., 0] > 1e-3))[..., None]
    return np.where(edge, spread, img).astype(np.float32)
