"""dlib-resnet-v1's descriptors from onnxruntime equal dlib's own compute_face_descriptor on
the real fixture faces, so stored embeddings, thresholds and calibrations stay valid."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pytest

from castkeep.models.faces.dlib_encoder import CHIP_PADDING, CHIP_SIZE
from castkeep.models.faces.encoders import get_encoder
from tests.plugins.faces import PERSON, PORTRAITS, side_by_side

# The bound the issue sets; measured differences are about 1e-6.
MAX_DIFF = 1e-4


@pytest.fixture(scope="module")
def dlib_models():
    import dlib
    import face_recognition_models as frm

    return (dlib.shape_predictor(frm.pose_predictor_five_point_model_location()),
            dlib.face_recognition_model_v1(frm.face_recognition_model_location()))


def _shape(face):
    """dlib's full_object_detection of a detected face (its 5 landmarks are dlib's points)."""
    import dlib

    x0, y0, x1, y1 = (round(v) for v in face.box)
    parts = [dlib.point(round(x), round(y)) for x, y in face.landmarks]
    return dlib.full_object_detection(dlib.rectangle(x0, y0, x1 - 1, y1 - 1), parts)


def test_runs_on_onnxruntime(dlib_encoder):
    assert dlib_encoder.descriptor_runtime == "onnxruntime:CPUExecutionProvider"
    assert (dlib_encoder.info.name, dlib_encoder.info.version) == ("dlib-resnet-v1", "resnet_v1+sp5")


def test_same_chips_same_descriptors(dlib_encoder, dlib_models, portrait_rgb, portrait_faces):
    import dlib

    _, resnet = dlib_models
    chips = [dlib.get_face_chip(portrait_rgb[n], _shape(portrait_faces[n][0]), size=CHIP_SIZE,
                                padding=CHIP_PADDING) for n in PORTRAITS]
    ours = dlib_encoder.compute_descriptors(chips)
    theirs = np.asarray([np.asarray(d) for d in resnet.compute_face_descriptor(chips)])
    assert ours.shape == (len(PORTRAITS), 128)
    assert np.abs(ours - theirs).max() <= MAX_DIFF
    # and what detect() stored is that descriptor
    stored = np.stack([portrait_faces[n][0].embedding for n in PORTRAITS])
    assert np.abs(stored - theirs).max() <= MAX_DIFF


@pytest.mark.parametrize("name", PORTRAITS)
def test_matches_compute_face_descriptor_on_the_image(dlib_models, portrait_rgb, portrait_faces,
                                                       name):
    """dlib's own path from image + landmarks (num_jitters 0, padding 0.25 by default)."""
    _, resnet = dlib_models
    face = portrait_faces[name][0]
    theirs = np.asarray(resnet.compute_face_descriptor(portrait_rgb[name], _shape(face)))
    assert np.abs(face.embedding - theirs).max() <= MAX_DIFF


def test_group_shot_in_one_batch(dlib_encoder, dlib_models, portrait_rgb):
    import dlib

    _, resnet = dlib_models
    canvas, _, _ = side_by_side(portrait_rgb["obama"], portrait_rgb["biden"], height=400)
    faces = dlib_encoder.detect(canvas)
    assert len(faces) == 2
    shapes = dlib.full_object_detections()
    shapes.extend([_shape(f) for f in faces])
    theirs = resnet.compute_face_descriptor(canvas, shapes)
    for face, ref in zip(faces, theirs):
        assert np.abs(face.embedding - np.asarray(ref)).max() <= MAX_DIFF
    assert dlib_encoder.distance(faces[0], faces[1]) > 0.6  # two people stay two people


def test_same_person_decisions_unchanged(dlib_encoder, dlib_models, portrait_rgb,
                                         portrait_faces):
    _, resnet = dlib_models
    raw = {n: np.asarray(resnet.compute_face_descriptor(portrait_rgb[n],
                                                        _shape(portrait_faces[n][0])))
           for n in PORTRAITS}
    for a in PORTRAITS:
        for b in PORTRAITS:
            ours = dlib_encoder.distance(portrait_faces[a][0], portrait_faces[b][0])
            theirs = float(np.linalg.norm(raw[a] - raw[b]))
            assert abs(ours - theirs) < 1e-4
            assert (ours <= 0.6) is (PERSON[a] == PERSON[b])


def test_conversion_cached_in_cache_dir(tmp_path, portrait_rgb, portrait_faces):
    enc = get_encoder("dlib-resnet-v1", cache_dir=tmp_path / "models")
    face = enc.detect(portrait_rgb["biden"])[0]
    (cached,) = (tmp_path / "models" / "dlib-resnet").iterdir()
    assert cached.suffix == ".onnx" and cached.stat().st_size > 20_000_000
    assert np.abs(face.embedding - portrait_faces["biden"][0].embedding).max() <= 1e-6


def _model_dir(tmp_path: Path, *, red_mean_doubled: bool) -> Path:
    import face_recognition_models as frm

    src = Path(frm.face_recognition_model_location())
    os.symlink(src.parent / "shape_predictor_5_face_landmarks.dat",
               tmp_path / "shape_predictor_5_face_landmarks.dat")
    data = bytearray(src.read_bytes())
    if red_mean_doubled:
        # The input layer's red mean, 122.782 = 0x f59062 * 2**-17: exponent -17 -> -16.
        at = data.index(b"\x15input_rgb_image_sized") + 22
        assert data[at:at + 6] == bytes.fromhex("03 62 90 f5 81 11")
        data[at + 5] = 0x10
    (tmp_path / src.name).write_bytes(bytes(data))
    return tmp_path


def test_falls_back_to_dlib_when_conversion_fails(tmp_path, portrait_rgb, caplog):
    """A ResNet file dlib loads but the converter refuses (input means that are not the face
    ResNet's): the encoder warns once and computes with dlib's own network on that file."""
    import dlib

    model_dir = _model_dir(tmp_path, red_mean_doubled=True)
    enc = get_encoder("dlib-resnet-v1", model_dir=model_dir)
    with caplog.at_level(logging.WARNING, "castkeep.models.faces.dlib_encoder"):
        enc.load()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "\n" not in warnings[0].getMessage()
    assert "using dlib's own" in warnings[0].getMessage()
    assert "input means" in warnings[0].getMessage()
    assert enc.descriptor_runtime == "dlib"
    face = enc.detect(portrait_rgb["obama"])[0]
    resnet = dlib.face_recognition_model_v1(str(model_dir / "dlib_face_recognition_resnet_model_v1.dat"))
    theirs = np.asarray(resnet.compute_face_descriptor(portrait_rgb["obama"], _shape(face)))
    assert np.abs(face.embedding - theirs).max() <= 1e-6


def test_random_jitter_stays_with_dlib():
    enc = get_encoder("dlib-resnet-v1", jitters=3)
    assert enc.descriptor_runtime == "dlib"
    assert get_encoder("dlib-resnet-v1", jitters=1).descriptor_runtime.startswith("onnxruntime")
