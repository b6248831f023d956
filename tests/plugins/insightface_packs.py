"""Tiny random-weight insightface packs (SCRFD detector + ArcFace recogniser + an attribute
model), built with onnx.helper: no real weights exist offline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

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


def write_tiny_pack(pack: Path) -> Path:
    """Write a complete tiny pack into the folder `pack` (created); returns it."""
    pack.mkdir(parents=True, exist_ok=True)
    build_scrfd(pack / "det_tiny.onnx")
    build_arcface(pack / "w_tiny.onnx")
    build_genderage(pack / "genderage.onnx")
    return pack


@pytest.fixture(scope="session")
def tiny_insightface_root(tmp_path_factory) -> Path:
    """A packs root holding one tiny pack named `tinypack`."""
    root = tmp_path_factory.mktemp("insightface-packs")
    write_tiny_pack(root / "tinypack")
    return root
