"""A zip written as it is sent: each member is compressed into a small buffer and handed on,
so a download of many assets never holds the whole archive."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable, Iterator


class _Sink(io.RawIOBase):
    """A write-only, non-seekable stream: zipfile then writes data descriptors after members."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.chunks.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        out = b"".join(self.chunks)
        self.chunks.clear()
        return out


def zip_chunks(members: Iterable[tuple[str, bytes]]) -> Iterator[bytes]:
    """(name, data) pairs -> the bytes of a zip archive, a member at a time. Images are already
    compressed: members are stored, not deflated. Repeated names get -2, -3, ... suffixes."""
    sink = _Sink()
    seen: dict[str, int] = {}
    with zipfile.ZipFile(sink, mode="w", compression=zipfile.ZIP_STORED) as archive:
        for name, data in members:
            count = seen.get(name, 0) + 1
            seen[name] = count
            if count > 1:
                stem, dot, ext = name.rpartition(".")
                name = f"{stem}-{count}.{ext}" if dot else f"{name}-{count}"
            archive.writestr(name, data)
            yield sink.take()
    yield sink.take()
