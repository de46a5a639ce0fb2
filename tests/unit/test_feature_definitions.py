"""Feature definitions: durations, validation, versions, and the project's feature repo (the
``features`` section of decisionloop.yaml plus its Python module), references checked."""

from __future__ import annotations

import os
import textwrap
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from decisionloop.config import PROJECT_FILE, load_settings
from decisionloop.errors import InvalidConfig, NotFound
from decisionloop.features.definitions import (
    Entity,
    FeatureView,
    OnDemandFeatureView,
    parse_duration,
)
from decisionloop.features.repo import FeatureRepo, load_repo


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No DECISIONLOOP_* variable of the calling shell may change the project read here."""
    for name in list(os.environ):
        if name.startswith("DECISIONLOOP_"):
            monkeypatch.delenv(name)


# --- durations -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30d", timedelta(days=30)),
        ("12h", timedelta(hours=12)),
        ("90m", timedelta(minutes=90)),
        ("45s", timedelta(seconds=45)),
        ("2w", timedelta(weeks=2)),
        ("1.5h", timedelta(minutes=90)),
        (" 7 d ", timedelta(days=7)),
        ("0.25s", timedelta(milliseconds=250)),
        (3600, timedelta(hours=1)),
        (2.5, timedelta(seconds=2.5)),
        (timedelta(minutes=3), timedelta(minutes=3)),
        (None, None),
    ],
)
def test_parse_duration_accepts_its_forms(text: object, expected: timedelta | None) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text", ["", "30", "30D", "1y", "-1d", "d", "1e3s", "30 days", "1h30m", True, [1], {"d": 1}]
)
def test_parse_duration_refuses_anything_else(text: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


# --- feature views -------------------------------------------------------------------------

BASE: dict[str, Any] = {
    "name": "spending",
    "entity": "customer",
    "source": "transactions",
    "timestamp": "event_at",
    "features": {"total": "number", "count": "integer"},
}


def spending(**changes: Any) -> FeatureView:
    return FeatureView(**{**BASE, **changes})


def test_a_view_keeps_its_settings_and_parses_its_ttl() -> None:
    definition = spending(ttl="30d", created_timestamp="created_at", tags={"team": "risk"})

    assert definition.ttl == timedelta(days=30)
    assert definition.created_timestamp == "created_at"
    assert definition.online is True
    assert definition.spec()["ttl"] == "30d"
    assert definition.spec()["features"] == {"total": "number", "count": "integer"}
    assert spending().ttl is None


@pytest.mark.parametrize("ttl", [0, -5, "0s", "0d", timedelta(0), timedelta(seconds=-1)])
def test_a_view_refuses_a_ttl_that_is_not_positive(ttl: object) -> None:
    with pytest.raises(ValidationError, match="ttl must be positive"):
        spending(ttl=ttl)


def test_a_view_refuses_a_ttl_that_is_not_a_duration() -> None:
    with pytest.raises(ValidationError, match="not a duration"):
        spending(ttl="a month")


@pytest.mark.parametrize(
    "name", ["", "1st", "my-view", "my view", "views.spending", "a" * 101, "é"]
)
def test_definitions_refuse_bad_names(name: str) -> None:
    with pytest.raises(ValidationError, match="a name starts with a letter"):
        spending(name=name)
    with pytest.raises(ValidationError, match="a name starts with a letter"):
        Entity(name=name, join_key="customer_id")


@pytest.mark.parametrize("name", ["_private", "View2", "a" * 100, "customer_spending_30d"])
def test_definitions_accept_good_names(name: str) -> None:
    assert spending(name=name).name == name


def test_a_view_needs_a_feature_of_a_known_type() -> None:
    with pytest.raises(ValidationError, match="features"):
        spending(features={})
    with pytest.raises(ValidationError, match=r"features\.total"):
        spending(features={"total": "float"})


def test_definitions_refuse_unknown_settings_and_are_keyword_only() -> None:
    with pytest.raises(ValidationError, match="ttl_days"):
        spending(ttl_days=3)
    positional: Any = FeatureView
    with pytest.raises(TypeError):
        positional("spending")


def test_definitions_are_frozen() -> None:
    definition = spending()

    with pytest.raises(ValidationError, match="frozen"):
        definition.ttl = timedelta(days=1)
    with pytest.raises(ValidationError, match="frozen"):
        Entity(name="customer", join_key="customer_id").join_key = "id"
    assert definition.ttl is None


# --- versions ------------------------------------------------------------------------------

CHANGES: dict[str, Any] = {
    "name": "spending_v2",
    "description": "what customers spent",
    "owner": "risk-team",
    "tags": {"tier": "gold"},
    "entity": "account",
    "source": "payments",
    "timestamp": "paid_at",
    "features": {"total": "number", "count": "number"},
    "ttl": "7d",
    "created_timestamp": "created_at",
    "online": False,
}
#: what decides the stored values (data_version); the rest only describes or filters them
DATA_FIELDS = {"entity", "source", "timestamp", "features", "created_timestamp"}


def test_the_version_is_stable_for_equal_definitions() -> None:
    assert spending().version == spending().version
    assert len(spending().version) == 16
    assert spending(ttl="1d").version == spending(ttl=86400).version == spending(ttl="24h").version


@pytest.mark.parametrize("field", sorted(CHANGES))
def test_the_version_changes_when_any_field_changes(field: str) -> None:
    assert spending(**{field: CHANGES[field]}).version != spending().version


def test_the_version_changes_with_a_feature_added_renamed_or_retyped() -> None:
    versions = {
        spending().version,
        spending(features={"total": "number", "count": "integer", "mean": "number"}).version,
        spending(features={"total": "number", "n": "integer"}).version,
        spending(features={"total": "integer", "count": "integer"}).version,
    }

    assert len(versions) == 4


def test_the_version_changes_with_any_ttl_change() -> None:
    assert spending(ttl=100000.2).version != spending(ttl=100000.4).version
    assert spending(ttl=timedelta(seconds=1, microseconds=1)).version != spending(ttl=1).version


@pytest.mark.parametrize("field", sorted(set(CHANGES) - {"name"}))
def test_the_data_version_changes_only_with_what_decides_the_stored_values(field: str) -> None:
    changed = spending(**{field: CHANGES[field]}).data_version != spending().data_version

    assert changed is (field in DATA_FIELDS)


def test_the_data_version_follows_features_source_and_timestamp() -> None:
    base = spending().data_version

    assert spending(features={"total": "number"}).data_version != base
    assert spending(source="payments").data_version != base
    assert spending(timestamp="paid_at").data_version != base
    assert spending(ttl="1d", description="x", owner="y", tags={"a": "b"}).data_version == base


# --- on-demand views -----------------------------------------------------------------------


def ratio_view(**changes: Any) -> OnDemandFeatureView:
    body: dict[str, Any] = {
        "name": "ratios",
        "sources": ["spending"],
        "request": {"amount": "number"},
        "outputs": {"share": "number"},
        "sql": {"share": "amount / NULLIF(total, 0)"},
    }
    return OnDemandFeatureView(**{**body, **changes})


def verdict(odfv: OnDemandFeatureView) -> str | None:
    """What ``check`` says: None when consistent, else its message."""
    try:
        odfv.check()
    except ValueError as exc:
        return str(exc)
    return None


def test_consistent_on_demand_views_pass_their_check() -> None:
    assert verdict(ratio_view()) is None
    assert verdict(ratio_view(sql=None, function="features:share")) is None
    assert verdict(ratio_view(mode="row", sql=None, function=len)) is None


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"function": "features:share"}, "needs exactly one of sql, function"),
        ({"sql": None}, "needs exactly one of sql, function"),
        ({"sql": {}}, "`sql` must give one expression per output (outputs: share)"),
        (
            {"outputs": {"share": "number", "big": "boolean"}},
            "`sql` must give one expression per output (outputs: share, big)",
        ),
        ({"sql": {"share": "1", "other": "2"}}, "`sql` must give one expression per output"),
    ],
)
def test_on_demand_check_refuses_inconsistent_definitions(
    changes: dict[str, Any], message: str
) -> None:
    said = verdict(ratio_view(**changes))

    assert said is not None
    assert said.startswith("on-demand view 'ratios'")
    assert message in said


def test_an_on_demand_sql_expression_is_one_expression() -> None:
    with pytest.raises(ValidationError, match="one expression, no ';'"):
        ratio_view(sql={"share": "1; DROP TABLE x"})


def test_an_on_demand_view_needs_an_output_and_a_known_mode() -> None:
    with pytest.raises(ValidationError, match="outputs"):
        ratio_view(outputs={}, sql={})
    with pytest.raises(ValidationError, match="mode"):
        ratio_view(mode="batch")


def _load_function(folder: Path, module: str, body: str) -> Any:
    import importlib.util

    path = folder / f"{module}.py"
    path.write_text(textwrap.dedent(body))
    spec = importlib.util.spec_from_file_location(f"_test_odfv_{module}", path)
    assert spec is not None
    assert spec.loader is not None
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return loaded.share


def test_version_with_counts_the_function_source(tmp_path: Path) -> None:
    first = _load_function(tmp_path, "one", "def share(inputs):\n    return inputs * 2\n")
    same = _load_function(tmp_path, "two", "def share(inputs):\n    return inputs * 2\n")
    edited = _load_function(tmp_path, "three", "def share(inputs):\n    return inputs * 3\n")
    odfv = ratio_view(sql=None, function="features:share")

    assert odfv.version_with(first) == odfv.version_with(same)
    assert odfv.version_with(first) != odfv.version_with(edited)
    assert odfv.version_with(None) == odfv.version
    assert odfv.version_with(first) != odfv.version
    # a function without source (a builtin) still has a stable version
    assert odfv.version_with(len) == odfv.version_with(len) != odfv.version


def test_an_on_demand_view_records_a_callable_as_module_and_name() -> None:
    assert ratio_view(sql=None, function=parse_duration).spec()["function"] == (
        "decisionloop.features.definitions:parse_duration"
    )


# --- the project's feature repo ------------------------------------------------------------

DEFINITIONS_MODULE = """
import pandas as pd

from decisionloop.features.definitions import FeatureService, OnDemandFeatureView


def doubled_score(inputs: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"score2": inputs["score"] * 2})


doubled = OnDemandFeatureView(
    name="doubled",
    sources=["risk"],
    outputs={"score2": "number"},
    function=doubled_score,
)
checkout = FeatureService(name="checkout", features=["doubled", "spending:total"])

definitions = [doubled, checkout]
"""


def project(**features: Any) -> dict[str, Any]:
    """A project with two data sets and a feature section (``features`` replaces sections)."""
    section: dict[str, Any] = {
        "module": "feature_defs.py",
        "entities": {
            "customer": {"join_key": "customer_id"},
            "merchant": {"join_key": "merchant_id", "description": "a shop"},
        },
        "views": {
            "spending": {
                "entity": "customer",
                "source": "transactions",
                "timestamp": "at",
                "features": {"total": "number", "count": "integer"},
                "ttl": "30d",
            },
            "risk": {
                "entity": "merchant",
                "source": "merchants",
                "timestamp": "at",
                "features": {"score": "number"},
            },
        },
        "on_demand": {
            "shares": {
                "sources": ["spending"],
                "request": {"amount": "number"},
                "outputs": {"amount_share": "number"},
                "sql": {"amount_share": "amount / NULLIF(total, 0)"},
            }
        },
        "services": {
            "scoring": {"features": ["spending:count", "risk", "shares", "spending:total"]}
        },
    }
    section.update(features)
    return {
        "name": "churn",
        "datasets": {
            "transactions": {"source": "data/transactions.csv"},
            "merchants": {"source": "data/merchants.csv"},
        },
        "features": section,
    }


def repo_of(
    folder: Path, data: dict[str, Any], module: str | None = DEFINITIONS_MODULE
) -> FeatureRepo:
    (folder / PROJECT_FILE).write_text(yaml.safe_dump(data), encoding="utf-8")
    if module is not None:
        (folder / "feature_defs.py").write_text(module, encoding="utf-8")
    return load_repo(load_settings(folder))


def invalid_key(
    folder: Path, data: dict[str, Any], module: str | None = DEFINITIONS_MODULE
) -> InvalidConfig:
    with pytest.raises(InvalidConfig) as caught:
        repo_of(folder, data, module)
    return caught.value


def test_load_repo_reads_the_file_and_the_module(tmp_path: Path) -> None:
    repo = repo_of(tmp_path, project())

    assert sorted(repo.entities) == ["customer", "merchant"]
    assert repo.entities["merchant"].description == "a shop"
    assert sorted(repo.views) == ["risk", "spending"]
    assert repo.views["spending"].ttl == timedelta(days=30)
    assert sorted(repo.on_demand) == ["doubled", "shares"]
    assert sorted(repo.services) == ["checkout", "scoring"]
    assert list(repo.functions) == ["doubled"]
    assert repo.functions["doubled"].__name__ == "doubled_score"
    assert [(kind, d.name) for kind, d in repo.definitions()] == [
        ("entity", "customer"),
        ("entity", "merchant"),
        ("feature_view", "risk"),
        ("feature_view", "spending"),
        ("on_demand_feature_view", "doubled"),
        ("on_demand_feature_view", "shares"),
        ("feature_service", "checkout"),
        ("feature_service", "scoring"),
    ]


def test_a_service_resolves_views_features_outputs_and_join_keys_in_order(
    tmp_path: Path,
) -> None:
    repo = repo_of(tmp_path, project())

    service = repo.service("scoring")

    assert service.name == "scoring"
    assert service.version == repo.services["scoring"].version
    # spending is read first (for count), then risk; the on-demand view adds spending's total
    assert [(view.name, features) for view, features in service.views] == [
        ("spending", ("count", "total")),
        ("risk", ("score",)),
    ]
    assert [odfv.name for odfv in service.on_demand] == ["shares"]
    assert service.outputs == {
        "count": "integer",
        "score": "number",
        "amount_share": "number",
        "total": "number",
    }
    assert list(service.outputs) == ["count", "score", "amount_share", "total"]
    assert service.request == {"amount": "number"}
    assert service.join_keys == ("customer_id", "merchant_id")
    assert service.versions == {
        "spending": repo.views["spending"].version,
        "risk": repo.views["risk"].version,
        "shares": repo.on_demand["shares"].version_with(None),
    }


def test_a_service_from_the_module_counts_its_function_in_the_version(tmp_path: Path) -> None:
    repo = repo_of(tmp_path, project())

    service = repo.service("checkout")

    assert [(view.name, features) for view, features in service.views] == [
        ("risk", ("score",)),
        ("spending", ("total",)),
    ]
    assert list(service.outputs) == ["score2", "total"]
    assert service.join_keys == ("merchant_id", "customer_id")
    doubled = repo.on_demand["doubled"]
    assert service.versions["doubled"] == doubled.version_with(repo.functions["doubled"])
    assert service.versions["doubled"] != doubled.version


def test_an_unknown_service_is_not_found(tmp_path: Path) -> None:
    repo = repo_of(tmp_path, project())

    with pytest.raises(NotFound, match="no feature service 'nope'"):
        repo.service("nope")
    with pytest.raises(NotFound, match="no feature view 'nope'"):
        repo.view("nope")


def test_features_of_resolves_an_ad_hoc_list(tmp_path: Path) -> None:
    repo = repo_of(tmp_path, project())

    resolved = repo.features_of(["risk", "spending:total"])

    assert list(resolved.outputs) == ["score", "total"]
    assert resolved.join_keys == ("merchant_id", "customer_id")


def test_a_project_without_features_gives_an_empty_repo(tmp_path: Path) -> None:
    (tmp_path / PROJECT_FILE).write_text(yaml.safe_dump({"name": "churn"}), encoding="utf-8")

    repo = load_repo(load_settings(tmp_path))

    assert repo.empty is True
    assert repo.definitions() == []


def test_a_view_may_read_the_projects_own_data_set(tmp_path: Path) -> None:
    data = project(module=None)
    data["data"] = {"source": "data/churn.csv", "target": "churned"}
    data["features"]["views"]["spending"]["source"] = "churn"

    repo = repo_of(tmp_path, data, module=None)

    assert repo.views["spending"].source == "churn"


def _view_change(key: str, value: Any) -> dict[str, Any]:
    data = project()
    data["features"]["views"]["spending"][key] = value
    return data


def test_an_unknown_entity_is_invalid_naming_the_key(tmp_path: Path) -> None:
    error = invalid_key(tmp_path, _view_change("entity", "shopper"))

    assert error.key == "features.views.spending.entity"
    assert "unknown entity 'shopper'" in error.message


def test_an_undeclared_source_data_set_is_invalid_naming_the_key(tmp_path: Path) -> None:
    error = invalid_key(tmp_path, _view_change("source", "clicks"))

    assert error.key == "features.views.spending.source"
    assert "undeclared data set 'clicks'" in error.message
    assert "merchants, transactions" in error.hint


def test_a_join_key_listed_as_a_feature_is_invalid(tmp_path: Path) -> None:
    error = invalid_key(
        tmp_path, _view_change("features", {"total": "number", "customer_id": "integer"})
    )

    assert error.key == "features.views.spending.features"
    assert "'customer_id'" in error.message


def test_a_bad_setting_of_a_view_is_invalid_naming_its_key(tmp_path: Path) -> None:
    error = invalid_key(tmp_path, _view_change("ttl", 0))

    assert error.key == "features.views.spending.ttl"
    assert "ttl must be positive" in error.message


def test_a_definition_that_is_not_a_mapping_is_invalid(tmp_path: Path) -> None:
    # refused when the settings are read, before load_repo sees it
    data = project()
    data["features"]["entities"]["customer"] = "customer_id"

    error = invalid_key(tmp_path, data)

    assert error.key == "features.entities.customer"
    assert "'customer_id'" in error.message


def test_an_overlong_ttl_is_invalid_naming_its_key(tmp_path: Path) -> None:
    error = invalid_key(tmp_path, _view_change("ttl", "999999999w"))

    assert error.key == "features.views.spending.ttl"


def _service(features: list[str]) -> dict[str, Any]:
    return project(services={"scoring": {"features": features}})


@pytest.mark.parametrize(
    ("features", "message"),
    [
        (["nope"], "'nope' names no feature view or on-demand view"),
        (["spending:nope"], "feature view 'spending' has no feature 'nope'"),
        (["shares:nope"], "on-demand view 'shares' has no output 'nope'"),
        (["spending", "spending:total"], "feature 'total' is selected twice"),
        (["spending:total", "shares", "spending:total"], "feature 'total' is selected twice"),
    ],
)
def test_a_bad_service_reference_is_invalid_naming_the_service(
    tmp_path: Path, features: list[str], message: str
) -> None:
    error = invalid_key(tmp_path, _service(features))

    assert error.key == "features.services.scoring.features"
    assert message in error.message


def test_a_feature_in_two_views_selected_by_a_service_is_invalid(tmp_path: Path) -> None:
    data = _service(["spending", "risk"])
    data["features"]["views"]["risk"]["features"] = {"score": "number", "total": "number"}

    error = invalid_key(tmp_path, data)

    assert error.key == "features.services.scoring.features"
    assert "'total' is selected twice" in error.message


def test_an_on_demand_output_named_like_a_stored_feature_is_invalid(tmp_path: Path) -> None:
    data = project()
    data["features"]["on_demand"]["shares"]["outputs"] = {"score": "number"}
    data["features"]["on_demand"]["shares"]["sql"] = {"score": "total * 2"}

    error = invalid_key(tmp_path, data)

    assert error.key == "features.on_demand.shares.outputs"
    assert "score" in error.message


def test_an_on_demand_output_named_like_a_request_field_is_invalid(tmp_path: Path) -> None:
    data = project()
    data["features"]["on_demand"]["shares"]["outputs"] = {"amount": "number"}
    data["features"]["on_demand"]["shares"]["sql"] = {"amount": "total * 2"}

    error = invalid_key(tmp_path, data)

    assert error.key == "features.on_demand.shares.outputs"


def test_an_on_demand_view_reading_an_unknown_view_is_invalid(tmp_path: Path) -> None:
    data = project()
    data["features"]["on_demand"]["shares"]["sources"] = ["spending", "clicks"]

    error = invalid_key(tmp_path, data)

    assert error.key == "features.on_demand.shares.sources"
    assert "unknown feature view 'clicks'" in error.message


def test_an_on_demand_view_failing_its_check_is_invalid(tmp_path: Path) -> None:
    data = project()
    data["features"]["on_demand"]["shares"]["function"] = "feature_defs:doubled_score"

    error = invalid_key(tmp_path, data)

    assert error.key == "features.on_demand.shares"
    assert "exactly one of sql, function" in error.message


def test_an_on_demand_function_is_loaded_from_the_project_folder(tmp_path: Path) -> None:
    data = project()
    shares = data["features"]["on_demand"]["shares"]
    del shares["sql"]
    shares["function"] = "feature_defs:doubled_score"

    repo = repo_of(tmp_path, data)

    assert repo.functions["shares"].__name__ == "doubled_score"


def test_an_on_demand_function_that_does_not_exist_is_invalid(tmp_path: Path) -> None:
    data = project()
    shares = data["features"]["on_demand"]["shares"]
    del shares["sql"]
    shares["function"] = "feature_defs:nope"

    error = invalid_key(tmp_path, data)

    assert error.key == "features.on_demand.shares.function"
    assert "'nope'" in error.message


def test_a_module_without_definitions_is_invalid(tmp_path: Path) -> None:
    error = invalid_key(tmp_path, project(), module="features = []\n")

    assert error.key == "features.module"
    assert "no `definitions` list" in error.message


def test_a_module_listing_something_else_is_invalid(tmp_path: Path) -> None:
    error = invalid_key(tmp_path, project(), module="definitions = ['spending']\n")

    assert error.key == "features.module"
    assert "holds a str" in error.message


def test_a_missing_module_is_invalid(tmp_path: Path) -> None:
    error = invalid_key(tmp_path, project(module="nowhere.py"), module=None)

    assert error.key == "features.module"
    assert "not found" in error.message


def test_a_definition_in_the_file_and_the_module_is_invalid(tmp_path: Path) -> None:
    module = DEFINITIONS_MODULE.replace(
        "definitions = [doubled, checkout]",
        "from decisionloop.features.definitions import Entity\n\n"
        "definitions = [doubled, checkout, Entity(name='customer', join_key='id')]",
    )

    error = invalid_key(tmp_path, project(), module=module)

    assert error.key == "features.module"
    assert "entity 'customer' is defined twice" in error.message


def test_a_module_service_with_a_bad_reference_is_invalid_naming_it(tmp_path: Path) -> None:
    module = DEFINITIONS_MODULE.replace('"spending:total"]', '"spending:nope"]')

    error = invalid_key(tmp_path, project(), module=module)

    assert error.key == "features.services.checkout.features"
    assert "no feature 'nope'" in error.message
