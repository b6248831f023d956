"""insightface packs: loading from a local folder (never downloading), routing, licence marking,
and the SCRFD + ArcFace pipeline, with the tiny random-weight ONNX pack of tests/plugins/insightface_packs.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from castkeep.errors import ModelNotConfiguredError
from castkeep.models.faces.encoders import get_encoder
from castkeep.models.faces.insightface_encoder import ARCFACE_DST, _similarity_transform
from tests.plugins.insightface_packs import build_arcface


@pytest.fixture
def pack_root(tiny_insightface_root) -> Path:
    return tiny_insightface_root


def _scene(h=480, w=800, x=320, y=160, side=64):
    img = np.zeros((h, w, 3), np.uint8)
    img[y : y + side, x : x + side] = 255
    return img


def test_pack_loads_and_reports_licence(pack_root):
    enc = get_encoder("insightface", root=pack_root, pack="tinypack")
    info = enc.info
    assert (info.name, info.dim, info.metric, info.threshold) == ("insightface-tinypack", 64, "cosine", 0.5)
    assert info.version.startswith("w_tiny-") and len(info.version) == len("w_tiny-") + 12
    assert info.commercial_use is False and "non-commercial" in info.licence
    assert "CASTKEEP_FACES__INSIGHTFACE_LICENCE_ID" in info.licence
    licensed = get_encoder("insightface-tinypack", root=pack_root, licence_id="ACME-2026-001")
    assert licensed.info.commercial_use is True and "ACME-2026-001" in licensed.info.licence


def test_detect_maps_boxes_back_and_embeds(pack_root):
    enc = get_encoder("insightface", root=pack_root, pack="tinypack", max_side=400)
    # 800 px wide: bounded to 400, letterboxed to 640; the bright square sits at 320..384 x
    # 160..224 in the original, i.e. on stride-32 cells of the 640 detector input.
    img = _scene()
    faces = enc.detect(img)
    assert len(faces) == 1
    f = faces[0]
    x0, y0, x1, y1 = f.box
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    # every firing anchor lies inside the square (mapped back); the kept box is centred on one
    assert 320 - 1 <= cx <= 384 + 1 and 160 - 1 <= cy <= 224 + 1
    assert x1 - x0 == pytest.approx(128 / 0.8, rel=0.02)  # 128 px at the 640/800 = 0.8 scale
    assert f.eye_left[0] < f.nose[0] < f.eye_right[0]
    assert f.eye_left[0] == pytest.approx(cx - 0.6 * 32 / 0.8, abs=0.5)
    assert f.quality.det_score > 0.99 and abs(f.quality.roll) < 1e-6
    assert f.embedding.shape == (64,) and np.linalg.norm(f.embedding) == pytest.approx(1.0, abs=1e-5)
    assert f.encoder == "insightface-tinypack" and f.encoder_version == enc.info.version
    again = enc.detect(img)[0]
    assert enc.distance(f, again) == pytest.approx(0.0, abs=1e-6)
    assert enc.similarity(f, again) == pytest.approx(1.0, abs=1e-6)


def test_no_detection_on_a_dark_image(pack_root):
    enc = get_encoder("insightface", root=pack_root, pack="tinypack")
    assert enc.detect(np.zeros((300, 300, 3), np.uint8)) == []


def test_embedding_depends_on_the_aligned_face(pack_root):
    enc = get_encoder("insightface", root=pack_root, pack="tinypack")
    a = _scene()
    b = a.copy()
    rng = np.random.default_rng(5)
    b[100:300, 250:450] = rng.integers(0, 255, (200, 200, 3), dtype=np.uint8)
    b[160:224, 320:384] = 255
    fa, fb = enc.detect(a)[0], enc.detect(b)[0]
    assert fa.box == pytest.approx(fb.box)
    assert enc.distance(fa, fb) > 1e-3  # different crop content, different vector


def test_missing_root_names_the_setting():
    with pytest.raises(ModelNotConfiguredError, match="CASTKEEP_FACES__INSIGHTFACE_ROOT"):
        get_encoder("insightface").load()


def test_missing_pack_is_an_error_not_a_download(pack_root, tmp_path):
    enc = get_encoder("insightface", root=pack_root, pack="buffalo_l")
    with pytest.raises(ModelNotConfiguredError) as exc:
        enc.load()
    msg = str(exc.value)
    assert "'buffalo_l' not found" in msg and "tinypack" in msg and "never downloads" in msg
    assert not (pack_root / "buffalo_l").exists()
    with pytest.raises(ModelNotConfiguredError, match="does not exist"):
        get_encoder("insightface", root=tmp_path / "nowhere").load()


def test_incomplete_pack(tmp_path):
    (tmp_path / "half").mkdir()
    build_arcface(tmp_path / "half" / "w.onnx")
    with pytest.raises(ModelNotConfiguredError, match="lacks an SCRFD detector"):
        get_encoder("insightface", root=tmp_path, pack="half").load()
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelNotConfiguredError, match="holds no .onnx files"):
        get_encoder("insightface", root=tmp_path, pack="empty").load()
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "x.onnx").write_bytes(b"not onnx")
    with pytest.raises(ModelNotConfiguredError, match="cannot load .*x.onnx"):
        get_encoder("insightface", root=tmp_path, pack="broken").load()


def test_nested_pack_folder(pack_root, tmp_path):
    inner = tmp_path / "antelopev2" / "antelopev2"
    inner.mkdir(parents=True)
    for f in (pack_root / "tinypack").glob("*.onnx"):
        (inner / f.name).write_bytes(f.read_bytes())
    enc = get_encoder("insightface", root=tmp_path, pack="antelopev2")
    assert enc.pack_dir() == inner and enc.info.dim == 64


def test_similarity_transform_recovers_a_known_transform():
    angle, scale, t = np.radians(20), 1.7, np.array([12.0, -5.0])
    R = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    src = ARCFACE_DST
    dst = src @ R.T + t
    M = _similarity_transform(src, dst)
    np.testing.assert_allclose(M[:, :2], R, atol=1e-9)
    np.testing.assert_allclose(M[:, 2], t, atol=1e-9)
