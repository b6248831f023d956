"""Classical relighting: a shading field over an approximate head normal map.

The head is modelled as an ellipsoid fitted to the detected face (eye line gives roll and scale,
the eyes-to-chin distance the height) with a small nose bump for depth. A key light and a fill
light shade that shape (Lambert, or half-Lambert "wrap" for soft light); the image is multiplied
by the ratio of that shading to the shading under flat frontal light, so a frontal spec leaves the
face as it was and a side key darkens the far cheek and brightens the near one. A colour
temperature tint follows the key.

Coordinates: image pixels (x right, y down); light directions in camera space (x right = camera-
right, y up, z towards the camera), matching the azimuth/elevation conventions in specs.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from castkeep.models.faces.face_types import DetectedFace
from castkeep.models.specs import Hardness, LightingSpec

AMBIENT = 0.12
GAIN_RANGE = (0.12, 1.9)
NEUTRAL_KELVIN = 6500.0


@dataclass(frozen=True)
class HeadModel:
    """An ellipsoid head fitted to a face, in image pixels."""

    cx: float
    cy: float
    a: float  # half-width along the eye line
    b: float  # half-height along the face's vertical
    c: float  # depth
    roll: float  # radians; positive = eye line rotated clockwise in the image
    nose: tuple[float, float]
    eye_dist: float

    @classmethod
    def from_face(cls, face: DetectedFace) -> HeadModel:
        (lx, ly), (rx, ry) = face.eye_left, face.eye_right
        ed = math.hypot(rx - lx, ry - ly)
        if ed < 4:
            box_w = face.box[2] - face.box[0]
            ed = max(4.0, box_w / 2.3)
        roll = math.atan2(ry - ly, rx - lx)
        mx, my = (lx + rx) / 2.0, (ly + ry) / 2.0
        # Down the face (perpendicular to the eye line): image vector (-sin, cos).
        down = (-math.sin(roll), math.cos(roll))
        off = 0.25 * ed
        a = 1.4 * ed
        return cls(
            cx=mx + down[0] * off,
            cy=my + down[1] * off,
            a=a,
            b=1.8 * ed,
            c=a,
            roll=roll,
            nose=(float(face.nose[0]), float(face.nose[1])),
            eye_dist=ed,
        )

    def local(self, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        """Normalised face-aligned coordinates (p along the eye line, q down the face)."""
        h, w = shape[:2]
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
        dx, dy = xs - self.cx, ys - self.cy
        cr, sr = math.cos(self.roll), math.sin(self.roll)
        u = dx * cr + dy * sr
        v = -dx * sr + dy * cr
        return u / self.a, v / self.b

    def mask(self, shape: tuple[int, ...], feather: float = 0.3) -> np.ndarray:
        """1 inside the head ellipse, falling smoothly to 0 just outside it."""
        p, q = self.local(shape)
        r = np.sqrt(p * p + q * q)
        t = np.clip((1.0 + feather - r) / feather, 0.0, 1.0)
        return (t * t * (3 - 2 * t)).astype(np.float32)

    def depth(self, shape: tuple[int, ...]) -> np.ndarray:
        """Height towards the camera in pixels (ellipsoid + nose bump), 0 outside the head."""
        p, q = self.local(shape)
        z = np.sqrt(np.clip(1.0 - p * p - q * q, 0.0, None)) * self.c
        h, w = shape[:2]
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
        sigma = 0.28 * self.eye_dist
        # The nose protrudes ~0.45 eye distances beyond the cheek surface.
        bump = 0.45 * self.eye_dist * np.exp(
            -((xs - self.nose[0]) ** 2 + (ys - self.nose[1]) ** 2) / (2 * sigma * sigma)
        )
        return (z + bump * (z > 0)).astype(np.float32)

    def normals(self, shape: tuple[int, ...]) -> np.ndarray:
        """HxWx3 unit normals in camera space (x right, y up, z to camera). Outside the ellipse
        the rim normal continues, so the field has no seam where the mask fades out."""
        p, q = self.local(shape)
        r2 = p * p + q * q
        scale = np.where(r2 > 0.999, 1.0 / np.sqrt(np.maximum(r2, 1e-6)) * 0.9995, 1.0)
        p, q = p * scale, q * scale
        z = np.sqrt(np.clip(1.0 - p * p - q * q, 0.0, None))
        nu, nv, nz = p / self.a, q / self.b, z / self.c
        cr, sr = math.cos(self.roll), math.sin(self.roll)
        nx = nu * cr - nv * sr  # image x
        ny_down = nu * sr + nv * cr  # image y (down)
        n = np.stack([nx, -ny_down, nz], axis=-1)
        n /= np.linalg.norm(n, axis=-1, keepdims=True) + 1e-9
        return n.astype(np.float32)


def light_direction(azimuth: float, elevation: float) -> np.ndarray:
    """Unit vector towards the light, camera space; azimuth + = camera-right, elevation + = up."""
    az, el = math.radians(azimuth), math.radians(elevation)
    return np.array(
        [math.sin(az) * math.cos(el), math.sin(el), math.cos(az) * math.cos(el)], dtype=np.float32
    )


def fill_direction(spec: LightingSpec) -> np.ndarray:
    """The fill sits half-way between the camera and the mirror of the key, at eye level."""
    return light_direction(-spec.key_azimuth / 2.0, 0.0)


def _response(ndotl: np.ndarray, hardness: Hardness) -> np.ndarray:
    if hardness is Hardness.hard:
        return np.clip(ndotl, 0.0, None)
    wrap = 0.5  # soft sources wrap light past the terminator
    return np.clip((ndotl + wrap) / (1.0 + wrap), 0.0, None) ** 1.3


def shading(normals: np.ndarray, spec: LightingSpec) -> np.ndarray:
    key = _response(normals @ light_direction(spec.key_azimuth, spec.key_elevation), spec.hardness)
    fill = _response(normals @ fill_direction(spec), Hardness.soft)
    return AMBIENT + spec.key_intensity * (key + spec.fill_ratio * fill)


def kelvin_rgb(kelvin: float) -> np.ndarray:
    """Approximate sRGB colour of a black body (Tanner Helland's fit), scaled 0..1."""
    t = kelvin / 100.0
    r = 255.0 if t <= 66 else 329.698727446 * (t - 60) ** -0.1332047592
    if t <= 66:
        g = 99.4708025861 * math.log(t) - 161.1195681661
    else:
        g = 288.1221695283 * (t - 60) ** -0.0755148492
    if t >= 66:
        bl = 255.0
    elif t <= 19:
        bl = 0.0
    else:
        bl = 138.5177312231 * math.log(t - 10) - 305.0447927307
    return np.clip(np.array([r, g, bl], dtype=np.float32), 0, 255) / 255.0


def tint(kelvin: float) -> np.ndarray:
    """Per-channel gain moving neutral (6500 K) light to `kelvin`, luminance preserved."""
    rgb = kelvin_rgb(kelvin) / kelvin_rgb(NEUTRAL_KELVIN)
    lum = 0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2]
    return (rgb / lum).astype(np.float32)


_TO_LINEAR = (
    np.where(
        (v := np.arange(256, dtype=np.float64) / 255.0) <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4
    )
).astype(np.float32)


def _to_linear(rgb: np.ndarray) -> np.ndarray:
    return _TO_LINEAR[rgb]


def _to_srgb(lin: np.ndarray) -> np.ndarray:
    lin = np.clip(lin, 0.0, 1.0)
    srgb = np.where(lin <= 0.0031308, lin * 12.92, 1.055 * np.power(lin, 1 / 2.4) - 0.055)
    return np.clip(np.rint(srgb * 255.0), 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class RelightResult:
    image: np.ndarray  # HxWx3 uint8
    gain: np.ndarray  # HxW float32, the luminance gain applied
    head: HeadModel


def relight(rgb: np.ndarray, face: DetectedFace, spec: LightingSpec) -> RelightResult:
    """Relight one face in an image under `spec`. Deterministic; CPU only."""
    head = HeadModel.from_face(face)
    shape = rgb.shape
    n = head.normals(shape)
    new = shading(n, spec)
    flat = shading(n, LightingSpec(key_azimuth=0.0, key_elevation=0.0, key_intensity=1.0,
                                    fill_ratio=spec.fill_ratio, hardness=spec.hardness))
    face_gain = np.clip(new / flat, *GAIN_RANGE)
    m = head.mask(shape)
    # Away from the head: the key's brightness on a wall facing the camera, with a gentle
    # gradient towards the key side so the backdrop agrees with the face.
    wall = float(np.clip(
        (AMBIENT + spec.key_intensity * (max(0.0, math.cos(math.radians(spec.key_azimuth))
                                             * math.cos(math.radians(spec.key_elevation)))
                                         + spec.fill_ratio))
        / (AMBIENT + 1.0 + spec.fill_ratio), *GAIN_RANGE))
    w = shape[1]
    xs = (np.arange(w, dtype=np.float32) - head.cx) / max(w, 1)
    grad = 1.0 + 0.35 * math.sin(math.radians(spec.key_azimuth)) * xs
    bg = np.clip(wall * grad[None, :], *GAIN_RANGE)
    gain = (m * face_gain + (1.0 - m) * bg).astype(np.float32)
    # Light adds up linearly: apply the gain to linear values, not to gamma-encoded ones.
    lin = _to_linear(rgb) * (gain[..., None] * tint(spec.colour_temperature)[None, None, :])
    image = _to_srgb(lin)
    return RelightResult(image=image, gain=gain, head=head)


def _gain_ratio(normals: np.ndarray, spec: LightingSpec) -> np.ndarray:
    flat = shading(normals, LightingSpec(key_azimuth=0.0, key_elevation=0.0, key_intensity=1.0,
                                         fill_ratio=spec.fill_ratio, hardness=spec.hardness))
    return np.clip(shading(normals, spec) / flat, *GAIN_RANGE)


def backdrop_gain(shape: tuple[int, ...], spec: LightingSpec) -> np.ndarray:
    """The key on a wall facing the camera: a side key still lights it (it spills), brighter
    towards the key's side; never the near-black a wall-facing Lambert term gives at 90 degrees."""
    h, w = shape[:2]
    az, el = math.radians(spec.key_azimuth), math.radians(spec.key_elevation)
    facing = max(0.0, math.cos(az) * math.cos(el))
    level = (AMBIENT + spec.key_intensity * (0.5 + 0.5 * facing + spec.fill_ratio)) / (
        AMBIENT + 1.0 + spec.fill_ratio)
    xs = (np.arange(w, dtype=np.float32) - w / 2.0) / max(w, 1)
    grad = 1.0 + 0.5 * math.sin(az) * xs
    return np.clip(np.broadcast_to(level * grad[None, :], (h, w)), 0.35, GAIN_RANGE[1]).astype(
        np.float32)


def relight_scene(
    rgb: np.ndarray,
    faces: list[DetectedFace],
    alphas: list[np.ndarray],
    spec: LightingSpec,
) -> np.ndarray:
    """Relight a whole frame: each person (their matte `alphas[i]`) by the head model near the
    face and a vertical-cylinder torso below it, the rest as a wall. The head model's gain is
    confined to the person's matte, so its edge never draws an ellipse on the background: the
    only gain step left is at the person's own silhouette, where the photo already has an edge."""
    shape = rgb.shape
    w = shape[1]
    gain = backdrop_gain(shape, spec).copy()
    xs = np.arange(w, dtype=np.float32)
    for face, alpha in zip(faces, alphas):
        head = HeadModel.from_face(face)
        face_gain = _gain_ratio(head.normals(shape), spec)
        # Torso: a vertical cylinder about the head's centre line, about shoulder-wide.
        nx = np.clip((xs - head.cx) / (3.0 * head.eye_dist), -0.95, 0.95)
        body_n = np.stack([nx, np.zeros_like(nx), np.sqrt(1.0 - nx * nx)], axis=-1)
        body_gain = _gain_ratio(body_n.astype(np.float32), spec)[None, :]
        m = head.mask(shape, feather=0.7)
        person = m * face_gain + (1.0 - m) * body_gain
        # The light changes across the silhouette over a fifth of an eye distance, not in one
        # pixel: a matte a pixel or two off then leaves no bright or dark rim (a halo).
        soft = cv2.GaussianBlur(alpha.astype(np.float32), (0, 0), max(1.0, 0.2 * head.eye_dist))
        gain = soft * person + (1.0 - soft) * gain
    if faces:
        # Where the head model hands over to the torso, or the key's terminator crosses the
        # face, the gain must not step either.
        ed = min(HeadModel.from_face(f).eye_dist for f in faces)
        gain = cv2.GaussianBlur(gain, (0, 0), max(1.0, 0.12 * ed))
    lin = _to_linear(rgb) * (gain[..., None] * tint(spec.colour_temperature)[None, None, :])
    return _to_srgb(lin)
