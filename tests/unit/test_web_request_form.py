"""The request form's values -> a request document (flows/web/pages/request_form.py): what the
form itself refuses, with a message naming the field; the lighting and camera numbers within the
specs' bounds; the edits (and so the consent clauses) a form asks for."""

from __future__ import annotations

import pytest

from castkeep.flows.web.pages import request_form
from castkeep.flows.web.pages.request_form import RequestFormError, document, edits_of, from_form
from castkeep.models.request_spec import request_from_mapping


def _form(**overrides) -> dict[str, list[str]]:
    base = {"campaign": ["Spring"], "talents": ["t-1"], "channel": ["social"],
            "territory": ["FR"], "purpose": ["advertising"], "publish_date": ["2030-01-02"],
            "variants": ["2"], "approval_required": ["on"], "lighting": ["on"],
            "key_azimuth": ["-45"], "key_elevation": ["20"], "fill_ratio": ["0.2"],
            "colour_temperature": ["3200"], "key_intensity": ["1"], "hardness": ["hard"]}
    base.update({k: v if isinstance(v, list) else [v] for k, v in overrides.items()})
    return {k: v for k, v in base.items() if v != [None]}


def test_a_complete_form_is_a_valid_request_document():
    doc = document(from_form(_form(camera="on", roll="8", yaw="0", pitch="0",
                                   focal_length="50", shot="medium")), requester="ana")
    assert doc["requester"] == "ana" and doc["talents"] == ["t-1"]
    assert doc["lighting"] == {"key_azimuth": -45.0, "key_elevation": 20.0, "fill_ratio": 0.2,
                               "colour_temperature": 3200.0, "key_intensity": 1.0,
                               "hardness": "hard"}
    assert doc["camera"]["shot"] == "medium" and doc["camera"]["roll"] == 8.0
    assert doc["approval_required"] is True and doc["variants"] == 2
    spec = request_from_mapping(doc, default_engine="classical", default_thresholds={})
    assert spec.edit_kinds() == ("lighting", "camera")
    assert spec.lighting.key_azimuth == -45.0


def test_switched_off_sections_are_left_out():
    values = from_form(_form(lighting=None, approval_required=None))
    doc = document(values, requester="ana")
    assert "lighting" not in doc and "camera" not in doc
    assert doc["approval_required"] is False
    # A disabled section posts nothing: its fields keep the specs' defaults for a re-show.
    assert from_form(_form(key_azimuth=None))["key_azimuth"] == "0"


@pytest.mark.parametrize("overrides, message", [
    ({"campaign": ""}, "Campaign"),
    ({"talents": []}, "Talents"),
    ({"channel": ""}, "Channel: this is required"),
    ({"variants": "two"}, "Variants: enter a whole number"),
    ({"variants": "0"}, "Variants: choose 1 to"),
    ({"key_azimuth": "181"}, "Key light azimuth: 181 is outside -180 to 180"),
    ({"key_elevation": "-61"}, "Key light elevation: -61 is outside -60 to 90"),
    ({"colour_temperature": "warm"}, "Colour temperature: enter a number"),
    ({"camera": "on", "roll": "91", "yaw": "0", "pitch": "0", "focal_length": "50"},
     "Camera roll: 91 is outside -90 to 90"),
])
def test_form_errors_name_the_field(overrides, message):
    with pytest.raises(RequestFormError, match=message):
        document(from_form(_form(**overrides)), requester="ana")


def test_bounds_are_the_specs_own():
    from castkeep.models.specs import CameraSpec, LightingSpec

    ranges = request_form.ranges()
    assert (ranges["key_azimuth"]["min"], ranges["key_azimuth"]["max"]) == (-180.0, 180.0)
    assert (ranges["pitch"]["min"], ranges["pitch"]["max"]) == (-60.0, 90.0)
    assert ranges["colour_temperature"]["default"] == LightingSpec().colour_temperature
    assert ranges["roll"]["description"] == CameraSpec.model_fields["roll"].description


def test_edits_follow_the_form():
    assert edits_of({"lighting": True}) == ("lighting",)
    assert edits_of({"camera": True, "scene": "a terrace"}) == ("camera", "background")
    assert edits_of({"talents": ["a", "b"]}) == ("group_composite",)
    assert edits_of({"group": True}) == ("group_composite",)


def test_hostile_values_are_bounded():
    values = from_form(_form(campaign="x" * 10_000, talents=["t"] * 50))
    assert len(values["campaign"]) == 300
    assert len(values["talents"]) == 20
