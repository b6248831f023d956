"""Group assignment on synthetic group photos made from the real portraits, plus the solver's
rules on constructed vectors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from castkeep.errors import EncoderMismatchError
from castkeep.models.faces.assign import assign_faces
from castkeep.models.faces.face_types import EncoderInfo
from tests.plugins.faces import side_by_side

TOY = EncoderInfo("toy", "1", 2, "none", True, 0.6, "euclidean")


@pytest.fixture(scope="module")
def refs(portrait_faces):
    """Obama's references come from other photos than the one in the group image."""
    return {
        "obama": [portrait_faces["obama2"][0].embedding, portrait_faces["obama3"][0].embedding],
        "biden": [portrait_faces["biden"][0].embedding],
    }


def _face_owner(face, offsets, widths):
    cx = (face.box[0] + face.box[2]) / 2
    for i, (x, w) in enumerate(zip(offsets, widths)):
        if x <= cx < x + w:
            return i
    raise AssertionError("face outside every pasted portrait")


@pytest.mark.parametrize("order", [("obama", "biden"), ("biden", "obama")])
def test_group_photo_is_assigned_correctly(dlib_encoder, portrait_rgb, refs, order):
    canvas, offsets, scales = side_by_side(*(portrait_rgb[n] for n in order))
    widths = [round(portrait_rgb[n].shape[1] * s) for n, s in zip(order, scales)]
    faces = dlib_encoder.detect(canvas)
    assert len(faces) == 2
    result = assign_faces(refs, faces, dlib_encoder.info)
    assert result.all_passed and result.missing_talents == () and result.extra_faces == ()
    for talent in ("obama", "biden"):
        m = result.match_for(talent)
        assert m.passed and m.distance <= 0.6 and m.similarity > 0.9
        assert order[_face_owner(faces[m.face_index], offsets, widths)] == talent
    # obama's best reference is reported and is one of the two given
    assert result.match_for("obama").reference_index in (0, 1)
    assert result.as_dict()["matches"][0]["talent"] == "obama"


def test_extra_face_is_reported(dlib_encoder, portrait_rgb, refs):
    canvas, offsets, scales = side_by_side(portrait_rgb["obama"], portrait_rgb["biden"])
    faces = dlib_encoder.detect(canvas)
    result = assign_faces({"obama": refs["obama"]}, faces, dlib_encoder.info)
    assert result.all_passed
    obama_face = result.match_for("obama").face_index
    assert result.extra_faces == (1 - obama_face,)


def test_missing_and_wrong_person(dlib_encoder, portrait_faces, refs):
    faces = portrait_faces["obama"]
    result = assign_faces(refs, faces, dlib_encoder.info)
    assert result.missing_talents == ("biden",) and not result.all_passed
    assert result.match_for("biden").face_index is None
    assert result.match_for("obama").passed

    only_biden = assign_faces({"biden": refs["biden"]}, faces, dlib_encoder.info)
    m = only_biden.match_for("biden")
    assert m.face_index == 0 and not m.passed and m.distance > 0.6
    assert only_biden.missing_talents == ("biden",) and only_biden.extra_faces == (0,)


def test_no_faces_and_no_references(dlib_encoder, portrait_faces, refs):
    empty = assign_faces(refs, [], dlib_encoder.info)
    assert empty.missing_talents == ("obama", "biden") and empty.extra_faces == ()
    norefs = assign_faces({"x": []}, portrait_faces["biden"], dlib_encoder.info)
    assert norefs.missing_talents == ("x",) and norefs.extra_faces == (0,)


def test_faces_of_another_encoder_are_refused(portrait_faces):
    with pytest.raises(EncoderMismatchError):
        assign_faces({"a": [np.zeros(2)]}, portrait_faces["obama"], TOY)
    with pytest.raises(EncoderMismatchError):
        assign_faces({}, portrait_faces["obama"], TOY)


def _point_at(d0: float, d1: float, x: float) -> np.ndarray:
    """A 2-D point at distance d0 from (0,0) and d1 from (x,0)."""
    px = (d0**2 - d1**2 + x**2) / (2 * x)
    return np.array([px, math.sqrt(d0**2 - px**2)])


def test_more_passing_pairs_beat_a_smaller_total_distance():
    # d(A,f0)=0.1, d(A,f1)=0.5, d(B,f0)=0.55, d(B,f1)=0.9. Minimum total distance would pair
    # A-f0, B-f1 (1.0 < 1.05) and fail B; the solver must pair A-f1, B-f0 so both pass.
    f0, f1 = np.array([0.0, 0.0]), np.array([0.5, 0.0])
    a, b = _point_at(0.1, 0.5, 0.5), _point_at(0.55, 0.9, 0.5)
    result = assign_faces({"A": [a], "B": [b]}, [f0, f1], TOY)  # plain vectors work too
    assert result.match_for("A").face_index == 1 and result.match_for("B").face_index == 0
    assert result.all_passed
    assert result.match_for("B").distance == pytest.approx(0.55)


def test_minimum_over_references():
    face = np.array([1.0, 0.0])
    result = assign_faces({"A": [np.array([5.0, 0.0]), np.array([1.2, 0.0])]}, [face], TOY)
    m = result.match_for("A")
    assert m.reference_index == 1 and m.distance == pytest.approx(0.2) and m.passed
