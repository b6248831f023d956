"""Group composites for the classical engine: several portraits made into one studio frame.

Stages: (1) lay the people out so their heads are the same size, eyes on one line, standing
shoulder to shoulder; (2) cut each person from their own photo (matting.person_matte);
(3) grade them to one colour balance (skin tones pulled towards the group's mean); (4) place
them on one shared studio backdrop, a smooth radial gradient whose tone the variant chooses.
Lighting and camera are applied afterwards to the whole frame (engine_classical), so a Dutch
angle rolls the picture, not each person.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import cv2
import numpy as np

from castkeep.models.engines.matting import person_matte
from castkeep.models.engines.relight import HeadModel, _to_linear, _to_srgb
from castkeep.models.faces.face_types import DetectedFace

CANVAS_HEIGHT = 960
MIN_ASPECT = 4.0 / 3.0
EYE_LINE = 0.36  # eye height as a fraction of the frame, from the top
EYE_DIST = 0.085  # eye distance as a fraction of the frame height (a medium shot)
MAX_EYE_DIST = 0.16
SPACING = 5.8  # head centres apart, in eye distances (shoulders just touching)
GRADE_STRENGTH = 0.7  # how far skin colour moves towards the group mean (1 = all the way)
GRADE_LIMITS = (0.75, 1.33)
# Studio backdrop tones (sRGB): warm grey, cool grey, sand, sage, slate, dove.
BACKDROP_TONES: tuple[tuple[int, int, int], ...] = (
    (196, 193, 186), (172, 180, 190), (206, 194, 174), (160, 172, 160), (124, 134, 150),
    (214, 212, 208),
)


@dataclass(frozen=True)
class Placement:
    scale: float  # reference pixels -> canvas pixels
    offset: tuple[float, float]  # canvas position of the reference's (0, 0)


@dataclass(frozen=True)
class Layout:
    size: tuple[int, int]  # canvas (width, height)
    placements: tuple[Placement, ...]
    faces: tuple[DetectedFace, ...]  # each face in canvas coordinates


def map_face(face: DetectedFace, scale: float, offset: tuple[float, float]) -> DetectedFace:
    """`face` after scaling its image by `scale` and moving it by `offset`."""
    ox, oy = offset

    def pt(p):
        return (p[0] * scale + ox, p[1] * scale + oy)

    x0, y0, x1, y1 = face.box
    return replace(
        face,
        box=(x0 * scale + ox, y0 * scale + oy, x1 * scale + ox, y1 * scale + oy),
        landmarks=tuple(pt(p) for p in face.landmarks),
        eye_left=pt(face.eye_left),
        eye_right=pt(face.eye_right),
        nose=pt(face.nose),
    )


def plan_group(
    shapes: list[tuple[int, ...]], faces: list[DetectedFace], *, spacing_jitter: float = 0.0
) -> Layout:
    """Where each person goes: equal head sizes, one eye line, side by side, every body
    reaching the bottom of the frame where its photo allows (the head size grows until it does)."""
    heads = [HeadModel.from_face(f) for f in faces]
    ch = CANVAS_HEIGHT
    eye_y = EYE_LINE * ch
    # Each photo's body below the eyes, in its own eye distances.
    below = [(s[0] - (f.eye_left[1] + f.eye_right[1]) / 2.0) / hd.eye_dist
             for s, f, hd in zip(shapes, faces, heads)]
    ed = EYE_DIST * ch
    need = (ch - eye_y) / max(1e-3, min(below))
    ed = float(np.clip(max(ed, need), ed, MAX_EYE_DIST * ch))
    gap = (SPACING + spacing_jitter) * ed
    n = len(faces)
    cw = int(round(max(MIN_ASPECT * ch, gap * (n - 1) + 7.0 * ed)))
    first = cw / 2.0 - gap * (n - 1) / 2.0
    placements, mapped = [], []
    for i, (face, head) in enumerate(zip(faces, heads)):
        s = ed / head.eye_dist
        ex, ey = (face.eye_left[0] + face.eye_right[0]) / 2.0, (face.eye_left[1] + face.eye_right[1]) / 2.0
        offset = (first + i * gap - ex * s, eye_y - ey * s)
        placements.append(Placement(scale=s, offset=offset))
        mapped.append(map_face(face, s, offset))
    return Layout(size=(cw, ch), placements=tuple(placements), faces=tuple(mapped))


def studio_backdrop(size: tuple[int, int], tone: tuple[float, float, float],
                    centre_x: float = 0.5) -> np.ndarray:
    """A smooth studio sweep: brightest behind the subjects, falling off to the corners."""
    w, h = size
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    r2 = ((xs - centre_x * w) / (0.75 * w)) ** 2 + ((ys - 0.4 * h) / (0.9 * h)) ** 2
    fall = np.clip(1.0 - 0.42 * r2, 0.45, 1.0)
    lin = _to_linear(np.clip(np.rint(np.array(tone)), 0, 255).astype(np.uint8))
    return lin[None, None, :] * fall[..., None]  # linear light


def _skin_mean(lin: np.ndarray, alpha: np.ndarray, face: DetectedFace) -> np.ndarray:
    p, q = HeadModel.from_face(face).local(lin.shape)
    skin = ((p * p + q * q) < 0.55**2) & (alpha > 0.9)
    if skin.sum() < 20:
        return lin[alpha > 0.5].mean(axis=0) if (alpha > 0.5).any() else np.ones(3, np.float32)
    return np.median(lin[skin], axis=0)


def compose_group(
    references: list[np.ndarray],
    faces: list[DetectedFace],
    layout: Layout,
    tone: tuple[float, float, float],
) -> tuple[np.ndarray, list[np.ndarray], dict]:
    """The people of `layout` on one backdrop: (RGB uint8 canvas, each person's canvas alpha,
    metadata of what was done)."""
    cw, ch = layout.size
    canvas = studio_backdrop(layout.size, tone)
    people = []
    for ref, face, place in zip(references, faces, layout.placements):
        s = place.scale
        # Matte at the canvas's scale (cheaper, and the scale it is seen at).
        small = cv2.resize(ref, (max(8, int(round(ref.shape[1] * s))),
                                 max(8, int(round(ref.shape[0] * s)))),
                           interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC)
        sx, sy = small.shape[1] / ref.shape[1], small.shape[0] / ref.shape[0]
        face_s = map_face(face, (sx + sy) / 2.0, (0.0, 0.0))
        matte = person_matte(small, face_s)
        m = np.array([[1.0, 0.0, place.offset[0]], [0.0, 1.0, place.offset[1]]])
        colours = cv2.warpAffine(matte.colours, m, (cw, ch), flags=cv2.INTER_LINEAR,
                                 borderMode=cv2.BORDER_REPLICATE)
        alpha = cv2.warpAffine(matte.alpha, m, (cw, ch), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        # Where the photo ends at the bottom, the person continues off the frame: extend the
        # last rows rather than cutting the body straight across above the frame's edge.
        bottom = int(math.floor(place.offset[1] + small.shape[0])) - 1
        if 0 < bottom < ch:
            alpha[bottom:] = alpha[bottom - 1]
        lin = _to_linear(np.clip(np.rint(colours), 0, 255).astype(np.uint8))
        people.append((lin, alpha, matte.face_cover))
    # One colour balance: each person's skin pulled towards the group's mean skin colour.
    skins = [_skin_mean(lin, alpha, f) for (lin, alpha, _), f in zip(people, layout.faces)]
    target = np.exp(np.mean(np.log(np.maximum(skins, 1e-4)), axis=0))
    gains = []
    for (lin, alpha, _), skin in zip(people, skins):
        g = np.clip((target / np.maximum(skin, 1e-4)) ** GRADE_STRENGTH, *GRADE_LIMITS)
        gains.append(g)
        a = alpha[..., None]
        canvas = canvas * (1.0 - a) + (lin * g[None, None, :]) * a
    meta = {
        "layout": {"size": [cw, ch],
                   "scales": [round(p.scale, 4) for p in layout.placements]},
        "matte": {"method": "grabcut+guided-filter",
                  "face_cover": [round(c, 3) for _, _, c in people]},
        "grade_gains": [[round(float(v), 3) for v in g] for g in gains],
        "backdrop_tone": [int(round(c)) for c in tone],
    }
    return _to_srgb(canvas), [a for _, a, _ in people], meta
