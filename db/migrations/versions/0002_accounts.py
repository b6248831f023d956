"""Accounts for the web API: local users (roles, argon2 password hash, disabled flag) and API
tokens (sha256 only); requests record who submitted them and from which team.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

NOW = sa.text("now()")
ROLES = ("requester", "reviewer", "compliance", "admin")  # castkeep.vocab.Role at this revision


def upgrade() -> None:
    op.create_table(
        "app_user",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("username", sa.String(length=100), nullable=False),
        sa.Column("team", sa.String(length=100), nullable=False),
        sa.Column("roles", sa.ARRAY(sa.String(length=20)), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=True),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.CheckConstraint(
            "roles <@ ARRAY[" + ",".join(f"'{r}'" for r in ROLES) + "]::varchar[]",
            name="ck_app_user_roles_known",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_app_user"),
        sa.UniqueConstraint("username", name="uq_app_user_username"),
    )
    op.create_table(
        "api_token",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.CheckConstraint("token_sha256 ~ '^[0-9a-f]{64}$'", name="ck_api_token_token_sha256_hex"),
        sa.ForeignKeyConstraint(["user_id"], ["app_user.id"], name="fk_api_token_user_id_app_user"),
        sa.PrimaryKeyConstraint("id", name="pk_api_token"),
        sa.UniqueConstraint("token_sha256", name="uq_api_token_token_sha256"),
    )
    op.create_index("ix_api_token_user_id", "api_token", ["user_id"])
    op.add_column("asset_request", sa.Column("submitted_by", sa.String(length=200), nullable=True))
    op.add_column("asset_request", sa.Column("team", sa.String(length=100), nullable=True))
    op.create_index("ix_asset_request_submitted_by", "asset_request", ["submitted_by"])
    op.create_index("ix_asset_request_team", "asset_request", ["team"])


def downgrade() -> None:
    op.drop_index("ix_asset_request_team", table_name="asset_request")
    op.drop_index("ix_asset_request_submitted_by", table_name="asset_request")
    op.drop_column("asset_request", "team")
    op.drop_column("asset_request", "submitted_by")
    op.drop_index("ix_api_token_user_id", table_name="api_token")
    op.drop_table("api_token")
    op.drop_table("app_user")
