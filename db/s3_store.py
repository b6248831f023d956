"""S3 object store through the `minio` client (MinIO in production, any S3 endpoint works).

Two buckets: `bucket` for everything, `restricted_bucket` for keys under "restricted/" (release
documents), so the paperwork can get a stricter access policy. Buckets are created on first use,
with object lock (which implies versioning) when `object_lock` is set, else with versioning only.
Quarantine is an S3 legal hold; on a bucket without object lock an object tag stands in for it,
and castkeep refuses to delete a held object either way. Every PUT carries its sha256 checksum,
which S3 verifies (and object-lock buckets require a checksum).
"""

from __future__ import annotations

import base64
import hashlib
import io
import logging
import threading
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
from castkeep.errors import ObjectNotFoundError, ObjectStoreError

logger = logging.getLogger(__name__)

_HOLD_TAG = "castkeep-legal-hold"
_META_PREFIX = "x-amz-meta-"
_MISSING = {"NoSuchKey", "NoSuchVersion", "ResourceNotFound", "NoSuchObject"}
# The sha256 is carried as user metadata too, so stat() needs no second request.
_SHA_META = "castkeep-sha256"


class S3Store(ObjectStore):
    kind = "s3"

    def __init__(
        self,
        *,
        endpoint: str,
        access_key: str,
        secret_key: str,
        secure: bool = False,
        region: str = "us-east-1",
        bucket: str = "castkeep",
        restricted_bucket: str = "castkeep-restricted",
        object_lock: bool = True,
        timeout_s: float = 10.0,
    ) -> None:
        import urllib3
        from minio import Minio

        self.endpoint = endpoint
        self.bucket = bucket
        self.restricted_bucket = restricted_bucket
        self.object_lock = object_lock
        self.region = region
        # Few, quick retries: the default (5 with backoff) makes an unreachable endpoint hang.
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=min(timeout_s, 5.0), read=timeout_s),
            retries=urllib3.Retry(total=2, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]),
        )
        try:
            self._client = Minio(
                endpoint,
                access_key=access_key,
                secret_key=secret_key,
                secure=secure,
                region=region,
                http_client=http,
            )
        except ValueError as exc:
            raise ObjectStoreError(
                f"bad S3 endpoint {endpoint!r} ({exc}); set CASTKEEP_STORAGE__ENDPOINT to host:port"
            ) from exc
        self._ready: dict[str, bool] = {}  # bucket -> has object lock
        self._lock = threading.Lock()

    def describe(self) -> str:
        return f"s3 at {self.endpoint} (buckets {self.bucket}, {self.restricted_bucket})"

    # --- plumbing ------------------------------------------------------------------------------

    def _call(self, what: str, fn, *args, **kwargs):
        from minio.error import S3Error
        from urllib3.exceptions import HTTPError

        try:
            return fn(*args, **kwargs)
        except S3Error as exc:
            if exc.code in _MISSING:
                raise ObjectNotFoundError(f"no object {exc.object_name or ''!s} in s3 bucket {exc.bucket_name}") from None
            if exc.code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
                raise ObjectStoreError(
                    f"S3 at {self.endpoint} refused {what} ({exc.code}); check "
                    "CASTKEEP_STORAGE__ACCESS_KEY and CASTKEEP_STORAGE__SECRET_KEY"
                ) from exc
            raise ObjectStoreError(f"S3 {what} failed: {exc.code}: {exc.message}") from exc
        except (HTTPError, OSError) as exc:
            raise ObjectStoreError(
                f"cannot reach S3 at {self.endpoint} ({type(exc).__name__}); check "
                "CASTKEEP_STORAGE__ENDPOINT and CASTKEEP_STORAGE__SECURE"
            ) from exc

    def _bucket_for(self, key_or_prefix: str) -> str:
        first = key_or_prefix.split("/", 1)[0]
        return self.restricted_bucket if first == RESTRICTED_PREFIX else self.bucket

    def _ensure_bucket(self, bucket: str) -> bool:
        """Create the bucket if needed; returns whether it has object lock."""
        if bucket in self._ready:
            return self._ready[bucket]
        with self._lock:
            if bucket in self._ready:
                return self._ready[bucket]
            from minio.commonconfig import ENABLED
            from minio.error import S3Error
            from minio.versioningconfig import VersioningConfig

            if not self._call("bucket lookup", self._client.bucket_exists, bucket):
                try:
                    self._client.make_bucket(bucket, location=self.region, object_lock=self.object_lock)
                except S3Error as exc:
                    if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                        raise ObjectStoreError(f"cannot create S3 bucket {bucket}: {exc.code}") from exc
                logger.info("created S3 bucket %s (object lock: %s)", bucket, self.object_lock)
            try:
                locked = self._client.get_object_lock_config(bucket) is not None
            except S3Error:
                locked = False
            if not locked:
                self._call(
                    "versioning", self._client.set_bucket_versioning, bucket, VersioningConfig(ENABLED)
                )
            self._ready[bucket] = locked
            return locked

    def _stat(self, key: str):
        parse_key(key)
        bucket = self._bucket_for(key)
        self._ensure_bucket(bucket)
        return bucket, self._call("stat", self._client.stat_object, bucket, key)

    @staticmethod
    def _user_meta(headers) -> dict[str, str]:
        meta = {}
        for name, value in headers.items():
            low = name.lower()
            if low.startswith(_META_PREFIX):
                meta[low[len(_META_PREFIX):]] = value
        return meta

    # --- contract ------------------------------------------------------------------------------

    def _put(self, sha, size, stream, *, prefix, ext, media_type, metadata) -> StoredObject:
        key = make_key(sha, prefix=prefix, ext=ext)
        meta = check_metadata(metadata)
        if _SHA_META in meta:
            raise ObjectStoreError(f"metadata key {_SHA_META!r} is reserved")
        if self.exists(key):
            return self.stat(key)
        bucket = self._bucket_for(key)
        headers = {
            **meta,
            _SHA_META: sha,
            "x-amz-checksum-sha256": base64.b64encode(bytes.fromhex(sha)).decode(),
        }
        self._call(
            "put",
            self._client.put_object,
            bucket,
            key,
            stream,
            size,
            content_type=media_type,
            metadata=headers,
            # One request whatever the size (up to S3's 5 GiB): the checksum covers it all.
            part_size=max(size, 5 * 1024 * 1024),
        )
        return StoredObject(key, sha, size, media_type, meta)

    def put_bytes(self, data, *, prefix, ext, media_type, metadata=None) -> StoredObject:
        data = bytes(data)
        sha = hashlib.sha256(data).hexdigest()
        return self._put(
            sha, len(data), io.BytesIO(data),
            prefix=prefix, ext=ext, media_type=media_type, metadata=metadata,
        )

    def put_file(self, path, *, prefix, ext, media_type, metadata=None) -> StoredObject:
        path = Path(path)
        sha, size = sha256_file(path)
        with open(path, "rb") as fh:
            return self._put(sha, size, fh, prefix=prefix, ext=ext, media_type=media_type, metadata=metadata)

    def get_bytes(self, key: str) -> bytes:
        parse_key(key)
        bucket = self._bucket_for(key)
        self._ensure_bucket(bucket)
        resp = self._call("get", self._client.get_object, bucket, key)
        try:
            return resp.read()
        finally:
            resp.close()
            resp.release_conn()

    def stat(self, key: str) -> StoredObject:
        info = parse_key(key)
        _bucket, st = self._stat(key)
        meta = self._user_meta(st.metadata or {})
        sha = meta.pop(_SHA_META, info["sha"])
        return StoredObject(key, sha, int(st.size), st.content_type or "application/octet-stream", meta)

    def exists(self, key: str) -> bool:
        try:
            self._stat(key)
        except ObjectNotFoundError:
            return False
        return True

    def delete(self, key: str) -> None:
        bucket, _ = self._stat(key)  # ObjectNotFoundError when missing
        if self.legal_hold(key):
            raise ObjectStoreError(f"object {key} is under legal hold (quarantined); release the hold first")
        # Versioned bucket: this adds a delete marker; earlier versions stay recoverable.
        self._call("delete", self._client.remove_object, bucket, key)

    def list_keys(self, prefix: str) -> Iterator[str]:
        buckets = [self._bucket_for(check_prefix(prefix))] if prefix else [self.bucket, self.restricted_bucket]
        keys: list[str] = []
        for bucket in buckets:
            self._ensure_bucket(bucket)
            listing = self._client.list_objects(
                bucket, prefix=f"{prefix}/" if prefix else None, recursive=True
            )
            for obj in self._call("list", list, listing):
                if obj.is_delete_marker or obj.is_dir:
                    continue
                keys.append(obj.object_name)
        return iter(sorted(set(keys)))

    def presign_get(self, key: str, expires: timedelta) -> str:
        bucket, _ = self._stat(key)
        return self._call("presign", self._client.presigned_get_object, bucket, key, expires=expires)

    def set_legal_hold(self, key: str, on: bool) -> None:
        bucket, _ = self._stat(key)
        if self._ensure_bucket(bucket):
            fn = self._client.enable_object_legal_hold if on else self._client.disable_object_legal_hold
            self._call("legal hold", fn, bucket, key)
            return
        from minio.commonconfig import Tags

        tags = self._call("tags", self._client.get_object_tags, bucket, key) or Tags(for_object=True)
        if on:
            tags[_HOLD_TAG] = "on"
        else:
            tags.pop(_HOLD_TAG, None)
        if tags:
            self._call("tags", self._client.set_object_tags, bucket, key, tags)
        else:
            self._call("tags", self._client.delete_object_tags, bucket, key)

    def legal_hold(self, key: str) -> bool:
        bucket, st = self._stat(key)
        if self._ensure_bucket(bucket):
            # Read from the HEAD response: it carries the hold status, one request fewer.
            status = (st.metadata or {}).get("x-amz-object-lock-legal-hold")
            if status is not None:
                return status.upper() == "ON"
            return bool(self._call("legal hold", self._client.is_object_legal_hold_enabled, bucket, key))
        tags = self._call("tags", self._client.get_object_tags, bucket, key) or {}
        return tags.get(_HOLD_TAG) == "on"

    def check(self) -> str:
        for bucket in (self.bucket, self.restricted_bucket):
            self._ensure_bucket(bucket)
        return self.describe()
