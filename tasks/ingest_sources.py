"""Ingest sources: a local folder or an S3 bucket prefix, each listed once and read by the
relative names of its own listing.

Safety rules: only names a source's own listing produced are ever opened, so a name written in a
manifest cannot reach outside the source (`../`, absolute paths). Hidden files (and, in a folder,
symbolic links) are skipped.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from castkeep.errors import NotFoundError, ObjectStoreError


class Source(Protocol):
    label: str

    def list(self) -> list[str]:
        """Every file, as a relative POSIX path."""

    def read(self, rel: str) -> bytes:
        """The bytes of a file from `list()`."""


class FolderSource:
    """A local folder. Hidden files and symbolic links inside it are skipped."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise NotFoundError(f"{root}: no such folder; give a folder of portraits and manifests")
        self.label = str(root)
        self._files: dict[str, str] | None = None

    def list(self) -> list[str]:
        if self._files is None:
            files: dict[str, str] = {}
            for dirpath, dirnames, filenames in os.walk(self.root):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                rel_dir = os.path.relpath(dirpath, self.root)
                for name in sorted(filenames):
                    full = os.path.join(dirpath, name)
                    if name.startswith(".") or os.path.islink(full) or not os.path.isfile(full):
                        continue
                    rel = name if rel_dir == "." else f"{Path(rel_dir).as_posix()}/{name}"
                    files[rel] = full
            self._files = files
        return list(self._files)

    def read(self, rel: str) -> bytes:
        self.list()
        assert self._files is not None
        # Only paths the walk itself produced are ever opened.
        full = self._files.get(rel)
        if full is None:
            raise NotFoundError(f"{rel!r} is not a file of {self.label}")
        with open(full, "rb") as fh:
            return fh.read()


class S3PrefixSource:
    """Objects under `s3://bucket/prefix`, read with a minio client (the configured endpoint and
    credentials). Keys become relative paths under the prefix; nothing else is readable."""

    def __init__(self, client: Any, bucket: str, prefix: str) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.label = f"s3://{bucket}/{self.prefix}"
        self._keys: dict[str, str] | None = None

    def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        from minio.error import S3Error
        from urllib3.exceptions import HTTPError

        try:
            return fn(*args, **kwargs)
        except S3Error as exc:
            if exc.code in ("NoSuchBucket", "NoSuchKey"):
                raise NotFoundError(f"{self.label}: {exc.code}; check the bucket and prefix") from exc
            raise ObjectStoreError(f"{self.label}: S3 error {exc.code}: {exc.message}") from exc
        except (HTTPError, OSError) as exc:
            raise ObjectStoreError(
                f"{self.label}: cannot reach S3 ({type(exc).__name__}); check "
                "CASTKEEP_STORAGE__ENDPOINT and CASTKEEP_STORAGE__SECURE") from exc

    def list(self) -> list[str]:
        if self._keys is None:
            base = f"{self.prefix}/" if self.prefix else ""
            objects = self._call(lambda: list(self.client.list_objects(
                self.bucket, prefix=base or None, recursive=True)))
            self._keys = {}
            for obj in sorted(objects, key=lambda o: o.object_name):
                if getattr(obj, "is_dir", False) or getattr(obj, "is_delete_marker", False):
                    continue
                rel = obj.object_name[len(base):]
                if rel and not any(part.startswith(".") or part in ("", "..")
                                   for part in rel.split("/")):
                    self._keys[rel] = obj.object_name
        return list(self._keys)

    def read(self, rel: str) -> bytes:
        self.list()
        assert self._keys is not None
        key = self._keys.get(rel)
        if key is None:
            raise NotFoundError(f"{rel!r} is not an object of {self.label}")
        resp = self._call(self.client.get_object, self.bucket, key)
        try:
            return resp.read()
        finally:
            resp.close()
            resp.release_conn()
