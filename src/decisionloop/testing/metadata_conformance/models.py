"""Conformance checks of the model registry (models and versions) of a metadata store."""

from __future__ import annotations

from datetime import UTC, datetime

from decisionloop.backends.metadata.base import MetadataStore
from decisionloop.backends.metadata.records import (
    ModelVersion,
    NewModelVersion,
)
from decisionloop.errors import NotFound
from decisionloop.testing._assertions import expect as _expect
from decisionloop.testing._assertions import expect_equal as _expect_equal
from decisionloop.testing._assertions import raises as _raises
from decisionloop.testing.metadata_conformance._helpers import (
    _ACTOR,
    RICH_JSON,
    RICH_METRICS,
    _expect_events,
    _expect_same_json,
    _expect_utc,
    _mark,
    _no_new_events,
    _register,
    _start_run,
    _uid,
    _versions,
)


def check_model_versions_numbered_per_model(store: MetadataStore) -> None:
    """Versions count 1, 2, 3 per model, independently for two interleaved models."""
    first, second = f"model-a-{_uid()}", f"model-b-{_uid()}"
    mark = _mark(store)
    order = [first, second, first, first, second, second]
    got = [(model, _register(store, model).version) for model in order]
    _expect_equal(
        got,
        [(first, 1), (second, 1), (first, 2), (first, 3), (second, 2), (second, 3)],
        "(model, version) of interleaved registrations",
    )
    _expect_equal(_versions(store.models.list_versions(first)), [3, 2, 1], "list_versions(a)")
    _expect_equal(_versions(store.models.list_versions(second)), [3, 2, 1], "list_versions(b)")
    _expect_events(
        store,
        mark,
        [("model_version.register", f"model:{m}/{v}") for m, v in got],
        "register()",
    )


def check_model_version_round_trip(store: MetadataStore) -> None:
    """Every field of a registered version comes back exactly; ``created_at`` is aware UTC."""
    model = f"model-{_uid()}"
    run = _start_run(store, model)
    new = NewModelVersion(
        model_name=model,
        artifact_key=f"models/{model}/1/modèle → 東京.ubj",
        artifact_sha256="ab" * 32,
        signature=RICH_JSON,
        metrics=RICH_METRICS,
        params={"max_depth": 6, "eta": 0.05, "objective": "binary:logistic", "grid": RICH_JSON},
        gate_passed=False,
        gate_report={
            "passed": False,
            "gates": [{"metric": "auc", "min": 0.9, "value": 0.8734512345678901, "blocking": True}],
            "note": "ne passe pas → 不合格",
        },
        run_id=run.id,
        snapshot_hash="cd" * 32,
        code_version="v1.2.3+ü",
    )
    start = datetime.now(UTC)
    registered = store.models.register(new, actor=_ACTOR)
    end = datetime.now(UTC)
    for what, version in (
        ("register()", registered),
        ("get_version()", store.models.get_version(model, 1)),
        ("list_versions()[0]", store.models.list_versions(model)[0]),
    ):
        _expect(isinstance(version, ModelVersion), f"{what} returned {version!r}")
        _expect_equal(version.model_name, model, f"{what}.model_name")
        _expect_equal(version.version, 1, f"{what}.version")
        _expect_equal(version.run_id, run.id, f"{what}.run_id")
        _expect_equal(version.artifact_key, new.artifact_key, f"{what}.artifact_key")
        _expect_equal(version.artifact_sha256, new.artifact_sha256, f"{what}.artifact_sha256")
        _expect_same_json(version.signature, new.signature, f"{what}.signature")
        _expect_same_json(version.metrics, new.metrics, f"{what}.metrics")
        _expect_same_json(version.params, new.params, f"{what}.params")
        _expect_equal(version.snapshot_hash, new.snapshot_hash, f"{what}.snapshot_hash")
        _expect_equal(version.code_version, new.code_version, f"{what}.code_version")
        _expect(version.gate_passed is False, f"{what}.gate_passed: {version.gate_passed!r}")
        _expect_same_json(version.gate_report, new.gate_report, f"{what}.gate_report")
        _expect_utc(version.created_at, f"{what}.created_at", near=(start, end))
        _expect_equal(version.aliases, (), f"{what}.aliases")
    _expect_equal(store.models.get_version(model, 1), registered, "get_version() vs register()")
    passed = _register(store, model, gate_passed=True)
    _expect(store.models.get_version(model, 2).gate_passed is True, "gate_passed=True stored")
    _expect_equal(passed.run_id, None, "run_id left out")
    _expect_equal(store.models.get_version(model, 2), passed, "get_version() of a plain version")


def check_list_models(store: MetadataStore) -> None:
    """``list_models`` shows each model once with its latest version and its aliases."""
    first, second = f"model-a-{_uid()}", f"model-b-{_uid()}"
    for _ in range(3):
        _register(store, first)
    _register(store, second)
    store.models.set_alias(first, "champion", 2, actor=_ACTOR)
    store.models.set_alias(first, "challenger", 3, actor=_ACTOR)
    models = [m for m in store.models.list_models() if m.name in (first, second)]
    _expect_equal(sorted(m.name for m in models), [first, second], "models listed (once each)")
    by_name = {m.name: m for m in models}
    _expect_equal(by_name[first].latest_version, 3, "latest_version of a")
    _expect_equal(
        by_name[first].aliases, {"champion": 2, "challenger": 3}, "aliases of a in list_models()"
    )
    _expect_equal(by_name[second].latest_version, 1, "latest_version of b")
    _expect_equal(by_name[second].aliases, {}, "aliases of b in list_models()")
    for model in models:
        _expect_utc(model.created_at, f"created_at of {model.name}")
    _register(store, second)
    again = {m.name: m for m in store.models.list_models()}
    _expect_equal(again[second].latest_version, 2, "latest_version of b after a registration")


def check_get_version_and_alias(store: MetadataStore) -> None:
    """``get_version`` and ``get_by_alias`` find the version; its ``aliases`` name its aliases."""
    model = f"model-{_uid()}"
    versions = [_register(store, model) for _ in range(3)]
    store.models.set_alias(model, "staging", 2, actor=_ACTOR)
    store.models.set_alias(model, "champion", 2, actor=_ACTOR)
    store.models.set_alias(model, "shadow", 3, actor=_ACTOR)
    staged = store.models.get_by_alias(model, "staging")
    _expect_equal(staged.version, 2, "get_by_alias(staging).version")
    _expect_equal(staged.artifact_key, versions[1].artifact_key, "get_by_alias(staging) artifact")
    _expect_equal(sorted(staged.aliases), ["champion", "staging"], "aliases of version 2")
    _expect_equal(store.models.get_by_alias(model, "champion"), staged, "get_by_alias(champion)")
    _expect_equal(store.models.get_version(model, 2), staged, "get_version(2) vs get_by_alias")
    _expect_equal(store.models.get_version(model, 3).aliases, ("shadow",), "aliases of version 3")
    _expect_equal(store.models.get_version(model, 1).aliases, (), "aliases of version 1")
    listed = {v.version: sorted(v.aliases) for v in store.models.list_versions(model)}
    _expect_equal(
        listed, {3: ["shadow"], 2: ["champion", "staging"], 1: []}, "aliases in list_versions()"
    )


def check_unknown_model_version_alias_not_found(store: MetadataStore) -> None:
    """Unknown models, versions and aliases raise :class:`NotFound` and write nothing."""
    model = f"model-{_uid()}"
    unknown = f"model-{_uid()}"
    _register(store, model)
    store.models.set_alias(model, "staging", 1, actor=_ACTOR)
    mark = _mark(store)
    with _raises(NotFound, "get_version(unknown model, 1)"):
        store.models.get_version(unknown, 1)
    with _raises(NotFound, "get_version(model, unknown version)"):
        store.models.get_version(model, 2)
    with _raises(NotFound, "get_by_alias(model, unknown alias)"):
        store.models.get_by_alias(model, "nope")
    with _raises(NotFound, "get_by_alias(unknown model, alias of another model)"):
        store.models.get_by_alias(unknown, "staging")
    with _raises(NotFound, "list_versions(unknown model)"):
        store.models.list_versions(unknown)
    with _raises(NotFound, "set_alias(model, alias, unknown version)"):
        store.models.set_alias(model, "staging", 7, actor=_ACTOR)
    with _raises(NotFound, "set_alias(unknown model, ...)"):
        store.models.set_alias(unknown, "staging", 1, actor=_ACTOR)
    _expect_equal(store.models.get_by_alias(model, "staging").version, 1, "alias after refusal")
    _expect(
        unknown not in {m.name for m in store.models.list_models()},
        "a failed lookup created the model",
    )
    _no_new_events(store, mark, "lookups of unknown models, versions and aliases")
