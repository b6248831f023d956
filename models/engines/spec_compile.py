"""Compile lighting/camera specs into what a given engine understands.

* ``instruction(...)``: plain English for instruction-following editors (Qwen-Image-Edit).
* ``angle_prompt(camera)``: the multiple-angles LoRA prompt ``<sks> [azimuth] [elevation]
  [distance]`` over its 8 x 4 x 3 grid of camera poses. Specs snap to the nearest bin and the
  rounding is reported, so a request for yaw 30 is never silently presented as yaw 45.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from castkeep.models.specs import CameraSpec, LightingSpec, ShotSize

# The LoRA's vocabulary. Azimuth labels name where the camera sits, turning to camera-right
# for positive yaw (see specs.py); `mirror=True` flips handedness for LoRAs trained the other way.
AZIMUTH_BINS: tuple[tuple[float, str], ...] = (
    (0.0, "front view"),
    (45.0, "front-right quarter view"),
    (90.0, "right side view"),
    (135.0, "back-right quarter view"),
    (180.0, "back view"),
    (-135.0, "back-left quarter view"),
    (-90.0, "left side view"),
    (-45.0, "front-left quarter view"),
)
ELEVATION_BINS: tuple[tuple[float, str], ...] = (
    (-30.0, "low-angle shot"),
    (0.0, "eye-level shot"),
    (30.0, "elevated shot"),
    (60.0, "high-angle shot"),
)
DISTANCE_BINS: tuple[tuple[ShotSize, str], ...] = (
    (ShotSize.close_up, "close-up"),
    (ShotSize.medium, "medium shot"),
    (ShotSize.full, "wide shot"),
)
TRIGGER = "<sks>"


def _angle_diff(a: float, b: float) -> float:
    """Signed smallest difference a - b in degrees, in (-180, 180]."""
    d = (a - b + 180.0) % 360.0 - 180.0
    return 180.0 if d == -180.0 else d


def shot_from_focal_length(focal_length: float) -> ShotSize:
    """Framing implied by a lens when no shot size is given (portrait habits, 35 mm-eq)."""
    if focal_length >= 70.0:
        return ShotSize.close_up
    if focal_length >= 35.0:
        return ShotSize.medium
    return ShotSize.full


@dataclass(frozen=True)
class AnglePrompt:
    prompt: str
    azimuth: float  # the bin's angle
    elevation: float
    distance: str
    rounding: dict = field(default_factory=dict)  # requested vs chosen, per axis, degrees

    @property
    def rounded(self) -> bool:
        return any(abs(v.get("error", 0.0)) > 1e-9 or v.get("derived") for v in self.rounding.values())


def angle_prompt(camera: CameraSpec, *, mirror: bool = False) -> AnglePrompt:
    """Nearest multiple-angles LoRA bin for a camera spec. Roll and lens have no bin; they are
    reported as not expressed (the caller applies them another way or refuses)."""
    yaw = -camera.yaw if mirror else camera.yaw
    az, az_label = min(AZIMUTH_BINS, key=lambda b: abs(_angle_diff(yaw, b[0])))
    el, el_label = min(ELEVATION_BINS, key=lambda b: abs(camera.pitch - b[0]))
    shot = camera.shot or shot_from_focal_length(camera.focal_length)
    dist_label = dict(DISTANCE_BINS)[shot]
    rounding: dict[str, dict] = {
        "azimuth": {"requested": camera.yaw, "chosen": -az if mirror else az,
                    "error": _angle_diff(yaw, az)},
        "elevation": {"requested": camera.pitch, "chosen": el, "error": camera.pitch - el},
        "distance": {"requested": camera.shot.value if camera.shot else None,
                     "chosen": shot.value, "derived": camera.shot is None},
    }
    if camera.roll:
        rounding["roll"] = {"requested": camera.roll, "expressed": False}
    return AnglePrompt(
        prompt=f"{TRIGGER} {az_label} {el_label} {dist_label}",
        azimuth=az,
        elevation=el,
        distance=dist_label,
        rounding=rounding,
    )


def _side(azimuth: float) -> str:
    if abs(azimuth) < 1e-9:
        return "straight from the camera's direction"
    if abs(abs(azimuth) - 180.0) < 1e-9:
        return "from directly behind the subject"
    side = "camera-right" if azimuth > 0 else "camera-left"
    return f"{abs(azimuth):g} degrees to {side}"


def _temperature_words(kelvin: float) -> str:
    if kelvin < 3500:
        return "warm tungsten"
    if kelvin < 5000:
        return "warm-neutral"
    if kelvin <= 6800:
        return "neutral daylight"
    return "cool blue"


def lighting_instruction(spec: LightingSpec) -> str:
    if spec.key_elevation > 0:
        height = f"{spec.key_elevation:g} degrees above eye level"
    elif spec.key_elevation < 0:
        height = f"{-spec.key_elevation:g} degrees below eye level"
    else:
        height = "at eye level"
    return (
        f"Relight the portrait with a {spec.hardness.value} key light placed "
        f"{_side(spec.key_azimuth)} and {height}, at {spec.key_intensity:g}x nominal intensity; "
        f"add a fill light at {round(spec.fill_ratio * 100):d}% of the key from the opposite side; "
        f"colour temperature {spec.colour_temperature:g} K ({_temperature_words(spec.colour_temperature)})."
    )


def camera_instruction(spec: CameraSpec) -> str:
    parts = []
    if spec.yaw:
        parts.append(f"orbit the camera {_side(spec.yaw)} around the subject")
    if spec.pitch:
        where = "above" if spec.pitch > 0 else "below"
        parts.append(f"raise the camera to {abs(spec.pitch):g} degrees {where} eye level"
                     if spec.pitch > 0 else
                     f"lower the camera to {abs(spec.pitch):g} degrees {where} eye level")
    if spec.roll:
        way = "clockwise" if spec.roll > 0 else "counter-clockwise"
        parts.append(f"tilt the frame {abs(spec.roll):g} degrees {way} (Dutch angle)")
    parts.append(f"use a {spec.focal_length:g} mm (35 mm-equivalent) lens look")
    if spec.shot is not None:
        parts.append(f"frame a {spec.shot.value} shot")
    text = "; ".join(parts)
    return text[0].upper() + text[1:] + "."


KEEP = (
    "Keep the person's face, identity, facial features, expression, hair and skin tone exactly "
    "as in the reference."
)


def instruction(
    lighting: LightingSpec | None = None,
    camera: CameraSpec | None = None,
    scene: str | None = None,
    *,
    people: int = 1,
) -> str:
    """One English instruction for an instruction-following editor."""
    parts = []
    if people > 1:
        parts.append(
            f"Place the {people} people from the reference images together in one photograph, "
            "side by side."
        )
    if scene:
        parts.append(f"Scene: {scene.strip().rstrip('.')}.")
    if lighting is not None:
        parts.append(lighting_instruction(lighting))
    if camera is not None:
        parts.append(camera_instruction(camera))
    parts.append(KEEP if people == 1 else KEEP.replace("person's face", "face of every person"))
    return " ".join(parts)
