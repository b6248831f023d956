"""Spec compilation: English instructions and multiple-angles LoRA bins with rounding."""

from __future__ import annotations

import pytest

from castkeep.models.engines.spec_compile import (
    AZIMUTH_BINS,
    DISTANCE_BINS,
    ELEVATION_BINS,
    angle_prompt,
    instruction,
    shot_from_focal_length,
)
from castkeep.models.specs import ShotSize, parse_camera, parse_lighting


def test_grid_is_8_by_4_by_3():
    assert len(AZIMUTH_BINS) == 8 and len({a for a, _ in AZIMUTH_BINS}) == 8
    assert len(ELEVATION_BINS) == 4
    assert len(DISTANCE_BINS) == 3


def test_exact_bin_has_no_rounding():
    p = angle_prompt(parse_camera("yaw=45,pitch=30,shot=close-up"))
    assert p.prompt == "<sks> front-right quarter view elevated shot close-up"
    assert p.rounding["azimuth"]["error"] == 0.0
    assert not p.rounded


@pytest.mark.parametrize(
    ("yaw", "label", "chosen", "error"),
    [
        (30, "front-right quarter view", 45, -15),
        (-20, "front view", 0, -20),
        (-25, "front-left quarter view", -45, 20),
        (170, "back view", 180, -10),
        (-170, "back view", 180, 10),
        (-100, "left side view", -90, -10),
    ],
)
def test_nearest_azimuth_bin_and_rounding(yaw, label, chosen, error):
    p = angle_prompt(parse_camera(f"yaw={yaw},shot=medium"))
    assert label in p.prompt
    assert p.rounding["azimuth"]["chosen"] == chosen
    assert p.rounding["azimuth"]["error"] == pytest.approx(error)
    assert p.rounded


def test_elevation_and_distance_bins():
    p = angle_prompt(parse_camera("pitch=-20,shot=full"))
    assert p.prompt == "<sks> front view low-angle shot wide shot"
    assert p.rounding["elevation"]["error"] == pytest.approx(10)
    p = angle_prompt(parse_camera("pitch=50"))
    assert "high-angle shot" in p.prompt
    # No shot given: derived from the lens and reported as derived.
    assert p.rounding["distance"]["derived"] is True
    assert p.distance == "medium shot"


def test_mirror_flips_handedness():
    p = angle_prompt(parse_camera("yaw=45"), mirror=True)
    assert "front-left quarter view" in p.prompt
    assert p.rounding["azimuth"]["chosen"] == 45


def test_roll_is_reported_as_not_expressed():
    p = angle_prompt(parse_camera("roll=30"))
    assert p.rounding["roll"] == {"requested": 30.0, "expressed": False}


def test_shot_from_focal_length():
    assert shot_from_focal_length(24) is ShotSize.full
    assert shot_from_focal_length(50) is ShotSize.medium
    assert shot_from_focal_length(135) is ShotSize.close_up


def test_instruction_mentions_each_parameter():
    text = instruction(
        parse_lighting("azimuth=-45,elevation=30,fill=0.2,temp=3200,hardness=hard"),
        parse_camera("roll=30,shot=medium"),
        "a sunny beach",
    )
    assert "45 degrees to camera-left" in text
    assert "30 degrees above eye level" in text
    assert "20% of the key" in text
    assert "3200 K" in text and "warm tungsten" in text
    assert "hard key light" in text
    assert "30 degrees clockwise" in text
    assert "medium shot" in text
    assert "a sunny beach" in text
    assert "identity" in text


def test_group_instruction():
    text = instruction(parse_lighting("azimuth=20"), None, None, people=3)
    assert "3 people" in text
    assert "every person" in text
    assert "20 degrees to camera-right" in text
