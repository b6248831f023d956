"""db/read_connection.py: a read-only psycopg connection to a usable catalogue, else None."""

from __future__ import annotations

import secrets

import psycopg
import pytest
from psycopg import sql

from castkeep.db.engine import redact
from castkeep.db.read_connection import libpq_url, reading_connection, shown_url
from castkeep.net import free_port
from tests.plugins.db import _plain, _with_database


def test_a_migrated_catalogue_is_read_through_a_read_only_connection(clean_db, tmp_path):
    conn = reading_connection(tmp_path, clean_db)
    assert conn is not None
    with conn:
        assert conn.execute("SELECT count(*) FROM talent").fetchone() == (0,)
        # A read command cannot write, whatever it runs.
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("INSERT INTO talent (id, display_name) VALUES (gen_random_uuid(), 'x')")


@pytest.fixture
def behind_catalogue(pg_server_url):
    """A catalogue migrated only to 0003, as an older castkeep left it."""
    from castkeep.db.migrate import upgrade

    name = f"castkeep_behind_{secrets.token_hex(3)}"
    with psycopg.connect(_plain(pg_server_url), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = _with_database(pg_server_url, name)
    try:
        upgrade(url, "0003")
        yield url
    finally:
        with psycopg.connect(_plain(pg_server_url), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def test_a_catalogue_behind_the_code_is_left_to_the_migrating_path(behind_catalogue, tmp_path):
    assert reading_connection(tmp_path, behind_catalogue) is None


def test_nothing_to_read_answers_none(tmp_path, clean_db):
    assert reading_connection(tmp_path) is None  # no bundled server in this data dir
    assert reading_connection(tmp_path, f"postgresql://u:p@127.0.0.1:{free_port()}/c") is None
    assert reading_connection(tmp_path, "mysql://u:p@127.0.0.1/c") is None
    assert reading_connection(tmp_path, clean_db.replace("postgresql+psycopg://", "sqlite+x://")) is None


def test_libpq_url_takes_the_schemes_castkeep_accepts():
    assert libpq_url("postgresql+psycopg://u:p@h:5/d?sslmode=require") == "postgresql://u:p@h:5/d?sslmode=require"
    assert libpq_url("postgres://u@h/d") == "postgresql://u@h/d"
    assert libpq_url("postgresql://h/d") == "postgresql://h/d"
    assert libpq_url("postgresql+asyncpg://h/d") is None


@pytest.mark.parametrize("url", [
    "postgresql+psycopg://castkeep:s3cret-Pw_1@127.0.0.1:5432/castkeep",
    "postgresql://user:p%40ss%3Aword@db.example:6543/cat?sslmode=require",
    "postgresql+psycopg://nopass@db/cat",
])
def test_shown_url_hides_the_password_as_the_engine_does(url):
    shown = shown_url(url)
    assert "s3cret" not in shown and "p%40ss" not in shown
    assert shown == redact(url)
