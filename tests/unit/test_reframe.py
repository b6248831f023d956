"""Classical reframing: shot bins, roll/zoom affine, coverage, depth-parallax turns."""

from __future__ import annotations

import math

import numpy as np
import pytest

from castkeep.models.engines.reframe import (
    SHOT_SHARES,
    apply_framing,
    face_share,
    parallax_warp,
    plan_framing,
    shot_of_share,
    transform_point,
)
from castkeep.models.engines.relight import HeadModel
from castkeep.models.specs import CameraSpec, ShotSize, parse_camera


@pytest.fixture(scope="module")
def encoder(dlib_encoder):
    return dlib_encoder


@pytest.fixture(scope="module")
def portrait(portrait_rgb, portrait_faces):
    return portrait_rgb["obama"], portrait_faces["obama"][0]


def _nose_offset(face) -> float:
    """Nose position along the eye line, in eye distances from the eyes' midpoint."""
    (lx, ly), (rx, ry) = face.eye_left, face.eye_right
    ed = math.hypot(rx - lx, ry - ly)
    return (face.nose[0] - (lx + rx) / 2) / ed


def test_shot_bins():
    assert shot_of_share(0.6) is ShotSize.close_up
    assert shot_of_share(0.25) is ShotSize.medium
    assert shot_of_share(0.05) is ShotSize.full
    for shot, (lower, target) in SHOT_SHARES.items():
        assert shot_of_share(target) is shot and target >= lower


def test_roll_only_rotates_about_the_face(portrait):
    rgb, face = portrait
    head = HeadModel.from_face(face)
    fr = plan_framing(rgb.shape, face, head, parse_camera("roll=20"))
    m = fr.matrix
    assert math.degrees(math.atan2(m[1, 0], m[0, 0])) == pytest.approx(20.0, abs=0.01)
    cx, cy = transform_point(m, (head.cx, head.cy))
    # Rotation about the face centre (plus at most a small cover zoom and shift).
    assert abs(cx - head.cx) < 0.1 * rgb.shape[1] and abs(cy - head.cy) < 0.1 * rgb.shape[0]
    assert fr.size == (rgb.shape[1], rgb.shape[0])


def test_close_up_zooms_to_the_target_share(portrait):
    rgb, face = portrait
    head = HeadModel.from_face(face)
    fr = plan_framing(rgb.shape, face, head, parse_camera("shot=close-up"))
    share = face_share(face, rgb.shape[0]) * fr.zoom * fr.cover_zoom
    assert share == pytest.approx(SHOT_SHARES[ShotSize.close_up][1], rel=0.02)
    assert fr.border_fraction == 0.0  # zoom-in stays inside the photo


def test_same_bin_keeps_the_framing(portrait):
    rgb, face = portrait
    assert shot_of_share(face_share(face, rgb.shape[0])) is ShotSize.medium
    fr = plan_framing(rgb.shape, face, HeadModel.from_face(face), parse_camera("shot=medium"))
    assert np.allclose(fr.matrix, [[1, 0, 0], [0, 1, 0]])


def test_zoom_out_beyond_the_photo_is_refused(portrait):
    rgb, face = portrait
    with pytest.raises(ValueError, match="zoom-out"):
        plan_framing(rgb.shape, face, HeadModel.from_face(face), parse_camera("shot=full"))


def test_focal_length_crops_field_of_view(portrait):
    rgb, face = portrait
    fr = plan_framing(rgb.shape, face, HeadModel.from_face(face), CameraSpec(focal_length=100))
    assert fr.zoom == pytest.approx(2.0)
    out = apply_framing(rgb, fr)
    assert out.shape == rgb.shape


def test_parallax_turn_moves_the_nose(portrait, encoder):
    rgb, face = portrait
    head = HeadModel.from_face(face)
    before = _nose_offset(face)
    right = encoder.detect(parallax_warp(rgb, head, 15, 0), embed=False)[0]
    left = encoder.detect(parallax_warp(rgb, head, -15, 0), embed=False)[0]
    # Camera to camera-right: the nose (nearest point) moves to image-left, and vice versa.
    assert _nose_offset(right) < before - 0.03
    assert _nose_offset(left) > before + 0.03
    assert parallax_warp(rgb, head, 0, 0) is rgb


def test_parallax_leaves_the_background(portrait):
    rgb, face = portrait
    out = parallax_warp(rgb, HeadModel.from_face(face), 15, 10)
    assert np.array_equal(out[-50:], rgb[-50:])  # bottom rows: far from the head
