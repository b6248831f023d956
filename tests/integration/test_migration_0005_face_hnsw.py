"""Migration 0005: the face HNSW indexes are rebuilt with the measured parameters, searches use them,
and a downgrade restores 0001's indexes."""

from __future__ import annotations

import secrets

import psycopg
import pytest
import sqlalchemy as sa
from psycopg import sql

from castkeep.db import migrate
from castkeep.db.face_search import search_sql
from castkeep.db.schema import FACE_HNSW_INDEXES, FACE_HNSW_OPTIONS, FACE_HNSW_TYPE
from tests.plugins.db import _plain, _with_database


def _indexes(conn) -> dict[str, tuple[str, list[str] | None]]:
    """name -> (definition, reloptions) of the face table's HNSW indexes."""
    rows = conn.execute(sa.text(
        "SELECT c.relname, pg_get_indexdef(c.oid), c.reloptions FROM pg_index i"
        " JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam"
        " WHERE i.indrelid = 'face'::regclass AND a.amname = 'hnsw'"
    )).all()
    return {name: (definition, options) for name, definition, options in rows}


def test_head_indexes_have_the_chosen_cast_and_options(db_session):
    found = _indexes(db_session)
    assert set(found) == {name for name, _, _ in FACE_HNSW_INDEXES}
    expected_options = sorted(f"{k}={v}" for k, v in FACE_HNSW_OPTIONS.items())
    for name, dim, predicate in FACE_HNSW_INDEXES:
        definition, options = found[name]
        assert f"::{FACE_HNSW_TYPE}({dim})" in definition
        assert f"{FACE_HNSW_TYPE}_cosine_ops" in definition
        assert predicate.split(" = ")[1] in definition
        assert sorted(options or []) == expected_options


@pytest.mark.parametrize(("encoder", "dim", "index"), [
    ("dlib-resnet-v1", 128, "ix_face_embedding_dlib_hnsw"),
    ("arcface-r100", 512, "ix_face_embedding_512_hnsw"),
])
@pytest.mark.parametrize("with_version", [False, True])
def test_search_plans_use_the_rebuilt_index(db_session, encoder, dim, index, with_version):
    db_session.execute(sa.text("SET LOCAL enable_seqscan = off"))  # empty table: force the choice
    q = "[" + ",".join(["0.1"] * dim) + "]"
    params = {"q": q, "k": 10, **({"ver": "v1"} if with_version else {})}
    plan = "\n".join(r[0] for r in db_session.execute(
        sa.text("EXPLAIN " + search_sql(encoder, dim, with_version=with_version)), params))
    assert index in plan


@pytest.fixture
def fresh_db_url(pg_server_url: str):
    name = f"castkeep_mig5_{secrets.token_hex(4)}"
    with psycopg.connect(_plain(pg_server_url), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield _with_database(pg_server_url, name)
    with psycopg.connect(_plain(pg_server_url), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def test_downgrade_restores_the_0001_indexes_and_upgrade_rebuilds(fresh_db_url):
    migrate.upgrade(fresh_db_url)
    migrate.downgrade(fresh_db_url, "0004")
    engine = sa.create_engine(fresh_db_url)
    try:
        with engine.connect() as conn:
            found = _indexes(conn)
            assert set(found) == {name for name, _, _ in FACE_HNSW_INDEXES}
            for name, dim, _ in FACE_HNSW_INDEXES:
                definition, options = found[name]
                assert f"(embedding)::vector({dim})) vector_cosine_ops" in definition
                assert options is None  # pgvector's defaults, as 0001 built them
        migrate.upgrade(fresh_db_url)
        with engine.connect() as conn:
            found = _indexes(conn)
            assert all(sorted(opts or []) == sorted(f"{k}={v}" for k, v in FACE_HNSW_OPTIONS.items())
                       for _, opts in found.values())
    finally:
        engine.dispose()
