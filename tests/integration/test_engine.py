"""Engine creation: connectivity and pgvector are checked up front, errors are one line."""

from __future__ import annotations

import secrets

import psycopg
import pytest
import sqlalchemy as sa
from psycopg import sql
from sqlalchemy.engine import make_url

from castkeep.db.engine import database_info, make_engine, normalise_url, redact, session_factory
from castkeep.errors import DatabaseError
from tests.plugins.db import _plain, _with_database


def test_make_engine_reports_versions(db_engine):
    info = database_info(db_engine)
    assert int(info.server_version.split(".")[0]) >= 15
    assert info.pgvector_version is not None and info.pgvector_version.count(".") == 2
    assert "***" in info.url or make_url(info.url).password is None


def test_session_factory_keeps_objects_readable_after_commit(db_engine):
    sessions = session_factory(db_engine)
    with sessions() as s:
        assert s.execute(sa.text("SELECT 41 + 1")).scalar_one() == 42
    assert sessions.kw["expire_on_commit"] is False


def test_unreachable_server_is_one_line_naming_the_setting():
    with pytest.raises(DatabaseError) as info:
        make_engine("postgresql+psycopg://castkeep:secret-pw@127.0.0.1:1/castkeep")
    msg = str(info.value)
    assert "\n" not in msg
    assert "Connection refused" in msg
    assert "CASTKEEP_DATABASE__URL" in msg
    assert "secret-pw" not in msg


def test_wrong_password_is_one_line(pg_url):
    bad = make_url(pg_url).set(password="definitely-wrong").render_as_string(hide_password=False)
    try:
        engine = make_engine(bad)
    except DatabaseError as exc:
        msg = str(exc)
        assert "password authentication failed" in msg
        assert "\n" not in msg and "definitely-wrong" not in msg
    else:  # an external test server configured with trust auth accepts any password
        engine.dispose()
        pytest.skip("the test server does not check passwords")


@pytest.fixture
def db_without_pgvector(pg_server_url):
    """A database on the test server where the vector extension is not available: PostgreSQL
    18's extension_control_path pointed at an empty place hides it."""
    name = f"castkeep_novec_{secrets.token_hex(3)}"
    with psycopg.connect(_plain(pg_server_url), autocommit=True) as conn:
        if conn.execute("SHOW is_superuser").fetchone()[0] != "on" or conn.info.server_version < 180000:
            pytest.skip("needs a PostgreSQL >= 18 superuser to hide pgvector")
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        conn.execute(sql.SQL("ALTER DATABASE {} SET extension_control_path = '/nonexistent'")
                     .format(sql.Identifier(name)))
    yield _with_database(pg_server_url, name)
    with psycopg.connect(_plain(pg_server_url), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def test_server_without_pgvector_is_refused(db_without_pgvector):
    with pytest.raises(DatabaseError, match="no pgvector extension") as info:
        make_engine(db_without_pgvector)
    assert "CASTKEEP_DATABASE__URL" in str(info.value)
    assert "\n" not in str(info.value)


def test_check_false_builds_without_connecting():
    engine = make_engine("postgresql://x:y@127.0.0.1:1/z", check=False)
    assert engine.url.drivername == "postgresql+psycopg"
    engine.dispose()


@pytest.mark.parametrize(
    "url, expected",
    [
        ("postgresql://u:p@h:5/d", "postgresql+psycopg://u:p@h:5/d"),
        ("postgresql+psycopg2://u:p@h/d", "postgresql+psycopg://u:p@h/d"),
        ("postgresql+psycopg://u@h/d", "postgresql+psycopg://u@h/d"),
    ],
)
def test_normalise_url_always_uses_psycopg3(url, expected):
    assert normalise_url(url) == expected


@pytest.mark.parametrize("url", ["sqlite:///x.db", "mysql://u:p@h/d", "not a url"])
def test_non_postgresql_urls_are_refused(url):
    with pytest.raises(DatabaseError, match="CASTKEEP_DATABASE__URL"):
        normalise_url(url)


def test_redact_hides_the_password():
    assert redact("postgresql+psycopg://u:hunter2@h:5432/d") == "postgresql+psycopg://u:***@h:5432/d"
