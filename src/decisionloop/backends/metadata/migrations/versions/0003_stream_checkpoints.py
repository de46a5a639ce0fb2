"""Stream checkpoints: where each source (a stream and consumer group) resumes, per partition;
and the snapshot each batch made, so the current snapshot is the last one made (re-ingesting
older content makes its snapshot current again).

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

Timestamp = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "stream_checkpoints",
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("partition", sa.Text, nullable=False),
        sa.Column("position", sa.Text, nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("source", "partition", name="pk_stream_checkpoints"),
    )
    with op.batch_alter_table("batches") as table:
        table.add_column(sa.Column("snapshot_id", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("batches") as table:
        table.drop_column("snapshot_id")
    op.drop_table("stream_checkpoints")
