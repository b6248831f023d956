"""The ObjectStore contract, run against the filesystem store and the S3 store (moto's S3 server
on 127.0.0.1), plus what is particular to each implementation."""

from __future__ import annotations

import hashlib
import os
import stat
import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest

from castkeep.db.object_store import StoredObject, make_key, parse_key
from castkeep.errors import ObjectNotFoundError, ObjectStoreError

JPEG = b"\xff\xd8\xff\xe0" + b"castkeep test payload" * 50
SHA = hashlib.sha256(JPEG).hexdigest()


def _missing_key(prefix: str = "assets") -> str:
    return make_key(hashlib.sha256(b"never stored").hexdigest(), prefix=prefix, ext="jpg")


# --- contract: both stores --------------------------------------------------------------------


def test_put_bytes_content_addressed_key_and_stat(object_store):
    obj = object_store.put_bytes(
        JPEG, prefix="assets", ext="jpg", media_type="image/jpeg", metadata={"request": "r-17"}
    )
    assert obj == StoredObject(
        key=f"assets/{SHA[:2]}/{SHA[2:4]}/{SHA}.jpg",
        sha256=SHA,
        size=len(JPEG),
        media_type="image/jpeg",
        metadata={"request": "r-17"},
    )
    assert object_store.stat(obj.key) == obj
    assert object_store.get_bytes(obj.key) == JPEG
    assert object_store.exists(obj.key)


def test_put_is_idempotent_and_keeps_first_metadata(object_store):
    first = object_store.put_bytes(JPEG, prefix="references", ext="jpg", media_type="image/jpeg",
                                   metadata={"talent": "t-1"})
    again = object_store.put_bytes(JPEG, prefix="references", ext="jpg", media_type="image/jpeg",
                                   metadata={"talent": "t-2"})
    assert again == first
    assert object_store.stat(first.key).metadata == {"talent": "t-1"}
    assert list(object_store.list_keys("references")) == [first.key]


def test_put_file_streams_and_matches_put_bytes(object_store, tmp_path: Path):
    data = os.urandom(300_000)
    src = tmp_path / "portrait.png"
    src.write_bytes(data)
    obj = object_store.put_file(src, prefix="references", ext="png", media_type="image/png")
    sha = hashlib.sha256(data).hexdigest()
    assert obj.key == f"references/{sha[:2]}/{sha[2:4]}/{sha}.png"
    assert obj.size == len(data)
    assert object_store.get_bytes(obj.key) == data


def test_missing_key_is_a_typed_error(object_store):
    key = _missing_key()
    assert not object_store.exists(key)
    for call in (object_store.get_bytes, object_store.stat, object_store.delete, object_store.legal_hold):
        with pytest.raises(ObjectNotFoundError):
            call(key)
    with pytest.raises(ObjectNotFoundError):
        object_store.set_legal_hold(key, True)


def test_delete_removes_the_object(object_store):
    obj = object_store.put_bytes(b"report", prefix="reports", ext="json", media_type="application/json")
    object_store.delete(obj.key)
    assert not object_store.exists(obj.key)
    assert list(object_store.list_keys("reports")) == []
    with pytest.raises(ObjectNotFoundError):
        object_store.get_bytes(obj.key)
    # Content-addressed: storing the same bytes again brings it back.
    assert object_store.put_bytes(b"report", prefix="reports", ext="json", media_type="application/json") == obj


def test_list_keys_by_prefix_sorted(object_store):
    a = object_store.put_bytes(b"a", prefix="assets", ext="png", media_type="image/png")
    b = object_store.put_bytes(b"b", prefix="assets", ext="png", media_type="image/png")
    r = object_store.put_bytes(b"r", prefix="references", ext="png", media_type="image/png")
    doc = object_store.put_bytes(b"%PDF-1.7", prefix="restricted/release-docs", ext="pdf",
                                 media_type="application/pdf")
    assert list(object_store.list_keys("assets")) == sorted([a.key, b.key])
    assert list(object_store.list_keys("references")) == [r.key]
    assert list(object_store.list_keys("restricted/release-docs")) == [doc.key]
    assert list(object_store.list_keys("")) == sorted([a.key, b.key, r.key, doc.key])


def test_legal_hold_blocks_delete_until_released(object_store):
    obj = object_store.put_bytes(JPEG, prefix="assets", ext="jpg", media_type="image/jpeg")
    assert object_store.legal_hold(obj.key) is False
    object_store.set_legal_hold(obj.key, True)
    assert object_store.legal_hold(obj.key) is True
    with pytest.raises(ObjectStoreError, match="legal hold"):
        object_store.delete(obj.key)
    assert object_store.get_bytes(obj.key) == JPEG  # still readable while quarantined
    object_store.set_legal_hold(obj.key, True)  # idempotent
    object_store.set_legal_hold(obj.key, False)
    assert object_store.legal_hold(obj.key) is False
    object_store.delete(obj.key)
    assert not object_store.exists(obj.key)


def test_presigned_url_reads_the_object(object_store):
    obj = object_store.put_bytes(JPEG, prefix="assets", ext="jpg", media_type="image/jpeg")
    url = object_store.presign_get(obj.key, timedelta(minutes=5))
    with urllib.request.urlopen(url, timeout=10) as resp:  # noqa: S310 - our own loopback/file URL
        assert resp.read() == JPEG
    with pytest.raises(ObjectNotFoundError):
        object_store.presign_get(_missing_key(), timedelta(minutes=5))


@pytest.mark.parametrize(
    "key",
    [
        "../etc/passwd",
        "assets/../../x",
        f"/assets/{SHA[:2]}/{SHA[2:4]}/{SHA}.jpg",
        f"assets/{SHA[:2]}/{SHA[2:4]}/{SHA}.jpg/..",
        f"assets/00/00/{SHA}.jpg",  # fan-out dirs must match the hash
        f"assets/{SHA[:2]}/{SHA[2:4]}/{SHA.upper()}.jpg",
        "assets/ab/cd/not-a-hash.jpg",
    ],
)
def test_keys_that_are_not_content_addressed_are_refused(object_store, key):
    with pytest.raises(ObjectStoreError, match="not a castkeep object key"):
        object_store.get_bytes(key)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"prefix": "../up"}, "bad object prefix"),
        ({"prefix": "Assets"}, "bad object prefix"),
        ({"ext": "j/pg"}, "bad file extension"),
        ({"ext": ""}, "bad file extension"),
        ({"metadata": {"Name": "x"}}, "bad metadata key"),
        ({"metadata": {"talent": "Zoë"}}, "bad metadata value"),
    ],
)
def test_bad_put_arguments_are_refused_before_writing(object_store, kwargs, match):
    args = {"prefix": "assets", "ext": "jpg", "media_type": "image/jpeg", **kwargs}
    with pytest.raises(ObjectStoreError, match=match):
        object_store.put_bytes(JPEG, **args)
    assert list(object_store.list_keys("assets")) == []


def test_check_reports_a_usable_store(object_store):
    assert object_store.check().startswith(object_store.kind)


# --- filesystem specifics ---------------------------------------------------------------------


def test_fs_objects_are_read_only_files_and_leave_no_temp_files(fs_store):
    obj = fs_store.put_bytes(JPEG, prefix="assets", ext="jpg", media_type="image/jpeg")
    path = fs_store.root / "objects" / obj.key
    assert path.read_bytes() == JPEG
    assert path.stat().st_mode & 0o222 == 0
    assert list((fs_store.root / "tmp").iterdir()) == []


def test_fs_failed_write_leaves_nothing_under_the_final_name(fs_store, tmp_path: Path):
    class Boom(Exception):
        pass

    def chunks():
        yield b"half"
        raise Boom

    target = fs_store.root / "objects" / "assets" / "x"
    with pytest.raises(Boom):
        fs_store._write_atomic(target, chunks())
    assert not target.exists()
    assert list((fs_store.root / "tmp").iterdir()) == []


def test_fs_check_names_the_setting_when_root_is_not_writable(tmp_path: Path):
    from castkeep.db.fs_store import FilesystemStore

    blocker = tmp_path / "file"
    blocker.write_text("not a dir")
    with pytest.raises(ObjectStoreError, match="CASTKEEP_HOME"):
        FilesystemStore(blocker / "objects").check()


def test_fs_unwritable_store_is_an_object_store_error_naming_path_and_setting(fs_store):
    fs_store.put_bytes(b"first", prefix="assets", ext="jpg", media_type="image/jpeg")
    # Unwritable even for root: a file where the store's temp folder belongs.
    tmp = fs_store.root / "tmp"
    for leftover in tmp.iterdir():
        leftover.unlink()
    tmp.rmdir()
    tmp.write_text("in the way")
    with pytest.raises(ObjectStoreError) as info:
        fs_store.put_bytes(b"second", prefix="assets", ext="jpg", media_type="image/jpeg")
    msg = str(info.value)
    assert "cannot write " + str(fs_store.root / "meta" / "assets") in msg
    assert "not writable" in msg and "CASTKEEP_HOME" in msg
    assert info.value.exit_code == 5


def _modes(root: Path) -> dict[str, int]:
    """Mode of every folder and file under `root` (and root itself, as "."), by relative path."""
    out = {".": stat.S_IMODE(root.stat().st_mode)}
    for path in root.rglob("*"):
        out[path.relative_to(root).as_posix()] = stat.S_IMODE(path.lstat().st_mode)
    return out


def _fill(store) -> dict[str, str]:
    """An asset (on legal hold), a reference and a release document; their keys by name."""
    asset = store.put_bytes(JPEG, prefix="assets", ext="jpg", media_type="image/jpeg")
    ref = store.put_bytes(JPEG + b"ref", prefix="references", ext="jpg", media_type="image/jpeg")
    doc = store.put_bytes(b"%PDF-1.7 release", prefix="restricted/release-docs", ext="pdf",
                          media_type="application/pdf")
    store.set_legal_hold(asset.key, True)
    return {"asset": asset.key, "reference": ref.key, "doc": doc.key}


def test_fs_store_is_owner_only(fs_store):
    keys = _fill(fs_store)
    root = fs_store.root
    modes = _modes(root)
    for rel, mode in modes.items():
        is_dir = (root / rel).is_dir()
        assert mode == (0o700 if is_dir else 0o400 if rel != ".permissions" else 0o600), rel
    for key in keys.values():  # objects, their descriptions and the hold: read-only, owner only
        assert modes[f"objects/{key}"] == 0o400
        assert modes[f"meta/{key}.json"] == 0o400
    assert modes[f"holds/{keys['asset']}"] == 0o400
    assert fs_store.get_bytes(keys["reference"]) == JPEG + b"ref"
    with pytest.raises(ObjectStoreError, match="legal hold"):  # the hold still protects
        fs_store.delete(keys["asset"])


def test_fs_store_group_reads_all_but_the_restricted_prefix(tmp_path: Path):
    import grp

    from castkeep.db.fs_store import FilesystemStore

    gid = os.getegid()
    store = FilesystemStore(tmp_path / "objects", group=grp.getgrgid(gid).gr_name)
    keys = _fill(store)
    root = store.root
    modes = _modes(root)
    assert modes["."] == 0o750 and root.stat().st_gid == gid
    for name in ("asset", "reference"):
        obj = root / "objects" / keys[name]
        assert modes[f"objects/{keys[name]}"] == 0o440 and obj.stat().st_gid == gid
        assert modes[f"meta/{keys[name]}.json"] == 0o440
        folders = keys[name].split("/")[:-1]  # e.g. objects, objects/assets, .../ab, .../ab/cd
        for depth in range(len(folders) + 1):
            assert modes["/".join(["objects", *folders[:depth]])] == 0o750
    restricted = [rel for rel in modes if rel.split("/")[1:2] == ["restricted"]]
    assert f"objects/{keys['doc']}" in restricted and f"meta/{keys['doc']}.json" in restricted
    for rel in restricted:  # release documents: never group- or other-readable
        assert modes[rel] & 0o077 == 0, rel
    assert modes["tmp"] == 0o700
    # The setting removed: the next open takes the group's access away again.
    FilesystemStore(root)
    assert set(_modes(root).values()) == {0o700, 0o400, 0o600}


def test_fs_store_bad_group_names_the_setting(tmp_path: Path):
    from castkeep.db.fs_store import FilesystemStore
    from castkeep.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="CASTKEEP_STORAGE__GROUP"):
        FilesystemStore(tmp_path / "objects", group="no-such-group-castkeep")


def test_fs_store_written_by_older_code_is_tightened_when_opened(fs_store):
    keys = _fill(fs_store)
    root = fs_store.root
    # What older castkeep left behind: 0444 files in 0755 folders, and no marker.
    (root / ".permissions").unlink(missing_ok=True)
    for path in [root, *root.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o444)
    assert _modes(root)[f"objects/{keys['doc']}"] == 0o444

    from castkeep.db.fs_store import FilesystemStore

    reopened = FilesystemStore(root)
    modes = _modes(root)
    assert {m for rel, m in modes.items() if (root / rel).is_dir()} == {0o700}
    assert {m for rel, m in modes.items() if (root / rel).is_file() and rel != ".permissions"} == {0o400}
    assert reopened.get_bytes(keys["asset"]) == JPEG and reopened.legal_hold(keys["asset"]) is True
    # Then the marker says it is done: a later open walks nothing.
    (root / "objects" / keys["reference"]).chmod(0o444)
    FilesystemStore(root)
    assert _modes(root)[f"objects/{keys['reference']}"] == 0o444


# --- s3 specifics -----------------------------------------------------------------------------


def test_s3_release_docs_go_to_the_restricted_bucket(s3_store):
    doc = s3_store.put_bytes(b"%PDF-1.7 release", prefix="restricted/release-docs", ext="pdf",
                             media_type="application/pdf")
    asset = s3_store.put_bytes(JPEG, prefix="assets", ext="jpg", media_type="image/jpeg")
    client = s3_store._client
    assert [o.object_name for o in client.list_objects(s3_store.restricted_bucket, recursive=True)] == [doc.key]
    assert [o.object_name for o in client.list_objects(s3_store.bucket, recursive=True)] == [asset.key]


def test_s3_buckets_are_created_with_object_lock_and_versioning(s3_store):
    s3_store.check()
    client = s3_store._client
    assert client.get_bucket_versioning(s3_store.bucket).status == "Enabled"
    assert client.get_object_lock_config(s3_store.bucket) is not None
    obj = s3_store.put_bytes(JPEG, prefix="assets", ext="jpg", media_type="image/jpeg")
    s3_store.delete(obj.key)
    # Versioned: the delete left a marker, the data is still there as an older version.
    versions = [v for v in client.list_objects(s3_store.bucket, include_version=True, recursive=True)]
    assert sum(1 for v in versions if v.is_delete_marker) == 1
    assert sum(1 for v in versions if not v.is_delete_marker) == 1


def test_s3_without_object_lock_still_refuses_to_delete_held_objects(s3_endpoint):
    from castkeep.db.s3_store import S3Store
    from tests.plugins.db import fresh_bucket_names

    bucket, restricted = fresh_bucket_names()
    store = S3Store(endpoint=s3_endpoint["endpoint"], access_key=s3_endpoint["access_key"],
                    secret_key=s3_endpoint["secret_key"], bucket=bucket, restricted_bucket=restricted,
                    object_lock=False)
    obj = store.put_bytes(JPEG, prefix="assets", ext="jpg", media_type="image/jpeg")
    assert store._client.get_bucket_versioning(bucket).status == "Enabled"
    store.set_legal_hold(obj.key, True)
    assert store.legal_hold(obj.key) is True
    with pytest.raises(ObjectStoreError, match="legal hold"):
        store.delete(obj.key)
    store.set_legal_hold(obj.key, False)
    store.delete(obj.key)
    assert not store.exists(obj.key)


def test_s3_unreachable_endpoint_names_the_setting():
    from castkeep.db.s3_store import S3Store
    from tests.plugins.db import _free_port

    store = S3Store(endpoint=f"127.0.0.1:{_free_port()}", access_key="a", secret_key="b", timeout_s=1)
    with pytest.raises(ObjectStoreError, match="CASTKEEP_STORAGE__ENDPOINT"):
        store.check()


def test_parse_key_round_trips_make_key():
    key = make_key(SHA, prefix="restricted/release-docs", ext="pdf")
    assert parse_key(key) == {"prefix": "restricted/release-docs", "a": SHA[:2], "b": SHA[2:4],
                              "sha": SHA, "ext": "pdf"}
