"""The project's feature definitions, read from ``decisionloop.yaml`` (and the Python module it
names), checked for consistency, and resolved into what retrieval needs."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pydantic import ValidationError

from decisionloop.config import PROJECT_FILE
from decisionloop.errors import InvalidConfig, NotFound
from decisionloop.features.definitions import (
    Entity,
    FeatureService,
    FeatureView,
    OnDemandFeatureView,
)

if TYPE_CHECKING:
    from decisionloop.config import Settings
    from decisionloop.data.contract import ColumnType

Kind = Literal["entity", "feature_view", "on_demand_feature_view", "feature_service"]
KINDS: tuple[Kind, ...] = ("entity", "feature_view", "on_demand_feature_view", "feature_service")
_SECTIONS: dict[Kind, tuple[str, type[Any]]] = {
    "entity": ("entities", Entity),
    "feature_view": ("views", FeatureView),
    "on_demand_feature_view": ("on_demand", OnDemandFeatureView),
    "feature_service": ("services", FeatureService),
}
_KIND_OF_CLASS: dict[type[Any], Kind] = {cls: kind for kind, (_, cls) in _SECTIONS.items()}


@dataclass(frozen=True)
class ResolvedService:
    """What serving one feature service takes: the stored features to read per view, the
    on-demand views to run (in order), the request fields, and the output columns in order."""

    name: str
    version: str
    views: list[tuple[FeatureView, tuple[str, ...]]]
    on_demand: list[OnDemandFeatureView]
    outputs: dict[str, ColumnType]
    request: dict[str, ColumnType]
    join_keys: tuple[str, ...]
    #: feature view name -> version, on-demand view name -> version (lineage)
    versions: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class FeatureRepo:
    """Every definition of a project, by kind and name, with its version."""

    entities: dict[str, Entity]
    views: dict[str, FeatureView]
    on_demand: dict[str, OnDemandFeatureView]
    services: dict[str, FeatureService]
    functions: dict[str, Callable[..., Any]]

    def section(self, kind: Kind) -> Mapping[str, Any]:
        """The definitions of one kind, by name."""
        sections: dict[Kind, Mapping[str, Any]] = {
            "entity": self.entities,
            "feature_view": self.views,
            "on_demand_feature_view": self.on_demand,
            "feature_service": self.services,
        }
        return sections[kind]

    def definitions(self) -> list[tuple[Kind, Any]]:
        found: list[tuple[Kind, Any]] = []
        for kind in KINDS:
            section = self.section(kind)
            found.extend((kind, section[name]) for name in sorted(section))
        return found

    def version(self, kind: Kind, definition: Any) -> str:
        if kind == "on_demand_feature_view":
            odfv: OnDemandFeatureView = definition
            return odfv.version_with(self.functions.get(odfv.name))
        version: str = definition.version
        return version

    @property
    def empty(self) -> bool:
        return not (self.entities or self.views or self.on_demand or self.services)

    def view(self, name: str) -> FeatureView:
        if name not in self.views:
            raise NotFound(
                f"no feature view {name!r}",
                hint=f"defined views: {', '.join(sorted(self.views)) or 'none'}",
            )
        return self.views[name]

    def service(self, name: str) -> ResolvedService:
        """Resolve a service into reads, transformations and outputs (checked at load)."""
        if name not in self.services:
            raise NotFound(
                f"no feature service {name!r}",
                hint=f"defined services: {', '.join(sorted(self.services)) or 'none'}; "
                "declare it under features.services",
            )
        return _resolve(self, self.services[name])

    def features_of(self, refs: list[str], name: str = "_adhoc") -> ResolvedService:
        """Resolve a list of ``view`` / ``view:feature`` references as an unnamed service."""
        return _resolve(self, FeatureService(name=name, features=refs))


def load_repo(settings: Settings) -> FeatureRepo:
    """The project's definitions: the ``features`` section plus the module it names; every
    reference is checked (entities, sources, views, services, functions)."""
    spec = settings.features
    found: dict[Kind, dict[str, Any]] = {kind: {} for kind in KINDS}
    for kind, (section, cls) in _SECTIONS.items():
        for name, body in getattr(spec, section).items():
            key = f"features.{section}.{name}"
            if not isinstance(body, dict):
                raise InvalidConfig(
                    f"expected a mapping, found {type(body).__name__}",
                    file=_file(settings),
                    key=key,
                    hint="each definition is a YAML mapping of its settings",
                )
            found[kind][name] = _build(cls, {"name": name, **body}, settings, key)
    if spec.module is not None:
        for definition in _module_definitions(spec.module, settings):
            kind = _KIND_OF_CLASS[type(definition)]
            if definition.name in found[kind]:
                raise InvalidConfig(
                    f"{kind} {definition.name!r} is defined twice (in the file and in "
                    f"{spec.module})",
                    file=_file(settings),
                    key="features.module",
                    hint="define each entity, view and service once",
                )
            found[kind][definition.name] = definition
    repo = FeatureRepo(
        entities=found["entity"],
        views=found["feature_view"],
        on_demand=found["on_demand_feature_view"],
        services=found["feature_service"],
        functions={},
    )
    functions = _check(repo, settings)
    return FeatureRepo(
        entities=repo.entities,
        views=repo.views,
        on_demand=repo.on_demand,
        services=repo.services,
        functions=functions,
    )


def _file(settings: Settings) -> str:
    return str(settings.project_dir / PROJECT_FILE)


def _build(cls: type[Any], body: dict[str, Any], settings: Settings, key: str) -> Any:
    try:
        return cls(**body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise InvalidConfig(
            f"{first['msg']}",
            file=_file(settings),
            key=f"{key}.{where}" if where else key,
            hint="see docs/features.md for every key of a definition",
        ) from exc


def _module_definitions(module_name: str, settings: Settings) -> list[Any]:
    from decisionloop.project_code import load_module

    module = load_module(
        module_name, settings.project_dir, key="features.module", what="feature definitions"
    )
    definitions = getattr(module, "definitions", None)
    if not isinstance(definitions, list | tuple):
        raise InvalidConfig(
            f"{module_name} has no `definitions` list",
            file=_file(settings),
            key="features.module",
            hint="end the module with `definitions = [customer, customer_profile, ...]`",
        )
    for item in definitions:
        if type(item) not in _KIND_OF_CLASS:
            raise InvalidConfig(
                f"{module_name}: `definitions` holds a {type(item).__name__}",
                file=_file(settings),
                key="features.module",
                hint="list only Entity, FeatureView, OnDemandFeatureView and FeatureService",
            )
    return list(definitions)


def _check(repo: FeatureRepo, settings: Settings) -> dict[str, Callable[..., Any]]:
    """Every reference resolves; returns the on-demand views' functions."""

    def fail(key: str, message: str, hint: str) -> InvalidConfig:
        return InvalidConfig(message, file=_file(settings), key=key, hint=hint)

    declared = {*settings.datasets, *([settings.name] if settings.data is not None else [])}
    for name, view in repo.views.items():
        key = f"features.views.{name}"
        if view.entity not in repo.entities:
            raise fail(
                f"{key}.entity",
                f"feature view {name!r} names an unknown entity {view.entity!r}",
                f"declare it under features.entities (known: {', '.join(repo.entities) or 'none'})",
            )
        if view.source not in declared:
            raise fail(
                f"{key}.source",
                f"feature view {name!r} reads an undeclared data set {view.source!r}",
                f"declare it under `datasets:` (declared: {', '.join(sorted(declared)) or 'none'})",
            )
        join_key = repo.entities[view.entity].join_key
        for column in (join_key, view.timestamp, view.created_timestamp):
            if column is not None and column in view.features:
                raise fail(
                    f"{key}.features",
                    f"feature view {name!r} lists its key or timestamp {column!r} as a feature",
                    "features are the columns besides the entity key and timestamps",
                )
    functions: dict[str, Callable[..., Any]] = {}
    stored = {feature for view in repo.views.values() for feature in view.features}
    for name, odfv in repo.on_demand.items():
        key = f"features.on_demand.{name}"
        try:
            odfv.check()
        except ValueError as exc:
            raise fail(key, str(exc), "see docs/features.md#on-demand-features") from exc
        for source in odfv.sources:
            if source not in repo.views:
                raise fail(
                    f"{key}.sources",
                    f"on-demand view {name!r} reads an unknown feature view {source!r}",
                    f"known views: {', '.join(sorted(repo.views)) or 'none'}",
                )
        clashes = sorted(set(odfv.outputs) & (stored | set(odfv.request)))
        if clashes:
            raise fail(
                f"{key}.outputs",
                f"on-demand view {name!r} outputs {', '.join(clashes)}, already an input name",
                "give computed features their own names",
            )
        if isinstance(odfv.function, str):
            from decisionloop.project_code import load_function

            functions[name] = load_function(
                odfv.function,
                settings.project_dir,
                key=f"{key}.function",
                what="on-demand feature",
                usage="def name(inputs): return outputs",
            )
        elif odfv.function is not None:
            functions[name] = odfv.function
    for name, service in repo.services.items():
        try:
            _resolve(repo, service)
        except (NotFound, InvalidConfig) as exc:
            raise fail(f"features.services.{name}.features", exc.message, exc.hint or "") from exc
    return functions


def _resolve(repo: FeatureRepo, service: FeatureService) -> ResolvedService:
    reads: dict[str, list[str]] = {}
    on_demand: list[OnDemandFeatureView] = []
    outputs: dict[str, ColumnType] = {}
    request: dict[str, ColumnType] = {}

    def read(view: FeatureView, features: list[str]) -> None:
        wanted = reads.setdefault(view.name, [])
        wanted.extend(f for f in features if f not in wanted)

    def output(name: str, dtype: ColumnType, where: str) -> None:
        if name in outputs:
            raise InvalidConfig(
                f"feature {name!r} is selected twice (again by {where!r})",
                hint="select it from one view only, with `view:feature`",
            )
        outputs[name] = dtype

    for ref in service.features:
        view_name, _, feature = ref.partition(":")
        if view_name in repo.on_demand:
            odfv = repo.on_demand[view_name]
            if odfv not in on_demand:
                on_demand.append(odfv)
                for source in odfv.sources:
                    read(repo.views[source], list(repo.views[source].features))
                request.update(odfv.request)
            selected = [feature] if feature else list(odfv.outputs)
            for name in selected:
                if name not in odfv.outputs:
                    raise NotFound(f"on-demand view {view_name!r} has no output {name!r}")
                output(name, odfv.outputs[name], ref)
            continue
        if view_name not in repo.views:
            raise NotFound(
                f"{ref!r} names no feature view or on-demand view",
                hint=f"views: {', '.join(sorted({*repo.views, *repo.on_demand})) or 'none'}",
            )
        view = repo.views[view_name]
        selected = [feature] if feature else list(view.features)
        for name in selected:
            if name not in view.features:
                raise NotFound(
                    f"feature view {view_name!r} has no feature {name!r}",
                    hint=f"its features: {', '.join(view.features)}",
                )
            output(name, view.features[name], ref)
        read(view, selected)
    views = [(repo.views[name], tuple(features)) for name, features in reads.items()]
    join_keys = tuple(dict.fromkeys(repo.entities[view.entity].join_key for view, _ in views))
    versions = {view.name: view.version for view, _ in views}
    versions.update({odfv.name: repo.version("on_demand_feature_view", odfv) for odfv in on_demand})
    return ResolvedService(
        name=service.name,
        version=service.version,
        views=views,
        on_demand=on_demand,
        outputs=outputs,
        request=request,
        join_keys=join_keys,
        versions=versions,
    )
