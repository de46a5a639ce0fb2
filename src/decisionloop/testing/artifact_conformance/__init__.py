"""A conformance suite for :class:`~decisionloop.backends.artifacts.ArtifactStore` implementations.

In the style of scikit-learn's ``check_estimator``: every check is a plain function taking a
store and raising :class:`AssertionError` (or an unexpected exception) when the store does not
behave like the Protocol says. Run them one by one from your own tests::

    import pytest
    from decisionloop.testing.artifact_conformance import ARTIFACT_STORE_CHECKS

    @pytest.mark.parametrize("check", ARTIFACT_STORE_CHECKS, ids=lambda c: c.__name__)
    def test_my_store(check, tmp_path):
        check(MyStore(...))

or all at once with :func:`check_artifact_store`. The checks work on a store that already holds
other artifacts: each one writes under its own fresh key prefix (and content-addressed blobs are
random), so they can share one store, in any order. They do not clean up after themselves.

Detecting a blob changed behind the store's back needs a way to change it there: the
:data:`TAMPER_CHECKS` take, besides the store, a :data:`Tamper` function
``tamper(key, data)`` that overwrites the stored bytes of ``key`` without going through the
store (e.g. writing the file, or a raw ``put_object``).
"""

from __future__ import annotations

from decisionloop.backends.artifacts.base import ArtifactStore
from decisionloop.testing.artifact_conformance._helpers import (
    ArtifactStoreCheck,
    Tamper,
    TamperCheck,
)
from decisionloop.testing.artifact_conformance.keys import (
    UNSAFE_KEYS,
    check_delete_is_idempotent,
    check_exists_before_and_after,
    check_list_prefixes,
    check_missing_key_raises_not_found,
    check_prefix_of_a_key_is_not_an_artifact,
    check_unsafe_keys_are_invalid,
)
from decisionloop.testing.artifact_conformance.round_trips import (
    check_binary_round_trip,
    check_content_addressed_put_is_idempotent,
    check_download_round_trip,
    check_empty_blob,
    check_get_with_wrong_sha256_raises,
    check_implements_protocol,
    check_overwrite_is_atomic,
    check_put_file_large,
    check_put_file_move,
    check_put_get_round_trip,
    check_put_with_explicit_key,
)
from decisionloop.testing.artifact_conformance.tampering import (
    check_download_detects_tampering,
    check_get_detects_tampering,
)

#: Every check taking only a store, in a sensible order.
ARTIFACT_STORE_CHECKS: list[ArtifactStoreCheck] = [
    check_implements_protocol,
    check_put_get_round_trip,
    check_content_addressed_put_is_idempotent,
    check_put_with_explicit_key,
    check_put_file_large,
    check_put_file_move,
    check_get_with_wrong_sha256_raises,
    check_missing_key_raises_not_found,
    check_prefix_of_a_key_is_not_an_artifact,
    check_exists_before_and_after,
    check_delete_is_idempotent,
    check_list_prefixes,
    check_unsafe_keys_are_invalid,
    check_download_round_trip,
    check_overwrite_is_atomic,
    check_binary_round_trip,
    check_empty_blob,
]

#: Checks that also need a :data:`Tamper` function for the store.
TAMPER_CHECKS: list[TamperCheck] = [
    check_get_detects_tampering,
    check_download_detects_tampering,
]


def check_artifact_store(store: ArtifactStore, tamper: Tamper | None = None) -> None:
    """Run every check against ``store`` (the tamper checks only when ``tamper`` is given)."""
    for check in ARTIFACT_STORE_CHECKS:
        check(store)
    if tamper is not None:
        for tamper_check in TAMPER_CHECKS:
            tamper_check(store, tamper)


__all__ = [
    "ARTIFACT_STORE_CHECKS",
    "TAMPER_CHECKS",
    "UNSAFE_KEYS",
    "ArtifactStoreCheck",
    "Tamper",
    "TamperCheck",
    "check_artifact_store",
    "check_binary_round_trip",
    "check_content_addressed_put_is_idempotent",
    "check_delete_is_idempotent",
    "check_download_detects_tampering",
    "check_download_round_trip",
    "check_empty_blob",
    "check_exists_before_and_after",
    "check_get_detects_tampering",
    "check_get_with_wrong_sha256_raises",
    "check_implements_protocol",
    "check_list_prefixes",
    "check_missing_key_raises_not_found",
    "check_overwrite_is_atomic",
    "check_prefix_of_a_key_is_not_an_artifact",
    "check_put_file_large",
    "check_put_file_move",
    "check_put_get_round_trip",
    "check_put_with_explicit_key",
    "check_unsafe_keys_are_invalid",
]
