"""Who is who in a group photo: an optimal one-to-one assignment of talents to detected faces.

Cost of (talent, face) = the smallest distance between the face and any of that talent's
reference embeddings. The Hungarian algorithm (scipy's linear_sum_assignment) first maximises
the number of pairs within the encoder's threshold, then minimises their total distance, so one
poor match never steals a face another talent clearly owns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from castkeep.models.faces.encoders import distance_matrix
from castkeep.models.faces.face_types import DetectedFace, EncoderInfo

# Added to the cost of pairs beyond the threshold: larger than any sum of in-threshold distances,
# so the solver prefers one more passing pair over any reduction in total distance.
_FAIL_PENALTY = 1e6


@dataclass(frozen=True)
class TalentMatch:
    talent: str
    face_index: int | None  # index into the faces given; None when no face was left for them
    distance: float | None  # in the encoder's metric, to the closest of the talent's references
    similarity: float | None  # cosine similarity for the same reference
    reference_index: int | None  # which of the talent's references was closest
    passed: bool  # distance <= threshold

    def as_dict(self) -> dict[str, Any]:
        return {
            "talent": self.talent,
            "face_index": self.face_index,
            "distance": None if self.distance is None else round(self.distance, 6),
            "similarity": None if self.similarity is None else round(self.similarity, 6),
            "reference_index": self.reference_index,
            "passed": self.passed,
        }


@dataclass(frozen=True)
class GroupAssignment:
    encoder: str
    threshold: float
    matches: tuple[TalentMatch, ...]  # one per talent, in the order given
    extra_faces: tuple[int, ...]  # faces that match no talent within the threshold
    missing_talents: tuple[str, ...]  # talents with no face within the threshold

    @property
    def all_passed(self) -> bool:
        """Every talent was found (extra people are reported, not failed: see extra_faces)."""
        return not self.missing_talents

    def match_for(self, talent: str) -> TalentMatch:
        for m in self.matches:
            if m.talent == talent:
                return m
        raise KeyError(talent)

    def as_dict(self) -> dict[str, Any]:
        return {
            "encoder": self.encoder,
            "threshold": self.threshold,
            "matches": [m.as_dict() for m in self.matches],
            "extra_faces": list(self.extra_faces),
            "missing_talents": list(self.missing_talents),
            "all_passed": self.all_passed,
        }


def assign_faces(
    talent_refs: dict[str, list[np.ndarray]],
    faces: list[DetectedFace],
    info: EncoderInfo,
) -> GroupAssignment:
    """Assign each talent at most one face and each face at most one talent.

    `talent_refs` maps a talent id to that talent's reference embeddings (of `info`'s encoder);
    `faces` must carry embeddings of the same encoder (EncoderMismatchError otherwise).
    """
    talents = list(talent_refs)
    n_t, n_f = len(talents), len(faces)
    dist = np.full((n_t, n_f), np.inf)
    sim = np.full((n_t, n_f), np.nan)
    ref_idx = np.full((n_t, n_f), -1, dtype=int)
    for ti, talent in enumerate(talents):
        refs = list(talent_refs[talent])
        if not refs or not n_f:
            continue
        d, s = distance_matrix(refs, list(faces), info)  # refs x faces
        best = np.argmin(d, axis=0)
        cols = np.arange(n_f)
        dist[ti], sim[ti], ref_idx[ti] = d[best, cols], s[best, cols], best
    if n_f:
        # Also validates every face's encoder when no talent has references.
        distance_matrix([], list(faces), info)

    threshold = info.threshold
    assigned: dict[int, int] = {}
    if n_t and n_f:
        finite = np.isfinite(dist)
        cost = np.where(finite, dist, 0.0) + np.where(dist <= threshold, 0.0, _FAIL_PENALTY)
        cost = np.where(finite, cost, 2 * _FAIL_PENALTY)
        rows, cols = linear_sum_assignment(cost)
        assigned = {int(r): int(c) for r, c in zip(rows, cols) if np.isfinite(dist[r, c])}

    matches, matched_faces, missing = [], set(), []
    for ti, talent in enumerate(talents):
        fi = assigned.get(ti)
        if fi is None:
            matches.append(TalentMatch(talent, None, None, None, None, False))
            missing.append(talent)
            continue
        d = float(dist[ti, fi])
        passed = d <= threshold
        matches.append(
            TalentMatch(talent, fi, d, float(sim[ti, fi]), int(ref_idx[ti, fi]), passed)
        )
        if passed:
            matched_faces.add(fi)
        else:
            missing.append(talent)
    extra = tuple(i for i in range(n_f) if i not in matched_faces)
    return GroupAssignment(
        encoder=info.name,
        threshold=threshold,
        matches=tuple(matches),
        extra_faces=extra,
        missing_talents=tuple(missing),
    )
