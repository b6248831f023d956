"""Initial catalogue: talent, consent (+ append-only events), reference portraits, faces with
pgvector embeddings, requests, generations, assets, lineage, scores, hash-chained audit log.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from pgvector.sqlalchemy import Vector
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

NOW = sa.text("now()")

# Tables whose rows are history: no UPDATE, DELETE or TRUNCATE. The triggers are ordinary
# (not ALWAYS) ones, so only a superuser session with session_replication_role = replica can
# get past them (tests use that to simulate tampering; production has no such path).
APPEND_ONLY = ("consent_event", "audit_event")

# Partial HNSW cosine indexes on a cast: `face.embedding` has no fixed dimension, each encoder
# family gets its own index (kept in step with castkeep.db.schema.FACE_HNSW_INDEXES).
FACE_HNSW_INDEXES = (
    ("ix_face_embedding_dlib_hnsw", 128, "encoder = 'dlib-resnet-v1'"),
    ("ix_face_embedding_512_hnsw", 512, "dim = 512"),
)


def upgrade() -> None:
    # A no-op where the extension exists, as it must for the owner role castkeep runs as (not a
    # superuser): pgvector is not a trusted extension, so a superuser creates it beforehand.
    op.execute("CREATE EXTENSION IF NOT EXISTS vector")
    op.create_table('asset_request',
        sa.Column('id', sa.UUID(), nullable=False),
        sa.Column('campaign', sa.String(length=300), nullable=False),
        sa.Column('requester', sa.String(length=300), nullable=False),
        sa.Column('channel', sa.String(length=50), nullable=False),
        sa.Column('territory', sa.String(length=10), nullable=False),
        sa.Column('purpose', sa.String(length=50), nullable=False),
        sa.Column('publish_date', sa.Date(), nullable=False),
        sa.Column('spec', JSONB, nullable=False),
        sa.Column('spec_sha256', sa.String(length=64), nullable=False),
        sa.Column('status', sa.String(length=30), nullable=False),
        sa.Column('refusals', JSONB, nullable=False),
        sa.Column('flow_run_id', sa.String(length=64), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.CheckConstraint("status IN ('received','refused','running','awaiting_approval','completed','failed')", name='ck_asset_request_status'),
        sa.PrimaryKeyConstraint('id', name='pk_asset_request')
    )
    op.create_index('ix_asset_request_spec_sha256', 'asset_request', ['spec_sha256'])
    op.create_index('ix_asset_request_status', 'asset_request', ['status'])
    op.create_table('audit_event',
        sa.Column('seq', sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column('id', sa.UUID(), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('actor', sa.String(length=200), nullable=False),
        sa.Column('kind', sa.String(length=60), nullable=False),
        sa.Column('entity_type', sa.String(length=40), nullable=True),
        sa.Column('entity_id', sa.String(length=64), nullable=True),
        sa.Column('payload', JSONB, nullable=False),
        sa.Column('prev_hash', sa.String(length=64), nullable=False),
        sa.Column('hash', sa.String(length=64), nullable=False),
        sa.CheckConstraint("hash ~ '^[0-9a-f]{64}$'", name='ck_audit_event_hash_hex'),
        sa.CheckConstraint("prev_hash ~ '^[0-9a-f]{64}$'", name='ck_audit_event_prev_hash_hex'),
        sa.PrimaryKeyConstraint('seq', name='pk_audit_event'),
        sa.UniqueConstraint('hash', name='uq_audit_event_hash'),
        sa.UniqueConstraint('id', name='uq_audit_event_id')
    )
    op.create_index('ix_audit_event_entity_id', 'audit_event', ['entity_id'])
    op.create_index('ix_audit_event_kind', 'audit_event', ['kind'])
    op.create_table('talent',
        sa.Column('id', sa.UUID(), nullable=False),
        sa.Column('external_ref', sa.String(length=200), nullable=True),
        sa.Column('display_name', sa.String(length=300), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.PrimaryKeyConstraint('id', name='pk_talent'),
        sa.UniqueConstraint('external_ref', name='uq_talent_external_ref')
    )
    op.create_table('consent',
        sa.Column('id', sa.UUID(), nullable=False),
        sa.Column('talent_id', sa.UUID(), nullable=False),
        sa.Column('external_ref', sa.String(length=200), nullable=True),
        sa.Column('release_doc_sha256', sa.String(length=64), nullable=False),
        sa.Column('release_doc_key', sa.String(length=500), nullable=False),
        sa.Column('valid_from', sa.DateTime(timezone=True), nullable=False),
        sa.Column('valid_until', sa.DateTime(timezone=True), nullable=False),
        sa.Column('scope', JSONB, nullable=False),
        sa.Column('synthetic_likeness', sa.Boolean(), nullable=False),
        sa.Column('ai_training', sa.Boolean(), nullable=False),
        sa.Column('minor', sa.Boolean(), nullable=False),
        sa.Column('guardian', sa.String(length=300), nullable=True),
        sa.Column('signed_by', sa.String(length=300), nullable=True),
        sa.Column('notes', sa.Text(), nullable=True),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('manifest_sha256', sa.String(length=64), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.CheckConstraint("release_doc_sha256 ~ '^[0-9a-f]{64}$'", name='ck_consent_release_doc_sha256_hex'),
        sa.CheckConstraint("status IN ('active','revoked','expired')", name='ck_consent_status'),
        sa.ForeignKeyConstraint(['talent_id'], ['talent.id'], name='fk_consent_talent_id_talent'),
        sa.PrimaryKeyConstraint('id', name='pk_consent'),
        sa.UniqueConstraint('external_ref', name='uq_consent_external_ref')
    )
    op.create_index('ix_consent_status', 'consent', ['status'])
    op.create_index('ix_consent_talent_id', 'consent', ['talent_id'])
    op.create_index('ix_consent_valid_until', 'consent', ['valid_until'])
    op.create_table('generation',
        sa.Column('id', sa.UUID(), nullable=False),
        sa.Column('request_id', sa.UUID(), nullable=True),
        sa.Column('variant', sa.Integer(), nullable=False),
        sa.Column('attempt', sa.Integer(), nullable=False),
        sa.Column('seed', sa.BigInteger(), nullable=False),
        sa.Column('engine', sa.String(length=100), nullable=False),
        sa.Column('engine_version', sa.String(length=100), nullable=False),
        sa.Column('model_hashes', JSONB, nullable=False),
        sa.Column('params', JSONB, nullable=False),
        sa.Column('device', sa.String(length=100), nullable=False),
        sa.Column('timings', JSONB, nullable=False),
        sa.Column('licence_id', sa.String(length=200), nullable=True),
        sa.Column('passed', sa.Boolean(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.ForeignKeyConstraint(['request_id'], ['asset_request.id'], name='fk_generation_request_id_asset_request'),
        sa.PrimaryKeyConstraint('id', name='pk_generation')
    )
    op.create_index('ix_generation_request_id', 'generation', ['request_id'])
    op.create_table('asset',
        sa.Column('id', sa.UUID(), nullable=False),
        sa.Column('request_id', sa.UUID(), nullable=True),
        sa.Column('generation_id', sa.UUID(), nullable=True),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('object_key', sa.String(length=500), nullable=False),
        sa.Column('media_type', sa.String(length=100), nullable=False),
        sa.Column('width', sa.Integer(), nullable=False),
        sa.Column('height', sa.Integer(), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('status_reason', sa.Text(), nullable=True),
        sa.Column('use', JSONB, nullable=False),
        sa.Column('manifest_label', sa.String(length=300), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.CheckConstraint("sha256 ~ '^[0-9a-f]{64}$'", name='ck_asset_sha256_hex'),
        sa.CheckConstraint("status IN ('candidate','approved','rejected','published','quarantined')", name='ck_asset_status'),
        sa.ForeignKeyConstraint(['generation_id'], ['generation.id'], name='fk_asset_generation_id_generation'),
        sa.ForeignKeyConstraint(['request_id'], ['asset_request.id'], name='fk_asset_request_id_asset_request'),
        sa.PrimaryKeyConstraint('id', name='pk_asset'),
        sa.UniqueConstraint('sha256', name='uq_asset_sha256')
    )
    op.create_index('ix_asset_request_id', 'asset', ['request_id'])
    op.create_index('ix_asset_status', 'asset', ['status'])
    op.create_table('consent_event',
        sa.Column('id', sa.UUID(), nullable=False),
        sa.Column('consent_id', sa.UUID(), nullable=False),
        sa.Column('kind', sa.String(length=40), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.Column('actor', sa.String(length=200), nullable=False),
        sa.Column('reason', sa.Text(), nullable=True),
        sa.Column('data', JSONB, nullable=False),
        sa.ForeignKeyConstraint(['consent_id'], ['consent.id'], name='fk_consent_event_consent_id_consent'),
        sa.PrimaryKeyConstraint('id', name='pk_consent_event')
    )
    op.create_index('ix_consent_event_consent_id', 'consent_event', ['consent_id'])
    op.create_table('reference_portrait',
        sa.Column('id', sa.UUID(), nullable=False),
        sa.Column('talent_id', sa.UUID(), nullable=False),
        sa.Column('consent_id', sa.UUID(), nullable=False),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('object_key', sa.String(length=500), nullable=False),
        sa.Column('media_type', sa.String(length=100), nullable=False),
        sa.Column('width', sa.Integer(), nullable=False),
        sa.Column('height', sa.Integer(), nullable=False),
        sa.Column('source_name', sa.String(length=500), nullable=True),
        sa.Column('quality', JSONB, nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.CheckConstraint("sha256 ~ '^[0-9a-f]{64}$'", name='ck_reference_portrait_sha256_hex'),
        sa.ForeignKeyConstraint(['consent_id'], ['consent.id'], name='fk_reference_portrait_consent_id_consent'),
        sa.ForeignKeyConstraint(['talent_id'], ['talent.id'], name='fk_reference_portrait_talent_id_talent'),
        sa.PrimaryKeyConstraint('id', name='pk_reference_portrait'),
        sa.UniqueConstraint('sha256', name='uq_reference_portrait_sha256')
    )
    op.create_index('ix_reference_portrait_consent_id', 'reference_portrait', ['consent_id'])
    op.create_index('ix_reference_portrait_talent_id', 'reference_portrait', ['talent_id'])
    op.create_table('face',
        sa.Column('id', sa.UUID(), nullable=False),
        sa.Column('reference_portrait_id', sa.UUID(), nullable=True),
        sa.Column('asset_id', sa.UUID(), nullable=True),
        sa.Column('face_index', sa.Integer(), nullable=False),
        sa.Column('encoder', sa.String(length=100), nullable=False),
        sa.Column('encoder_version', sa.String(length=100), nullable=False),
        sa.Column('dim', sa.Integer(), nullable=False),
        sa.Column('embedding', Vector(), nullable=False),
        sa.Column('box', JSONB, nullable=False),
        sa.Column('landmarks', JSONB, nullable=False),
        sa.Column('quality', JSONB, nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.CheckConstraint('(reference_portrait_id IS NULL) <> (asset_id IS NULL)', name='ck_face_one_owner'),
        sa.CheckConstraint('vector_dims(embedding) = dim', name='ck_face_dim_matches'),
        sa.ForeignKeyConstraint(['asset_id'], ['asset.id'], name='fk_face_asset_id_asset'),
        sa.ForeignKeyConstraint(['reference_portrait_id'], ['reference_portrait.id'], name='fk_face_reference_portrait_id_reference_portrait'),
        sa.PrimaryKeyConstraint('id', name='pk_face')
    )
    op.create_index('ix_face_asset_id', 'face', ['asset_id'])
    op.create_index('ix_face_encoder', 'face', ['encoder'])
    op.create_index('ix_face_reference_portrait_id', 'face', ['reference_portrait_id'])
    op.create_table('lineage',
        sa.Column('id', sa.UUID(), nullable=False),
        sa.Column('asset_id', sa.UUID(), nullable=False),
        sa.Column('reference_portrait_id', sa.UUID(), nullable=True),
        sa.Column('parent_asset_id', sa.UUID(), nullable=True),
        sa.Column('talent_id', sa.UUID(), nullable=True),
        sa.Column('consent_id', sa.UUID(), nullable=True),
        sa.Column('relationship', sa.String(length=30), nullable=False),
        sa.CheckConstraint("relationship IN ('parentOf','componentOf')", name='ck_lineage_relationship'),
        sa.CheckConstraint('reference_portrait_id IS NOT NULL OR parent_asset_id IS NOT NULL', name='ck_lineage_has_source'),
        sa.ForeignKeyConstraint(['asset_id'], ['asset.id'], name='fk_lineage_asset_id_asset'),
        sa.ForeignKeyConstraint(['consent_id'], ['consent.id'], name='fk_lineage_consent_id_consent'),
        sa.ForeignKeyConstraint(['parent_asset_id'], ['asset.id'], name='fk_lineage_parent_asset_id_asset'),
        sa.ForeignKeyConstraint(['reference_portrait_id'], ['reference_portrait.id'], name='fk_lineage_reference_portrait_id_reference_portrait'),
        sa.ForeignKeyConstraint(['talent_id'], ['talent.id'], name='fk_lineage_talent_id_talent'),
        sa.PrimaryKeyConstraint('id', name='pk_lineage')
    )
    op.create_index('ix_lineage_asset_id', 'lineage', ['asset_id'])
    op.create_index('ix_lineage_consent_id', 'lineage', ['consent_id'])
    op.create_index('ix_lineage_reference_portrait_id', 'lineage', ['reference_portrait_id'])
    op.create_index('ix_lineage_talent_id', 'lineage', ['talent_id'])
    op.create_table('score',
        sa.Column('id', sa.UUID(), nullable=False),
        sa.Column('generation_id', sa.UUID(), nullable=False),
        sa.Column('asset_id', sa.UUID(), nullable=True),
        sa.Column('kind', sa.String(length=30), nullable=False),
        sa.Column('talent_id', sa.UUID(), nullable=True),
        sa.Column('face_index', sa.Integer(), nullable=True),
        sa.Column('value', sa.Float(), nullable=False),
        sa.Column('threshold', sa.Float(), nullable=True),
        sa.Column('passed', sa.Boolean(), nullable=False),
        sa.Column('detail', JSONB, nullable=False),
        sa.ForeignKeyConstraint(['asset_id'], ['asset.id'], name='fk_score_asset_id_asset'),
        sa.ForeignKeyConstraint(['generation_id'], ['generation.id'], name='fk_score_generation_id_generation'),
        sa.ForeignKeyConstraint(['talent_id'], ['talent.id'], name='fk_score_talent_id_talent'),
        sa.PrimaryKeyConstraint('id', name='pk_score')
    )
    op.create_index('ix_score_asset_id', 'score', ['asset_id'])
    op.create_index('ix_score_generation_id', 'score', ['generation_id'])
    # ### end Alembic commands ###

    for name, dim, predicate in FACE_HNSW_INDEXES:
        op.execute(
            f"CREATE INDEX {name} ON face USING hnsw ((embedding::vector({dim})) vector_cosine_ops) "
            f"WHERE {predicate}"
        )

    op.execute(
        """
        CREATE FUNCTION castkeep_reject_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION '% is append-only: % is not allowed', TG_TABLE_NAME, TG_OP
                USING ERRCODE = 'restrict_violation',
                      HINT = 'record a new event instead of changing history';
        END
        $$
        """
    )
    for table in APPEND_ONLY:
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION castkeep_reject_change()"
        )
        op.execute(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION castkeep_reject_change()"
        )


def downgrade() -> None:
    for table in (
        "score", "lineage", "face", "reference_portrait", "consent_event", "asset",
        "generation", "consent", "talent", "audit_event", "asset_request",
    ):
        op.drop_table(table)
    op.execute("DROP FUNCTION IF EXISTS castkeep_reject_change()")
    # The vector extension stays: other objects in the database may use it.
