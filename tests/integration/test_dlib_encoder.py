"""dlib-resnet-v1 on the real public-domain portraits with the real dlib models."""

from __future__ import annotations

import io
import itertools
import os

import cv2
import numpy as np
import pytest
from PIL import Image

from castkeep.errors import (
    FaceTooSmallError,
    ModelNotConfiguredError,
    NoFaceError,
    UnsupportedImageError,
)
from castkeep.models.faces.encoders import get_encoder, select_face
from castkeep.models.imaging import decode_image, load_image
from tests.plugins.faces import PERSON, PORTRAITS

PAIRS = list(itertools.combinations(PORTRAITS, 2))


def test_info(dlib_encoder):
    info = dlib_encoder.info
    assert (info.name, info.dim, info.metric, info.threshold) == ("dlib-resnet-v1", 128, "euclidean", 0.6)
    assert info.commercial_use is True and "CC0" in info.licence


@pytest.mark.parametrize("name", PORTRAITS)
def test_one_face_per_portrait(portrait_faces, portrait_rgb, name):
    faces = portrait_faces[name]
    assert len(faces) == 1
    f = faces[0]
    h, w = portrait_rgb[name].shape[:2]
    x0, y0, x1, y1 = f.box
    assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
    assert f.quality.face_px >= 150
    assert len(f.landmarks) == 5
    # eyes in the upper part of the box, left eye left of right eye, nose below the eyes
    assert f.eye_left[0] < f.eye_right[0]
    assert f.nose[1] > max(f.eye_left[1], f.eye_right[1])
    assert y0 <= f.eye_left[1] <= (y0 + y1) / 2
    assert f.embedding.shape == (128,) and f.embedding.dtype == np.float32
    assert 1.2 < np.linalg.norm(f.embedding) < 1.6  # raw dlib descriptor, not unit-normalised
    assert np.linalg.norm(f.unit_embedding) == pytest.approx(1.0, abs=1e-5)
    assert f.quality.sharpness > 50 and f.quality.det_score > 0.3


@pytest.mark.parametrize("a,b", PAIRS)
def test_pairs_same_person_pass_different_fail(dlib_encoder, portrait_faces, a, b):
    fa, fb = portrait_faces[a][0], portrait_faces[b][0]
    d = dlib_encoder.distance(fa, fb)
    same = PERSON[a] == PERSON[b]
    assert dlib_encoder.same_person(fa, fb) is same, f"{a} vs {b}: distance {d:.3f}"
    assert (d <= 0.6) is same
    sim = dlib_encoder.similarity(fa, fb)
    assert (sim > 0.9) is same  # cosine separates the two people here as well


def test_matches_raw_dlib_on_the_full_image(dlib_encoder, portrait_rgb, portrait_faces):
    """Detection on the bounded copy, mapped back, gives the descriptor dlib gives on the
    full-resolution image (obama3 is 2333 px tall: scaled by more than 2x for detection)."""
    import dlib
    import face_recognition_models as frm

    rgb = portrait_rgb["obama3"]
    det = dlib.get_frontal_face_detector()
    sp = dlib.shape_predictor(frm.pose_predictor_five_point_model_location())
    net = dlib.face_recognition_model_v1(frm.face_recognition_model_location())
    rect = det(rgb, 0)[0]
    raw = np.asarray(net.compute_face_descriptor(rgb, sp(rgb, rect)), np.float32)
    ours = portrait_faces["obama3"][0]
    assert np.linalg.norm(raw - ours.embedding) < 0.05
    x0, y0, x1, y1 = ours.box
    # HOG's pyramid steps move boxes a little between scales; well within a tenth of the face
    assert abs(x0 - rect.left()) < 0.1 * ours.quality.face_px
    assert abs(y1 - rect.bottom()) < 0.15 * ours.quality.face_px


def test_boxes_map_back_at_any_detection_size(portrait_rgb, portrait_faces):
    small = get_encoder("dlib-resnet-v1", max_side=400, upsample=1)
    face = small.detect(portrait_rgb["obama"])[0]
    ref = portrait_faces["obama"][0]
    assert np.abs(np.subtract(face.box, ref.box)).max() < 0.15 * ref.quality.face_px
    assert small.distance(face, ref) < 0.15


def test_embed_false_skips_descriptors(dlib_encoder, portrait_rgb, portrait_faces):
    faces = dlib_encoder.detect(portrait_rgb["biden"], embed=False)
    assert len(faces) == 1 and faces[0].embedding is None
    assert faces[0].box == portrait_faces["biden"][0].box


def test_exif_rotated_copy_still_matches(dlib_encoder, fixtures_dir, portrait_faces):
    src = Image.open(fixtures_dir / "obama.jpg").convert("RGB")
    stored = src.transpose(Image.Transpose.ROTATE_90)  # pixels on their side
    exif = Image.Exif()
    exif[0x0112] = 6  # viewer must rotate 90 degrees clockwise to show it upright
    buf = io.BytesIO()
    stored.save(buf, "JPEG", quality=95, exif=exif.tobytes())
    img = decode_image(buf.getvalue())
    assert (img.width, img.height) == src.size
    faces = dlib_encoder.detect(img.rgb)
    assert len(faces) == 1
    assert dlib_encoder.distance(faces[0], portrait_faces["obama"][0]) < 0.2
    assert abs(faces[0].quality.roll) < 5  # upright again, not lying on its side


def test_mirrored_face_flips_yaw_and_roll(dlib_encoder, portrait_rgb, portrait_faces):
    ref = portrait_faces["biden"][0]
    mirrored = dlib_encoder.detect(np.ascontiguousarray(portrait_rgb["biden"][:, ::-1]))[0]
    assert abs(ref.quality.roll) > 5 and abs(ref.quality.yaw) > 5
    assert np.sign(mirrored.quality.roll) == -np.sign(ref.quality.roll)
    assert np.sign(mirrored.quality.yaw) == -np.sign(ref.quality.yaw)
    assert dlib_encoder.same_person(mirrored, ref)


def test_no_face_image(dlib_encoder):
    y, x = np.mgrid[0:300, 0:400]
    blank = np.stack([x % 256, y % 256, (x + y) % 256], -1).astype(np.uint8)
    faces = dlib_encoder.detect(blank)
    assert faces == []
    with pytest.raises(NoFaceError, match="no face found"):
        select_face(faces)


def test_too_small_face(dlib_encoder, portrait_rgb):
    rgb = portrait_rgb["obama"]
    tiny = cv2.resize(rgb, (rgb.shape[1] // 8, rgb.shape[0] // 8), interpolation=cv2.INTER_AREA)
    faces = dlib_encoder.detect(tiny)
    assert len(faces) == 1 and faces[0].quality.face_px < 48
    with pytest.raises(FaceTooSmallError, match=r"\d+ px, below the minimum of 48 px"):
        select_face(faces)


def test_corrupt_file(tmp_path, fixtures_dir):
    bad = tmp_path / "cut.jpg"
    bad.write_bytes((fixtures_dir / "biden.jpg").read_bytes()[:5000])
    with pytest.raises(UnsupportedImageError, match="cut.jpg: .*corrupt"):
        load_image(bad)


def test_rejects_non_rgb_arrays(dlib_encoder):
    with pytest.raises(UnsupportedImageError, match="H x W x 3 uint8"):
        dlib_encoder.detect(np.zeros((10, 10), np.uint8))


def test_loads_without_the_68_point_model(tmp_path, portrait_rgb, portrait_faces):
    """Only the CC0 5-point model and the ResNet are needed: a folder without the 68-point
    model (non-commercial training data) is enough."""
    import face_recognition_models as frm

    src = os.path.dirname(frm.face_recognition_model_location())
    for name in ("shape_predictor_5_face_landmarks.dat", "dlib_face_recognition_resnet_model_v1.dat"):
        os.symlink(os.path.join(src, name), tmp_path / name)
    enc = get_encoder("dlib-resnet-v1", model_dir=tmp_path)
    face = enc.detect(portrait_rgb["obama2"])[0]
    assert enc.distance(face, portrait_faces["obama2"][0]) < 1e-4


def test_missing_model_dir_is_a_configuration_error(tmp_path):
    enc = get_encoder("dlib-resnet-v1", model_dir=tmp_path)
    with pytest.raises(ModelNotConfiguredError, match="shape_predictor_5_face_landmarks.dat"):
        enc.load()


def test_detect_min_face_finds_the_face_as_detect_does(dlib_encoder, portrait_rgb, portrait_faces):
    rgb = portrait_rgb["obama"]
    (full,) = portrait_faces["obama"]
    height = full.box[3] - full.box[1]
    (coarse,) = dlib_encoder.detect_min_face(rgb, 0.6 * height)
    # A level of detect's own pyramid: the same box within a few pixels, the same person.
    assert np.allclose(coarse.box, full.box, atol=0.08 * height)
    assert dlib_encoder.distance(coarse, full) < 0.15
    # Asking for faces larger than the image holds finds nothing; a tiny minimum is `detect`.
    assert dlib_encoder.detect_min_face(rgb, 4 * max(rgb.shape), embed=False) == []
    (fine,) = dlib_encoder.detect_min_face(rgb, 1.0, embed=False)
    assert fine.box == full.box


def test_embed_faces_equals_detecting_again_with_embeddings(dlib_encoder, portrait_rgb):
    """The scorer embeds its fine pass's faces instead of running that detection again: the
    result must be exactly what the detection with embed=True returns."""
    from tests.plugins.faces import side_by_side

    group, _, _ = side_by_side(portrait_rgb["obama"], portrait_rgb["biden"], height=400)
    for min_face, n in ((40.0, 2), (120.0, 1)):
        bare = dlib_encoder.detect_min_face(group, min_face, embed=False)
        full = dlib_encoder.detect_min_face(group, min_face, embed=True)
        embedded = dlib_encoder.embed_faces(group, bare)
        assert len(full) == n and embedded == full  # boxes, landmarks, quality
        assert all(f.embedding is None for f in bare)
        for a, b in zip(embedded, full):
            assert np.array_equal(a.embedding, b.embedding)
    assert dlib_encoder.embed_faces(group, []) == []
