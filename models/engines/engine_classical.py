"""`classical`: the CPU, deterministic edit engine (the embedded default).

It relights (relight.py) and reframes (reframe.py, both beside it) a reference portrait, and makes
honest group montages: each person's head-and-shoulders crop, edited under the one spec, side by
side on a plain backdrop. It does not invent pixels, so it states its limits: large head turns,
scene or wardrobe changes are refused with an error naming the engine that can do them.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Annotated, Any

import cv2
import numpy as np
from pydantic import Field

from castkeep.errors import SpecError
from castkeep.models.engines.base import (
    EditEngine,
    EditInput,
    EditOutput,
    EngineInfo,
    EngineOptions,
    requested_edit_kinds,
    validate_options,
)
from castkeep.models.faces.face_types import DetectedFace
from castkeep.models.engines.reframe import (
    MAX_PITCH,
    MAX_ROLL,
    MAX_YAW,
    MIN_ZOOM,
    REFERENCE_FOCAL,
    apply_framing,
    parallax_warp,
    plan_framing,
    transform_point,
)
from castkeep.models.engines.relight import HeadModel, relight, tint
from castkeep.models.specs import CameraSpec, LightingSpec

GENERATIVE = "qwen-image-edit"
VERSION = "1.0"
TILE_HEIGHT = 720
MARGIN = 48
DEFAULT_BACKDROP = (200, 200, 196)
REFUSED_OPTIONS = {
    "wardrobe": "change clothes",
    "expression": "change facial expression",
    "background": "replace the background",
}
# scramble_face: QA option that deliberately destroys identity (shuffles blocks of the inner face,
# seeded), so identity gates and rejection paths can be exercised end to end.
# variation: 0..1, scale of the seeded per-variant jitter (0 = every seed gives the same image).
class ClassicalOptions(EngineOptions):
    backdrop: list[Annotated[int, Field(ge=0, le=255)]] | None = Field(
        None, min_length=3, max_length=3)
    scramble_face: bool = False
    variation: Annotated[float, Field(ge=0.0, le=1.0)] = 1.0


OPTION_KEYS = frozenset(ClassicalOptions.model_fields)
OPTION_HINTS = {
    "backdrop": "option 'backdrop' must be three integers 0..255 (R, G, B)",
    "scramble_face": "option 'scramble_face' must be true or false",
    "variation": "option 'variation' must be a number from 0 (every seed gives the same image) "
                 "to 1 (the default seeded variation)",
}
# Largest jitter at variation 1; well inside the scorers' tolerances (lighting 35 degrees of
# azimuth, camera 5 degrees of roll, shot bins of several tens of percent of face height).
JITTER_AZIMUTH = 4.0  # degrees
JITTER_ELEVATION = 4.0  # degrees
JITTER_KELVIN = 150.0
JITTER_ZOOM = 0.03  # zoom-in only: a zoom-out would show pixels the photo does not have
JITTER_SHIFT = 0.02  # fraction of the output frame
JITTER_BACKDROP = 8.0  # levels of 255


@dataclass(frozen=True)
class Variation:
    """The seeded jitter applied to one output (all zero when variation is 0)."""

    scale: float
    key_azimuth: float = 0.0  # degrees added to the spec's key azimuth
    key_elevation: float = 0.0
    colour_temperature: float = 0.0  # kelvin
    zoom: float = 1.0  # factor on the framing zoom (>= 1)
    shift: tuple[float, float] = (0.0, 0.0)  # face position, fractions of output width/height
    backdrop: float = 0.0  # levels added to the montage backdrop

    @classmethod
    def draw(cls, seed: int, scale: float) -> Variation:
        if scale <= 0:
            return cls(scale=0.0)
        # A generator of its own (not scramble_face's stream), keyed by the seed alone.
        u = np.random.default_rng([int(seed), 0xC1A5]).uniform(-1.0, 1.0, size=7)
        return cls(
            scale=float(scale),
            key_azimuth=round(float(u[0]) * JITTER_AZIMUTH * scale, 3),
            key_elevation=round(float(u[1]) * JITTER_ELEVATION * scale, 3),
            colour_temperature=round(float(u[2]) * JITTER_KELVIN * scale, 1),
            zoom=round(1.0 + (float(u[3]) + 1.0) / 2.0 * JITTER_ZOOM * scale, 5),
            shift=(round(float(u[4]) * JITTER_SHIFT * scale, 5),
                   round(float(u[5]) * JITTER_SHIFT * scale, 5)),
            backdrop=round(float(u[6]) * JITTER_BACKDROP * scale, 2),
        )

    def lighting(self, spec: LightingSpec | None) -> LightingSpec | None:
        if spec is None or not self.scale:
            return spec
        return spec.model_copy(update={
            "key_azimuth": float(np.clip(spec.key_azimuth + self.key_azimuth, -180.0, 180.0)),
            "key_elevation": float(np.clip(spec.key_elevation + self.key_elevation, -60.0, 90.0)),
            "colour_temperature": float(np.clip(
                spec.colour_temperature + self.colour_temperature, 1500.0, 12000.0)),
        })

    def as_metadata(self) -> dict[str, Any]:
        out = asdict(self)
        out["shift"] = list(self.shift)
        return out


class ClassicalEngine(EditEngine):
    """Relight + reframe on CPU; groups as a side-by-side montage."""

    def __init__(self, backdrop: tuple[int, int, int] = DEFAULT_BACKDROP) -> None:
        super().__init__()
        self.backdrop = tuple(int(c) for c in backdrop)
        self.info = EngineInfo(
            name="classical",
            version=VERSION,
            licence="Apache-2.0",
            commercial_use=True,
            device="cpu",
            max_references=4,
        )

    def _load(self) -> None:  # nothing to load: no weights
        return None

    # -- inputs ------------------------------------------------------------------------------
    def check_options(self, options: dict[str, Any], *, scene: str | None = None) -> None:
        if scene:
            raise SpecError(
                "the classical engine cannot change the scene or background (it only relights "
                f"and reframes the reference); use --engine {GENERATIVE} for scene changes"
            )
        for key, what in REFUSED_OPTIONS.items():
            if key in options:
                raise SpecError(
                    f"the classical engine cannot {what}; use --engine {GENERATIVE}"
                )
        validate_options(ClassicalOptions, options, engine="classical", hints=OPTION_HINTS)

    def check_inputs(self, inp: EditInput) -> None:
        self.check_options(inp.options, scene=inp.scene)
        super().check_inputs(inp)
        if inp.camera is not None:
            self._check_camera(inp.camera, inp.faces, inp.references)

    def _check_camera(self, cam: CameraSpec, faces: list[DetectedFace], refs: list[np.ndarray]) -> None:
        limits = [
            ("yaw", cam.yaw, MAX_YAW),
            ("pitch", cam.pitch, MAX_PITCH),
            ("roll", cam.roll, MAX_ROLL),
        ]
        for name, value, limit in limits:
            if abs(value) > limit:
                raise SpecError(
                    f"camera {name} {value:g} is beyond the classical engine's limit of "
                    f"+/-{limit:g} degrees (it warps the photo, it cannot see round the head); "
                    f"use --engine {GENERATIVE} for larger {name} changes"
                )
        if cam.shot is None and cam.focal_length / REFERENCE_FOCAL < MIN_ZOOM:
            raise SpecError(
                f"camera focal length {cam.focal_length:g} mm is wider than the classical engine "
                f"can frame (it treats the reference as {REFERENCE_FOCAL:g} mm and can only crop); "
                f"use at least {REFERENCE_FOCAL * MIN_ZOOM:g} mm or --engine {GENERATIVE}"
            )
        for i, (face, ref) in enumerate(zip(faces, refs)):
            try:
                plan_framing(ref.shape, face, HeadModel.from_face(face), cam)
            except ValueError as exc:
                shot = cam.shot.value if cam.shot else f"{cam.focal_length:g} mm"
                raise SpecError(
                    f"camera shot {shot!r} for reference {i} {exc}: the classical engine cannot "
                    f"show what the photo does not; use a wider reference or --engine {GENERATIVE}"
                ) from None

    # -- run ---------------------------------------------------------------------------------
    def _predict(self, inp: EditInput) -> EditOutput:
        t0 = time.perf_counter()
        refs = list(inp.references)
        if inp.options.get("scramble_face"):
            refs = [scramble_face(r, f, inp.seed) for r, f in zip(refs, inp.faces)]
        # 1. Edit each reference (relight, turn, frame) independently, under the seed's variation.
        var = Variation.draw(inp.seed, float(inp.options.get("variation", 1.0)))
        lighting = var.lighting(inp.lighting)
        edits = [
            self._edit_one(ref, face, lighting, inp.camera, var)
            for ref, face in zip(refs, inp.faces)
        ]
        # 2. One person: the edit is the output. Several: an honest side-by-side montage.
        if len(edits) == 1:
            image, ops = edits[0][0], [edits[0][1]]
            tiles = None
        else:
            backdrop = tuple(
                float(np.clip(c + var.backdrop, 0, 255))
                for c in (inp.options.get("backdrop") or self.backdrop)
            )
            image, tiles = self._montage(edits, backdrop, lighting)
            ops = [e[1] for e in edits]
        # 3. Output and metadata.
        metadata: dict[str, Any] = {
            "engine": self.info.name,
            "engine_version": self.info.version,
            "params": {
                "lighting": inp.lighting.model_dump(mode="json") if inp.lighting else None,
                "camera": inp.camera.model_dump(mode="json") if inp.camera else None,
                "seed": inp.seed,  # drives `variation`; the same seed gives the same image
                "references": len(inp.references),
            },
            # What the seed changed; `applied_lighting` is the spec actually rendered.
            "variation": var.as_metadata(),
            "applied_lighting": lighting.model_dump(mode="json") if lighting else None,
            "operations": ops,
            "tiles": tiles,
            "timings": {"total_s": round(time.perf_counter() - t0, 4)},
        }
        return EditOutput(image=image, metadata=metadata, edit_kinds=requested_edit_kinds(inp))

    def _edit_one(
        self,
        rgb: np.ndarray,
        face: DetectedFace,
        lighting: LightingSpec | None,
        camera: CameraSpec | None,
        var: Variation | None = None,
    ) -> tuple[np.ndarray, dict[str, Any], np.ndarray, HeadModel]:
        head = HeadModel.from_face(face)
        ops: dict[str, Any] = {}
        out = rgb
        if lighting is not None:
            out = relight(out, face, lighting).image
            ops["relight"] = {"head_centre": [round(head.cx, 1), round(head.cy, 1)]}
        cam = camera or CameraSpec()
        if cam.yaw or cam.pitch:
            out = parallax_warp(out, head, cam.yaw, cam.pitch)
            ops["turn"] = {"yaw": cam.yaw, "pitch": cam.pitch, "method": "depth parallax"}
        var = var or Variation(scale=0.0)
        framing = plan_framing(out.shape, face, head, cam, zoom_jitter=var.zoom, shift=var.shift)
        out = apply_framing(out, framing)
        ops["frame"] = {
            "roll": cam.roll,
            "zoom": round(framing.zoom, 4),
            "cover_zoom": round(framing.cover_zoom, 4),
            "border_fraction": round(framing.border_fraction, 4),
            "size": list(framing.size),
            "matrix": [[round(v, 6) for v in row] for row in framing.matrix.tolist()],
            "focal_length": "field of view only" if camera and camera.shot is None else "not rendered",
        }
        return out, ops, framing.matrix, head

    def _montage(self, edits, backdrop, lighting):
        colour = np.array(backdrop, dtype=np.float32)
        if lighting is not None:
            colour = np.clip(colour * tint(lighting.colour_temperature), 0, 255)
        tiles, boxes = [], []
        for image, _ops, matrix, head in edits:
            scale = math.hypot(matrix[0, 0], matrix[1, 0])
            cx, cy = transform_point(matrix, (head.cx, head.cy))
            ed = head.eye_dist * scale
            tw, th = 5.2 * ed, 6.5 * ed
            x0, y0 = cx - tw / 2.0, cy - 0.4 * th
            # Crop head-and-shoulders by an affine (pixels beyond the photo become backdrop).
            s = TILE_HEIGHT / th
            out_w = int(round(tw * s))
            crop_m = np.array([[s, 0, -x0 * s], [0, s, -y0 * s]], dtype=np.float64)
            tile = cv2.warpAffine(
                image, crop_m, (out_w, TILE_HEIGHT), flags=cv2.INTER_CUBIC,
                borderMode=cv2.BORDER_CONSTANT, borderValue=tuple(float(c) for c in colour),
            ).astype(np.float32)
            # A soft oval keeps the person and lets the plain backdrop replace the room.
            mask = np.zeros((TILE_HEIGHT, out_w), np.float32)
            cv2.ellipse(mask, (out_w // 2, int(TILE_HEIGHT * 0.62)),
                        (int(out_w * 0.46), int(TILE_HEIGHT * 0.62)), 0, 0, 360, 1.0, -1)
            mask = cv2.GaussianBlur(mask, (0, 0), sigmaX=out_w * 0.05)[..., None]
            tiles.append(tile * mask + colour * (1.0 - mask))
        width = sum(t.shape[1] for t in tiles) + MARGIN * (len(tiles) + 1)
        canvas = np.empty((TILE_HEIGHT + 2 * MARGIN, width, 3), np.float32)
        canvas[:] = colour
        x = MARGIN
        for tile in tiles:
            canvas[MARGIN:MARGIN + TILE_HEIGHT, x:x + tile.shape[1]] = tile
            boxes.append([x, MARGIN, x + tile.shape[1], MARGIN + TILE_HEIGHT])
            x += tile.shape[1] + MARGIN
        return np.clip(np.rint(canvas), 0, 255).astype(np.uint8), boxes


def scramble_face(rgb: np.ndarray, face: DetectedFace, seed: int, grid: int = 4) -> np.ndarray:
    """Shuffle a grid of blocks over the inner face (eyes to mouth): the head stays, the
    identity does not. Seeded, so a given seed always gives the same scramble."""
    x0, y0, x1, y1 = (int(round(v)) for v in face.box)
    h, w = rgb.shape[:2]
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    bw, bh = (x1 - x0) // grid, (y1 - y0) // grid
    if bw < 2 or bh < 2:
        return rgb
    out = rgb.copy()
    blocks = [(x0 + i * bw, y0 + j * bh) for j in range(grid) for i in range(grid)]
    order = np.random.default_rng(seed).permutation(len(blocks))
    if np.all(order == np.arange(len(blocks))):
        order = np.roll(order, 1)
    for (dx, dy), k in zip(blocks, order):
        sx, sy = blocks[int(k)]
        out[dy:dy + bh, dx:dx + bw] = rgb[sy:sy + bh, sx:sx + bw]
    return out
