"""Filesystem object store (the embedded default), under one root directory:

    objects/<key>          the content (read-only once written)
    meta/<key>.json        media type, size, sha256 and user metadata
    holds/<key>            present while the object is under legal hold (quarantine)
    tmp/                   writes in progress (same filesystem, so rename is atomic)

Every write goes temp file -> fsync -> rename -> fsync(dir), so a crash never leaves a partial
object under its final name. Paths only ever come from validated content-addressed keys.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

from castkeep.db.object_store import (
    ObjectStore,
    StoredObject,
    check_metadata,
    check_prefix,
    make_key,
    parse_key,
    sha256_file,
)
from castkeep.errors import ObjectNotFoundError, ObjectStoreError

_CHUNK = 1 << 20


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FilesystemStore(ObjectStore):
    kind = "filesystem"

    def __init__(self, root: Path) -> None:
        self.root = Path(root).expanduser().resolve()

    def describe(self) -> str:
        return f"filesystem at {self.root}"

    # --- paths (only from validated keys) ----------------------------------------------------

    def _object_path(self, key: str) -> Path:
        parse_key(key)
        return self.root / "objects" / key

    def _meta_path(self, key: str) -> Path:
        parse_key(key)
        return self.root / "meta" / f"{key}.json"

    def _hold_path(self, key: str) -> Path:
        parse_key(key)
        return self.root / "holds" / key

    def _tmp_dir(self) -> Path:
        tmp = self.root / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        return tmp

    def _write_atomic(self, target: Path, chunks: Iterator[bytes], mode: int = 0o444) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=self._tmp_dir(), prefix=".put-")
        try:
            with os.fdopen(fd, "wb") as fh:
                for chunk in chunks:
                    fh.write(chunk)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp_name, mode)
            os.replace(tmp_name, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)
            raise
        _fsync_dir(target.parent)

    # --- contract ------------------------------------------------------------------------------

    def _put(
        self,
        sha: str,
        size: int,
        chunks,
        *,
        prefix: str,
        ext: str,
        media_type: str,
        metadata: dict[str, str] | None,
    ) -> StoredObject:
        key = make_key(sha, prefix=prefix, ext=ext)
        meta = check_metadata(metadata)
        if self.exists(key):
            return self.stat(key)
        record = {"sha256": sha, "size": size, "media_type": media_type, "metadata": meta}
        # Metadata first: an object file never exists without its description.
        self._write_atomic(self._meta_path(key), iter([json.dumps(record, sort_keys=True).encode()]))
        self._write_atomic(self._object_path(key), chunks())
        return StoredObject(key, sha, size, media_type, meta)

    def put_bytes(self, data, *, prefix, ext, media_type, metadata=None) -> StoredObject:
        data = bytes(data)
        sha = hashlib.sha256(data).hexdigest()
        return self._put(
            sha, len(data), lambda: iter([data]),
            prefix=prefix, ext=ext, media_type=media_type, metadata=metadata,
        )

    def put_file(self, path, *, prefix, ext, media_type, metadata=None) -> StoredObject:
        path = Path(path)
        sha, size = sha256_file(path)

        def chunks() -> Iterator[bytes]:
            h = hashlib.sha256()
            with open(path, "rb") as fh:
                while chunk := fh.read(_CHUNK):
                    h.update(chunk)
                    yield chunk
            if h.hexdigest() != sha:
                raise ObjectStoreError(f"{path.name} changed while it was being stored; retry")

        return self._put(sha, size, chunks, prefix=prefix, ext=ext, media_type=media_type, metadata=metadata)

    def get_bytes(self, key: str) -> bytes:
        try:
            return self._object_path(key).read_bytes()
        except FileNotFoundError:
            raise ObjectNotFoundError(f"no object {key!r} in the filesystem store {self.root}") from None

    def stat(self, key: str) -> StoredObject:
        if not self._object_path(key).is_file():
            raise ObjectNotFoundError(f"no object {key!r} in the filesystem store {self.root}")
        record = json.loads(self._meta_path(key).read_text())
        return StoredObject(key, record["sha256"], record["size"], record["media_type"], record["metadata"])

    def exists(self, key: str) -> bool:
        return self._object_path(key).is_file()

    def delete(self, key: str) -> None:
        path = self._object_path(key)
        if not path.is_file():
            raise ObjectNotFoundError(f"no object {key!r} in the filesystem store {self.root}")
        if self.legal_hold(key):
            raise ObjectStoreError(f"object {key} is under legal hold (quarantined); release the hold first")
        path.unlink()
        with contextlib.suppress(FileNotFoundError):
            self._meta_path(key).unlink()

    def list_keys(self, prefix: str) -> Iterator[str]:
        base = self.root / "objects"
        start = base / check_prefix(prefix) if prefix else base
        if not start.is_dir():
            return iter(())
        keys = []
        for dirpath, _dirs, files in os.walk(start):
            for name in files:
                key = (Path(dirpath) / name).relative_to(base).as_posix()
                with contextlib.suppress(ObjectStoreError):
                    parse_key(key)
                    keys.append(key)
        return iter(sorted(keys))

    def presign_get(self, key: str, expires: timedelta) -> str:
        # A local file needs no signature; the expiry cannot be enforced here.
        path = self._object_path(key)
        if not path.is_file():
            raise ObjectNotFoundError(f"no object {key!r} in the filesystem store {self.root}")
        return path.as_uri()

    def set_legal_hold(self, key: str, on: bool) -> None:
        if not self.exists(key):
            raise ObjectNotFoundError(f"no object {key!r} in the filesystem store {self.root}")
        hold = self._hold_path(key)
        if on:
            if not hold.exists():
                self._write_atomic(hold, iter([b"legal hold\n"]))
        else:
            with contextlib.suppress(FileNotFoundError):
                hold.unlink()

    def legal_hold(self, key: str) -> bool:
        if not self.exists(key):
            raise ObjectNotFoundError(f"no object {key!r} in the filesystem store {self.root}")
        return self._hold_path(key).exists()

    def check(self) -> str:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe = self._tmp_dir() / f".probe-{os.getpid()}"
            probe.write_bytes(b"ok")
            probe.unlink()
        except OSError as exc:
            raise ObjectStoreError(
                f"the filesystem store at {self.root} is not writable ({exc.strerror}); "
                "fix its permissions or set CASTKEEP_HOME"
            ) from exc
        return self.describe()
