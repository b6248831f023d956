"""Face identity encoders: the base class every encoder implements, the registry, and the
distance functions that keep vectors of different encoders apart.

    encoder = get_encoder("dlib-resnet-v1")
    faces = encoder.detect(load_image(path).rgb)          # largest face first
    encoder.distance(faces[0], other) <= encoder.info.threshold   # same person
"""

from __future__ import annotations

import importlib
from abc import abstractmethod
from typing import Any

import numpy as np

from castkeep.errors import (
    EncoderMismatchError,
    FaceTooSmallError,
    MultipleFacesError,
    NoFaceError,
    UnknownModelError,
    UnsupportedImageError,
)
from castkeep.models.base import ModelBase
from castkeep.models.faces.face_types import DetectedFace, EncoderInfo

# Faces whose box is shorter than this (original pixels) are too small to identify reliably.
DEFAULT_MIN_FACE_PX = 48

Embeddable = DetectedFace | np.ndarray


class FaceEncoder(ModelBase):
    """Detects faces and turns each into an identity embedding. Subclasses set `info` and
    implement `_load` and `_detect`."""

    @property
    @abstractmethod
    def info(self) -> EncoderInfo: ...

    @property
    def name(self) -> str:
        """The stored encoder name (known without loading weights)."""
        return self.info.name

    def detect(self, rgb: np.ndarray, *, embed: bool = True) -> list[DetectedFace]:
        """Every face in an H x W x 3 uint8 RGB image, largest first, in original pixels."""
        return self.predict(rgb, embed=embed)

    def detect_min_face(
        self, rgb: np.ndarray, min_face_px: float, *, embed: bool = True
    ) -> list[DetectedFace]:
        """Every face at least `min_face_px` tall (original pixels), largest first. Smaller faces
        may be found too; an encoder whose detector cannot trade sensitivity for speed runs the
        full detection (this default)."""
        return self.detect(rgb, embed=embed)

    def _predict(self, rgb: np.ndarray, *, embed: bool = True) -> list[DetectedFace]:
        faces = self._detect(_check_rgb(rgb), embed=embed)
        return sorted(faces, key=lambda f: f.area, reverse=True)

    @abstractmethod
    def _detect(self, rgb: np.ndarray, *, embed: bool) -> list[DetectedFace]: ...

    def distance(self, a: Embeddable, b: Embeddable) -> float:
        """Distance in this encoder's metric (`info.metric`); same person when <= threshold."""
        return distance(a, b, self.info)

    def similarity(self, a: Embeddable, b: Embeddable) -> float:
        """Cosine similarity of the two embeddings (1 = same direction)."""
        return similarity(a, b, self.info)

    def same_person(self, a: Embeddable, b: Embeddable) -> bool:
        return self.distance(a, b) <= self.info.threshold


# --- comparison -----------------------------------------------------------------------------


def embedding_of(x: Embeddable, info: EncoderInfo) -> np.ndarray:
    """The vector of a face or array, checked to belong to `info`'s embedding space."""
    if isinstance(x, DetectedFace):
        if x.encoder != info.name or x.encoder_version != info.version:
            raise EncoderMismatchError(
                f"face was encoded by {x.encoder} {x.encoder_version}, not {info.name} "
                f"{info.version}; re-encode both images with the same encoder"
            )
        if x.embedding is None:
            raise EncoderMismatchError(
                "face has no embedding (detected with embed=False); detect it with embed=True"
            )
        v = x.embedding
    else:
        v = x
    arr = np.asarray(v, dtype=np.float32).reshape(-1)
    if arr.shape[0] != info.dim:
        raise EncoderMismatchError(
            f"embedding has {arr.shape[0]} dimensions but {info.name} makes {info.dim}; "
            "vectors from different encoders cannot be compared"
        )
    return arr


def distance(a: Embeddable, b: Embeddable, info: EncoderInfo) -> float:
    va, vb = embedding_of(a, info), embedding_of(b, info)
    if info.metric == "euclidean":
        return float(np.linalg.norm(va - vb))
    return 1.0 - _cosine(va, vb)


def similarity(a: Embeddable, b: Embeddable, info: EncoderInfo) -> float:
    return _cosine(embedding_of(a, info), embedding_of(b, info))


def distance_matrix(
    a: list[Embeddable], b: list[Embeddable], info: EncoderInfo
) -> tuple[np.ndarray, np.ndarray]:
    """(distances, cosine similarities), each len(a) x len(b)."""
    A = np.stack([embedding_of(x, info) for x in a]) if a else np.zeros((0, info.dim), np.float32)
    B = np.stack([embedding_of(x, info) for x in b]) if b else np.zeros((0, info.dim), np.float32)
    A64, B64 = A.astype(np.float64), B.astype(np.float64)
    an = A64 / np.maximum(np.linalg.norm(A64, axis=1, keepdims=True), 1e-12)
    bn = B64 / np.maximum(np.linalg.norm(B64, axis=1, keepdims=True), 1e-12)
    sim = an @ bn.T
    if info.metric == "euclidean":
        d = np.sqrt(np.maximum(((A64[:, None, :] - B64[None, :, :]) ** 2).sum(-1), 0.0))
    else:
        d = 1.0 - sim
    return d, sim


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if na == 0.0 or nb == 0.0:
        return 0.0
    return float(np.dot(a.astype(np.float64), b.astype(np.float64)) / (na * nb))


def select_face(
    faces: list[DetectedFace],
    *,
    index: int | None = None,
    largest: bool = False,
    min_face_px: int = DEFAULT_MIN_FACE_PX,
    what: str = "the image",
    index_option: str = "--face N",
) -> DetectedFace:
    """The one face an operation should use. Several faces need an explicit choice: `index`
    (0 = largest) or `largest=True`. Typed errors say how many were found and how to choose."""
    if not faces:
        raise NoFaceError(
            f"no face found in {what}; use a photo with a clear, frontal face of at least "
            f"{min_face_px} px"
        )
    if index is not None:
        if not 0 <= index < len(faces):
            raise MultipleFacesError(
                f"{what} has {len(faces)} face(s); {index_option} must be 0..{len(faces) - 1} "
                "(0 is the largest)"
            )
        face = faces[index]
    elif len(faces) == 1 or largest:
        face = faces[0]
    else:
        raise MultipleFacesError(
            f"{len(faces)} faces found in {what}; choose one with {index_option} "
            f"(0..{len(faces) - 1}, largest first) or pass --largest"
        )
    if face.quality.face_px < min_face_px:
        raise FaceTooSmallError(
            f"the face in {what} is {face.quality.face_px} px, below the minimum of "
            f"{min_face_px} px; use a larger or closer photo"
        )
    return face


def _check_rgb(rgb: np.ndarray) -> np.ndarray:
    arr = np.asarray(rgb)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
        raise UnsupportedImageError(
            f"expected an H x W x 3 uint8 RGB array, got shape {arr.shape} dtype {arr.dtype}; "
            "decode images with castkeep.models.imaging.load_image"
        )
    return np.ascontiguousarray(arr)


# --- registry -------------------------------------------------------------------------------

# name -> "module:Class"; imported on first use so listing encoders loads nothing.
_REGISTRY: dict[str, str] = {
    "dlib-resnet-v1": "castkeep.models.faces.dlib_encoder:DlibResnetEncoder",
    "insightface": "castkeep.models.faces.insightface_encoder:InsightFaceEncoder",
}
# Stored encoder names of parametrised families: "insightface-<pack>".
_FAMILY_PREFIXES = {"insightface-": ("insightface", "pack")}


def known_encoders() -> list[str]:
    return sorted(_REGISTRY)


def get_encoder(name: str, **options: Any) -> FaceEncoder:
    """A new, not yet loaded encoder. `name` is a registry name or a stored encoder name such as
    "insightface-buffalo_l" (the pack taken from the name)."""
    key = name
    if name not in _REGISTRY:
        for prefix, (family, option) in _FAMILY_PREFIXES.items():
            if name.startswith(prefix) and len(name) > len(prefix):
                given = options.get(option)
                value = name[len(prefix):]
                if given is not None and given != value:
                    raise UnknownModelError(
                        f"encoder {name!r} names {option} {value!r} but {given!r} was configured"
                    )
                options[option] = value
                key = family
                break
        else:
            raise UnknownModelError(
                f"unknown face encoder {name!r}; known encoders: {', '.join(known_encoders())} "
                "(set CASTKEEP_FACES__ENCODER)"
            )
    module_name, cls_name = _REGISTRY[key].split(":")
    cls = getattr(importlib.import_module(module_name), cls_name)
    return cls(**options)


def shared_encoder(name: str, **options: Any) -> FaceEncoder:
    """One process-wide instance per (name, options), so tasks load weights once (kept by the
    process's ModelCache)."""
    from castkeep.models.cache import models

    return models.get("encoder", name, options, lambda: get_encoder(name, **options))
