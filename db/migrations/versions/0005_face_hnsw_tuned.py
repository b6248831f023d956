"""Face HNSW indexes rebuilt with parameters chosen by measurement (benchmarks/faces.py; the numbers
are in benchmarks/results/faces_search.md).

Both partial indexes (dlib 128-d, 512-d) are dropped and built again: on a large catalogue this
takes minutes (about 18 minutes for 1M 128-d faces on 2 shared cores with the bundled server's
settings; the index is about 730 MB).
Downgrade restores 0001's indexes (vector, pgvector's defaults m = 16, ef_construction = 64).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# Frozen copies (a migration must not follow later edits of castkeep.db.schema, which mirrors them
# in FACE_HNSW_INDEXES / FACE_HNSW_TYPE / FACE_HNSW_OPTIONS).
INDEXES = (
    ("ix_face_embedding_dlib_hnsw", 128, "encoder = 'dlib-resnet-v1'"),
    ("ix_face_embedding_512_hnsw", 512, "dim = 512"),
)
TYPE = "halfvec"
OPTIONS = "m = 32, ef_construction = 64"


def _create(name: str, dim: int, predicate: str, kind: str, options: str | None) -> None:
    with_clause = f"WITH ({options}) " if options else ""
    op.execute(
        f"CREATE INDEX {name} ON face USING hnsw ((embedding::{kind}({dim})) {kind}_cosine_ops) "
        f"{with_clause}WHERE {predicate}"
    )


def upgrade() -> None:
    for name, dim, predicate in INDEXES:
        op.execute(f"DROP INDEX IF EXISTS {name}")
        _create(name, dim, predicate, TYPE, OPTIONS)


def downgrade() -> None:
    for name, dim, predicate in INDEXES:
        op.execute(f"DROP INDEX IF EXISTS {name}")
        _create(name, dim, predicate, "vector", None)
