"""Adherence scorers checked against ground truth made by the classical engine (the true spec
of each edit is known). The full grid and its numbers: benchmarks/adherence.py."""

from __future__ import annotations

import pytest

from castkeep.models.scoring.adherence import (
    detect_with_roll_hint,
    face_pose,
    score_camera,
    score_lighting,
)
from castkeep.models.engines.base import EditInput, get_engine
from castkeep.models.specs import CameraSpec, LightingSpec, ShotSize


@pytest.fixture(scope="module")
def encoder(dlib_encoder):
    return dlib_encoder


@pytest.fixture(scope="module")
def portrait(portrait_rgb, portrait_faces):
    return portrait_rgb["obama"], portrait_faces["obama"][0]


@pytest.fixture(scope="module")
def engine():
    return get_engine("classical")


def _edit(engine, encoder, portrait, lighting=None, camera=None):
    rgb, face = portrait
    out = engine.predict(EditInput([rgb], [face], lighting=lighting, camera=camera)).image
    found = detect_with_roll_hint(encoder, out, camera.roll if camera else 0.0)
    assert found, "the edited face must still be detectable"
    return out, found[0]


@pytest.mark.parametrize(("azimuth", "elevation"), [(-60, 30), (0, 0), (45, 15), (90, 0)])
def test_lighting_relative_estimate(engine, encoder, portrait, azimuth, elevation):
    spec = LightingSpec(key_azimuth=azimuth, key_elevation=elevation, fill_ratio=0.2)
    out, face = _edit(engine, encoder, portrait, lighting=spec)
    rgb, ref_face = portrait
    score = score_lighting(out, face, spec, reference=rgb, reference_face=ref_face)
    assert score.kind == "lighting"
    assert score.error <= 20.0, score.detail
    assert score.detail["elevation_error"] <= 15.0, score.detail
    assert score.passed is True
    # A spec the edit did not follow fails.
    wrong = LightingSpec(key_azimuth=-azimuth if azimuth else 80, key_elevation=elevation)
    if abs(wrong.key_azimuth - azimuth) >= 60:
        assert score_lighting(out, face, wrong, reference=rgb, reference_face=ref_face).passed is False


def test_lighting_absolute_estimate_gets_the_side(engine, encoder, portrait):
    for azimuth in (-70, 70):
        spec = LightingSpec(key_azimuth=azimuth, key_elevation=10, fill_ratio=0.1)
        out, face = _edit(engine, encoder, portrait, lighting=spec)
        est = score_lighting(out, face, spec).detail["estimated_azimuth"]
        assert est * azimuth > 0 and abs(est) >= 30


@pytest.mark.parametrize("roll", [-20.0, 10.0, 40.0])
def test_roll_within_3_degrees(engine, encoder, portrait, roll):
    cam = CameraSpec(roll=roll)
    out, face = _edit(engine, encoder, portrait, camera=cam)
    score = score_camera(out, face, cam, reference_face=portrait[1])
    assert score.error <= 3.0, score.detail
    assert score.passed is True
    assert score_camera(out, face, CameraSpec(roll=roll + 15), reference_face=portrait[1]).passed is False


@pytest.mark.parametrize("shot", [ShotSize.close_up, ShotSize.medium])
def test_shot_bin_exact(engine, encoder, portrait, shot):
    cam = CameraSpec(shot=shot)
    out, face = _edit(engine, encoder, portrait, camera=cam)
    score = score_camera(out, face, cam)
    assert score.detail["shot_bin_error"] == 0 and score.passed is True
    other = ShotSize.full if shot is ShotSize.close_up else ShotSize.close_up
    assert score_camera(out, face, CameraSpec(shot=other)).passed is False


def test_yaw_sign_and_size(engine, encoder, portrait):
    for yaw in (-15.0, 15.0):
        cam = CameraSpec(yaw=yaw)
        out, face = _edit(engine, encoder, portrait, camera=cam)
        score = score_camera(out, face, cam, reference_face=portrait[1])
        assert score.detail["measured_yaw"] * yaw > 0
        assert score.detail["yaw_error"] <= 8.0, score.detail


def test_face_pose_of_a_level_frontal_face(portrait):
    pose = face_pose(portrait[1])
    assert abs(pose["roll"]) < 2.0 and abs(pose["yaw"]) < 10.0


def test_model_shading_matches_relight_per_candidate():
    """The search's vectorised model light (every candidate key at once, the fill shaded once
    per azimuth, the power as exp/log) is relight.shading of each candidate to float32
    precision, and the fast row median is numpy's median exactly."""
    import numpy as np

    from castkeep.models.engines.relight import shading
    from castkeep.models.scoring.adherence import MODEL_FILL, _model_shading_many, _row_medians

    rng = np.random.default_rng(7)
    n = rng.normal(size=(501, 3)).astype(np.float32)
    n[:, 2] = np.abs(n[:, 2])
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    az = np.array([-90.0, -32.5, 0.0, 0.0, 47.5, 90.0])
    el = np.array([-30.0, 10.0, 0.0, 75.0, -2.5, 20.0])
    many = _model_shading_many(n, az, el)
    assert many.shape == (len(az), len(n))
    for k, (a, e) in enumerate(zip(az, el)):
        one = shading(n, LightingSpec(key_azimuth=a, key_elevation=e, fill_ratio=MODEL_FILL))
        np.testing.assert_allclose(many[k], one, rtol=1e-5, atol=1e-6)
    for cols in (501, 500, 1):
        x = rng.normal(size=(7, cols)).astype(np.float32)
        expected = np.median(x, axis=1, keepdims=True)
        assert np.array_equal(_row_medians(x.copy()), expected)
