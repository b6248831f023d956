"""Lighting and camera specs: precise, validated instructions for edit engines.

Conventions (all angles in degrees, subject-centred, seen from the camera):

* Azimuth is measured in the horizontal plane around the subject. 0 = straight from the
  camera's direction (frontal). **Positive = camera-right** (the image's right side),
  **negative = camera-left** (the image's left side). +/-180 = from behind the subject.
* Elevation: 0 = level with the subject's eyes, positive = above, negative = below.
* Camera yaw is the camera's orbit around the subject on the same azimuth circle: positive
  moves the camera to camera-right, so the face appears turned towards image-left.
* Camera pitch: positive raises the camera above eye level (looking down at the subject).
* Camera roll (Dutch angle): positive rotates the picture clockwise, i.e. the eye line tilts
  down to the right (image y grows downwards). Same sign as ``FaceQuality.roll``.
* Focal length is the 35 mm-equivalent focal length in mm.

Specs are parsed from compact ``key=value`` text (CLI ``--light``/``--camera``) or built from a
request file's mapping; errors name the offending key.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from castkeep.errors import SpecError


class Hardness(str, Enum):
    soft = "soft"
    hard = "hard"


class ShotSize(str, Enum):
    close_up = "close-up"
    medium = "medium"
    full = "full"


class LightingSpec(BaseModel):
    """One key light plus a fill, over the subject's face."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key_azimuth: float = Field(
        0.0, ge=-180.0, le=180.0, description="degrees; + camera-right, - camera-left"
    )
    key_elevation: float = Field(30.0, ge=-60.0, le=90.0, description="degrees; + above eye level")
    key_intensity: float = Field(1.0, ge=0.0, le=2.0, description="key strength, 1 = nominal")
    fill_ratio: float = Field(0.3, ge=0.0, le=1.0, description="fill strength relative to key")
    colour_temperature: float = Field(
        5600.0, ge=1500.0, le=12000.0, description="kelvin; 5600-6500 is neutral daylight"
    )
    hardness: Hardness = Hardness.soft


class CameraSpec(BaseModel):
    """Where the camera is relative to the subject and how it frames them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    yaw: float = Field(0.0, ge=-180.0, le=180.0, description="degrees; + camera moves right")
    pitch: float = Field(0.0, ge=-60.0, le=90.0, description="degrees; + camera above eye level")
    roll: float = Field(0.0, ge=-90.0, le=90.0, description="Dutch angle; + clockwise")
    focal_length: float = Field(50.0, ge=12.0, le=300.0, description="35 mm-equivalent, mm")
    shot: ShotSize | None = Field(None, description="close-up, medium or full; None keeps framing")


# Aliases accepted in key=value text and request files -> canonical field names.
LIGHTING_ALIASES: dict[str, str] = {
    "azimuth": "key_azimuth",
    "az": "key_azimuth",
    "key_azimuth": "key_azimuth",
    "elevation": "key_elevation",
    "el": "key_elevation",
    "key_elevation": "key_elevation",
    "intensity": "key_intensity",
    "key": "key_intensity",
    "key_intensity": "key_intensity",
    "fill": "fill_ratio",
    "fill_ratio": "fill_ratio",
    "temp": "colour_temperature",
    "temperature": "colour_temperature",
    "kelvin": "colour_temperature",
    "color_temperature": "colour_temperature",
    "colour_temperature": "colour_temperature",
    "hardness": "hardness",
    "quality": "hardness",
}

CAMERA_ALIASES: dict[str, str] = {
    "yaw": "yaw",
    "pitch": "pitch",
    "tilt": "pitch",
    "roll": "roll",
    "dutch": "roll",
    "focal": "focal_length",
    "focal_length": "focal_length",
    "lens": "focal_length",
    "shot": "shot",
    "shot_size": "shot",
    "framing": "shot",
}

_SHOT_ALIASES = {
    "close-up": "close-up",
    "closeup": "close-up",
    "close_up": "close-up",
    "close": "close-up",
    "cu": "close-up",
    "medium": "medium",
    "mid": "medium",
    "ms": "medium",
    "full": "full",
    "wide": "full",
    "fs": "full",
}


def _split_pairs(text: str, what: str) -> list[tuple[str, str]]:
    pairs = []
    for raw in text.split(","):
        item = raw.strip()
        if not item:
            continue
        if "=" not in item:
            raise SpecError(
                f"{what} spec item {item!r} is not key=value; write e.g. 'azimuth=45,fill=0.2'"
            )
        key, value = item.split("=", 1)
        pairs.append((key.strip().lower().replace("-", "_"), value.strip()))
    return pairs


def _normalise(
    items: list[tuple[str, Any]], aliases: dict[str, str], what: str
) -> tuple[dict[str, Any], dict[str, str]]:
    """Aliases -> field names; returns (values by field, the key the user wrote by field)."""
    out: dict[str, Any] = {}
    given: dict[str, str] = {}
    for key, value in items:
        norm = str(key).strip().lower().replace("-", "_")
        field = aliases.get(norm)
        if field is None:
            known = ", ".join(sorted(set(aliases)))
            raise SpecError(f"unknown {what} key {key!r}; known keys: {known}")
        if field in out:
            raise SpecError(f"{what} key {key!r} given twice (as {field})")
        if field == "shot" and isinstance(value, str):
            shot = _SHOT_ALIASES.get(value.strip().lower())
            if shot is None:
                raise SpecError(
                    f"{what} key {key!r}: {value!r} is not a shot size; use close-up, medium or full"
                )
            value = shot
        if field == "hardness" and isinstance(value, str):
            value = value.strip().lower()
        if field == "colour_temperature" and isinstance(value, str) and value.lower().endswith("k"):
            value = value[:-1]
        out[field] = value
        given[field] = str(key)
    return out, given


def _build(model: type[BaseModel], items: list[tuple[str, Any]], aliases, what: str):
    data, given = _normalise(items, aliases, what)
    try:
        return model(**data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            field = str(err["loc"][0]) if err["loc"] else "?"
            name = given.get(field, field)
            problems.append(f"{what} key {name!r} ({field}): {err['msg']}")
        raise SpecError("; ".join(problems)) from None


def lighting_from_mapping(data: dict[str, Any]) -> LightingSpec:
    """Build a LightingSpec from a request-file mapping (aliases allowed)."""
    return _build(LightingSpec, list(data.items()), LIGHTING_ALIASES, "lighting")


def camera_from_mapping(data: dict[str, Any]) -> CameraSpec:
    """Build a CameraSpec from a request-file mapping (aliases allowed)."""
    return _build(CameraSpec, list(data.items()), CAMERA_ALIASES, "camera")


def parse_lighting(text: str) -> LightingSpec:
    """``"azimuth=45,elevation=30,fill=0.2,temp=3200"`` -> LightingSpec."""
    return _build(LightingSpec, _split_pairs(text, "lighting"), LIGHTING_ALIASES, "lighting")


def parse_camera(text: str) -> CameraSpec:
    """``"roll=30,shot=medium"`` -> CameraSpec."""
    return _build(CameraSpec, _split_pairs(text, "camera"), CAMERA_ALIASES, "camera")


def describe_lighting(spec: LightingSpec) -> str:
    """Compact canonical text form (round-trips through parse_lighting)."""
    return (
        f"azimuth={spec.key_azimuth:g},elevation={spec.key_elevation:g},"
        f"intensity={spec.key_intensity:g},fill={spec.fill_ratio:g},"
        f"temp={spec.colour_temperature:g},hardness={spec.hardness.value}"
    )


def describe_camera(spec: CameraSpec) -> str:
    """Compact canonical text form (round-trips through parse_camera)."""
    text = (
        f"yaw={spec.yaw:g},pitch={spec.pitch:g},roll={spec.roll:g},focal={spec.focal_length:g}"
    )
    if spec.shot is not None:
        text += f",shot={spec.shot.value}"
    return text
