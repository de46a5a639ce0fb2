"""The feature repository: feature store definitions with every applied version, and the
materializations of feature views (their event-time windows and watermarks).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

Timestamp = sa.DateTime(timezone=True)
Json = sa.JSON().with_variant(JSONB(), "postgresql")
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "feature_names",
        sa.Column("kind", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("created_at", Timestamp, nullable=False),
    )
    op.create_table(
        "feature_definitions",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("version", sa.String(128), nullable=False),
        sa.Column("spec", Json, nullable=False),
        sa.Column("applied_at", Timestamp, nullable=False),
        sa.Column("applied_by", sa.String(100), nullable=False),
        sa.Column("removed_at", Timestamp, nullable=True),
        sa.ForeignKeyConstraint(["kind", "name"], ["feature_names.kind", "feature_names.name"]),
    )
    op.create_index(
        "ix_feature_definitions_kind_name_id", "feature_definitions", ["kind", "name", "id"]
    )
    op.create_table(
        "feature_materializations",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("view", sa.String(200), nullable=False),
        sa.Column("view_version", sa.String(128), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("window_start", Timestamp, nullable=True),
        sa.Column("window_end", Timestamp, nullable=False),
        sa.Column("watermark", Timestamp, nullable=True),
        sa.Column("rows_read", sa.BigInteger, nullable=False),
        sa.Column("rows_written", sa.BigInteger, nullable=False),
        sa.Column("store_url", sa.Text, nullable=False),
        sa.Column("started_at", Timestamp, nullable=False),
        sa.Column("finished_at", Timestamp, nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("snapshot_id", sa.String(32), nullable=True),
    )
    op.create_index(
        "ix_feature_materializations_view_id", "feature_materializations", ["view", "id"]
    )


def downgrade() -> None:
    op.drop_index("ix_feature_materializations_view_id", "feature_materializations")
    op.drop_table("feature_materializations")
    op.drop_index("ix_feature_definitions_kind_name_id", "feature_definitions")
    op.drop_table("feature_definitions")
    op.drop_table("feature_names")
