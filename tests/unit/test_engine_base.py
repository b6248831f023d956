"""Engine registry and the shared input checks."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from castkeep.errors import SpecError, UnknownModelError
from castkeep.models.engines.base import (
    EDIT_KINDS,
    EditInput,
    EditOutput,
    get_engine,
    known_engines,
    requested_edit_kinds,
)
from castkeep.models.faces.face_types import DetectedFace, FaceQuality
from castkeep.models.specs import parse_camera, parse_lighting


def _face() -> DetectedFace:
    return DetectedFace(
        box=(20.0, 20.0, 60.0, 60.0),
        landmarks=((30.0, 35.0), (50.0, 35.0), (40.0, 45.0)),
        eye_left=(30.0, 35.0),
        eye_right=(50.0, 35.0),
        nose=(40.0, 45.0),
        quality=FaceQuality(face_px=40, sharpness=1.0, det_score=1.0, yaw=0.0, roll=0.0),
        encoder="test",
        encoder_version="0",
    )


def _img() -> np.ndarray:
    return np.full((80, 80, 3), 120, np.uint8)


def test_registry_lists_and_refuses_unknown_names():
    assert known_engines() == ["classical", "qwen-image-edit"]
    with pytest.raises(UnknownModelError) as info:
        get_engine("stable-diffusion")
    assert "classical" in str(info.value) and "qwen-image-edit" in str(info.value)


def test_get_engine_does_not_load():
    engine = get_engine("classical")
    assert engine.loaded is False
    assert engine.info.max_references >= 2


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"references": []}, "at least one reference"),
        ({"faces": []}, "one face per reference"),
        ({"references": [np.zeros((8, 8), np.uint8)]}, "HxWx3 uint8"),
        ({"references": [np.zeros((8, 8, 3), np.float32)]}, "HxWx3 uint8"),
        ({"seed": -1}, "seed"),
        ({"lighting": None}, "nothing to do"),
    ],
)
def test_shared_checks(kwargs, match):
    base = dict(references=[_img()], faces=[_face()], lighting=parse_lighting("azimuth=10"))
    engine = get_engine("classical")
    with pytest.raises(SpecError, match=match):
        engine.predict(EditInput(**{**base, **kwargs}))
    assert engine.loaded is False  # inputs are checked before anything loads


def test_requested_edit_kinds():
    inp = EditInput(references=[_img(), _img()], faces=[_face(), _face()],
                    lighting=parse_lighting("azimuth=1"), camera=parse_camera("roll=2"),
                    scene="studio")
    kinds = requested_edit_kinds(inp)
    assert kinds == ("lighting", "camera", "background", "group_composite")
    assert set(kinds) <= set(EDIT_KINDS)


def test_output_is_frozen():
    out = EditOutput(image=_img(), metadata={}, edit_kinds=("lighting",))
    with pytest.raises(dataclasses.FrozenInstanceError):
        out.edit_kinds = ()  # type: ignore[misc]


def test_engine_options_are_pydantic_models_that_refuse_what_they_do_not_know():
    import pytest as _pytest

    from castkeep.errors import SpecError
    from castkeep.models.engines.engine_classical import ClassicalOptions
    from castkeep.models.engines.engine_qwen import QwenOptions
    from castkeep.models.engines.base import validate_options

    ok = validate_options(QwenOptions, {"steps": 8, "width": 512, "height": 512}, engine="q",
                          hints={})
    assert (ok.steps, ok.prompt_style, ok.loras) == (8, "instruction", [])
    with _pytest.raises(SpecError, match=r"unknown q option\(s\) \['seed_x'\]; known: \["):
        validate_options(QwenOptions, {"seed_x": 1}, engine="q", hints={})
    with _pytest.raises(SpecError, match=r"^steps! got True$"):
        validate_options(QwenOptions, {"steps": True}, engine="q",
                         hints={"steps": "steps! got {value!r}"})
    with _pytest.raises(SpecError, match="'width' is invalid"):
        validate_options(QwenOptions, {"width": 50}, engine="q", hints={})
    assert validate_options(ClassicalOptions, {"variation": 0}, engine="c", hints={}).variation == 0
