"""Classical relighting: head model, light conventions, lit side brighter, tint."""

from __future__ import annotations

import math

import numpy as np
import pytest

from castkeep.models.faces.encoders import get_encoder
from castkeep.models.imaging import load_image
from castkeep.models.engines.relight import HeadModel, light_direction, relight, tint
from castkeep.models.specs import LightingSpec, parse_lighting


@pytest.fixture(scope="module")
def portrait(fixtures_dir):
    rgb = load_image(fixtures_dir / "obama.jpg").rgb
    face = get_encoder("dlib-resnet-v1").detect(rgb, embed=False)[0]
    return rgb, face


def _halves(img: np.ndarray, head: HeadModel) -> tuple[float, float]:
    """Mean luminance of the face's image-left and image-right cheeks."""
    lum = img.astype(np.float32) @ np.array([0.2126, 0.7152, 0.0722], np.float32)
    p, q = head.local(img.shape)
    cheek = (np.abs(q) < 0.5) & (np.abs(p) > 0.15) & (np.abs(p) < 0.6)
    return float(lum[cheek & (p < 0)].mean()), float(lum[cheek & (p > 0)].mean())


def test_light_direction_conventions():
    assert np.allclose(light_direction(0, 0), [0, 0, 1], atol=1e-6)
    assert np.allclose(light_direction(90, 0), [1, 0, 0], atol=1e-6)  # camera-right = +x
    assert np.allclose(light_direction(-90, 0), [-1, 0, 0], atol=1e-6)
    assert np.allclose(light_direction(0, 90), [0, 1, 0], atol=1e-6)


def test_head_model_follows_the_face(portrait):
    rgb, face = portrait
    head = HeadModel.from_face(face)
    x0, y0, x1, y1 = face.box
    assert x0 < head.cx < x1 and y0 < head.cy < y1
    assert math.degrees(head.roll) == pytest.approx(face.quality.roll, abs=1.0)
    n = head.normals(rgb.shape)
    assert np.allclose(np.linalg.norm(n, axis=-1), 1.0, atol=1e-3)
    # Facing the camera at the centre, turned right on the right cheek.
    assert n[int(head.cy), int(head.cx), 2] > 0.95
    assert n[int(head.cy), int(head.cx + 0.8 * head.a), 0] > 0.5
    assert head.depth(rgb.shape)[int(face.nose[1]), int(face.nose[0])] > head.c


def test_frontal_neutral_spec_leaves_the_image_unchanged(portrait):
    rgb, face = portrait
    spec = LightingSpec(key_azimuth=0, key_elevation=0, key_intensity=1, colour_temperature=6500)
    out = relight(rgb, face, spec).image
    assert np.abs(out.astype(int) - rgb.astype(int)).max() <= 2


@pytest.mark.parametrize("azimuth", [60, -60])
def test_lit_side_is_brighter(portrait, azimuth):
    rgb, face = portrait
    head = HeadModel.from_face(face)
    before_l, before_r = _halves(rgb, head)
    out = relight(rgb, face, parse_lighting(f"azimuth={azimuth},elevation=10,fill=0.1")).image
    left, right = _halves(out, head)
    # Positive azimuth = camera-right = image-right side lit.
    ratio_before, ratio_after = before_r / before_l, right / left
    if azimuth > 0:
        assert ratio_after > 1.25 * ratio_before
    else:
        assert ratio_after < ratio_before / 1.25


def test_high_key_lights_the_forehead_more_than_the_chin(portrait):
    rgb, face = portrait
    res = relight(rgb, face, parse_lighting("azimuth=0,elevation=60,fill=0.1"))
    head = res.head
    top = res.gain[int(head.cy - 0.6 * head.b), int(head.cx)]
    bottom = res.gain[int(head.cy + 0.6 * head.b), int(head.cx)]
    assert top > bottom * 1.3


def test_hard_light_has_more_contrast_than_soft(portrait):
    rgb, face = portrait
    head = HeadModel.from_face(face)
    soft = _halves(relight(rgb, face, parse_lighting("azimuth=70,hardness=soft,fill=0")).image, head)
    hard = _halves(relight(rgb, face, parse_lighting("azimuth=70,hardness=hard,fill=0")).image, head)
    assert hard[1] / hard[0] > soft[1] / soft[0]


def test_colour_temperature_tint(portrait):
    warm, cool = tint(3200), tint(9000)
    assert warm[0] > 1.0 > warm[2]
    assert cool[2] > 1.0 > cool[0]
    assert np.allclose(tint(6500), 1.0, atol=1e-3)
    rgb, face = portrait
    out = relight(rgb, face, parse_lighting("azimuth=0,elevation=0,temp=3000")).image
    r_gain = out[..., 0].mean() / rgb[..., 0].mean()
    b_gain = out[..., 2].mean() / max(rgb[..., 2].mean(), 1)
    assert r_gain > b_gain * 1.3


def test_deterministic(portrait):
    rgb, face = portrait
    spec = parse_lighting("azimuth=30,elevation=20,fill=0.3,temp=4000")
    assert np.array_equal(relight(rgb, face, spec).image, relight(rgb, face, spec).image)


def test_scene_relight_stays_inside_the_person_matte(portrait):
    """The head model's gain is confined to the matte: with no person matte the background gets
    only the smooth wall gain (no ellipse drawn round the head), with one the face is relit."""
    from castkeep.models.engines.relight import backdrop_gain, relight_scene

    rgb, face = portrait
    spec = parse_lighting("azimuth=-90,fill=0,hardness=hard")
    small = rgb[::4, ::4].copy()
    from castkeep.models.engines.composite import map_face

    f4 = map_face(face, 0.25, (0.0, 0.0))
    none = np.zeros(small.shape[:2], np.float32)
    wall_only = relight_scene(small, [f4], [none], spec).astype(np.float32)
    # Per column the wall gain is constant down the image: no head-shaped step anywhere.
    ratio = (wall_only.mean(axis=-1) + 1.0) / (small.astype(np.float32).mean(axis=-1) + 1.0)
    assert np.median(np.abs(np.diff(ratio, axis=0))) < 0.01
    g = backdrop_gain(small.shape, spec)
    assert g.min() >= 0.35  # a side key still lights the wall (never near-black)
    person = np.ones(small.shape[:2], np.float32)
    lit = relight_scene(small, [f4], [person], spec)
    left, right = _halves(lit, HeadModel.from_face(f4))
    left0, right0 = _halves(small, HeadModel.from_face(f4))
    assert left / left0 > 1.3 * (right / right0)  # camera-left key: the image-left cheek gained
