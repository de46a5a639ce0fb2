"""Tables of the metadata store (SQLAlchemy Core). Changes go through an Alembic migration."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

metadata = sa.MetaData()

Json = sa.JSON().with_variant(JSONB(), "postgresql")
Timestamp = sa.DateTime(timezone=True)
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

datasets = sa.Table(
    "datasets",
    metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("created_at", Timestamp, nullable=False),
)

snapshots = sa.Table(
    "snapshots",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("dataset", sa.String(100), sa.ForeignKey("datasets.name"), nullable=False),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("row_count", sa.BigInteger, nullable=False),
    sa.Column("columns", Json, nullable=False),
    sa.Column("artifact_key", sa.String(512), nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("parent_id", sa.String(32), nullable=True),
    sa.Column("batches", Json, nullable=False, server_default="[]"),
    sa.UniqueConstraint("dataset", "content_hash", name="uq_snapshots_dataset_hash"),
)

batches = sa.Table(
    "batches",
    metadata,
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
    sa.Column("snapshot_id", sa.String(32), nullable=True),
    sa.Index("ix_batches_dataset_origin", "dataset", "origin"),
)

quarantine = sa.Table(
    "quarantine",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
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
    sa.Index("ix_quarantine_dataset_status", "dataset", "status"),
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("model_name", sa.String(100), nullable=False, index=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("params", Json, nullable=False),
    sa.Column("metrics", Json, nullable=False),
    sa.Column("tags", Json, nullable=False),
    sa.Column("snapshot_id", sa.String(32), sa.ForeignKey("snapshots.id"), nullable=True),
    sa.Column("code_version", sa.String(64), nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("started_at", Timestamp, nullable=False),
    sa.Column("ended_at", Timestamp, nullable=True),
    sa.Column("parent_run_id", sa.String(32), nullable=True, index=True),
    sa.Column("environment", Json, nullable=True),
    sa.Column("feature_versions", Json, nullable=True),
    sa.Index("ix_runs_status", "status"),
)

#: every logged value of a run's metrics, per step (the run's ``metrics`` keeps the last)
run_metrics = sa.Table(
    "run_metrics",
    metadata,
    sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id"), nullable=False),
    sa.Column("key", sa.String(250), nullable=False),
    sa.Column("step", sa.BigInteger, nullable=False),
    sa.Column("value", sa.Float, nullable=False),
    sa.Column("timestamp", Timestamp, nullable=False),
    sa.PrimaryKeyConstraint("run_id", "key", "step", name="pk_run_metrics"),
)

registered_models = sa.Table(
    "registered_models",
    metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("created_at", Timestamp, nullable=False),
)

model_versions = sa.Table(
    "model_versions",
    metadata,
    sa.Column(
        "model_name", sa.String(100), sa.ForeignKey("registered_models.name"), primary_key=True
    ),
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id"), nullable=True),
    sa.Column("artifact_key", sa.String(512), nullable=False),
    sa.Column("artifact_sha256", sa.String(64), nullable=False),
    sa.Column("signature", Json, nullable=False),
    sa.Column("metrics", Json, nullable=False),
    sa.Column("params", Json, nullable=False),
    sa.Column("snapshot_hash", sa.String(64), nullable=True),
    sa.Column("code_version", sa.String(64), nullable=True),
    sa.Column("gate_passed", sa.Boolean, nullable=False),
    sa.Column("gate_report", Json, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("status", sa.String(16), nullable=False, server_default="candidate"),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Index("ix_model_versions_status", "status", "model_name"),
)

#: a version's metrics as rows, so searches like ``auc>=0.8`` run in SQL on an index
version_metrics = sa.Table(
    "version_metrics",
    metadata,
    sa.Column("model_name", sa.String(100), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("key", sa.String(250), nullable=False),
    sa.Column("value", sa.Float, nullable=False),
    sa.PrimaryKeyConstraint("model_name", "version", "key", name="pk_version_metrics"),
    sa.ForeignKeyConstraint(
        ["model_name", "version"], ["model_versions.model_name", "model_versions.version"]
    ),
    sa.Index("ix_version_metrics_key_value", "key", "value"),
)

model_tags = sa.Table(
    "model_tags",
    metadata,
    sa.Column("model_name", sa.String(100), sa.ForeignKey("registered_models.name")),
    sa.Column("key", sa.String(250), nullable=False),
    sa.Column("value", sa.String(5000), nullable=False),
    sa.PrimaryKeyConstraint("model_name", "key", name="pk_model_tags"),
    sa.Index("ix_model_tags_key_value", "key", "value"),
)

version_tags = sa.Table(
    "version_tags",
    metadata,
    sa.Column("model_name", sa.String(100), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("key", sa.String(250), nullable=False),
    sa.Column("value", sa.String(5000), nullable=False),
    sa.PrimaryKeyConstraint("model_name", "version", "key", name="pk_version_tags"),
    sa.ForeignKeyConstraint(
        ["model_name", "version"], ["model_versions.model_name", "model_versions.version"]
    ),
    sa.Index("ix_version_tags_key_value", "key", "value"),
)

#: every lifecycle move of a version, with who, when and why
version_status_history = sa.Table(
    "version_status_history",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("model_name", sa.String(100), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("from_status", sa.String(16), nullable=True),
    sa.Column("to_status", sa.String(16), nullable=False),
    sa.Column("actor", sa.String(100), nullable=False),
    sa.Column("at", Timestamp, nullable=False),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Index("ix_version_status_history_version", "model_name", "version"),
)

aliases = sa.Table(
    "model_aliases",
    metadata,
    sa.Column("model_name", sa.String(100), primary_key=True),
    sa.Column("alias", sa.String(50), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
    sa.ForeignKeyConstraint(
        ["model_name", "version"], ["model_versions.model_name", "model_versions.version"]
    ),
)

#: every move of an alias (``version`` NULL: deleted): "which version was @champion on date X"
alias_history = sa.Table(
    "alias_history",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("model_name", sa.String(100), nullable=False),
    sa.Column("alias", sa.String(50), nullable=False),
    sa.Column("version", sa.Integer, nullable=True),
    sa.Column("previous_version", sa.Integer, nullable=True),
    sa.Column("actor", sa.String(100), nullable=False),
    sa.Column("at", Timestamp, nullable=False),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Index("ix_alias_history_alias_at", "model_name", "alias", "at"),
)

deployments = sa.Table(
    "deployments",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("environment", sa.String(50), nullable=False),
    sa.Column("model_name", sa.String(100), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("strategy", sa.String(20), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.ForeignKeyConstraint(
        ["model_name", "version"], ["model_versions.model_name", "model_versions.version"]
    ),
)

#: where a stream source resumes: per source (stream and consumer group) and partition (shard),
#: the position of the last acknowledged record
stream_checkpoints = sa.Table(
    "stream_checkpoints",
    metadata,
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("partition", sa.Text, nullable=False),
    sa.Column("position", sa.Text, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
    sa.PrimaryKeyConstraint("source", "partition", name="pk_stream_checkpoints"),
)

#: a feature store definition's identity; its row is locked while an apply decides its version
feature_names = sa.Table(
    "feature_names",
    metadata,
    sa.Column("kind", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("created_at", Timestamp, nullable=False),
)

#: every version of a definition ever applied; the newest row per (kind, name) is the current one
feature_definitions = sa.Table(
    "feature_definitions",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("version", sa.String(128), nullable=False),
    sa.Column("spec", Json, nullable=False),
    sa.Column("applied_at", Timestamp, nullable=False),
    sa.Column("applied_by", sa.String(100), nullable=False),
    sa.Column("removed_at", Timestamp, nullable=True),
    sa.ForeignKeyConstraint(["kind", "name"], ["feature_names.kind", "feature_names.name"]),
    sa.Index("ix_feature_definitions_kind_name_id", "kind", "name", "id"),
)

#: every materialization of a feature view: its event-time window and the watermark after it
feature_materializations = sa.Table(
    "feature_materializations",
    metadata,
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
    sa.Index("ix_feature_materializations_view_id", "view", "id"),
)

audit_events = sa.Table(
    "audit_events",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("at", Timestamp, nullable=False),
    sa.Column("actor", sa.String(100), nullable=False),
    sa.Column("action", sa.String(50), nullable=False),
    sa.Column("resource", sa.String(300), nullable=False, index=True),
    sa.Column("details", Json, nullable=False),
)
