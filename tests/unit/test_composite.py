"""Group layout and backdrop: equal head sizes, one eye line, a smooth studio backdrop."""

from __future__ import annotations

import numpy as np

from castkeep.models.engines.composite import (
    BACKDROP_TONES,
    CANVAS_HEIGHT,
    map_face,
    plan_group,
    studio_backdrop,
)
from castkeep.models.faces.face_types import DetectedFace, FaceQuality


def _face(ex: float, ey: float, ed: float) -> DetectedFace:
    left, right = (ex - ed / 2, ey), (ex + ed / 2, ey)
    nose = (ex, ey + 0.7 * ed)
    return DetectedFace(
        box=(ex - ed, ey - ed, ex + ed, ey + 1.6 * ed), landmarks=(left, right, nose),
        eye_left=left, eye_right=right, nose=nose,
        quality=FaceQuality(face_px=int(2 * ed), sharpness=50.0, det_score=1.0, yaw=0.0, roll=0.0),
        encoder="test", encoder_version="0")


def test_heads_are_matched_in_size_and_set_on_one_eye_line():
    shapes = [(1200, 900, 3), (600, 400, 3)]
    faces = [_face(450, 300, 120), _face(200, 150, 40)]
    layout = plan_group(shapes, faces)
    eds = [f.eye_right[0] - f.eye_left[0] for f in layout.faces]
    assert abs(eds[0] - eds[1]) < 1e-6
    assert abs(layout.faces[0].eye_left[1] - layout.faces[1].eye_left[1]) < 1e-6
    assert layout.faces[0].nose[0] < layout.faces[1].nose[0]  # in the order given
    w, h = layout.size
    assert h == CANVAS_HEIGHT and w >= h
    # Every body reaches the bottom of the frame (each photo runs below the eyes far enough).
    for shape, place in zip(shapes, layout.placements):
        assert place.offset[1] + shape[0] * place.scale >= h - 1


def test_map_face_scales_and_moves_every_point():
    f = map_face(_face(100, 50, 20), 2.0, (10.0, -5.0))
    assert f.eye_left == (190.0, 95.0) and f.box[0] == 170.0


def test_backdrop_is_smooth_and_brightest_behind_the_people():
    lin = studio_backdrop((320, 240), BACKDROP_TONES[0])
    assert lin.shape == (240, 320, 3)
    lum = lin.mean(axis=-1)
    assert lum[int(0.4 * 240), 160] == lum.max()
    assert np.abs(np.diff(lum, axis=1)).max() < 0.01  # no steps
