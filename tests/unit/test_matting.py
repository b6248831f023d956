"""Person mattes: GrabCut seeded from the face, guided-filter edges, deterministic."""

from __future__ import annotations

import cv2
import numpy as np

from castkeep.models.engines.matting import guided_filter, person_matte
from castkeep.models.faces.face_types import DetectedFace, FaceQuality


def _scene():
    """A warm head and a dark suit on a textured blue-grey wall, 240 x 180."""
    rng = np.random.default_rng(0)
    img = (np.array([120, 140, 170]) + rng.normal(0, 6, (240, 180, 3))).clip(0, 255)
    cv2.ellipse(img, (90, 80), (28, 36), 0, 0, 360, (190, 140, 110), -1)  # head
    cv2.rectangle(img, (82, 110), (98, 130), (180, 130, 100), -1)  # neck
    cv2.ellipse(img, (90, 240), (75, 110), 0, 180, 360, (30, 30, 45), -1)  # shoulders
    img = img.astype(np.uint8)
    left, right, nose = (80.0, 72.0), (100.0, 72.0), (90.0, 86.0)
    face = DetectedFace(box=(64.0, 50.0, 116.0, 110.0), landmarks=(left, right, nose),
                        eye_left=left, eye_right=right, nose=nose,
                        quality=FaceQuality(52, 50.0, 1.0, 0.0, 0.0), encoder="t",
                        encoder_version="0")
    return img, face


def test_the_person_is_kept_and_the_wall_dropped():
    img, face = _scene()
    m = person_matte(img, face)
    assert m.alpha.shape == img.shape[:2] and m.alpha.dtype == np.float32
    assert m.face_cover > 0.95
    assert m.alpha[80, 90] > 0.95 and m.alpha[200, 90] > 0.9  # face, chest
    assert m.alpha[20, 20] < 0.05 and m.alpha[60, 160] < 0.05  # wall beside and above
    again = person_matte(img, face)
    assert np.array_equal(m.alpha, again.alpha)  # deterministic


def test_guided_filter_keeps_an_edge_where_the_guide_has_it():
    guide = np.zeros((40, 40), np.float32)
    guide[:, 20:] = 1.0
    rough = np.zeros((40, 40), np.float32)
    rough[:, 17:] = 1.0  # three pixels off
    out = guided_filter(guide, rough, 4, 1e-4)
    assert out[20, 10] < 0.1 and out[20, 30] > 0.9
    # The biggest step sits at the guide's edge (19 -> 20), not at the rough mask's (16 -> 17).
    assert int(np.argmax(np.diff(out[20]))) == 19
