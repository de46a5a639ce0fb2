"""Plan and apply: how the project's feature definitions differ from the applied ones, and
recording them (with the online rows of a view whose stored meaning changed dropped)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from decisionloop.features.repo import FeatureRepo, Kind

if TYPE_CHECKING:
    from decisionloop.backends.metadata.records import FeatureDefinition
    from decisionloop.features.store import FeatureStore


@dataclass(frozen=True)
class Change:
    """One definition in a plan: ``add``, ``change``, ``remove`` or ``same``."""

    action: str
    kind: Kind
    name: str
    version: str | None
    previous: str | None
    details: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "kind": self.kind,
            "name": self.name,
            "version": self.version,
            "previous": self.previous,
            "details": self.details,
        }


@dataclass(frozen=True)
class FeaturePlan:
    """What ``apply`` would record (or did): every definition with its action."""

    changes: list[Change]

    @property
    def pending(self) -> list[Change]:
        return [c for c in self.changes if c.action != "same"]

    def to_dict(self) -> dict[str, Any]:
        return {"changes": [c.to_dict() for c in self.changes], "pending": len(self.pending)}


def plan_changes(
    repo: FeatureRepo, applied_definitions: Sequence[FeatureDefinition]
) -> FeaturePlan:
    """Every definition of ``repo`` against the applied ones: add, change, remove or same."""
    applied = {(d.kind, d.name): d for d in applied_definitions}
    changes: list[Change] = []
    seen: set[tuple[str, str]] = set()
    for kind, definition in repo.definitions():
        version = repo.version(kind, definition)
        seen.add((kind, definition.name))
        old = applied.get((kind, definition.name))
        if old is None:
            changes.append(Change("add", kind, definition.name, version, None))
        elif old.version != version:
            details = _diff(old.spec, definition.spec())
            changes.append(Change("change", kind, definition.name, version, old.version, details))
        else:
            changes.append(Change("same", kind, definition.name, version, version))
    for (kind, name), old in sorted(applied.items()):
        if (kind, name) not in seen:
            changes.append(Change("remove", old.kind, name, None, old.version))
    return FeaturePlan(changes)


def apply_changes(store: FeatureStore) -> FeaturePlan:
    """Record the project's definitions in one audited transaction; then drop the online rows
    of each view removed, or changed in what its stored values mean."""
    from decisionloop.backends.metadata.records import NewFeatureDefinition

    repository = store.platform.metadata.features
    repo = store.repo
    plan = plan_changes(repo, repository.list_definitions())
    if not plan.pending:
        return plan
    news = [
        NewFeatureDefinition(
            kind=kind,
            name=definition.name,
            version=repo.version(kind, definition),
            spec=definition.spec(),
        )
        for kind, definition in repo.definitions()
    ]
    removed = [(c.kind, c.name) for c in plan.changes if c.action == "remove"]
    applied = {d.name: d for d in repository.list_definitions("feature_view")}
    repository.apply(news, remove=removed, actor=store.platform.actor)
    for change in plan.pending:
        if change.kind != "feature_view":
            continue
        old = applied.get(change.name)
        view = repo.views.get(change.name)
        stale = change.action == "remove" or (
            change.action == "change"
            and old is not None
            and view is not None
            and _data_version(old.spec) != view.data_version
        )
        if stale:
            store.online_store.drop_view(change.name)
    return plan


def _data_version(spec: Mapping[str, Any]) -> str | None:
    from decisionloop.features.definitions import FeatureView

    try:
        return FeatureView(**spec).data_version
    except (TypeError, ValueError):  # an old or foreign spec: treat as changed
        return None


def _diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    lines = []
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            lines.append(f"{key}: {old.get(key)!r} -> {new.get(key)!r}")
    return lines
