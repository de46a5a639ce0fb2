"""Tuning with child runs, and reproducing a run from what it recorded."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from decisionloop.errors import Invalid, InvalidConfig, NotFound
from decisionloop.platform import Platform
from tests.datasets import loan_defaults, write
from tests.e2e.test_cli_loop import cli

pytestmark = pytest.mark.slow

SEARCHED = ("max_depth", "learning_rate", "subsample", "colsample_bytree")
LOGISTIC_TUNING = {
    "trainer": "logistic_regression",
    "tuning": {"trials": 2, "space": {"C": {"low": 0.1, "high": 10.0}}},
}


@pytest.fixture(scope="module")
def loans_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write(loan_defaults(rows=400), tmp_path_factory.mktemp("data") / "loans.csv")


@pytest.fixture
def project(make_project: Callable[..., Path], loans_csv: Path) -> Callable[..., Path]:
    def factory(model: dict[str, Any], gates: list[dict[str, Any]] | None = None) -> Path:
        return make_project(
            {
                "name": "loans",
                "data": {"source": str(loans_csv), "target": "status", "exclude": ["loan_ref"]},
                "model": model,
                "gates": gates if gates is not None else [{"metric": "test_auc", "min": 0.6}],
            }
        )

    return factory


def xgboost_tuning(trials: int = 4, seed: int = 11) -> dict[str, Any]:
    return {
        "trainer": "xgboost",
        "params": {"n_estimators": 40},
        "tuning": {
            "trials": trials,
            "seed": seed,
            "space": {
                "max_depth": {"low": 2, "high": 6},
                "learning_rate": {"low": 0.02, "high": 0.3, "log": True},
                "subsample": {"low": 0.6, "high": 1.0},
                "colsample_bytree": {"choices": [0.5, 0.8, 1.0]},
            },
        },
    }


def test_tuning_records_each_trial_as_a_child_run_and_registers_the_best(
    project: Callable[..., Path],
) -> None:
    folder = project(xgboost_tuning())
    steps: list[tuple[str, str]] = []
    with Platform.open(folder) as platform:
        result = platform.run(lambda step, message: steps.append((step, message)))
        trials = platform.runs.list(parent_run_id=result.run_id)
        parent = platform.runs.get(result.run_id)
        version = platform.get_version("loans@champion")
        versions = platform.list_versions("loans")

    assert len(trials) == 4
    assert sorted(t.params["trial"] for t in trials) == [0, 1, 2, 3]
    for trial in trials:
        assert trial.status == "finished"
        assert trial.parent_run_id == result.run_id
        assert trial.tags["trial"] == str(trial.params["trial"])
        assert trial.params["n_estimators"] == 40  # model.params hold for every trial
        assert set(SEARCHED) <= set(trial.params)
        assert 0.5 < trial.metrics["validation_auc"] <= 1.0
        assert not any(key.startswith("test_") for key in trial.metrics)  # never the test rows
    best = max(trials, key=lambda t: (t.metrics["validation_auc"], -t.params["trial"]))
    assert len({tuple(t.params[k] for k in SEARCHED) for t in trials}) == 4

    assert result.tuning is not None
    assert result.tuning["trials"] == 4
    assert result.tuning["best_trial"] == best.params["trial"]
    assert result.tuning["best_params"] == {k: best.params[k] for k in SEARCHED}
    for key in SEARCHED:
        assert version.params[key] == best.params[key]
        assert result.params[key] == best.params[key]
        assert parent.params[key] == best.params[key]
    assert version.run_id == result.run_id
    assert [v.version for v in versions] == [1]  # trials register nothing
    assert parent.params["tuning"]["best_params"] == result.tuning["best_params"]
    assert parent.metrics["best_validation_auc"] == best.metrics["validation_auc"]
    assert parent.tags["tuning"] == "true"
    assert result.metrics["test_auc"] == version.metrics["test_auc"]
    assert [m for s, m in steps if s == "tune"][-1].startswith("trial 4/4")


def test_the_same_seed_gives_the_same_best_params_and_another_seed_other_trials(
    project: Callable[..., Path],
) -> None:
    def tuned(seed: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        with Platform.open(project(xgboost_tuning(trials=3, seed=seed))) as platform:
            result = platform.run()
            trials = platform.runs.list(parent_run_id=result.run_id)
        assert result.tuning is not None
        searched = sorted(
            ({k: t.params[k] for k in (*SEARCHED, "trial")} for t in trials),
            key=lambda p: p["trial"],
        )
        return result.tuning["best_params"], searched

    first, again, other = tuned(5), tuned(5), tuned(6)
    assert first == again
    assert first[1] != other[1]


def test_a_custom_metric_minimises_and_tune_false_skips_the_search(
    project: Callable[..., Path],
) -> None:
    folder = project(
        {
            "trainer": "logistic_regression",
            "params": {"max_iter": 200},
            "tuning": {
                "trials": 3,
                "metric": "test_log_loss",
                "space": {"C": {"choices": [0.01, 1.0, 50.0]}},
            },
        }
    )
    with Platform.open(folder) as platform:
        result = platform.run()
        trials = platform.runs.list(parent_run_id=result.run_id)
        assert result.tuning is not None
        assert result.tuning["direction"] == "minimize"
        assert result.tuning["metric"] == "validation_log_loss"
        lowest = min(trials, key=lambda t: t.metrics["validation_log_loss"])
        assert result.params["C"] == lowest.params["C"]
        assert result.params["max_iter"] == 200

        plain = platform.run(tune=False)
        assert plain.tuning is None
        assert plain.params["C"] == 1.0
        assert platform.runs.list(parent_run_id=plain.run_id) == []


def test_a_wrong_search_is_refused_before_any_data_is_read(project: Callable[..., Path]) -> None:
    folder = project({"trainer": "xgboost", "tuning": {"space": {"depth": {"low": 1, "high": 3}}}})
    with Platform.open(folder) as platform:
        with pytest.raises(InvalidConfig, match="depth"):
            platform.run()
        assert platform.runs.list() == []
        assert platform.metadata.datasets.list_snapshots("loans") == []


@pytest.mark.parametrize(
    "model",
    [
        {"trainer": "xgboost", "params": {"n_estimators": 60}},
        {"trainer": "random_forest", "params": {"n_estimators": 30}, "class_weight": "balanced"},
    ],
    ids=["xgboost", "random_forest"],
)
def test_reproduce_retrains_a_run_with_identical_metrics_without_a_version(
    project: Callable[..., Path], model: dict[str, Any]
) -> None:
    folder = project({**model, "seed": 9, "test_size": 0.25, "threshold": 0.4})
    with Platform.open(folder) as platform:
        result = platform.run()
        # the project file may change afterwards: the run's own record is what counts
        (folder / "decisionloop.yaml").write_text(
            (folder / "decisionloop.yaml").read_text().replace("seed: 9", "seed: 1")
        )
    with Platform.open(folder) as platform:
        assert platform.settings.model.seed == 1
        reproduction = platform.runs.reproduce(result.run_id)
        run = platform.runs.get(reproduction.run_id)
        versions = platform.list_versions("loans")

    assert reproduction.matches is True
    assert reproduction.split_matches is True
    names = {check.name for check in reproduction.metrics}
    assert {"test_auc", "train_auc", "test_f1", "test_accuracy"} <= names
    for check in reproduction.metrics:
        assert check.reproduced == check.original, check
    assert run.tags["reproduction_of"] == result.run_id
    assert run.status == "finished"
    assert run.snapshot_id == result.snapshot_id
    assert run.params["seed"] == 9
    assert run.params["threshold"] == 0.4
    assert [v.version for v in versions] == [1]


def test_reproduce_refuses_unknown_runs_and_trials(project: Callable[..., Path]) -> None:
    folder = project(LOGISTIC_TUNING)
    with Platform.open(folder) as platform:
        result = platform.run()
        trial = platform.runs.list(parent_run_id=result.run_id)[0]
        with pytest.raises(Invalid, match="tuning trial"):
            platform.runs.reproduce(trial.id)
        with pytest.raises(NotFound):
            platform.runs.reproduce("0" * 32)
        bare = platform.runs.start(params={"C": 1.0}, snapshot_id=result.snapshot_id)
        platform.runs.finish(bare.id, metrics={"test_auc": 0.5})
        with pytest.raises(Invalid, match="did not record"):
            platform.runs.reproduce(bare.id)
        tuned = platform.runs.reproduce(result.run_id)  # a tuning run retrains its best params
        assert tuned.matches is True
        assert platform.runs.get(tuned.run_id).params["C"] == result.params["C"]


def test_cli_run_shows_trials_and_runs_reproduce_exits_0_1_or_2(
    project: Callable[..., Path],
) -> None:
    folder = project(LOGISTIC_TUNING)
    shown = cli("run", str(folder))
    assert "trial 2/2" in shown.stderr
    assert "tuned: best of 2 trials" in shown.stdout
    with Platform.open(folder) as platform:
        parent = next(r for r in platform.runs.list() if r.parent_run_id is None)
        # a run whose recorded metrics cannot be reproduced
        forged = platform.runs.start(params=parent.params, snapshot_id=parent.snapshot_id)
        platform.runs.finish(forged.id, metrics={**parent.metrics, "test_auc": 0.123})

    same = cli("runs", "reproduce", parent.id[:10], "-p", str(folder), "--json")
    document = json.loads(same.stdout)
    assert document["matches"] is True
    assert document["original_run_id"] == parent.id

    table = cli("runs", "reproduce", parent.id, "-p", str(folder))
    assert "every metric matches" in table.stdout

    differs = cli("runs", "reproduce", forged.id, "-p", str(folder), "--json", check=False)
    assert differs.returncode == 1, differs.stderr
    checks = {c["name"]: c for c in json.loads(differs.stdout)["metrics"]}
    assert checks["test_auc"]["matches"] is False
    assert checks["test_auc"]["original"] == 0.123
    assert checks["train_auc"]["matches"] is True

    for unknown in ("f" * 32, "nope"):
        missing = cli("runs", "reproduce", unknown, "-p", str(folder), check=False)
        assert missing.returncode == 2, missing.stderr
        lines = missing.stderr.strip().splitlines()
        assert len(lines) == 1
        assert lines[0].startswith("error: ")
