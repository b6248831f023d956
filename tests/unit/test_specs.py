"""Spec parsing and validation: aliases, ranges, and errors that name the key."""

from __future__ import annotations

import pytest

from castkeep.errors import SpecError
from castkeep.models.specs import (
    CameraSpec,
    Hardness,
    LightingSpec,
    ShotSize,
    camera_from_mapping,
    describe_camera,
    describe_lighting,
    lighting_from_mapping,
    parse_camera,
    parse_lighting,
)


def test_parse_lighting_with_aliases():
    spec = parse_lighting("azimuth=45,elevation=30,fill=0.2,temp=3200")
    assert spec.key_azimuth == 45.0
    assert spec.key_elevation == 30.0
    assert spec.fill_ratio == pytest.approx(0.2)
    assert spec.colour_temperature == 3200.0
    assert spec.hardness is Hardness.soft  # default


def test_parse_lighting_accepts_kelvin_suffix_and_hardness_case():
    spec = parse_lighting(" az=-60 , temp=6500K, hardness=HARD ")
    assert spec.key_azimuth == -60.0
    assert spec.colour_temperature == 6500.0
    assert spec.hardness is Hardness.hard


def test_parse_camera_roll_and_shot():
    spec = parse_camera("roll=30,shot=medium")
    assert spec.roll == 30.0
    assert spec.shot is ShotSize.medium
    assert spec.yaw == 0.0
    assert parse_camera("dutch=-10,shot=close-up,lens=85").shot is ShotSize.close_up
    assert parse_camera("framing=wide").shot is ShotSize.full


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("azimuth=181", "'azimuth'"),
        ("fill=1.5", "'fill'"),
        ("temp=900", "'temp'"),
        ("elevation=abc", "'elevation'"),
        ("hardness=medium", "'hardness'"),
    ],
)
def test_lighting_errors_name_the_key(text, key):
    with pytest.raises(SpecError) as info:
        parse_lighting(text)
    assert key in str(info.value)


def test_unknown_key_lists_known_ones():
    with pytest.raises(SpecError) as info:
        parse_lighting("azimuth=10,brightness=3")
    msg = str(info.value)
    assert "'brightness'" in msg
    assert "azimuth" in msg and "fill" in msg


def test_camera_errors():
    with pytest.raises(SpecError, match="'shot'"):
        parse_camera("shot=extreme")
    with pytest.raises(SpecError, match="'roll'"):
        parse_camera("roll=95")
    with pytest.raises(SpecError, match="given twice"):
        parse_camera("roll=5,dutch=6")
    with pytest.raises(SpecError, match="key=value"):
        parse_camera("roll")


def test_extra_fields_forbidden_on_models():
    with pytest.raises(Exception):
        LightingSpec(key_azimuth=1, colour=3)  # type: ignore[call-arg]
    with pytest.raises(Exception):
        CameraSpec(zoom=2)  # type: ignore[call-arg]


def test_mappings_from_request_files():
    spec = lighting_from_mapping({"azimuth": 30, "fill_ratio": 0.5})
    assert (spec.key_azimuth, spec.fill_ratio) == (30.0, 0.5)
    cam = camera_from_mapping({"yaw": -10, "shot": "full"})
    assert (cam.yaw, cam.shot) == (-10.0, ShotSize.full)
    with pytest.raises(SpecError, match="'zoom'"):
        camera_from_mapping({"zoom": 2})


def test_describe_round_trips():
    spec = parse_lighting("azimuth=-45,elevation=10,fill=0.25,temp=4300,hardness=hard,key=1.5")
    assert parse_lighting(describe_lighting(spec)) == spec
    cam = parse_camera("yaw=12,pitch=-5,roll=7.5,focal=85,shot=close-up")
    assert parse_camera(describe_camera(cam)) == cam
