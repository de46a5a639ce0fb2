"""Ingestion: batches with their validation reports, the quarantine, snapshot manifests.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

Json = sa.JSON().with_variant(JSONB(), "postgresql")
Timestamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("snapshots") as table:
        table.add_column(sa.Column("parent_id", sa.String(32), nullable=True))
        table.add_column(sa.Column("batches", Json, nullable=False, server_default="[]"))
    op.create_table(
        "batches",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("dataset", sa.String(100), sa.ForeignKey("datasets.name"), nullable=False),
        sa.Column("origin", sa.Text, nullable=False),
        sa.Column("verdict", sa.String(8), nullable=False),
        sa.Column("rows_in", sa.BigInteger, nullable=False),
        sa.Column("rows_stored", sa.BigInteger, nullable=False),
        sa.Column("rows_quarantined", sa.BigInteger, nullable=False),
        sa.Column("rows_skipped", sa.BigInteger, nullable=False),
        sa.Column("report", Json, nullable=False),
        sa.Column("artifact_key", sa.String(512), nullable=True),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.Column("created_at", Timestamp, nullable=False),
    )
    op.create_index("ix_batches_dataset_origin", "batches", ["dataset", "origin"])
    op.create_table(
        "quarantine",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("dataset", sa.String(100), nullable=False),
        sa.Column("batch_id", sa.String(32), sa.ForeignKey("batches.id"), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("position", sa.Text, nullable=False),
        sa.Column("reasons", Json, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("resolved_at", Timestamp, nullable=True),
        sa.Column("resolution", sa.Text, nullable=True),
    )
    op.create_index("ix_quarantine_dataset_status", "quarantine", ["dataset", "status"])


def downgrade() -> None:
    op.drop_index("ix_quarantine_dataset_status", "quarantine")
    op.drop_table("quarantine")
    op.drop_index("ix_batches_dataset_origin", "batches")
    op.drop_table("batches")
    with op.batch_alter_table("snapshots") as table:
        table.drop_column("batches")
        table.drop_column("parent_id")
