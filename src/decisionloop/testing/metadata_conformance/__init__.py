"""A conformance suite for :class:`~decisionloop.backends.metadata.base.MetadataStore` stores.

In the style of scikit-learn's ``check_estimator``: every check is a plain function taking a
migrated store and raising :class:`AssertionError` (or an unexpected exception) when the store
does not behave like the Protocol says. Run them one by one from your own tests::

    import pytest
    from decisionloop.testing.metadata_conformance import METADATA_STORE_CHECKS

    @pytest.fixture
    def store(tmp_path):
        store = MyStore(...)
        store.migrate()
        yield store
        store.close()

    @pytest.mark.parametrize("check", METADATA_STORE_CHECKS, ids=lambda c: c.__name__)
    def test_my_store(check, store):
        check(store)

or all at once with :func:`check_metadata_store`. Each check is meant for a freshly migrated,
empty store, but works on one that already holds data: it uses its own fresh data set, model
and environment names, and compares the audit trail against a mark taken before it writes. It
does need the store to itself while it runs (no other writers).

The audit trail is part of the contract: every write appends exactly one event, in the same
transaction, with the action and resource spelled as in :data:`AUDIT_ACTIONS`.
"""

from __future__ import annotations

from decisionloop.backends.metadata.base import MetadataStore
from decisionloop.testing.metadata_conformance._helpers import (
    RICH_JSON,
    RICH_METRICS,
    MetadataStoreCheck,
)
from decisionloop.testing.metadata_conformance.aliases import (
    check_champion_requires_passed_gate,
    check_delete_alias,
    check_set_alias_moves_and_audits_previous,
)
from decisionloop.testing.metadata_conformance.audit import (
    AUDIT_ACTIONS,
    check_audit_append_list_count,
    check_every_write_is_audited_once,
)
from decisionloop.testing.metadata_conformance.catalog import (
    check_search_models,
    check_search_versions,
    check_tags_and_descriptions,
)
from decisionloop.testing.metadata_conformance.checkpoints import (
    check_checkpoints_set_get,
    check_checkpoints_write_is_all_or_nothing,
)
from decisionloop.testing.metadata_conformance.datasets import (
    check_snapshot_add_get_list,
    check_snapshot_list_newest_first,
    check_snapshot_same_hash_is_deduplicated,
)
from decisionloop.testing.metadata_conformance.deployments import (
    check_deployments_replace_previous_active,
)
from decisionloop.testing.metadata_conformance.features import (
    check_feature_apply_classifies_changes,
    check_feature_get_definition_not_found,
    check_feature_history_keeps_every_version,
    check_feature_list_filters_and_sort,
    check_feature_remove_and_reapply,
    check_last_materialization_per_view_and_version,
    check_list_materializations_order_and_limit,
    check_materialization_round_trip,
)
from decisionloop.testing.metadata_conformance.lifecycle import (
    check_alias_at_answers_for_any_time,
    check_alias_history_records_every_move,
    check_version_status_transitions,
)
from decisionloop.testing.metadata_conformance.models import (
    check_get_version_and_alias,
    check_list_models,
    check_model_version_round_trip,
    check_model_versions_numbered_per_model,
    check_unknown_model_version_alias_not_found,
)
from decisionloop.testing.metadata_conformance.runs import (
    check_run_finish_twice_conflicts,
    check_run_lifecycle,
    check_run_list_and_not_found,
)
from decisionloop.testing.metadata_conformance.store import (
    check_implements_protocol,
    check_migrate_is_idempotent,
)
from decisionloop.testing.metadata_conformance.tracking import (
    check_run_list_filters_and_compare,
    check_run_log_params_metrics_and_tags,
    check_run_records_environment_features_and_parent,
)

#: Every check, in a sensible order; each one needs only a migrated store.
METADATA_STORE_CHECKS: list[MetadataStoreCheck] = [
    check_implements_protocol,
    check_migrate_is_idempotent,
    check_snapshot_add_get_list,
    check_snapshot_same_hash_is_deduplicated,
    check_snapshot_list_newest_first,
    check_run_lifecycle,
    check_run_finish_twice_conflicts,
    check_run_list_and_not_found,
    check_run_records_environment_features_and_parent,
    check_run_log_params_metrics_and_tags,
    check_run_list_filters_and_compare,
    check_model_versions_numbered_per_model,
    check_model_version_round_trip,
    check_list_models,
    check_get_version_and_alias,
    check_unknown_model_version_alias_not_found,
    check_set_alias_moves_and_audits_previous,
    check_champion_requires_passed_gate,
    check_delete_alias,
    check_alias_history_records_every_move,
    check_alias_at_answers_for_any_time,
    check_version_status_transitions,
    check_tags_and_descriptions,
    check_search_versions,
    check_search_models,
    check_deployments_replace_previous_active,
    check_audit_append_list_count,
    check_every_write_is_audited_once,
    check_checkpoints_set_get,
    check_checkpoints_write_is_all_or_nothing,
    check_feature_apply_classifies_changes,
    check_feature_history_keeps_every_version,
    check_feature_remove_and_reapply,
    check_feature_list_filters_and_sort,
    check_feature_get_definition_not_found,
    check_materialization_round_trip,
    check_last_materialization_per_view_and_version,
    check_list_materializations_order_and_limit,
]


def check_metadata_store(store: MetadataStore) -> None:
    """Run every check against ``store`` (migrated; it may already hold data)."""
    for check in METADATA_STORE_CHECKS:
        check(store)


__all__ = [
    "AUDIT_ACTIONS",
    "METADATA_STORE_CHECKS",
    "RICH_JSON",
    "RICH_METRICS",
    "MetadataStoreCheck",
    "check_alias_at_answers_for_any_time",
    "check_alias_history_records_every_move",
    "check_audit_append_list_count",
    "check_champion_requires_passed_gate",
    "check_checkpoints_set_get",
    "check_checkpoints_write_is_all_or_nothing",
    "check_delete_alias",
    "check_deployments_replace_previous_active",
    "check_every_write_is_audited_once",
    "check_feature_apply_classifies_changes",
    "check_feature_get_definition_not_found",
    "check_feature_history_keeps_every_version",
    "check_feature_list_filters_and_sort",
    "check_feature_remove_and_reapply",
    "check_get_version_and_alias",
    "check_implements_protocol",
    "check_last_materialization_per_view_and_version",
    "check_list_materializations_order_and_limit",
    "check_list_models",
    "check_materialization_round_trip",
    "check_metadata_store",
    "check_migrate_is_idempotent",
    "check_model_version_round_trip",
    "check_model_versions_numbered_per_model",
    "check_run_finish_twice_conflicts",
    "check_run_lifecycle",
    "check_run_list_and_not_found",
    "check_run_list_filters_and_compare",
    "check_run_log_params_metrics_and_tags",
    "check_run_records_environment_features_and_parent",
    "check_search_models",
    "check_search_versions",
    "check_set_alias_moves_and_audits_previous",
    "check_snapshot_add_get_list",
    "check_snapshot_list_newest_first",
    "check_snapshot_same_hash_is_deduplicated",
    "check_tags_and_descriptions",
    "check_unknown_model_version_alias_not_found",
    "check_version_status_transitions",
]
