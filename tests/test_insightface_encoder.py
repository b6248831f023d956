"""insightface packs: loading from a local folder (never downloading), routing, licence marking,
and the SCRFD + ArcFace pipeline, with a tiny random-weight ONNX pack built here."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from castkeep.errors import ModelNotConfiguredError
from castkeep.models.encoders import get_encoder
from castkeep.models.insightface_encoder import _similarity_transform, ARCFACE_DST

STRIDES = (8, 16, 32)
# keypoint offsets from the anchor centre, in strides: eyes, nose, mouth corners
KPS = [-0.6, -0.4, 0.6, -0.4, 0.0, 0.1, -0.5, 0.6, 0.5, 0.6]


def _conv_head(nodes, inits, name, stride, out_ch, weight_scale, bias, width, post=None):
    w = np.full((out_ch, 3, stride, stride), weight_scale, np.float32)
    inits += [numpy_helper.from_array(w, f"{name}_w"), numpy_helper.from_array(np.asarray(bias, np.float32), f"{name}_b")]
    nodes.append(helper.make_node("Conv", ["input.1", f"{name}_w", f"{name}_b"], [f"{name}_c"], kernel_shape=[stride, stride], strides=[stride, stride]))
    src = f"{name}_c"
    if post:
        nodes.append(helper.make_node(post, [src], [f"{name}_p"]))
        src = f"{name}_p"
    nodes.append(helper.make_node("Transpose", [src], [f"{name}_t"], perm=[0, 2, 3, 1]))
    nodes.append(helper.make_node("Reshape", [f"{name}_t", f"shape{width}"], [name]))


def build_scrfd(path: Path) -> None:
    """An SCRFD-shaped detector (9 outputs, 2 anchors, strides 8/16/32, dynamic input). Only
    stride 32 fires, where a cell's mean brightness is high: a bright square in a dark image is
    'a face' with a 128 px box and fixed keypoints around the cell's anchor."""
    nodes, inits = [], []
    for width in (1, 4, 10):
        inits.append(numpy_helper.from_array(np.array([-1, width], np.int64), f"shape{width}"))
    outs = {"score": [], "bbox": [], "kps": []}
    for s in STRIDES:
        live = s == 32
        # (x - 127.5) / 128 averages ~ +1 on white, -1 on black; logit 20 * mean - 10
        _conv_head(nodes, inits, f"score{s}", s, 2, 20.0 / (3 * s * s) if live else 0.0, [-10.0 if live else -30.0] * 2, 1, post="Sigmoid")
        _conv_head(nodes, inits, f"bbox{s}", s, 8, 0.0, [2.0] * 8, 4)
        _conv_head(nodes, inits, f"kps{s}", s, 20, 0.0, KPS * 2, 10)
        for k, w in (("score", 1), ("bbox", 4), ("kps", 10)):
            outs[k].append(helper.make_tensor_value_info(f"{k}{s}", TensorProto.FLOAT, [None, w]))
    graph = helper.make_graph(
        nodes, "scrfd_tiny",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, None, None])],
        outs["score"] + outs["bbox"] + outs["kps"], inits,
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))


def build_arcface(path: Path, dim: int = 64, seed: int = 0) -> None:
    """An ArcFace-shaped recogniser: 112 x 112 RGB -> dim, random weights."""
    rng = np.random.default_rng(seed)
    inits = [
        numpy_helper.from_array(rng.normal(0, 0.1, (8, 3, 8, 8)).astype(np.float32), "cw"),
        numpy_helper.from_array(rng.normal(0, 0.05, (8 * 14 * 14, dim)).astype(np.float32), "fw"),
        numpy_helper.from_array(np.zeros(dim, np.float32), "fb"),
    ]
    nodes = [
        helper.make_node("Conv", ["data", "cw"], ["c"], kernel_shape=[8, 8], strides=[8, 8], name="conv0"),
        helper.make_node("Relu", ["c"], ["r"], name="relu0"),
        helper.make_node("Flatten", ["r"], ["f"], name="flat0"),
        helper.make_node("Gemm", ["f", "fw", "fb"], ["fc1"], name="fc"),
    ]
    graph = helper.make_graph(
        nodes, "arcface_tiny",
        [helper.make_tensor_value_info("data", TensorProto.FLOAT, [None, 3, 112, 112])],
        [helper.make_tensor_value_info("fc1", TensorProto.FLOAT, [None, dim])], inits,
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))


def build_genderage(path: Path) -> None:
    """A 96 x 96 attribute model, which packs carry and the encoder must ignore."""
    nodes = [helper.make_node("GlobalAveragePool", ["data"], ["p"]), helper.make_node("Flatten", ["p"], ["fc1"])]
    graph = helper.make_graph(
        nodes, "ga_tiny",
        [helper.make_tensor_value_info("data", TensorProto.FLOAT, [None, 3, 96, 96])],
        [helper.make_tensor_value_info("fc1", TensorProto.FLOAT, [None, 3])],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))


@pytest.fixture(scope="module")
def pack_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("insightface")
    pack = root / "tinypack"
    pack.mkdir()
    build_scrfd(pack / "det_tiny.onnx")
    build_arcface(pack / "w_tiny.onnx")
    build_genderage(pack / "genderage.onnx")
    return root


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
