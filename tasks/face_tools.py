"""Faces in photos for the command line: detect them, choose one, look it up in the catalogue,
and check the same-person threshold on labelled pairs.

Plain functions of an encoder the edge built from settings. No Prefect.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.orm import Session

from castkeep.db.face_search import FaceHit, search
from castkeep.models.faces.calibrate import Calibration, calibrate_pairs, read_pairs_csv
from castkeep.models.faces.encoders import FaceEncoder, select_face
from castkeep.models.faces.face_types import DetectedFace
from castkeep.models.imaging import DecodedImage, load_image

__all__ = [
    "Calibration",
    "DecodedImage",
    "DetectedFace",
    "FaceHit",
    "calibrate_csv",
    "choose_face",
    "faces_in",
    "search_catalogue",
]


def faces_in(encoder: FaceEncoder, path: Path) -> tuple[DecodedImage, list[DetectedFace]]:
    """The decoded image at `path` and its faces (with embeddings), largest first."""
    img = load_image(path)
    return img, encoder.detect(img.rgb)


def choose_face(faces: list[DetectedFace], *, index: int | None = None, largest: bool = False,
                min_face_px: int | None = None, what: str = "the image",
                index_option: str = "--face N") -> DetectedFace:
    """The one face to use: `index` (0 = largest), or the largest when `largest`; several faces
    and no choice, or none usable, is an error that says how to choose."""
    extra = {} if min_face_px is None else {"min_face_px": min_face_px}
    return select_face(faces, index=index, largest=largest, what=what,
                       index_option=index_option, **extra)


def search_catalogue(session: Session, face: DetectedFace, *, k: int, metric: str) -> list[FaceHit]:
    """The k catalogued faces (reference portraits and assets) nearest to `face`, among faces of
    the same encoder, nearest first."""
    return search(session, face, k=k, metric=metric)


def calibrate_csv(pairs_csv: Path, encoder: FaceEncoder, *, a_col: str = "a", b_col: str = "b",
                  label_col: str = "same") -> Calibration:
    """Accuracy at the encoder's threshold, the best threshold and ROC AUC on the labelled image
    pairs of a CSV (image paths relative to the CSV's folder)."""
    pairs = read_pairs_csv(pairs_csv, a_col=a_col, b_col=b_col, label_col=label_col)
    return calibrate_pairs(pairs, encoder, base_dir=pairs_csv.resolve().parent)
