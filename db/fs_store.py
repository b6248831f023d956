"""Filesystem object store (the embedded default), under one root directory:

    objects/<key>          the content (read-only once written)
    meta/<key>.json        media type, size, sha256 and user metadata
    holds/<key>            present while the object is under legal hold (quarantine)
    tmp/                   writes in progress (same filesystem, so rename is atomic)

Every write goes temp file -> fsync -> rename -> fsync(dir), so a crash never leaves a partial
object under its final name. Paths only ever come from validated content-addressed keys.

Permissions: owner-only. Files are 0400 (read-only for the owner too: a stored object never
changes; a legal hold is the presence of its hold file, which only the owner can remove), folders
0700. With a group (``group=``, the CASTKEEP_STORAGE__GROUP setting) its members may read:
files 0440 and folders 0750 of that group, except tmp/ and everything under the restricted prefix
(release documents), which stay owner-only whatever the setting. A store written by an older
castkeep (0444 files in 0755 folders) is brought in line once, when it is opened; the marker
``.permissions`` records the policy applied, so a changed group setting is applied again.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

from castkeep.db.object_store import (
    RESTRICTED_PREFIX,
    ObjectStore,
    StoredObject,
    check_metadata,
    check_prefix,
    make_key,
    parse_key,
    sha256_file,
)
from castkeep.errors import ConfigurationError, ObjectNotFoundError, ObjectStoreError

logger = logging.getLogger(__name__)

_CHUNK = 1 << 20
_FILE_MODE, _DIR_MODE = 0o400, 0o700
_GROUP_FILE_MODE, _GROUP_DIR_MODE = 0o440, 0o750
# Top-level folders a group may be let into (never tmp/ or the restricted prefix inside them).
_SHAREABLE = ("objects", "meta", "holds")
_PERMISSIONS_MARKER = ".permissions"


def _group_id(group: str | int) -> int:
    """The id of `group` (a name or a number), which this process must be able to give files."""
    import grp

    try:
        gid = int(group) if str(group).isdigit() else grp.getgrnam(str(group)).gr_gid
        grp.getgrgid(gid)
    except KeyError:
        raise ConfigurationError(
            f"no group {group!r} on this machine: fix CASTKEEP_STORAGE__GROUP (empty keeps "
            "stored objects readable by their owner only)"
        ) from None
    if os.geteuid() != 0 and gid != os.getegid() and gid not in os.getgroups():
        raise ConfigurationError(
            f"this user is not a member of group {group!r}, so cannot give it stored objects: "
            "fix CASTKEEP_STORAGE__GROUP or the group's members"
        )
    return gid


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FilesystemStore(ObjectStore):
    kind = "filesystem"

    def __init__(self, root: Path, *, group: str | int | None = None) -> None:
        self.root = Path(root).expanduser().resolve()
        self._gid = _group_id(group) if group not in (None, "") else None
        self._tighten_existing()

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
        self._ensure_dir(tmp)
        return tmp

    # --- permissions (see the module docstring) ----------------------------------------------

    def _group_for(self, path: Path) -> int | None:
        """The group that may read `path` (at or under the root), or None: owner-only."""
        if self._gid is None:
            return None
        parts = path.relative_to(self.root).parts
        if not parts:
            return self._gid  # members traverse the root to reach the shared folders
        if parts[0] not in _SHAREABLE or (len(parts) > 1 and parts[1] == RESTRICTED_PREFIX):
            return None
        return self._gid

    def _set_mode(self, path: Path, *, is_dir: bool, like: Path | None = None) -> None:
        """Give `path` the mode (and group) that `like` (default: `path` itself) should have."""
        gid = self._group_for(like or path)
        if gid is not None:
            os.chown(path, -1, gid)
            os.chmod(path, _GROUP_DIR_MODE if is_dir else _GROUP_FILE_MODE)
        else:
            os.chmod(path, _DIR_MODE if is_dir else _FILE_MODE)

    def _ensure_dir(self, path: Path) -> None:
        """Create `path` (the root or a folder under it) and its missing parents up to the root,
        each with its mode. Folders above the root are not castkeep's to change."""
        if path.is_dir():
            return
        if path == self.root:
            path.parent.mkdir(parents=True, exist_ok=True)
        else:
            self._ensure_dir(path.parent)
        try:
            os.mkdir(path, _DIR_MODE)
        except FileExistsError:
            return  # a concurrent writer made it and sets its mode
        self._set_mode(path, is_dir=True)
        if path == self.root:
            self._write_marker()

    def _policy(self) -> str:
        return "v1 owner" if self._gid is None else f"v1 group {self._gid}"

    def _write_marker(self) -> None:
        marker = self.root / _PERMISSIONS_MARKER
        fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            os.fchmod(fh.fileno(), 0o600)  # an older marker may have another mode
            fh.write(self._policy())

    def _tighten_existing(self) -> None:
        """Once per store (and per group setting): give every folder and file under the root the
        mode it should have. Stores written by older code had 0444 files in 0755 folders."""
        marker = self.root / _PERMISSIONS_MARKER
        with contextlib.suppress(OSError):
            if marker.read_text() == self._policy():
                return
        if not self.root.is_dir():
            return  # created with the right modes on first write
        try:
            for dirpath, _dirs, files in os.walk(self.root):
                folder = Path(dirpath)
                self._set_mode(folder, is_dir=True)
                for name in files:
                    path = folder / name
                    if not path.is_symlink() and path != marker:
                        self._set_mode(path, is_dir=False)
            self._write_marker()
        except OSError as exc:
            # Not the owner (e.g. a group member reading): leave it to the owner's next open.
            logger.warning("could not set the permissions of the filesystem store at %s: %s",
                           self.root, exc)

    # --- writes ---------------------------------------------------------------------------------

    def _write_atomic(self, target: Path, chunks: Iterator[bytes]) -> None:
        try:
            self._write_atomic_io(target, chunks)
        except OSError as exc:  # disk full, folder not writable, a file where a folder belongs
            full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
            raise ObjectStoreError(
                f"cannot write {target} ({exc.strerror or exc}): "
                + ("the disk holding the filesystem store is full; free space"
                   if full else "the filesystem store is not writable; fix its permissions")
                + f" under {self.root}, or set CASTKEEP_HOME to a writable place"
            ) from exc

    def _write_atomic_io(self, target: Path, chunks: Iterator[bytes]) -> None:
        self._ensure_dir(target.parent)
        fd, tmp_name = tempfile.mkstemp(dir=self._tmp_dir(), prefix=".put-")
        try:
            with os.fdopen(fd, "wb") as fh:
                for chunk in chunks:
                    fh.write(chunk)
                fh.flush()
                os.fsync(fh.fileno())
            # The final mode before the final name: an object is never visible more widely.
            self._set_mode(Path(tmp_name), is_dir=False, like=target)
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
        except OSError as exc:
            raise ObjectStoreError(
                f"cannot read {self._object_path(key)} ({exc.strerror or exc}); fix the "
                f"permissions of the filesystem store under {self.root}, or set CASTKEEP_HOME"
            ) from exc

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
            self._ensure_dir(self.root)
            probe = self._tmp_dir() / f".probe-{os.getpid()}"
            probe.write_bytes(b"ok")
            probe.unlink()
        except OSError as exc:
            raise ObjectStoreError(
                f"the filesystem store at {self.root} is not writable ({exc.strerror}); "
                "fix its permissions or set CASTKEEP_HOME"
            ) from exc
        return self.describe()
