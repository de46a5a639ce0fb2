"""Conformance checks of the store as a whole: the Protocol and ``migrate()``."""

from __future__ import annotations

from decisionloop.backends.metadata.base import MetadataStore
from decisionloop.testing._assertions import expect as _expect
from decisionloop.testing._assertions import expect_equal as _expect_equal
from decisionloop.testing.metadata_conformance._helpers import (
    _add_snapshot,
    _hash,
    _mark,
    _no_new_events,
    _register,
    _uid,
)


def check_implements_protocol(store: MetadataStore) -> None:
    """The store is a runtime :class:`MetadataStore` with a non-empty string ``url``."""
    _expect(isinstance(store, MetadataStore), f"{store!r} does not implement MetadataStore")
    _expect(isinstance(store.url, str) and bool(store.url), f"url must be a string: {store.url!r}")


def check_migrate_is_idempotent(store: MetadataStore) -> None:
    """``migrate()`` on a migrated store changes nothing and keeps the data; writes still work."""
    dataset = f"ds-{_uid()}"
    snapshot = _add_snapshot(store, dataset, _hash())
    version = _register(store, f"model-{_uid()}")
    before = _mark(store)
    store.migrate()
    store.migrate()
    _no_new_events(store, before, "migrate() twice")
    _expect_equal(store.datasets.get_snapshot(snapshot.id), snapshot, "snapshot after migrate()")
    _expect_equal(
        store.models.get_version(version.model_name, 1), version, "version after migrate()"
    )
    again = _register(store, version.model_name)
    _expect_equal(again.version, 2, "version registered after migrate()")
