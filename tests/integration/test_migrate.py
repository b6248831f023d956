"""Alembic chain: head, current, upgrade on a fresh database, idempotent re-run, downgrade."""

from __future__ import annotations

import secrets

import psycopg
import pytest
import sqlalchemy as sa
from psycopg import sql

from castkeep.db import migrate
from castkeep.errors import DatabaseError
from tests.plugins.db import _plain, _with_database


@pytest.fixture
def empty_db_url(pg_server_url: str):
    name = f"castkeep_mig_{secrets.token_hex(4)}"
    with psycopg.connect(_plain(pg_server_url), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield _with_database(pg_server_url, name)
    with psycopg.connect(_plain(pg_server_url), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def _tables(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_head_is_the_single_newest_revision():
    assert migrate.head() == "0005"


def test_pg_url_fixture_is_migrated_to_head(pg_url):
    assert migrate.current(pg_url) == migrate.head()


def test_upgrade_creates_every_table_and_is_idempotent(empty_db_url):
    assert migrate.current(empty_db_url) is None
    assert _tables(empty_db_url) == set()

    assert migrate.upgrade(empty_db_url) == "0005"
    expected = {
        "alembic_version", "talent", "consent", "consent_event", "reference_portrait", "face",
        "asset_request", "generation", "asset", "lineage", "score", "audit_event", "app_user",
        "api_token", "placement", "takedown", "soft_binding",
    }
    assert _tables(empty_db_url) == expected
    # A second run finds nothing to do and keeps the revision.
    assert migrate.upgrade(empty_db_url) == "0005"


def test_downgrade_to_base_removes_castkeep_tables(empty_db_url):
    migrate.upgrade(empty_db_url)
    migrate.downgrade(empty_db_url, "base")
    assert _tables(empty_db_url) == {"alembic_version"}
    assert migrate.current(empty_db_url) is None
    migrate.upgrade(empty_db_url)
    assert migrate.current(empty_db_url) == "0005"


def test_current_on_unreachable_server_is_a_database_error():
    with pytest.raises(DatabaseError, match="cannot read the schema revision"):
        migrate.current("postgresql+psycopg://nobody:pw@127.0.0.1:1/none")


def test_external_setup_owner_role_migrates_once_the_admin_created_the_extension(pg_server_url):
    """The README's external-PostgreSQL set-up: the admin creates the owner role and its database;
    the migrations, run as that role, need the admin to create the vector extension first."""
    with psycopg.connect(_plain(pg_server_url), autocommit=True) as conn:
        if conn.execute("SHOW is_superuser").fetchone()[0] != "on":
            pytest.skip("needs a superuser to create the role and the extension")
    role, name, password = (f"castkeep_owner_{secrets.token_hex(3)}", f"castkeep_ext_{secrets.token_hex(3)}",
                            secrets.token_urlsafe(12))
    admin_db = _with_database(pg_server_url, name)
    with psycopg.connect(_plain(pg_server_url), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(role), sql.Literal(password)))
        conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name), sql.Identifier(role)))
    url = sa.engine.make_url(admin_db).set(username=role, password=password).render_as_string(hide_password=False)
    try:
        with pytest.raises(DatabaseError, match=r"have the database administrator run `CREATE EXTENSION vector;`"):
            migrate.upgrade(url)
        assert migrate.current(url) is None
        with psycopg.connect(_plain(admin_db), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION vector")
        assert migrate.upgrade(url) == migrate.head()
        with psycopg.connect(_plain(url), autocommit=True) as conn:
            assert conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone() == (False,)
            owners = {r[0] for r in conn.execute("SELECT tableowner FROM pg_tables WHERE schemaname = 'public'")}
        assert owners == {role}
    finally:
        with psycopg.connect(_plain(pg_server_url), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def test_head_from_the_version_files_is_alembics_head_and_the_fast_check_agrees(pg_url):
    from alembic.script import ScriptDirectory

    from castkeep.db import migrate
    from castkeep.db.engine import make_engine

    assert migrate.head() == ScriptDirectory.from_config(migrate.alembic_config()).get_heads()[0]
    engine = make_engine(pg_url)
    try:
        assert migrate.revision_of(engine) == migrate.current(pg_url) == migrate.head()
        assert migrate.upgrade_if_behind(pg_url, engine) is False
    finally:
        engine.dispose()
