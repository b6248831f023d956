"""The object store contract: content-addressed, immutable objects under a few fixed prefixes.

Keys are always ``<prefix>/<sha[:2]>/<sha[2:4]>/<sha>.<ext>`` computed from the content; nothing
a user types ever becomes part of a key or path. Putting the same bytes twice is a no-op that
returns the stored object. Quarantine is a legal hold: a held object cannot be deleted.

Two implementations: castkeep.db.fs_store.FilesystemStore (embedded default) and
castkeep.db.s3_store.S3Store (MinIO or any S3 endpoint).
"""

from __future__ import annotations

import abc
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlparse

from castkeep.errors import ObjectStoreError

PREFIXES = ("references", "assets", "restricted/release-docs", "reports")
# Release documents (signed consent paperwork) live under this prefix; S3 keeps them in a
# separate bucket with its own access policy.
RESTRICTED_PREFIX = "restricted"

_PREFIX_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}(/[a-z0-9][a-z0-9-]{0,62}){0,3}$")
_EXT_RE = re.compile(r"^[a-z0-9]{1,10}$")
_KEY_RE = re.compile(
    r"^(?P<prefix>[a-z0-9][a-z0-9-]{0,62}(?:/[a-z0-9][a-z0-9-]{0,62}){0,3})"
    r"/(?P<a>[0-9a-f]{2})/(?P<b>[0-9a-f]{2})/(?P<sha>[0-9a-f]{64})\.(?P<ext>[a-z0-9]{1,10})$"
)
_META_KEY_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
_CHUNK = 1 << 20


@dataclass(frozen=True)
class StoredObject:
    key: str
    sha256: str
    size: int
    media_type: str
    metadata: dict[str, str] = field(default_factory=dict)


def make_key(sha256: str, *, prefix: str, ext: str) -> str:
    check_prefix(prefix)
    if not _EXT_RE.match(ext):
        raise ObjectStoreError(f"bad file extension {ext!r}: use 1-10 lower-case letters/digits")
    return f"{prefix}/{sha256[:2]}/{sha256[2:4]}/{sha256}.{ext}"


def check_prefix(prefix: str) -> str:
    if not _PREFIX_RE.match(prefix):
        raise ObjectStoreError(
            f"bad object prefix {prefix!r}: lower-case words joined by '/', e.g. {PREFIXES[0]!r}"
        )
    return prefix


def parse_key(key: str) -> dict[str, str]:
    """The parts of a castkeep key; ObjectStoreError for anything else (including traversal)."""
    m = _KEY_RE.match(key) if isinstance(key, str) else None
    if not m or m["sha"][:2] != m["a"] or m["sha"][2:4] != m["b"]:
        raise ObjectStoreError(f"not a castkeep object key: {key!r}")
    return m.groupdict()


def check_metadata(metadata: dict[str, str] | None) -> dict[str, str]:
    """User metadata: lower-case ascii keys, printable ASCII values (what S3 can carry)."""
    clean: dict[str, str] = {}
    for k, v in (metadata or {}).items():
        if not isinstance(k, str) or not _META_KEY_RE.match(k):
            raise ObjectStoreError(f"bad metadata key {k!r}: lower-case letters, digits and '-'")
        if not isinstance(v, str) or not v.isascii() or not v.isprintable() or len(v) > 1024:
            raise ObjectStoreError(
                f"bad metadata value for {k!r}: printable ASCII up to 1024 characters "
                "(no names or other PII belong here)"
            )
        clean[k] = v
    return clean


def sha256_file(path: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


class ObjectStore(abc.ABC):
    """What flows and repositories use; see the module docstring for the rules."""

    kind: str

    @abc.abstractmethod
    def put_bytes(
        self,
        data: bytes,
        *,
        prefix: str,
        ext: str,
        media_type: str,
        metadata: dict[str, str] | None = None,
    ) -> StoredObject:
        """Store `data`; idempotent: an existing object with the same content is returned as is
        (its first metadata kept)."""

    @abc.abstractmethod
    def put_file(
        self,
        path: Path,
        *,
        prefix: str,
        ext: str,
        media_type: str,
        metadata: dict[str, str] | None = None,
    ) -> StoredObject:
        """Like put_bytes, streaming from a local file."""

    @abc.abstractmethod
    def get_bytes(self, key: str) -> bytes:
        """The object's content; ObjectNotFoundError if missing."""

    @abc.abstractmethod
    def stat(self, key: str) -> StoredObject:
        """The object's description; ObjectNotFoundError if missing."""

    @abc.abstractmethod
    def exists(self, key: str) -> bool: ...

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Remove the object; ObjectNotFoundError if missing, ObjectStoreError if on legal hold."""

    @abc.abstractmethod
    def list_keys(self, prefix: str) -> Iterator[str]:
        """Keys under `prefix` (a castkeep prefix such as "assets"), sorted."""

    @abc.abstractmethod
    def presign_get(self, key: str, expires: timedelta) -> str:
        """A URL that reads the object without credentials (for `expires`, where supported)."""

    @abc.abstractmethod
    def set_legal_hold(self, key: str, on: bool) -> None:
        """Quarantine (on) or release (off) an object; a held object cannot be deleted."""

    @abc.abstractmethod
    def legal_hold(self, key: str) -> bool: ...

    @abc.abstractmethod
    def check(self) -> str:
        """Make sure the store is usable (reachable, writable); returns a one-line description.
        ObjectStoreError naming the setting to fix otherwise."""

    def describe(self) -> str:
        return self.kind


def object_location(store: ObjectStore, key: str) -> str:
    """Where a stored object can be opened: a local path for the filesystem store, else a
    time-limited URL."""
    url = store.presign_get(key, timedelta(days=7))
    if url.startswith("file:"):
        from urllib.request import url2pathname  # http.client and email: not for every command

        return url2pathname(urlparse(url).path)
    return url
