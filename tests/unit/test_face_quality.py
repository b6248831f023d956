"""Face quality measures: pose from landmarks, sharpness, box clipping."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from castkeep.models.faces.face_quality import (
    clip_box,
    face_quality,
    roll_degrees,
    sharpness,
    yaw_degrees,
)


def test_roll_sign_and_value():
    assert roll_degrees((0, 0), (10, 0)) == pytest.approx(0.0)
    # right eye lower than left (y down): eye line turned clockwise -> positive
    assert roll_degrees((0, 0), (10, 10)) == pytest.approx(45.0)
    assert roll_degrees((0, 10), (10, 0)) == pytest.approx(-45.0)


def test_yaw_sign_and_roll_independence():
    assert yaw_degrees((0, 0), (10, 0), (5, 8)) == pytest.approx(0.0)
    right = yaw_degrees((0, 0), (10, 0), (8, 8))
    left = yaw_degrees((0, 0), (10, 0), (2, 8))
    assert right > 10 and left == pytest.approx(-right)
    # the same face rotated 30 degrees in the image keeps its yaw
    c, s = np.cos(np.radians(30)), np.sin(np.radians(30))
    rot = lambda p: (p[0] * c - p[1] * s, p[0] * s + p[1] * c)  # noqa: E731
    assert yaw_degrees(rot((0, 0)), rot((10, 0)), rot((8, 8))) == pytest.approx(right, abs=1e-6)


def test_sharpness_drops_with_blur():
    rng = np.random.default_rng(1)
    img = (rng.random((200, 200, 3)) > 0.5).astype(np.uint8) * 255
    blurred = cv2.GaussianBlur(img, (0, 0), 4)
    box = (20.0, 20.0, 180.0, 180.0)
    assert sharpness(img, box) > 10 * sharpness(blurred, box)
    assert sharpness(img, (5.0, 5.0, 6.0, 6.0)) == 0.0  # degenerate box


def test_clip_box():
    assert clip_box((-5, -2, 50, 300), 40, 100) == (0.0, 0.0, 40.0, 100.0)


def test_face_quality_uses_shorter_box_side():
    img = np.zeros((100, 100, 3), np.uint8)
    q = face_quality(img, (10, 10, 70, 50), (20, 20), (40, 20), (30, 35), 1.5)
    assert q.face_px == 40 and q.det_score == 1.5 and q.roll == 0.0 and q.yaw == 0.0
    assert q.as_dict()["face_px"] == 40
