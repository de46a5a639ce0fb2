"""The registry and tracking verbs of Platform: approval hook, refs, filters, diff, runs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from decisionloop.backends.metadata.environment import capture_environment
from decisionloop.backends.metadata.lifecycle import TRANSITIONS, check_transition
from decisionloop.backends.metadata.records import MetricFilter, NewModelVersion, StatusChange
from decisionloop.config import Settings
from decisionloop.errors import Conflict, Forbidden, Invalid, NotFound
from decisionloop.platform import Platform
from decisionloop.refs import parse_metric_filter, parse_tag


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    with Platform(Settings(project_dir=tmp_path, name="churn"), actor="tester") as built:
        yield built


def _register(platform: Platform, **overrides: object) -> int:
    values: dict[str, object] = {
        "model_name": "churn",
        "artifact_key": "k",
        "artifact_sha256": "a" * 64,
        "signature": {"inputs": [{"name": "tenure"}, {"name": "plan"}], "threshold": 0.5},
        "metrics": {"test_auc": 0.8},
        "params": {"eta": 0.1, "depth": 4},
        "gate_passed": True,
        "gate_report": {},
    }
    values.update(overrides)
    new = NewModelVersion(**values)  # type: ignore[arg-type]  # test data by keyword
    return platform.metadata.models.register(new, actor="tester").version


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("auc>=0.8", MetricFilter("auc", ">=", 0.8)),
        (" test_auc < 1e-3 ", MetricFilter("test_auc", "<", 0.001)),
        ("f1==0.5", MetricFilter("f1", "=", 0.5)),
        ("loss>2", MetricFilter("loss", ">", 2.0)),
    ],
)
def test_metric_filters_parse(text: str, expected: MetricFilter) -> None:
    assert parse_metric_filter(text) == expected


@pytest.mark.parametrize("text", ["auc", "auc>=high", ">=0.8", "auc=>0.8", "auc>=0.8 x"])
def test_bad_metric_filters_are_invalid_with_a_hint(text: str) -> None:
    with pytest.raises(Invalid, match="not a metric filter") as caught:
        parse_metric_filter(text)
    assert "test_auc>=0.8" in caught.value.hint


def test_tags_parse_and_refuse_a_missing_key() -> None:
    assert parse_tag("team=growth") == ("team", "growth")
    assert parse_tag("query=a=b") == ("query", "a=b")
    assert parse_tag("empty=") == ("empty", "")
    for bad in ("team", "=x", ""):
        with pytest.raises(Invalid, match="not a tag"):
            parse_tag(bad)


def test_transitions_are_declared_once_and_refusals_hint_the_allowed_moves() -> None:
    assert TRANSITIONS["candidate"] == ("staging", "archived")
    check_transition("churn", 1, "staging", "production")
    with pytest.raises(Conflict, match="candidate and cannot move to production") as caught:
        check_transition("churn", 1, "candidate", "production")
    assert caught.value.hint == "from candidate a version may move to: staging, archived"


def test_set_status_asks_the_approval_hook_first(platform: Platform) -> None:
    _register(platform)
    proposals: list[StatusChange] = []
    platform.require_approval = proposals.append
    change = platform.set_status("churn/1", "staging", reason="looks good")
    assert [(p.model_name, p.version, p.from_status, p.to_status) for p in proposals] == [
        ("churn", 1, "candidate", "staging")
    ]
    assert proposals[0].reason == "looks good"
    assert proposals[0].actor == "tester"
    assert (change.from_status, change.to_status) == ("candidate", "staging")

    def refuse(change: StatusChange) -> None:
        raise Forbidden(f"{change.to_status} needs a second reviewer", hint="ask for approval")

    platform.require_approval = refuse
    with pytest.raises(Forbidden, match="second reviewer"):
        platform.set_status("churn/1", "production")
    assert platform.get_version("churn/1").status == "staging"
    assert [h.to_status for h in platform.status_history("churn/1")] == ["staging"]


def test_the_default_approval_hook_approves_and_invalid_moves_never_reach_it(
    platform: Platform,
) -> None:
    _register(platform)
    assert platform.set_status("churn/1", "archived").to_status == "archived"
    asked: list[StatusChange] = []
    platform.require_approval = asked.append
    with pytest.raises(Conflict):
        platform.set_status("churn/1", "production")
    with pytest.raises(Invalid, match="unknown version status"):
        platform.set_status("churn/1", "retired")
    assert asked == []


def test_tags_and_descriptions_target_the_model_or_a_version(platform: Platform) -> None:
    _register(platform)
    _register(platform)
    platform.set_alias("churn", "champion", 2)
    platform.set_tag("churn", "team", "retention")
    platform.set_tag("churn@champion", "reviewed", "yes")
    platform.set_description("churn/1", "baseline")
    platform.set_description("churn", "who leaves")
    assert platform.list_models()[0].tags == {"team": "retention"}
    assert platform.list_models()[0].description == "who leaves"
    assert platform.get_version("churn/2").tags == {"reviewed": "yes"}
    assert platform.get_version("churn/1").description == "baseline"
    platform.delete_tag("churn@champion", "reviewed")
    assert platform.get_version("churn/2").tags == {}
    with pytest.raises(NotFound):
        platform.set_tag("ghost", "k", "v")


def test_search_versions_takes_text_filters(platform: Platform) -> None:
    for auc in (0.7, 0.85, 0.9):
        _register(platform, metrics={"test_auc": auc})
    found = platform.search_versions(name="churn", metrics=["test_auc>=0.85"])
    assert [v.version for v in found] == [3, 2]
    assert platform.search_versions(metrics=["test_auc>0.95"]) == []
    with pytest.raises(Invalid):
        platform.search_versions(status="shipped")


def test_alias_history_through_the_platform(platform: Platform) -> None:
    _register(platform)
    _register(platform)
    platform.set_alias("churn", "champion", 1)
    platform.set_alias("churn", "champion", 2, reason="better")
    history = platform.alias_history("churn", "champion")
    assert [(e.version, e.previous_version, e.reason, e.actor) for e in history] == [
        (1, None, None, "tester"),
        (2, 1, "better", "tester"),
    ]
    assert platform.alias_at("churn", "champion", history[1].at) == 2


def test_diff_lists_what_changed_between_versions(platform: Platform) -> None:
    first_run = platform.runs.start(feature_versions={"usage": 1}, capture_environment=False)
    second_run = platform.runs.start(feature_versions={"usage": 2}, capture_environment=False)
    _register(platform, run_id=first_run.id, snapshot_hash="s1")
    _register(
        platform,
        run_id=second_run.id,
        snapshot_hash="s2",
        metrics={"test_auc": 0.9, "f1": 0.5},
        params={"eta": 0.3, "depth": 4},
        signature={"inputs": [{"name": "tenure"}, {"name": "region"}], "threshold": 0.4},
    )
    diff = platform.diff_versions("churn/1", "churn/2")
    assert diff.params == {"eta": (0.1, 0.3)}
    assert diff.metrics["f1"] == (None, 0.5, None)
    first, second, delta = diff.metrics["test_auc"]
    assert (first, second) == (0.8, 0.9)
    assert delta == pytest.approx(0.1)
    assert diff.snapshot == ("s1", "s2")
    assert not diff.same_data
    assert (diff.features_added, diff.features_removed) == (["region"], ["plan"])
    assert diff.feature_versions == {"usage": (1, 2)}
    assert diff.signature_changes == {"threshold": (0.5, 0.4)}
    assert diff.to_dict()["params"] == {"eta": [0.1, 0.3]}
    same = platform.diff_versions("churn/1", "churn/1")
    assert (same.params, same.snapshot, same.features_added) == ({}, None, [])


def test_runs_api_records_environment_and_fills_the_actor(platform: Platform) -> None:
    import hashlib

    (platform.settings.project_dir / "uv.lock").write_text("version = 1\n")
    run = platform.runs.start(params={"eta": 0.1})
    assert run.model_name == "churn"
    assert run.environment is not None
    assert run.environment["lock_file"] == "uv.lock"
    assert run.environment["lock_hash"] == hashlib.sha256(b"version = 1\n").hexdigest()
    assert "pytest" in run.environment["packages"]
    platform.runs.log_metrics(run.id, {"val_auc": 0.8}, step=3)
    finished = platform.runs.finish(run.id, metrics={"test_auc": 0.79})
    assert finished.metrics == {"val_auc": 0.8, "test_auc": 0.79}
    events = platform.metadata.audit.list(resource=f"run:{run.id}")
    assert {e.actor for e in events} == {"tester"}
    assert [r.id for r in platform.runs.list(status="finished")] == [run.id]


def test_environment_hash_is_the_lock_file_or_the_package_list(tmp_path: Path) -> None:
    import hashlib

    without = capture_environment(tmp_path)
    assert without["lock_file"] is None
    assert len(without["lock_hash"]) == 64
    (tmp_path / "requirements.txt").write_text("xgboost==2.1.0\n")
    with_lock = capture_environment(tmp_path)
    assert with_lock["lock_file"] == "requirements.txt"
    assert with_lock["lock_hash"] == hashlib.sha256(b"xgboost==2.1.0\n").hexdigest()
    assert with_lock["python"].count(".") == 2
