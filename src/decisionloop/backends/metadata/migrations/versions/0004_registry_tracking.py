"""The registry and experiment tracking at depth: alias history, version lifecycle status (with
its history), descriptions and tags, metrics as indexed rows for search, per-step run metrics,
and runs' parent, environment and feature versions.

Existing aliases get a first history row (at their ``updated_at``) and existing versions' metrics
are copied into ``version_metrics``, so history and search cover data written before 0004.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import math

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

Timestamp = sa.DateTime(timezone=True)
Json = sa.JSON().with_variant(JSONB(), "postgresql")
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_MIGRATION_ACTOR = "migration:0004"


def upgrade() -> None:
    with op.batch_alter_table("runs") as table:
        table.add_column(sa.Column("parent_run_id", sa.String(32), nullable=True))
        table.add_column(sa.Column("environment", Json, nullable=True))
        table.add_column(sa.Column("feature_versions", Json, nullable=True))
    op.create_index("ix_runs_parent_run_id", "runs", ["parent_run_id"])
    op.create_index("ix_runs_status", "runs", ["status"])
    with op.batch_alter_table("model_versions") as table:
        table.add_column(
            sa.Column("status", sa.String(16), nullable=False, server_default="candidate")
        )
        table.add_column(sa.Column("description", sa.Text, nullable=False, server_default=""))
    op.create_index("ix_model_versions_status", "model_versions", ["status", "model_name"])

    op.create_table(
        "run_metrics",
        sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id"), nullable=False),
        sa.Column("key", sa.String(250), nullable=False),
        sa.Column("step", sa.BigInteger, nullable=False),
        sa.Column("value", sa.Float, nullable=False),
        sa.Column("timestamp", Timestamp, nullable=False),
        sa.PrimaryKeyConstraint("run_id", "key", "step", name="pk_run_metrics"),
    )
    version_metrics = op.create_table(
        "version_metrics",
        sa.Column("model_name", sa.String(100), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("key", sa.String(250), nullable=False),
        sa.Column("value", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("model_name", "version", "key", name="pk_version_metrics"),
        sa.ForeignKeyConstraint(
            ["model_name", "version"], ["model_versions.model_name", "model_versions.version"]
        ),
    )
    op.create_index("ix_version_metrics_key_value", "version_metrics", ["key", "value"])
    op.create_table(
        "model_tags",
        sa.Column("model_name", sa.String(100), sa.ForeignKey("registered_models.name")),
        sa.Column("key", sa.String(250), nullable=False),
        sa.Column("value", sa.String(5000), nullable=False),
        sa.PrimaryKeyConstraint("model_name", "key", name="pk_model_tags"),
    )
    op.create_index("ix_model_tags_key_value", "model_tags", ["key", "value"])
    op.create_table(
        "version_tags",
        sa.Column("model_name", sa.String(100), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("key", sa.String(250), nullable=False),
        sa.Column("value", sa.String(5000), nullable=False),
        sa.PrimaryKeyConstraint("model_name", "version", "key", name="pk_version_tags"),
        sa.ForeignKeyConstraint(
            ["model_name", "version"], ["model_versions.model_name", "model_versions.version"]
        ),
    )
    op.create_index("ix_version_tags_key_value", "version_tags", ["key", "value"])
    op.create_table(
        "version_status_history",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("model_name", sa.String(100), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("from_status", sa.String(16), nullable=True),
        sa.Column("to_status", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("at", Timestamp, nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
    )
    op.create_index(
        "ix_version_status_history_version", "version_status_history", ["model_name", "version"]
    )
    alias_history = op.create_table(
        "alias_history",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("model_name", sa.String(100), nullable=False),
        sa.Column("alias", sa.String(50), nullable=False),
        sa.Column("version", sa.Integer, nullable=True),
        sa.Column("previous_version", sa.Integer, nullable=True),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("at", Timestamp, nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
    )
    op.create_index("ix_alias_history_alias_at", "alias_history", ["model_name", "alias", "at"])
    _backfill(version_metrics, alias_history)


def _backfill(version_metrics: sa.Table, alias_history: sa.Table) -> None:
    conn = op.get_bind()
    versions = sa.table(
        "model_versions", sa.column("model_name"), sa.column("version"), sa.column("metrics", Json)
    )
    metric_rows = [
        {"model_name": row.model_name, "version": row.version, "key": key, "value": float(value)}
        for row in conn.execute(sa.select(versions))
        for key, value in (row.metrics or {}).items()
        if isinstance(value, int | float) and math.isfinite(value)
    ]
    if metric_rows:
        conn.execute(version_metrics.insert(), metric_rows)
    aliases = sa.table(
        "model_aliases",
        sa.column("model_name"),
        sa.column("alias"),
        sa.column("version"),
        sa.column("updated_at", Timestamp),
    )
    alias_rows = [
        {
            "model_name": row.model_name,
            "alias": row.alias,
            "version": row.version,
            "previous_version": None,
            "actor": _MIGRATION_ACTOR,
            "at": row.updated_at,
            "reason": "set before alias history was kept",
        }
        for row in conn.execute(sa.select(aliases))
    ]
    if alias_rows:
        conn.execute(alias_history.insert(), alias_rows)


def downgrade() -> None:
    for name in (
        "alias_history",
        "version_status_history",
        "version_tags",
        "model_tags",
        "version_metrics",
        "run_metrics",
    ):
        op.drop_table(name)
    op.drop_index("ix_model_versions_status", "model_versions")
    with op.batch_alter_table("model_versions") as table:
        table.drop_column("description")
        table.drop_column("status")
    op.drop_index("ix_runs_status", "runs")
    op.drop_index("ix_runs_parent_run_id", "runs")
    with op.batch_alter_table("runs") as table:
        table.drop_column("feature_versions")
        table.drop_column("environment")
        table.drop_column("parent_run_id")
