"""Face output types: derived values and JSON-ready forms."""

from __future__ import annotations

import json

import numpy as np
import pytest

from castkeep.models.faces.face_types import DetectedFace, EncoderInfo, FaceQuality, l2_normalise


def _face(embedding=None) -> DetectedFace:
    return DetectedFace(
        box=(10.0, 20.0, 50.0, 80.0),
        landmarks=((20.0, 40.0), (40.0, 40.0), (30.0, 55.0), (22.0, 65.0), (38.0, 65.0)),
        eye_left=(20.0, 40.0),
        eye_right=(40.0, 40.0),
        nose=(30.0, 55.0),
        quality=FaceQuality(face_px=40, sharpness=123.4567, det_score=0.98765, yaw=1.234, roll=-0.5),
        encoder="toy",
        encoder_version="1",
        embedding=embedding,
    )


def test_area_and_unit_embedding():
    f = _face(np.array([3.0, 4.0], np.float32))
    assert f.area == 40 * 60
    np.testing.assert_allclose(f.unit_embedding, [0.6, 0.8])
    assert _face().unit_embedding is None
    np.testing.assert_array_equal(l2_normalise(np.zeros(3)), np.zeros(3))


def test_as_dict_is_json_and_hides_the_embedding_by_default():
    f = _face(np.array([3.0, 4.0], np.float32))
    d = f.as_dict()
    json.dumps(d)
    assert "embedding" not in d and d["quality"]["sharpness"] == 123.457
    assert d["box"] == [10.0, 20.0, 50.0, 80.0] and len(d["landmarks"]) == 5
    assert f.as_dict(include_embedding=True)["embedding"] == [3.0, 4.0]


def test_faces_are_frozen_and_compare_without_embeddings():
    f = _face(np.ones(2))
    with pytest.raises(AttributeError):
        f.box = (0, 0, 1, 1)  # type: ignore[misc]
    assert f == _face(np.zeros(2))  # the embedding is not part of equality


def test_encoder_info_as_dict():
    info = EncoderInfo("toy", "1", 2, "CC0", True, 0.6, "euclidean")
    assert info.as_dict() == {
        "name": "toy", "version": "1", "dim": 2, "licence": "CC0",
        "commercial_use": True, "threshold": 0.6, "metric": "euclidean",
    }
