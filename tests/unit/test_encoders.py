"""Encoder registry, comparison rules across encoders, and face selection."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from castkeep.errors import (
    EncoderMismatchError,
    FaceTooSmallError,
    MultipleFacesError,
    NoFaceError,
    UnknownModelError,
)
from castkeep.models.faces.encoders import (
    FaceEncoder,
    distance,
    distance_matrix,
    get_encoder,
    known_encoders,
    select_face,
    shared_encoder,
    similarity,
)
from castkeep.models.faces.face_types import EncoderInfo

COSINE_INFO = EncoderInfo("toy-cos", "1", 3, "none", False, 0.5, "cosine")
EUCLID_INFO = EncoderInfo("toy-euc", "1", 3, "none", True, 0.6, "euclidean")


def test_known_encoders():
    assert known_encoders() == ["dlib-resnet-v1", "insightface"]


def test_unknown_encoder_lists_known_names():
    with pytest.raises(UnknownModelError) as exc:
        get_encoder("facenet")
    msg = str(exc.value)
    assert "'facenet'" in msg and "dlib-resnet-v1" in msg and "insightface" in msg
    assert "CASTKEEP_FACES__ENCODER" in msg


def test_get_encoder_returns_unloaded_instances():
    a, b = get_encoder("dlib-resnet-v1"), get_encoder("dlib-resnet-v1", threshold=0.5)
    assert isinstance(a, FaceEncoder) and a is not b
    assert not a.loaded
    assert (a.info.threshold, b.info.threshold) == (0.6, 0.5)


def test_stored_family_name_sets_the_pack(tmp_path):
    enc = get_encoder("insightface-antelopev2", root=tmp_path)
    assert enc.name == "insightface-antelopev2" and not enc.loaded
    with pytest.raises(UnknownModelError, match="'buffalo_l' was configured"):
        get_encoder("insightface-antelopev2", root=tmp_path, pack="buffalo_l")


def test_shared_encoder_is_one_instance_per_options():
    a = shared_encoder("dlib-resnet-v1", max_side=800)
    assert shared_encoder("dlib-resnet-v1", max_side=800) is a
    assert shared_encoder("dlib-resnet-v1", max_side=900) is not a


def test_metrics_on_plain_vectors():
    a, b = np.array([1.0, 0, 0]), np.array([0, 2.0, 0])
    assert distance(a, b, EUCLID_INFO) == pytest.approx(np.sqrt(5))
    assert distance(a, b, COSINE_INFO) == pytest.approx(1.0)
    assert similarity(a, np.array([3.0, 0, 0]), EUCLID_INFO) == pytest.approx(1.0)
    assert similarity(a, np.zeros(3), COSINE_INFO) == 0.0


def test_distance_matrix_agrees_with_pairwise():
    rng = np.random.default_rng(3)
    A, B = list(rng.normal(size=(4, 3))), list(rng.normal(size=(2, 3)))
    for info in (EUCLID_INFO, COSINE_INFO):
        d, s = distance_matrix(A, B, info)
        assert d.shape == (4, 2)
        assert d[2, 1] == pytest.approx(distance(A[2], B[1], info))
        assert s[3, 0] == pytest.approx(similarity(A[3], B[0], info))
    d, s = distance_matrix([], B, EUCLID_INFO)
    assert d.shape == (0, 2)


def test_faces_of_another_encoder_are_refused(dlib_encoder, portrait_faces):
    face = portrait_faces["obama"][0]
    other = dataclasses.replace(face, encoder="insightface-buffalo_l", encoder_version="w600k")
    with pytest.raises(EncoderMismatchError, match="insightface-buffalo_l"):
        dlib_encoder.distance(face, other)
    older = dataclasses.replace(face, encoder_version="resnet_v0")
    with pytest.raises(EncoderMismatchError, match="resnet_v0"):
        dlib_encoder.similarity(older, face)
    with pytest.raises(EncoderMismatchError, match="512 dimensions"):
        dlib_encoder.distance(face, np.zeros(512, np.float32))
    no_vec = dataclasses.replace(face, embedding=None)
    with pytest.raises(EncoderMismatchError, match="embed=True"):
        dlib_encoder.distance(no_vec, face)


def test_select_face(portrait_faces):
    big, small = portrait_faces["obama"][0], portrait_faces["obama_partial_face2"][0]
    assert small.area < big.area
    faces = [big, small]
    with pytest.raises(NoFaceError):
        select_face([], what="a.jpg")
    with pytest.raises(MultipleFacesError, match="2 faces found in a.jpg; choose one with --face-a N"):
        select_face(faces, what="a.jpg", index_option="--face-a N")
    assert select_face(faces, largest=True) is big
    assert select_face(faces, index=1) is small
    with pytest.raises(MultipleFacesError, match="0..1"):
        select_face(faces, index=2)
    with pytest.raises(FaceTooSmallError, match="below the minimum of 500 px"):
        select_face([big], min_face_px=500)
