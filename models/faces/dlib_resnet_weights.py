"""The weights of dlib's face ResNet (`dlib_face_recognition_resnet_model_v1.dat`), read from
the .dat itself into a flat list of layers, input first.

The network is `anet_type` of dlib's examples/dnn_face_recognition_ex.cpp:

    loss_metric<fc_no_bias<128, avg_pool_everything<
        alevel0<alevel1<alevel2<alevel3<alevel4<
        max_pool<3,3,2,2, relu<affine<con<32,7,7,2,2, input_rgb_image_sized<150>>>>>>>>>>>>>

dlib serialises a network outside-in: each add_layer writes its version, then its whole
subnetwork, then its own layer details. So the file starts with the version numbers of every
layer from the loss inwards, then the input layer, then the layer details from the input
outwards. The layer list below is that type, written out; the reader checks every version,
layer name and shape against it and that the file ends exactly where the network does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from castkeep.models.faces.dlib_format import DlibReader

# dlib's input_rgb_image default means; the file's own values are used (and checked close).
INPUT_MEANS = (122.782, 117.001, 104.298)


@dataclass(frozen=True)
class Layer:
    """One step of the network. `kind`: input, con, affine, relu, max_pool, avg_pool, tag, skip,
    add_prev, fc. Tags name an output a later skip/add_prev refers back to."""

    kind: str
    tag: int = 0
    params: dict[str, object] = field(default_factory=dict, compare=False)


def _block(n: int, stride: int) -> list[tuple[str, dict]]:
    # block<N,affine,stride> = affine<con<N,3,3,1,1,relu<affine<con<N,3,3,stride,stride,SUBNET>>>>>
    return [("con", {"filters": n, "size": 3, "stride": stride}), ("affine", {}), ("relu", {}),
            ("con", {"filters": n, "size": 3, "stride": 1}), ("affine", {})]


def _ares(n: int) -> list[tuple[str, dict]]:
    # relu<add_prev1<block<N,affine,1,tag1<SUBNET>>>>
    return [("tag", {"id": 1}), *_block(n, 1), ("add_prev", {"id": 1}), ("relu", {})]


def _ares_down(n: int) -> list[tuple[str, dict]]:
    # relu<add_prev2<avg_pool<2,2,2,2,skip1<tag2<block<N,affine,2,tag1<SUBNET>>>>>>>
    return [("tag", {"id": 1}), *_block(n, 2), ("tag", {"id": 2}), ("skip", {"id": 1}),
            ("avg_pool", {"size": 2, "stride": 2}), ("add_prev", {"id": 2}), ("relu", {})]


def architecture() -> list[tuple[str, dict]]:
    """anet_type, input first, as (kind, expected fields)."""
    arch: list[tuple[str, dict]] = [
        ("input", {"size": 150}),
        ("con", {"filters": 32, "size": 7, "stride": 2}), ("affine", {}), ("relu", {}),
        ("max_pool", {"size": 3, "stride": 2}),
    ]
    arch += _ares(32) * 3                                   # alevel4
    arch += _ares_down(64) + _ares(64) * 3                  # alevel3
    arch += _ares_down(128) + _ares(128) * 2                # alevel2
    arch += _ares_down(256) + _ares(256) * 2                # alevel1
    arch += _ares_down(256)                                 # alevel0
    arch += [("avg_pool", {"size": 0, "stride": 1}), ("fc", {"outputs": 128})]
    return arch


_WRAPPERS = {"tag", "skip"}  # add_tag_layer / add_skip_layer: a version, no details


@dataclass(frozen=True)
class ResnetWeights:
    layers: list[Layer]
    means: tuple[float, float, float]
    chip_size: int


def read_resnet(path: str | Path) -> ResnetWeights:
    """Parse the .dat into layers (weights as float32 arrays), input first."""
    data = Path(path).read_bytes()
    r = DlibReader(data, what=f"dlib face ResNet {Path(path).name}")
    arch = architecture()

    # 1. add_loss_layer: version 1, loss_metric details.
    r.expect_version(1)
    loss = r.expect_string("loss_metric_", "loss_metric_2")
    if loss == "loss_metric_2":
        r.float_(), r.float_()  # margin, distance threshold: training-only

    # 2. Versions, from the outermost layer in, down to (not including) the add_layer that
    #    holds the input layer (its version is read with the input layer).
    versions = []  # of the add_layers, outermost first
    for kind, _ in reversed(arch[2:]):
        if kind in _WRAPPERS:
            r.expect_version(1)
        else:
            versions.append(r.expect_version(1, 2))

    # 3. The input layer (held by the innermost add_layer), then each layer's details outward.
    versions.append(r.expect_version(2, 3))  # the add_layer that holds the input layer
    means, chip = _read_input(r)
    layers = [Layer("input", params={"means": means, "size": chip})]
    for kind, spec in arch[1:]:
        if kind in _WRAPPERS:
            layers.append(Layer(kind, tag=spec["id"]))
            continue
        layers.append(_read_details(r, kind, spec))
        holds_input = len(layers) == 2
        _read_layer_tail(r, versions.pop(), holds_input=holds_input)
    if r.remaining:
        raise r.fail(f"{r.remaining} bytes left after the last layer")
    return ResnetWeights(layers=layers, means=means, chip_size=chip)


def _read_input(r: DlibReader) -> tuple[tuple[float, float, float], int]:
    r.expect_string("input_rgb_image_sized")
    means = (r.float_(), r.float_(), r.float_())
    nr, nc = r.int_(), r.int_()
    if nr != nc or nr != 150:
        raise r.fail(f"input size {nr}x{nc}, expected 150x150")
    if any(abs(m - d) > 1e-3 for m, d in zip(means, INPUT_MEANS)):
        raise r.fail(f"input means {means}, expected about {INPUT_MEANS}")
    return means, nr


def _read_layer_tail(r: DlibReader, version: int, *, holds_input: bool) -> None:
    """What add_layer writes after its details: state flags and training buffers (empty in a
    saved model; read and dropped)."""
    for _ in range(3):
        r.bool_()  # this_layer_setup_called, gradient_input_is_stale, ..._disabled
    r.tensor(), r.tensor()  # x_grad, cached_output
    if holds_input:
        r.tensor()  # grad_final
        if version >= 3:
            r.int_()  # _sample_expansion_factor
    elif version >= 2:
        r.tensor()  # params_grad


def _read_details(r: DlibReader, kind: str, spec: dict) -> Layer:
    if kind == "con":
        return _read_con(r, spec)
    if kind == "affine":
        version = r.expect_string("affine_", "affine_2")
        params = r.tensor().reshape(-1)
        g, b = r.alias_tensor(), r.alias_tensor()
        mode = r.int_()
        disabled = r.bool_() if version == "affine_2" else False
        n = int(np.prod(g))
        if int(np.prod(b)) != n or params.size != 2 * n or mode != 0:  # 0: CONV_MODE (per channel)
            raise r.fail(f"affine layer of {params.size} params, gamma {g}, mode {mode}")
        return Layer("affine", params={"gamma": params[:n], "beta": params[n:],
                                       "disabled": disabled})
    if kind == "relu":
        version = r.expect_string("relu_", "relu_2")
        disabled = r.bool_() if version == "relu_2" else False
        return Layer("relu", params={"disabled": disabled})
    if kind in ("max_pool", "avg_pool"):
        r.expect_string(f"{kind}_2")
        nr, nc, sy, sx, py, px = (r.int_() for _ in range(6))
        if (nr, nc, sy, sx, py, px) != (spec["size"],) * 2 + (spec["stride"],) * 2 + (0, 0):
            raise r.fail(f"{kind} {nr}x{nc}/{sy}x{sx} pad {py},{px}")
        return Layer(kind, params={"size": nr, "stride": sy})
    if kind == "add_prev":
        r.expect_string("add_prev_")
        return Layer("add_prev", tag=spec["id"])
    if kind == "fc":
        return _read_fc(r, spec)
    raise AssertionError(kind)


def _read_con(r: DlibReader, spec: dict) -> Layer:
    version = r.expect_string("con_4", "con_5", "con_6")
    params = r.tensor().reshape(-1)
    num_filters, nr, nc, sy, sx, py, px = (r.int_() for _ in range(7))
    fshape, bshape = r.alias_tensor(), r.alias_tensor()
    for _ in range(4):
        r.float_()  # learning-rate and weight-decay multipliers: training-only
    use_bias = r.bool_() if version in ("con_5", "con_6") else True
    use_relu = r.bool_() if version == "con_6" else False
    size, stride = spec["size"], spec["stride"]
    pad = 0 if stride != 1 else size // 2  # dlib's default padding for con<>
    if (num_filters, nr, nc, sy, sx, py, px) != (spec["filters"], size, size, stride, stride,
                                                 pad, pad):
        raise r.fail(f"con {num_filters} {nr}x{nc}/{sy} pad {py}")
    n_w = int(np.prod(fshape))
    if fshape[0] != num_filters or fshape[2:] != (size, size) or use_relu:
        raise r.fail(f"con filters {fshape}")
    n_b = int(np.prod(bshape)) if use_bias else 0
    if params.size != n_w + n_b or (use_bias and n_b != num_filters):
        raise r.fail(f"con params {params.size} for filters {fshape}, biases {bshape}")
    weights = params[:n_w].reshape(fshape)
    bias = params[n_w:] if use_bias else np.zeros(num_filters, np.float32)
    return Layer("con", params={"weights": weights, "bias": bias, "stride": stride, "pad": pad})


def _read_fc(r: DlibReader, spec: dict) -> Layer:
    version = r.expect_string("fc_2", "fc_3")
    outputs, inputs = r.int_(), r.int_()
    params = r.tensor().reshape(-1)
    wshape, _ = r.alias_tensor(), r.alias_tensor()
    bias_mode = r.int_()
    for _ in range(4):
        r.float_()
    if version == "fc_3":
        r.bool_()
    # fc_no_bias: bias_mode FC_NO_BIAS (1); weights are num_inputs x num_outputs.
    if outputs != spec["outputs"] or bias_mode != 1 or params.size != inputs * outputs \
            or int(np.prod(wshape)) != inputs * outputs:
        raise r.fail(f"fc {inputs}->{outputs} bias mode {bias_mode} with {params.size} params")
    return Layer("fc", params={"weights": params.reshape(inputs, outputs)})
