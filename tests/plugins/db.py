"""Catalogue and object-store fixtures.

- `pg_url` (session): URL of a fresh database, migrated to head, on one bundled PostgreSQL started
  in a temp dir for the whole test session (fsync off). With CASTKEEP_TEST_DATABASE_URL set (any
  database on a server whose user may CREATE DATABASE), a fresh database is made on that server
  instead. The database is dropped at the end.
- `db_engine` (session), `db_session` (function: rolled back at the end even if the code commits).
- `clean_db` (function): yields pg_url and truncates every table afterwards, for code that opens
  its own connections (flows, CLI).
- `s3_endpoint` (session): moto's S3 server on 127.0.0.1; dict(endpoint=, access_key=, secret_key=).
- `fs_store`, `s3_store` (function, fresh root/buckets), `object_store` (parametrized over both).
- `bundled_data_dir` (function): an empty dir for a test that starts its own bundled server
  (stopped and removed afterwards).
- `runtime_env` (function): CASTKEEP_HOME = a temp dir, CASTKEEP_DATABASE__URL = clean_db's URL,
  settings cache cleared; yields the home Path. When the suite runs with
  CASTKEEP_STORAGE__KIND=s3, it points the s3 settings at `s3_endpoint` with fresh buckets.
- `acting_as` (function): `acting_as(name)` sets CASTKEEP_ACTOR (the user the commands and flows
  record) for the test, settings cache cleared, and returns the name.
- `catalogue_sql(statement, **params)`: runs one statement in its own transaction on the
  catalogue the test's runtime uses (CASTKEEP_DATABASE__URL); returns its rows, or None.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

TEST_DB_ENV = "CASTKEEP_TEST_DATABASE_URL"


def _plain(url: str) -> str:
    """SQLAlchemy URL -> libpq URL for psycopg.connect."""
    from sqlalchemy.engine import make_url

    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _with_database(url: str, database: str) -> str:
    from sqlalchemy.engine import make_url

    from castkeep.db.engine import normalise_url

    return make_url(normalise_url(url)).set(database=database).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """URL of the maintenance database ("postgres") on the test session's server."""
    external = os.environ.get(TEST_DB_ENV)
    if external:
        yield _with_database(external, "postgres")
        return
    import shutil
    import tempfile

    from castkeep.db.server import start_bundled_server, stop_bundled_server

    # Not under pytest's basetemp: as root the server runs as another user, and every new pytest
    # session resets /tmp/pytest-of-<user> to 0700, which would lock the server out mid-run.
    data_dir = Path(tempfile.mkdtemp(prefix="castkeep-test-pg-"))
    server = start_bundled_server(data_dir, fast=True)
    try:
        # The superuser: fixtures create databases, and the tamper tests need a superuser session.
        yield server.superuser_url("postgres")
    finally:
        stop_bundled_server(data_dir)
        if not os.environ.get("CASTKEEP_TEST_KEEP_PG"):
            shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture
def bundled_data_dir() -> Iterator[Path]:
    """An empty data dir for a test that starts its own bundled server; the server is stopped and
    the dir removed afterwards. Outside pytest's basetemp on purpose: as root the server runs as
    another user, and each new pytest session resets /tmp/pytest-of-<user> to mode 0700."""
    import shutil
    import tempfile

    from castkeep.db.server import stop_bundled_server

    data_dir = Path(tempfile.mkdtemp(prefix="castkeep-test-home-"))
    try:
        yield data_dir
    finally:
        stop_bundled_server(data_dir)
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_url(pg_server_url: str) -> Iterator[str]:
    import psycopg
    from psycopg import sql

    from castkeep.db.migrate import upgrade

    name = f"castkeep_test_{os.getpid()}_{secrets.token_hex(3)}"
    with psycopg.connect(_plain(pg_server_url), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = _with_database(pg_server_url, name)
    try:
        upgrade(url)
        yield url
    finally:
        with psycopg.connect(_plain(pg_server_url), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def db_engine(pg_url: str):
    from castkeep.db.engine import make_engine

    engine = make_engine(pg_url)
    yield engine
    engine.dispose()


@pytest.fixture
def db_session(db_engine):
    from sqlalchemy.orm import Session

    with db_engine.connect() as conn:
        outer = conn.begin()
        # Commits inside the code under test only release a savepoint; the outer transaction
        # is rolled back below, so nothing leaks into the next test.
        session = Session(bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False)
        try:
            yield session
        finally:
            session.close()
            if outer.is_active:
                outer.rollback()


def truncate_all(url: str) -> None:
    """Empty every catalogue table (append-only ones included) in one statement."""
    import psycopg

    from castkeep.db.schema import Base

    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with psycopg.connect(_plain(url), autocommit=True) as conn:
        superuser = conn.execute("SHOW is_superuser").fetchone()[0] == "on"
        for attempt in range(2):
            try:
                with conn.transaction():
                    conn.execute("SET LOCAL lock_timeout = '5s'")
                    if superuser:
                        # Ordinary triggers (the append-only guards) do not fire in a replica session.
                        conn.execute("SET LOCAL session_replication_role = replica")
                    else:
                        for t in ("consent_event", "audit_event"):
                            conn.execute(f"ALTER TABLE {t} DISABLE TRIGGER USER")
                    conn.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
                    if not superuser:
                        for t in ("consent_event", "audit_event"):
                            conn.execute(f"ALTER TABLE {t} ENABLE TRIGGER USER")
                return
            except psycopg.errors.LockNotAvailable:
                if attempt:
                    raise
                # A connection left idle in a transaction by the test holds a lock: end it.
                conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )


def catalogue_sql(statement: str, **params):
    import sqlalchemy as sa

    engine = sa.create_engine(os.environ["CASTKEEP_DATABASE__URL"])  # the test's catalogue
    try:
        with engine.begin() as conn:
            result = conn.execute(sa.text(statement), params)
            return result.all() if result.returns_rows else None
    finally:
        engine.dispose()


@pytest.fixture
def acting_as(monkeypatch: pytest.MonkeyPatch):
    from castkeep.flows.settings import get_settings

    def act(name: str) -> str:
        monkeypatch.setenv("CASTKEEP_ACTOR", name)
        get_settings.cache_clear()
        return name

    yield act
    get_settings.cache_clear()


@pytest.fixture
def clean_db(pg_url: str) -> Iterator[str]:
    yield pg_url
    truncate_all(pg_url)


# --- object stores ----------------------------------------------------------------------------


def _free_port() -> int:
    from castkeep.net import free_port

    return free_port()


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[dict[str, str]]:
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield {"endpoint": f"127.0.0.1:{port}", "access_key": "castkeep-test", "secret_key": "castkeep-test-secret"}
    finally:
        server.stop()


def fresh_bucket_names() -> tuple[str, str]:
    tag = secrets.token_hex(4)
    return f"ck-{tag}", f"ck-{tag}-restricted"


@pytest.fixture
def fs_store(tmp_path: Path):
    from castkeep.db.fs_store import FilesystemStore

    return FilesystemStore(tmp_path / "objects")


@pytest.fixture
def s3_store(s3_endpoint: dict[str, str]):
    from castkeep.db.s3_store import S3Store

    bucket, restricted = fresh_bucket_names()
    return S3Store(
        endpoint=s3_endpoint["endpoint"],
        access_key=s3_endpoint["access_key"],
        secret_key=s3_endpoint["secret_key"],
        secure=False,
        bucket=bucket,
        restricted_bucket=restricted,
        object_lock=True,
    )


@pytest.fixture(params=["filesystem", "s3"])
def object_store(request: pytest.FixtureRequest):
    return request.getfixturevalue("fs_store" if request.param == "filesystem" else "s3_store")


# --- the environment flows and the CLI read ----------------------------------------------------


@pytest.fixture
def runtime_env(
    clean_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Iterator[Path]:
    from castkeep.flows.settings import get_settings

    home = tmp_path / "castkeep-home"
    home.mkdir()
    monkeypatch.setenv("CASTKEEP_HOME", str(home))
    monkeypatch.setenv("CASTKEEP_DATABASE__URL", clean_db)
    if os.environ.get("CASTKEEP_STORAGE__KIND", "filesystem") == "s3":
        s3 = request.getfixturevalue("s3_endpoint")
        bucket, restricted = fresh_bucket_names()
        monkeypatch.setenv("CASTKEEP_STORAGE__ENDPOINT", s3["endpoint"])
        monkeypatch.setenv("CASTKEEP_STORAGE__ACCESS_KEY", s3["access_key"])
        monkeypatch.setenv("CASTKEEP_STORAGE__SECRET_KEY", s3["secret_key"])
        monkeypatch.setenv("CASTKEEP_STORAGE__SECURE", "false")
        monkeypatch.setenv("CASTKEEP_STORAGE__BUCKET", bucket)
        monkeypatch.setenv("CASTKEEP_STORAGE__RESTRICTED_BUCKET", restricted)
    get_settings.cache_clear()
    yield home
    get_settings.cache_clear()
