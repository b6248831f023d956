"""Threshold calibration on a team's own labelled photo pairs.

    pairs = read_pairs_csv(Path("pairs.csv"))          # a, b, same (yes/no, true/false, 1/0)
    result = calibrate_pairs(pairs, encoder)          # embeds each image once
    result.accuracy, result.best_threshold, result.auc

A pair whose image has no usable face counts as wrong (at every threshold) and is listed in
`failed`. AUC ranks the pairs that could be measured (it is undefined, None, when those pairs
hold only one label).
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from castkeep.errors import CastkeepError, FaceError, ManifestError, UnsupportedImageError
from castkeep.models.faces.encoders import DEFAULT_MIN_FACE_PX, FaceEncoder, select_face
from castkeep.models.faces.face_types import DetectedFace, EncoderInfo
from castkeep.models.imaging import load_image

log = logging.getLogger(__name__)

_TRUE = {"yes", "y", "true", "t", "1", "same"}
_FALSE = {"no", "n", "false", "f", "0", "different"}


@dataclass(frozen=True)
class LabelledPair:
    a: str  # as written in the CSV (relative to its folder)
    b: str
    same: bool


@dataclass(frozen=True)
class FailedPair:
    a: str
    b: str
    reason: str


@dataclass(frozen=True)
class Calibration:
    encoder: str
    pairs: int
    threshold: float
    accuracy: float
    best_threshold: float
    best_accuracy: float
    auc: float | None
    failed: list[FailedPair] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "encoder": self.encoder,
            "pairs": self.pairs,
            "threshold": self.threshold,
            "accuracy": self.accuracy,
            "best_threshold": self.best_threshold,
            "best_accuracy": self.best_accuracy,
            "auc": self.auc,
            "failed": [{"a": f.a, "b": f.b, "reason": f.reason} for f in self.failed],
        }


def parse_label(value: str) -> bool:
    v = value.strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise ValueError(value)


def read_pairs_csv(
    path: Path, *, a_col: str = "a", b_col: str = "b", label_col: str = "same"
) -> list[LabelledPair]:
    """Rows of (image a, image b, label). ManifestError names the file, row and column."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError as exc:
        raise ManifestError(f"{path}: file not found") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{path}: cannot read as UTF-8 CSV ({exc})") from exc
    reader = csv.DictReader(text.splitlines())
    header = reader.fieldnames or []
    missing = [c for c in (a_col, b_col, label_col) if c not in header]
    if missing:
        raise ManifestError(
            f"{path}: missing column(s) {', '.join(missing)}; columns found: "
            f"{', '.join(header) or 'none'} (choose with --a-col / --b-col / --label-col)"
        )
    pairs = []
    for row_no, row in enumerate(reader, start=2):  # row 1 is the header
        a, b = (row.get(a_col) or "").strip(), (row.get(b_col) or "").strip()
        label = row.get(label_col) or ""
        if not a and not b and not label.strip():
            continue  # blank line
        for col, val in ((a_col, a), (b_col, b)):
            if not val:
                raise ManifestError(f"{path}: row {row_no}, column {col!r}: image path is empty")
        try:
            same = parse_label(label)
        except ValueError:
            raise ManifestError(
                f"{path}: row {row_no}, column {label_col!r}: {label!r} is not a label; use "
                "yes/no, true/false or 1/0"
            ) from None
        pairs.append(LabelledPair(a, b, same))
    if not pairs:
        raise ManifestError(f"{path}: no pairs found")
    return pairs


def calibrate_pairs(
    pairs: list[LabelledPair],
    encoder: FaceEncoder,
    *,
    base_dir: Path = Path("."),
    min_face_px: int = DEFAULT_MIN_FACE_PX,
) -> Calibration:
    """Embed each distinct image once (its largest face), then score every pair."""
    cache: dict[str, DetectedFace | str] = {}

    def face_of(rel: str) -> DetectedFace | str:
        if rel not in cache:
            try:
                img = load_image(base_dir / rel)
                faces = encoder.detect(img.rgb)
                cache[rel] = select_face(faces, largest=True, min_face_px=min_face_px, what=rel)
            except (UnsupportedImageError, FaceError) as exc:
                cache[rel] = str(exc)
        return cache[rel]

    distances: list[float | None] = []
    failed: list[FailedPair] = []
    for p in pairs:
        fa, fb = face_of(p.a), face_of(p.b)
        reasons = [r for r in (fa, fb) if isinstance(r, str)]
        if reasons:
            failed.append(FailedPair(p.a, p.b, "; ".join(reasons)))
            distances.append(None)
        else:
            distances.append(encoder.distance(fa, fb))
    return summarise(encoder.info, [p.same for p in pairs], distances, failed)


def summarise(
    info: EncoderInfo,
    labels: list[bool],
    distances: list[float | None],
    failed: list[FailedPair] | None = None,
) -> Calibration:
    """Accuracy at the encoder's threshold, the best threshold and its accuracy, and ROC AUC.
    A None distance (no usable face) is wrong at every threshold."""
    n = len(labels)
    if n == 0:
        raise CastkeepError("no pairs to calibrate on")
    ok = [i for i, d in enumerate(distances) if d is not None]
    d = np.array([distances[i] for i in ok], dtype=np.float64)
    y = np.array([labels[i] for i in ok], dtype=bool)

    def accuracy(t: float) -> float:
        return float(((d <= t) == y).sum()) / n

    # Candidate thresholds: midpoints between consecutive distinct distances, plus one below
    # and one above them all. Ties prefer the candidate nearest the encoder's threshold.
    uniq = np.unique(d)
    cands = [info.threshold]
    if uniq.size:
        cands += [float(uniq[0]) - 1e-6, float(uniq[-1]) + 1e-6]
        cands += [float(v) for v in (uniq[:-1] + uniq[1:]) / 2]
    best_t, best_acc = info.threshold, accuracy(info.threshold)
    for t in cands:
        acc = accuracy(t)
        if acc > best_acc + 1e-12 or (
            abs(acc - best_acc) <= 1e-12 and abs(t - info.threshold) < abs(best_t - info.threshold)
        ):
            best_t, best_acc = t, acc
    return Calibration(
        encoder=info.name,
        pairs=n,
        threshold=info.threshold,
        accuracy=round(accuracy(info.threshold), 6),
        best_threshold=round(best_t, 6),
        best_accuracy=round(best_acc, 6),
        auc=_auc(-d, y),
        failed=list(failed or []),
    )


def _auc(scores: np.ndarray, positive: np.ndarray) -> float | None:
    """ROC AUC by the rank-sum (Mann-Whitney) formula; ties count half."""
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    from scipy.stats import rankdata

    ranks = rankdata(scores)
    u = ranks[positive].sum() - n_pos * (n_pos + 1) / 2
    return round(float(u / (n_pos * n_neg)), 6)
