"""Settings: the precedence of defaults, project file, environment and overrides, and its errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from decisionloop.config import PROJECT_FILE, Settings, load_settings, resolve_url
from decisionloop.errors import InvalidConfig


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No DECISIONLOOP_* variable of the calling shell may leak into these tests."""
    for name in list(os.environ):
        if name.startswith("DECISIONLOOP_"):
            monkeypatch.delenv(name)


def write_project(folder: Path, data: object) -> Path:
    (folder / PROJECT_FILE).write_text(yaml.safe_dump(data), encoding="utf-8")
    return folder


# --- precedence -------------------------------------------------------------------------------


def test_missing_project_file_gives_defaults(tmp_path: Path) -> None:
    settings = load_settings(tmp_path)

    assert isinstance(settings, Settings)
    assert settings.project_dir == tmp_path.resolve()
    assert settings.name == "model"
    assert settings.data is None
    assert settings.gates == []
    assert settings.serving.port == 8080
    assert settings.serving.host == "127.0.0.1"
    assert settings.model.test_size == 0.2
    assert settings.model.seed == 42
    assert settings.storage.metadata_url == "sqlite:///.decisionloop/metadata.db"


def test_empty_project_file_gives_defaults(tmp_path: Path) -> None:
    (tmp_path / PROJECT_FILE).write_text("", encoding="utf-8")

    settings = load_settings(tmp_path)

    assert settings.name == "model"
    assert settings.serving.port == 8080


def test_project_file_overrides_defaults(tmp_path: Path) -> None:
    write_project(
        tmp_path,
        {"name": "churn", "serving": {"port": 9001}, "model": {"test_size": 0.3}},
    )

    settings = load_settings(tmp_path)

    assert settings.name == "churn"
    assert settings.serving.port == 9001
    assert settings.serving.host == "127.0.0.1"  # untouched keys of a section keep defaults
    assert settings.model.test_size == 0.3


def test_environment_overrides_project_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_project(
        tmp_path,
        {"name": "churn", "serving": {"port": 9001, "host": "0.0.0.0"}},
    )
    monkeypatch.setenv("DECISIONLOOP_SERVING__PORT", "9100")
    monkeypatch.setenv("DECISIONLOOP_STORAGE__METADATA_URL", "postgresql://db/prod")
    monkeypatch.setenv("DECISIONLOOP_NAME", "fraud")

    settings = load_settings(tmp_path)

    assert settings.serving.port == 9100
    assert settings.serving.host == "0.0.0.0"  # the file's sibling key survives the merge
    assert settings.storage.metadata_url == "postgresql://db/prod"
    assert settings.name == "fraud"


def test_environment_overrides_defaults_without_project_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DECISIONLOOP_SERVING__WORKERS", "4")

    assert load_settings(tmp_path).serving.workers == 4


def test_keyword_overrides_beat_environment_and_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_project(tmp_path, {"name": "churn", "serving": {"port": 9001, "host": "0.0.0.0"}})
    monkeypatch.setenv("DECISIONLOOP_SERVING__PORT", "9100")
    monkeypatch.setenv("DECISIONLOOP_NAME", "fraud")

    settings = load_settings(tmp_path, name="override", serving={"port": 9200})

    assert settings.name == "override"
    assert settings.serving.port == 9200
    assert settings.serving.host == "0.0.0.0"


def test_project_dir_in_file_is_ignored(tmp_path: Path) -> None:
    write_project(tmp_path, {"project_dir": "/somewhere/else"})

    assert load_settings(tmp_path).project_dir == tmp_path.resolve()


def test_project_dir_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_project(tmp_path, {"name": "fromenv"})
    monkeypatch.setenv("DECISIONLOOP_PROJECT_DIR", str(tmp_path))

    settings = load_settings()

    assert settings.project_dir == tmp_path.resolve()
    assert settings.name == "fromenv"


def test_environment_value_is_validated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DECISIONLOOP_SERVING__PORT", "not-a-port")

    with pytest.raises(InvalidConfig) as info:
        load_settings(tmp_path)

    assert info.value.key == "serving.port"


# --- URL resolution ---------------------------------------------------------------------------


def test_default_urls_resolve_into_project_state_dir(tmp_path: Path) -> None:
    settings = load_settings(tmp_path)
    root = tmp_path.resolve()

    assert settings.metadata_url == f"sqlite:///{root}/.decisionloop/metadata.db"
    assert settings.artifacts_url == f"file://{root}/.decisionloop/artifacts"
    assert settings.state_dir == root / ".decisionloop"


def test_relative_urls_resolve_against_project_folder(tmp_path: Path) -> None:
    write_project(
        tmp_path,
        {"storage": {"metadata_url": "sqlite:///db/meta.db", "artifacts_url": "file://store"}},
    )
    settings = load_settings(tmp_path)
    root = tmp_path.resolve()

    assert settings.metadata_url == f"sqlite:///{root}/db/meta.db"
    assert settings.artifacts_url == f"file://{root}/store"
    # the raw values are kept as written
    assert settings.storage.metadata_url == "sqlite:///db/meta.db"


def test_absolute_and_remote_urls_are_untouched(tmp_path: Path) -> None:
    write_project(
        tmp_path,
        {
            "storage": {
                "metadata_url": "postgresql://user@host:5432/dl",
                "artifacts_url": "file:///var/lib/dl/artifacts",
            }
        },
    )
    settings = load_settings(tmp_path)

    assert settings.metadata_url == "postgresql://user@host:5432/dl"
    assert settings.artifacts_url == "file:///var/lib/dl/artifacts"


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:////var/lib/dl/meta.db",
        "sqlite:///:memory:",
        "s3://bucket/prefix",
        "postgresql+psycopg://u@h/db",
    ],
)
def test_resolve_url_leaves_absolute_urls(url: str, tmp_path: Path) -> None:
    assert resolve_url(url, tmp_path) == url


def test_resolve_url_makes_bare_relative_path_absolute(tmp_path: Path) -> None:
    assert resolve_url("data/x.csv", tmp_path) == str(tmp_path.resolve() / "data" / "x.csv")


def test_data_source_resolved_against_project_folder(tmp_path: Path) -> None:
    write_project(tmp_path, {"data": {"source": "data/churn.csv", "target": "churned"}})

    settings = load_settings(tmp_path)

    assert settings.data is not None
    assert settings.data.target == "churned"
    assert settings.data_source() == str(tmp_path.resolve() / "data" / "churn.csv")


def test_data_source_without_data_section_raises_with_hint(tmp_path: Path) -> None:
    settings = load_settings(tmp_path)

    with pytest.raises(InvalidConfig) as info:
        settings.data_source()

    assert info.value.key == "data"
    assert info.value.file == str(tmp_path.resolve() / PROJECT_FILE)
    assert "decisionloop init" in info.value.hint
    assert "decisionloop init" in str(info.value)


# --- project file errors ----------------------------------------------------------------------


def test_malformed_yaml_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / PROJECT_FILE
    path.write_text("name: churn\nserving:\n  port: [8080\n", encoding="utf-8")

    with pytest.raises(InvalidConfig) as info:
        load_settings(tmp_path)

    assert info.value.file == str(path.resolve())
    assert str(path.resolve()) in str(info.value)
    assert "malformed YAML" in str(info.value)
    assert info.value.key.startswith("line ")
    assert int(info.value.key.split()[1].rstrip(",")) >= 3


def test_malformed_yaml_reports_the_offending_line(tmp_path: Path) -> None:
    (tmp_path / PROJECT_FILE).write_text("name: a\ndescription: b\n  bad: indent\n")

    with pytest.raises(InvalidConfig) as info:
        load_settings(tmp_path)

    assert info.value.key == "line 3, column 6"
    assert "line 3" in str(info.value)


def test_top_level_list_is_refused(tmp_path: Path) -> None:
    write_project(tmp_path, ["name", "churn"])

    with pytest.raises(InvalidConfig) as info:
        load_settings(tmp_path)

    assert "found list" in str(info.value)
    assert info.value.file == str((tmp_path / PROJECT_FILE).resolve())


def test_top_level_scalar_is_refused(tmp_path: Path) -> None:
    (tmp_path / PROJECT_FILE).write_text("just a string\n")

    with pytest.raises(InvalidConfig, match="found str"):
        load_settings(tmp_path)


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"serving": {"portt": 1}}, "serving.portt"),
        ({"nmae": "churn"}, "nmae"),
        ({"model": {"trainer": "xgboost", "sede": 1}}, "model.sede"),
    ],
)
def test_unknown_key_is_refused_with_key_path(tmp_path: Path, data: dict, key: str) -> None:
    write_project(tmp_path, data)

    with pytest.raises(InvalidConfig) as info:
        load_settings(tmp_path)

    assert info.value.key == key
    assert f": {key}: " in str(info.value)
    assert info.value.file == str((tmp_path / PROJECT_FILE).resolve())


@pytest.mark.parametrize(
    ("data", "key", "shown"),
    [
        ({"serving": {"port": "abc"}}, "serving.port", "'abc'"),
        ({"serving": {"port": 70000}}, "serving.port", "70000"),
        ({"model": {"test_size": 2}}, "model.test_size", "2"),
        ({"model": {"threshold": -0.1}}, "model.threshold", "-0.1"),
        ({"model": {"trainer": "catboost"}}, "model.trainer", "'catboost'"),
        ({"data": {"source": "x.csv"}}, "data.target", ""),
        (
            {"data": {"source": "x.csv", "target": "y", "columns": {"a": {"type": "text"}}}},
            "data.columns.a.type",
            "'text'",
        ),
    ],
)
def test_wrong_type_is_refused_with_key_path(
    tmp_path: Path, data: dict, key: str, shown: str
) -> None:
    write_project(tmp_path, data)

    with pytest.raises(InvalidConfig) as info:
        load_settings(tmp_path)

    assert info.value.key == key
    assert f"(got {shown}" in str(info.value)


def test_gate_without_min_or_max_is_refused(tmp_path: Path) -> None:
    write_project(tmp_path, {"gates": [{"metric": "test_auc"}]})

    with pytest.raises(InvalidConfig) as info:
        load_settings(tmp_path)

    assert info.value.key.startswith("gates.0")
    assert "a gate needs `min` or `max`" in str(info.value)


def test_gate_with_explicit_null_bounds_is_refused(tmp_path: Path) -> None:
    write_project(tmp_path, {"gates": [{"metric": "test_auc", "min": None, "max": None}]})

    with pytest.raises(InvalidConfig, match="a gate needs"):
        load_settings(tmp_path)


def test_gates_with_one_bound_are_accepted(tmp_path: Path) -> None:
    write_project(
        tmp_path,
        {
            "gates": [
                {"metric": "test_auc", "min": 0.7},
                {"metric": "test_log_loss", "max": 0.5, "severity": "warn"},
            ]
        },
    )

    gates = load_settings(tmp_path).gates

    assert [(g.metric, g.min, g.max, g.severity) for g in gates] == [
        ("test_auc", 0.7, None, "block"),
        ("test_log_loss", None, 0.5, "warn"),
    ]


@pytest.mark.parametrize("name", ["1churn", "has space", "", "a/b", "x" * 101, "_hidden"])
def test_invalid_model_name_is_refused(tmp_path: Path, name: str) -> None:
    write_project(tmp_path, {"name": name})

    with pytest.raises(InvalidConfig) as info:
        load_settings(tmp_path)

    assert info.value.key == "name"


@pytest.mark.parametrize("name", ["churn", "Churn_v2.1-beta", "x" * 100])
def test_valid_model_names_are_accepted(tmp_path: Path, name: str) -> None:
    assert load_settings(tmp_path, name=name).name == name


def test_invalid_keyword_override_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidConfig) as info:
        load_settings(tmp_path, serving={"workers": 0})

    assert info.value.key == "serving.workers"


def test_settings_are_frozen(tmp_path: Path) -> None:
    settings = load_settings(tmp_path)

    with pytest.raises(ValueError, match="frozen"):
        settings.name = "other"  # type: ignore[misc]


def test_a_missing_project_folder_is_not_created(tmp_path: Path) -> None:
    from decisionloop.errors import NotFound

    missing = tmp_path / "nope"
    with pytest.raises(NotFound, match="no project folder"):
        load_settings(missing)
    assert not missing.exists()
