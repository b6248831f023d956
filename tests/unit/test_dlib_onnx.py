"""The face ResNet converted to ONNX: the graph, its cache under the data dir, and chip input.
Equality with dlib on the fixture faces is in tests/integration/test_dlib_onnx.py."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from castkeep.errors import UnsupportedImageError
from castkeep.models.faces.dlib_onnx import (
    CONVERTER_VERSION,
    DlibOnnxResnet,
    converted_model,
    sha256_of,
)


@pytest.fixture(scope="module")
def dat_path() -> Path:
    import face_recognition_models as frm

    return Path(frm.face_recognition_model_location())


@pytest.fixture(scope="module")
def net(dat_path) -> DlibOnnxResnet:
    return DlibOnnxResnet.from_dat(dat_path)


def test_graph_takes_uint8_chips_and_gives_128_floats(net):
    (inp,), (out,) = net.session.get_inputs(), net.session.get_outputs()
    assert inp.type == "tensor(uint8)" and inp.shape[1:] == [150, 150, 3]
    assert out.type == "tensor(float)" and out.shape[1:] == [128]
    assert net.provider == "CPUExecutionProvider"


def test_random_chips_match_dlib(net, dat_path):
    """Any 150x150 input, not only faces: the same network, the same input scaling."""
    import dlib

    rng = np.random.default_rng(7)
    chips = [rng.integers(0, 256, (150, 150, 3), dtype=np.uint8) for _ in range(2)]
    chips.append(np.zeros((150, 150, 3), np.uint8))
    ours = net.compute(chips)
    ref = np.asarray(dlib.face_recognition_model_v1(str(dat_path)).compute_face_descriptor(chips))
    assert ours.shape == (3, 128) and ours.dtype == np.float32
    assert np.abs(ours - ref).max() <= 1e-4
    # the descriptors differ per input (a constant output would also "match" a broken dlib)
    assert np.linalg.norm(ours[0] - ours[2]) > 0.05
    # one batch = the same as one at a time
    assert np.abs(net.compute(chips[:1])[0] - ours[0]).max() <= 1e-6


def test_no_chips(net):
    assert net.compute([]).shape == (0, 128)


@pytest.mark.parametrize("chip", [
    np.zeros((160, 160, 3), np.uint8),
    np.zeros((150, 150, 3), np.float32),
    np.zeros((150, 150), np.uint8),
    np.zeros((150, 150, 4), np.uint8),
    "not an image",
])
def test_bad_chips_are_refused(net, chip):
    with pytest.raises(UnsupportedImageError, match="150x150x3 uint8 RGB.*dlib.get_face_chip"):
        net.compute([np.zeros((150, 150, 3), np.uint8), chip])


def test_cached_under_the_sha256_of_the_dat(tmp_path, dat_path):
    data = converted_model(dat_path, tmp_path)
    cached = tmp_path / "dlib-resnet" / f"{sha256_of(dat_path)}-c{CONVERTER_VERSION}.onnx"
    assert cached.read_bytes() == data
    assert [p.name for p in cached.parent.iterdir()] == [cached.name]  # no temporary left over
    # a second use reads the file rather than converting again
    cached.write_bytes(b"marker")
    assert converted_model(dat_path, tmp_path) == b"marker"


def test_another_dat_gets_its_own_entry(tmp_path, dat_path):
    converted_model(dat_path, tmp_path)
    other = tmp_path / "other.dat"
    raw = bytearray(dat_path.read_bytes())
    raw[-200] ^= 0x01  # one bit of the last layer's weights
    other.write_bytes(bytes(raw))
    converted_model(other, tmp_path)
    names = sorted(p.name.split("-")[0] for p in (tmp_path / "dlib-resnet").iterdir())
    assert names == sorted([sha256_of(dat_path), sha256_of(other)])


def test_damaged_cache_entry_is_rebuilt(tmp_path, dat_path, caplog):
    converted_model(dat_path, tmp_path)
    cached = next((tmp_path / "dlib-resnet").iterdir())
    good = cached.read_bytes()
    cached.write_bytes(good[: len(good) // 2])
    with caplog.at_level(logging.WARNING, "castkeep.models.faces.dlib_onnx"):
        net = DlibOnnxResnet.from_dat(dat_path, cache_dir=tmp_path)
    assert "unreadable; converting again" in caplog.text
    assert cached.read_bytes() == good
    assert net.compute([np.zeros((150, 150, 3), np.uint8)]).shape == (1, 128)


def test_unwritable_cache_still_converts(tmp_path, dat_path, caplog):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache folder would go")
    with caplog.at_level(logging.WARNING, "castkeep.models.faces.dlib_onnx"):
        data = converted_model(dat_path, blocker)
    assert len(data) > 20_000_000
    assert "could not cache the converted dlib ResNet" in caplog.text
    assert blocker.read_text().startswith("a file")
