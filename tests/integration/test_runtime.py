"""open_runtime: settings -> migrated catalogue -> object store, from the environment."""

from __future__ import annotations

import secrets
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from psycopg import sql

from castkeep.db import migrate
from castkeep.db.fs_store import FilesystemStore
from castkeep.db.s3_store import S3Store
from castkeep.db.schema import Talent
from castkeep.errors import ConfigurationError
from castkeep.flows.runtime import build_store, load_settings, open_runtime
from castkeep.flows.settings import Settings, get_settings
from tests.plugins.db import _plain, _with_database


def test_open_runtime_from_the_environment(runtime_env: Path, clean_db: str):
    with open_runtime() as rt:
        assert rt.settings.home == runtime_env
        assert rt.bundled is False
        assert migrate.current(clean_db) == migrate.head()
        if rt.settings.storage.kind == "filesystem":
            assert isinstance(rt.store, FilesystemStore)
            assert rt.store.root == runtime_env / "objects"
        obj = rt.store.put_bytes(b"hello", prefix="reports", ext="txt", media_type="text/plain")
        assert rt.store.get_bytes(obj.key) == b"hello"
        with rt.session_scope() as s:
            s.add(Talent(display_name="Committed"))
        with pytest.raises(RuntimeError):
            with rt.session_scope() as s:
                s.add(Talent(display_name="Rolled back"))
                s.flush()
                raise RuntimeError("boom")
        with rt.sessions() as s:
            assert s.execute(sa.select(Talent.display_name)).scalars().all() == ["Committed"]


@pytest.fixture
def unmigrated_url(pg_server_url: str):
    name = f"castkeep_rt_{secrets.token_hex(3)}"
    with psycopg.connect(_plain(pg_server_url), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield _with_database(pg_server_url, name)
    with psycopg.connect(_plain(pg_server_url), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def test_open_runtime_migrates_an_empty_database(unmigrated_url: str, tmp_path: Path):
    settings = Settings(home=tmp_path, database={"url": unmigrated_url}, storage={"kind": "filesystem"})
    assert migrate.current(unmigrated_url) is None
    with open_runtime(settings):
        pass
    assert migrate.current(unmigrated_url) == migrate.head()


def test_open_runtime_without_migrate_leaves_the_schema(unmigrated_url: str, tmp_path: Path):
    settings = Settings(home=tmp_path, database={"url": unmigrated_url}, storage={"kind": "filesystem"})
    with open_runtime(settings, migrate=False):
        pass
    assert migrate.current(unmigrated_url) is None


def test_open_runtime_starts_the_bundled_server_in_home(bundled_data_dir: Path):
    from castkeep.db.server import running_server

    settings = Settings(home=bundled_data_dir, database={"url": ""}, storage={"kind": "filesystem"})
    with open_runtime(settings) as rt:
        assert rt.bundled is True
        live = running_server(bundled_data_dir)
        assert live is not None and rt.engine.url.port == live.port
        with rt.sessions() as s:
            assert s.execute(sa.text("SELECT count(*) FROM talent")).scalar_one() == 0
    # The next command finds it running (postmaster.pid and one login as the owner role) without
    # waiting for the start-up lock, which another process may hold while it starts a server.
    import threading

    from castkeep.flows.runtime import database_url
    from castkeep.state_file import locked

    found: dict = {}
    with locked(bundled_data_dir / "pg" / ".lock"):
        worker = threading.Thread(target=lambda: found.update(url=database_url(settings)),
                                  daemon=True)
        worker.start()
        worker.join(timeout=30)
        waited_for_the_lock = worker.is_alive()
    worker.join()
    assert not waited_for_the_lock
    assert found["url"] == (live.url(), True)


def test_build_store_s3_from_settings(s3_endpoint, tmp_path: Path):
    settings = Settings(home=tmp_path, storage={
        "kind": "s3", "endpoint": s3_endpoint["endpoint"], "access_key": s3_endpoint["access_key"],
        "secret_key": s3_endpoint["secret_key"], "bucket": f"ck-{secrets.token_hex(4)}",
        "restricted_bucket": f"ck-{secrets.token_hex(4)}",
    })
    store = build_store(settings)
    assert isinstance(store, S3Store)
    assert store.check().startswith("s3 at " + s3_endpoint["endpoint"])


def test_build_store_filesystem_group_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import grp
    import os
    import stat

    gid = os.getegid()
    monkeypatch.setenv("CASTKEEP_STORAGE__GROUP", grp.getgrgid(gid).gr_name)
    monkeypatch.setenv("CASTKEEP_HOME", str(tmp_path))
    monkeypatch.setenv("CASTKEEP_STORAGE__KIND", "filesystem")
    get_settings.cache_clear()
    try:
        store = build_store(load_settings())
    finally:
        get_settings.cache_clear()
    obj = store.put_bytes(b"report", prefix="reports", ext="txt", media_type="text/plain")
    path = tmp_path / "objects" / "objects" / obj.key
    assert stat.S_IMODE(path.stat().st_mode) == 0o440 and path.stat().st_gid == gid


def test_s3_without_credentials_names_the_settings(tmp_path: Path):
    settings = Settings(home=tmp_path, storage={"kind": "s3"})
    with pytest.raises(ConfigurationError, match="CASTKEEP_STORAGE__ACCESS_KEY"):
        build_store(settings)


def test_bad_environment_names_the_variable(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CASTKEEP_STORAGE__KIND", "ftp")
    get_settings.cache_clear()
    try:
        with pytest.raises(ConfigurationError, match="CASTKEEP_STORAGE__KIND"):
            load_settings()
    finally:
        get_settings.cache_clear()
