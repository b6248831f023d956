"""dlib's face ResNet as an ONNX graph built from the .dat's own weights, run by onnxruntime.

dlib-bin has no BLAS, so its ResNet runs on dlib's own loops (~75 ms a face); onnxruntime runs
the same network, with the same weights and the same input scaling, several times faster.
Descriptors match dlib's `compute_face_descriptor` to ~1e-5, so stored embeddings, thresholds
and calibrations made with dlib stay valid.

    net = DlibOnnxResnet.from_dat(dat_path, cache_dir=data_dir / "models")
    descriptors = net.compute([chip, ...])      # 150x150x3 uint8 RGB chips -> (n, 128) float32

The converted graph is cached as `<cache_dir>/dlib-resnet/<sha256 of the .dat>-c<N>.onnx`,
written atomically, so a process converts at most once per machine and model file.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path

import numpy as np

from castkeep.errors import UnsupportedImageError
from castkeep.models.faces.dlib_resnet_weights import Layer, ResnetWeights, read_resnet

log = logging.getLogger(__name__)

# Bump when the graph this module builds changes: older cached graphs are then rebuilt.
CONVERTER_VERSION = 1
OPSET = 17
INPUT = "chips"  # N x 150 x 150 x 3 uint8 RGB, as dlib.get_face_chip returns them
OUTPUT = "descriptors"  # N x 128 float32


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# --- graph ---------------------------------------------------------------------------------


class _Graph:
    """Accumulates nodes and initialisers; tracks each value's (channels, rows, cols)."""

    def __init__(self) -> None:
        self.nodes: list = []
        self.inits: list = []
        self._n = 0

    def name(self, stem: str) -> str:
        self._n += 1
        return f"{stem}_{self._n}"

    def const(self, stem: str, value: np.ndarray) -> str:
        from onnx import numpy_helper

        name = self.name(stem)
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def op(self, op_type: str, inputs: list[str], stem: str, **attrs) -> str:
        from onnx import helper

        out = self.name(stem)
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out


def build_model(weights: ResnetWeights):
    """The onnx.ModelProto of the network, with dlib's input layer folded in."""
    from onnx import TensorProto, checker, helper

    g = _Graph()
    size = weights.chip_size
    # 1. dlib's input_rgb_image_sized: (pixel - mean) / 256, float32, planes R, G, B.
    x = g.op("Cast", [INPUT], "float", to=TensorProto.FLOAT)
    x = g.op("Sub", [x, g.const("means", np.asarray(weights.means, np.float32))], "centred")
    x = g.op("Mul", [x, g.const("scale", np.asarray(1.0 / 256.0, np.float32))], "scaled")
    x = g.op("Transpose", [x], "nchw", perm=[0, 3, 1, 2])
    shape = (3, size, size)

    # 2. The layers, input first; con + affine pairs fold into one Conv.
    tags: dict[int, tuple[str, tuple[int, int, int]]] = {}
    layers = weights.layers[1:]
    i = 0
    while i < len(layers):
        layer = layers[i]
        nxt = layers[i + 1] if i + 1 < len(layers) else None
        if layer.kind == "con":
            affine = nxt if nxt is not None and nxt.kind == "affine" else None
            x, shape = _conv(g, x, shape, layer, affine)
            i += 2 if affine is not None else 1
            continue
        x, shape = _simple(g, x, shape, layer, tags)
        i += 1

    g.nodes.append(helper.make_node("Identity", [x], [OUTPUT], name=OUTPUT))  # a stable name
    graph = helper.make_graph(
        g.nodes, "dlib_face_recognition_resnet_model_v1",
        [helper.make_tensor_value_info(INPUT, TensorProto.UINT8, ["n", size, size, 3])],
        [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, ["n", 128])],
        initializer=g.inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="castkeep")
    model.ir_version = 8
    checker.check_model(model)
    return model


def _conv(g: _Graph, x: str, shape, con: Layer, affine: Layer | None):
    w = np.asarray(con.params["weights"], np.float32)
    b = np.asarray(con.params["bias"], np.float32)
    stride, pad = int(con.params["stride"]), int(con.params["pad"])
    if affine is not None and not affine.params["disabled"]:
        gamma = np.asarray(affine.params["gamma"], np.float32)
        beta = np.asarray(affine.params["beta"], np.float32)
        w = w * gamma[:, None, None, None]
        b = b * gamma + beta
    k = w.shape[2]
    y = g.op("Conv", [x, g.const("w", w), g.const("b", b)], "conv", kernel_shape=[k, k],
             strides=[stride, stride], pads=[pad] * 4)
    rows = 1 + (shape[1] + 2 * pad - k) // stride
    cols = 1 + (shape[2] + 2 * pad - k) // stride
    return y, (w.shape[0], rows, cols)


def _simple(g: _Graph, x: str, shape, layer: Layer, tags):
    kind, p = layer.kind, layer.params
    if kind == "relu":
        return (x if p["disabled"] else g.op("Relu", [x], "relu")), shape
    if kind == "affine":  # an affine not after a con (not in this network, kept general)
        if p["disabled"]:
            return x, shape
        gamma = np.asarray(p["gamma"], np.float32).reshape(1, -1, 1, 1)
        beta = np.asarray(p["beta"], np.float32).reshape(1, -1, 1, 1)
        x = g.op("Mul", [x, g.const("gamma", gamma)], "affine_mul")
        return g.op("Add", [x, g.const("beta", beta)], "affine"), shape
    if kind == "tag":
        tags[layer.tag] = (x, shape)
        return x, shape
    if kind == "skip":
        return tags[layer.tag]
    if kind in ("max_pool", "avg_pool"):
        size, stride = int(p["size"]), int(p["stride"])
        if size == 0:  # avg_pool_everything
            return g.op("GlobalAveragePool", [x], "avg_all"), (shape[0], 1, 1)
        op = "MaxPool" if kind == "max_pool" else "AveragePool"
        y = g.op(op, [x], kind, kernel_shape=[size, size], strides=[stride, stride],
                 pads=[0, 0, 0, 0])
        return y, (shape[0], 1 + (shape[1] - size) // stride, 1 + (shape[2] - size) // stride)
    if kind == "add_prev":
        return _add_prev(g, x, shape, *tags[layer.tag])
    if kind == "fc":
        w = np.asarray(p["weights"], np.float32)  # num_inputs x num_outputs
        flat = g.op("Flatten", [x], "flat", axis=1)
        return g.op("MatMul", [flat, g.const("fc", w)], "fc"), (w.shape[1], 1, 1)
    raise ValueError(f"layer kind {kind!r} has no ONNX form")


def _add_prev(g: _Graph, a: str, sa, b: str, sb):
    """dlib's add_prev: the output takes the larger size in every dimension and a smaller
    operand counts as zero where it has no value (zero-padded at the end of channels, rows and
    columns). The downsampling blocks rely on it: 64-channel blocks over 32-channel skips, and a
    3x3 conv output over a 4x4 pooled skip."""
    out = tuple(max(u, v) for u, v in zip(sa, sb))

    def padded(v: str, s) -> str:
        if tuple(s) == out:
            return v
        # [begin n, c, h, w, end n, c, h, w]
        pads = np.asarray([0, 0, 0, 0, 0, out[0] - s[0], out[1] - s[1], out[2] - s[2]], np.int64)
        return g.op("Pad", [v, g.const("pads", pads)], "pad", mode="constant")

    return g.op("Add", [padded(a, sa), padded(b, sb)], "add"), out


# --- cache and runtime ---------------------------------------------------------------------


def converted_model(dat_path: str | Path, cache_dir: str | Path | None, *,
                    rebuild: bool = False) -> bytes:
    """The serialised ONNX graph for `dat_path`: read from `cache_dir` when an earlier
    conversion left it there (unless `rebuild`), else built from the .dat (and stored there when
    `cache_dir` is given). The cache key is the .dat's sha256 and the converter version."""
    dat_path = Path(dat_path)
    if cache_dir is None:
        return build_model(read_resnet(dat_path)).SerializeToString()
    target = Path(cache_dir) / "dlib-resnet" / f"{sha256_of(dat_path)}-c{CONVERTER_VERSION}.onnx"
    if target.is_file() and not rebuild:
        return target.read_bytes()
    data = build_model(read_resnet(dat_path)).SerializeToString()
    try:
        _write_atomically(target, data)
    except OSError as exc:  # a read-only data dir costs a conversion per process, nothing more
        log.warning("could not cache the converted dlib ResNet at %s (%s); converting again "
                    "next time", target, exc)
    return data


def _write_atomically(target: Path, data: bytes) -> None:
    """Write to a temporary file beside `target`, then rename: a concurrent reader sees the
    old state or the whole file, never a partial one."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".onnx", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def providers() -> list:
    """CUDA first when this onnxruntime build has it (TF32 off: it would move descriptors by
    more than the 1e-4 they are held to), then CPU."""
    import onnxruntime as ort

    chosen: list = []
    if "CUDAExecutionProvider" in ort.get_available_providers():
        chosen.append(("CUDAExecutionProvider", {"use_tf32": "0"}))
    chosen.append("CPUExecutionProvider")
    return chosen


class DlibOnnxResnet:
    """The converted network in an onnxruntime session. `compute` is thread-safe."""

    def __init__(self, model: bytes, *, threads: int | None = None) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            opts.intra_op_num_threads = int(threads)
        # Workers share their cores (HOG detection, other tasks, PostgreSQL): idle onnxruntime
        # threads sleep rather than spin.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(model, sess_options=opts, providers=providers())
        size = self.session.get_inputs()[0].shape[1]
        self.chip_size = int(size)

    @classmethod
    def from_dat(cls, dat_path: str | Path, *, cache_dir: str | Path | None = None,
                 threads: int | None = None) -> DlibOnnxResnet:
        model = converted_model(dat_path, cache_dir)
        try:
            return cls(model, threads=threads)
        except Exception:  # onnxruntime's own error types: a damaged cached graph
            if cache_dir is None:
                raise
            log.warning("the cached dlib ResNet graph for %s is unreadable; converting again",
                        Path(dat_path).name)
            return cls(converted_model(dat_path, cache_dir, rebuild=True), threads=threads)

    @property
    def provider(self) -> str:
        return self.session.get_providers()[0]

    def compute(self, chips: list[np.ndarray]) -> np.ndarray:
        """(n, 128) float32 descriptors of n aligned chips, in one call."""
        if not chips:
            return np.zeros((0, 128), np.float32)
        size = self.chip_size
        for c in chips:
            if not (isinstance(c, np.ndarray) and c.dtype == np.uint8
                    and c.shape == (size, size, 3)):
                got = (getattr(c, "shape", None), getattr(c, "dtype", type(c).__name__))
                raise UnsupportedImageError(
                    f"face chips must be {size}x{size}x3 uint8 RGB arrays as "
                    f"dlib.get_face_chip makes them, got shape {got[0]} dtype {got[1]}"
                )
        batch = np.ascontiguousarray(np.stack(chips))
        return self.session.run([OUTPUT], {INPUT: batch})[0]
