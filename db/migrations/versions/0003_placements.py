"""Publication register and takedowns: where a published asset went live (placement), and the
takedown task a revocation or expiry opens for each placement of a quarantined asset.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

NOW = sa.text("now()")


def upgrade() -> None:
    op.create_table(
        "placement",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("asset_id", sa.UUID(), nullable=False),
        sa.Column("channel", sa.String(length=50), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("territory", sa.String(length=10), nullable=False),
        sa.Column("until", sa.Date(), nullable=True),
        sa.Column("published_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.CheckConstraint("url ~ '^https?://'", name="ck_placement_url_http"),
        sa.ForeignKeyConstraint(["asset_id"], ["asset.id"], name="fk_placement_asset_id_asset"),
        sa.PrimaryKeyConstraint("id", name="pk_placement"),
    )
    op.create_index("ix_placement_asset_id", "placement", ["asset_id"])
    op.create_table(
        "takedown",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("placement_id", sa.UUID(), nullable=False),
        sa.Column("asset_id", sa.UUID(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("opened_by", sa.String(length=200), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.Column("done_by", sa.String(length=200), nullable=True),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.CheckConstraint("status IN ('open','done')", name="ck_takedown_status"),
        sa.ForeignKeyConstraint(["placement_id"], ["placement.id"],
                                name="fk_takedown_placement_id_placement"),
        sa.ForeignKeyConstraint(["asset_id"], ["asset.id"], name="fk_takedown_asset_id_asset"),
        sa.PrimaryKeyConstraint("id", name="pk_takedown"),
        sa.UniqueConstraint("placement_id", name="uq_takedown_placement_id"),
    )
    op.create_index("ix_takedown_asset_id", "takedown", ["asset_id"])
    op.create_index("ix_takedown_status", "takedown", ["status"])


def downgrade() -> None:
    op.drop_index("ix_takedown_status", table_name="takedown")
    op.drop_index("ix_takedown_asset_id", table_name="takedown")
    op.drop_table("takedown")
    op.drop_index("ix_placement_asset_id", table_name="placement")
    op.drop_table("placement")
