"""Soft bindings: the watermark key of each signed asset, so a stripped copy can be identified.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "soft_binding",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("asset_id", sa.UUID(), nullable=False),
        sa.Column("alg", sa.String(length=100), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"),
                  nullable=False),
        sa.CheckConstraint("value >= 0", name="ck_soft_binding_value_unsigned"),
        sa.ForeignKeyConstraint(["asset_id"], ["asset.id"], name="fk_soft_binding_asset_id_asset"),
        sa.PrimaryKeyConstraint("id", name="pk_soft_binding"),
        sa.UniqueConstraint("alg", "value", name="uq_soft_binding_alg_value"),
    )
    op.create_index("ix_soft_binding_asset_id", "soft_binding", ["asset_id"])


def downgrade() -> None:
    op.drop_index("ix_soft_binding_asset_id", table_name="soft_binding")
    op.drop_table("soft_binding")
