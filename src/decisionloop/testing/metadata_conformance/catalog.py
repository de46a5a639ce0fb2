"""Conformance checks of descriptions, tags and search in the model catalog."""

from __future__ import annotations

from decisionloop.backends.metadata.base import MetadataStore
from decisionloop.backends.metadata.records import MetricFilter, VersionQuery
from decisionloop.errors import NotFound
from decisionloop.testing._assertions import expect_equal as _expect_equal
from decisionloop.testing._assertions import raises as _raises
from decisionloop.testing.metadata_conformance._helpers import (
    _ACTOR,
    _expect_events,
    _mark,
    _no_new_events,
    _register,
    _uid,
    _versions,
)


def check_tags_and_descriptions(store: MetadataStore) -> None:
    """Tags and descriptions of a model and of its versions are set, replaced, deleted and
    audited; unknown models and versions are NotFound."""
    model = f"model-{_uid()}"
    _register(store, model)
    _register(store, model)
    mark = _mark(store)
    store.catalog.set_description(model, "Churn in 30 days → 東京", actor=_ACTOR)
    store.catalog.set_description(model, "first with tenure bins", version=2, actor=_ACTOR)
    store.catalog.set_tag(model, "team", "growth", actor=_ACTOR)
    store.catalog.set_tag(model, "team", "retention", actor=_ACTOR)
    store.catalog.set_tag(model, "dataset", "telco=v2", version=2, actor=_ACTOR)
    store.catalog.set_tag(model, "reviewed", "", version=1, actor=_ACTOR)
    store.catalog.delete_tag(model, "reviewed", version=1, actor=_ACTOR)
    _expect_events(
        store,
        mark,
        [
            ("description.set", f"model:{model}"),
            ("description.set", f"model:{model}/2"),
            ("tag.set", f"model:{model}"),
            ("tag.set", f"model:{model}"),
            ("tag.set", f"model:{model}/2"),
            ("tag.set", f"model:{model}/1"),
            ("tag.delete", f"model:{model}/1"),
        ],
        "tag and description writes",
    )
    listed = {m.name: m for m in store.models.list_models()}[model]
    _expect_equal(listed.description, "Churn in 30 days → 東京", "model description")
    _expect_equal(listed.tags, {"team": "retention"}, "model tags after a replace")
    second = store.models.get_version(model, 2)
    _expect_equal(
        (second.description, second.tags),
        ("first with tenure bins", {"dataset": "telco=v2"}),
        "version 2 description and tags",
    )
    _expect_equal(store.models.get_version(model, 1).tags, {}, "version 1 tags after delete")
    _expect_equal(
        [v.tags for v in store.models.list_versions(model)],
        [{"dataset": "telco=v2"}, {}],
        "tags in list_versions()",
    )
    untouched = _mark(store)
    store.catalog.delete_tag(model, "absent", actor=_ACTOR)
    with _raises(NotFound, "set_tag() on an unknown model"):
        store.catalog.set_tag(f"model-{_uid()}", "k", "v", actor=_ACTOR)
    with _raises(NotFound, "set_tag() on an unknown version"):
        store.catalog.set_tag(model, "k", "v", version=7, actor=_ACTOR)
    with _raises(NotFound, "set_description() on an unknown version"):
        store.catalog.set_description(model, "x", version=7, actor=_ACTOR)
    _no_new_events(store, untouched, "no-op and refused catalog writes")


def check_search_versions(store: MetadataStore) -> None:
    """``search_versions`` matches name, tags, status and metric thresholds together."""
    model, other = f"model-{_uid()}", f"model-{_uid()}"
    team = f"team-{_uid()}"
    _register(store, model, metrics={"auc": 0.70, "f1": 0.5})
    _register(store, model, metrics={"auc": 0.80, "f1": 0.6})
    _register(store, model, metrics={"auc": 0.91})
    _register(store, other, metrics={"auc": 0.95})
    for name, version in ((model, 2), (model, 3), (other, 1)):
        store.catalog.set_tag(name, "team", team, version=version, actor=_ACTOR)
    store.lifecycle.set_status(model, 3, "staging", actor=_ACTOR)

    def search(**kwargs: object) -> list[tuple[str, int]]:
        found = store.catalog.search_versions(VersionQuery(**kwargs))  # type: ignore[arg-type]  # keyword pass-through
        return [(v.model_name, v.version) for v in found]

    _expect_equal(search(name=model), [(model, 3), (model, 2), (model, 1)], "by name")
    at_least = (MetricFilter("auc", ">=", 0.8),)
    _expect_equal(search(name=model, metrics=at_least), [(model, 3), (model, 2)], "auc>=0.8")
    above = (MetricFilter("auc", ">", 0.8),)
    _expect_equal(search(name=model, metrics=above), [(model, 3)], "auc>0.8")
    both = (MetricFilter("auc", "<", 0.9), MetricFilter("f1", ">=", 0.6))
    _expect_equal(search(name=model, metrics=both), [(model, 2)], "two metric filters")
    _expect_equal(
        sorted(search(tags={"team": team})),
        sorted([(model, 2), (model, 3), (other, 1)]),
        "by tag across models",
    )
    _expect_equal(search(tags={"team": team}, status="staging"), [(model, 3)], "by tag and status")
    _expect_equal(search(name=model, status="production"), [], "no version in production")
    _expect_equal(search(name=model, limit=1), [(model, 3)], "limit")
    _expect_equal(search(name=model, metrics=(MetricFilter("missing", ">", 0),)), [], "absent")
    found = store.catalog.search_versions(VersionQuery(name=model, tags={"team": team}))
    _expect_equal(_versions(found), [3, 2], "versions found by name and tag")
    _expect_equal(found[0].tags, {"team": team}, "found versions carry their tags")
    _expect_equal(found[0].status, "staging", "found versions carry their status")


def check_search_models(store: MetadataStore) -> None:
    """``search_models`` matches a name prefix (``%`` and ``_`` literally) and tags."""
    stem = f"srch{_uid()}"
    names = [f"{stem}-churn", f"{stem}-chum", f"{stem}_x", f"{stem}%y"]
    for name in names:
        _register(store, name)
    store.catalog.set_tag(names[0], "domain", "retention", actor=_ACTOR)
    store.catalog.set_tag(names[1], "domain", "retention", actor=_ACTOR)
    tier = _uid()
    store.catalog.set_tag(names[1], "tier", tier, actor=_ACTOR)
    _expect_equal(
        [m.name for m in store.catalog.search_models(prefix=f"{stem}-")],
        sorted(names[:2]),
        "by prefix",
    )
    _expect_equal(
        [m.name for m in store.catalog.search_models(prefix=f"{stem}_")], [names[2]], "'_' prefix"
    )
    _expect_equal(
        [m.name for m in store.catalog.search_models(prefix=f"{stem}%")], [names[3]], "'%' prefix"
    )
    retention = store.catalog.search_models(prefix=stem, tags={"domain": "retention"})
    _expect_equal([m.name for m in retention], sorted(names[:2]), "by prefix and tag")
    _expect_equal(retention[0].latest_version, 1, "latest_version of a found model")
    tiered = store.catalog.search_models(tags={"domain": "retention", "tier": tier})
    _expect_equal([m.name for m in tiered], [names[1]], "by two tags")
    _expect_equal(tiered[0].tags, {"domain": "retention", "tier": tier}, "found model's tags")
