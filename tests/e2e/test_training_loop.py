"""The loop end to end for the new trainers: a regression project and a LightGBM classifier."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from starlette.testclient import TestClient

from decisionloop.errors import Invalid, InvalidConfig
from decisionloop.platform import Platform
from decisionloop.serving.http import create_app
from tests.datasets import loan_defaults, write

pytestmark = pytest.mark.slow


def house_prices(rows: int = 500, seed: int = 5) -> pd.DataFrame:
    """A numeric target `price` driven by area, rooms and district."""
    rng = np.random.default_rng(seed)
    area = rng.uniform(30, 200, rows).round(1)
    rooms = rng.integers(1, 7, rows)
    district = rng.choice(["centre", "suburb", "rural"], rows)
    premium = np.select([district == "centre", district == "suburb"], [80.0, 20.0], 0.0)
    price = 2.5 * area + 15 * rooms + premium + rng.normal(scale=10, size=rows)
    return pd.DataFrame(
        {"house_id": [f"H{i}" for i in range(rows)], "area": area, "rooms": rooms,
         "district": district, "price": price.round(2)}
    )  # fmt: skip


@pytest.fixture
def prices_project(make_project: Callable[..., Path], tmp_path: Path) -> Path:
    data = write(house_prices(), tmp_path / "houses.csv")
    return make_project(
        {
            "name": "prices",
            "data": {"source": str(data), "target": "price", "exclude": ["house_id"]},
            "model": {
                "task": "regression",
                "trainer": "gradient_boosting",
                "params": {"n_estimators": 150},
            },
            "gates": [{"metric": "test_r2", "min": 0.8}, {"metric": "test_rmse", "max": 40}],
        },
        tmp_path / "prices",
    )


def test_regression_project_trains_registers_and_serves_values(prices_project: Path) -> None:
    with Platform.open(prices_project) as platform:
        result = platform.run()

        assert result.promoted is True
        assert set(result.metrics) == {
            f"{p}_{m}" for p in ("train", "test") for m in ("rmse", "mae", "r2")
        }
        assert result.metrics["test_r2"] > 0.8
        assert result.split["strategy"] == "random"
        assert result.params["task"] == "regression"
        version = platform.get_version("prices@champion")
        assert version.signature["task"] == "regression"
        assert "threshold" not in version.signature

        rows = house_prices(rows=5, seed=9)
        predicted = platform.predict("prices@champion", rows.drop(columns=["price"]))
        assert predicted.values is not None
        assert predicted.threshold is None
        assert predicted.labels == []
        assert np.abs(predicted.values - rows["price"].to_numpy()).mean() < 40
        assert predicted.records()[0] == {"value": float(predicted.values[0])}

        with TestClient(create_app(platform)) as client:
            response = client.post(
                "/v1/models/prices/predict",
                json={"instances": rows.drop(columns=["price"]).to_dict(orient="records")},
            )
        assert response.status_code == 200
        body = response.json()
        assert "threshold" not in body
        assert [p["value"] for p in body["predictions"]] == pytest.approx(predicted.values.tolist())


def test_same_data_and_seed_give_the_same_metrics(
    make_project: Callable[..., Path], tmp_path: Path
) -> None:
    data = write(house_prices(rows=200), tmp_path / "houses.csv")
    results = []
    for copy in ("one", "two"):
        folder = make_project(
            {
                "name": "prices",
                "data": {"source": str(data), "target": "price", "exclude": ["house_id"]},
                "model": {"task": "regression", "trainer": "linear_regression", "seed": 3},
            },
            tmp_path / copy,
        )
        with Platform.open(folder) as platform:
            results.append(platform.run())
    assert results[0].metrics == results[1].metrics
    assert results[0].metrics["test_r2"] > 0.9


def test_lightgbm_classification_project(make_project: Callable[..., Path], tmp_path: Path) -> None:
    data = write(loan_defaults(), tmp_path / "loans.csv")
    folder = make_project(
        {
            "name": "loans",
            "data": {
                "source": str(data),
                "target": "status",
                "positive": "default",
                "exclude": ["loan_ref"],
            },
            "model": {
                "trainer": "lightgbm",
                "class_weight": "balanced",
                "params": {"n_estimators": 200, "num_leaves": 15},
            },
            "gates": [{"metric": "test_auc", "min": 0.75}],
        },
        tmp_path / "loans",
    )
    with Platform.open(folder) as platform:
        result = platform.run()

        assert result.promoted is True
        assert result.metrics["test_auc"] > 0.75
        assert result.params["class_weight"] == "balanced"
        rows = loan_defaults(rows=20, seed=12).drop(columns=["status"])
        predicted = platform.predict("loans@champion", rows)
        assert predicted.values is None
        assert ((predicted.probabilities >= 0) & (predicted.probabilities <= 1)).all()
        assert set(predicted.labels) <= {"default", "repaid"}
        assert predicted.threshold == 0.5

        # the run records its environment, learning curve and early-stopping choice
        run = platform.runs.get(result.run_id)
        assert run.environment is not None
        assert run.environment["packages"]["lightgbm"]
        assert len(run.environment["lock_hash"]) == 64
        curve = platform.runs.metric_history(result.run_id, "validation_binary_logloss")
        assert [p.step for p in curve] == list(range(len(curve)))
        assert len(curve) > run.params["best_iteration"] >= 1
        assert min(p.value for p in curve) < curve[0].value


def test_unknown_params_and_gates_are_refused_before_training(
    make_project: Callable[..., Path], tmp_path: Path
) -> None:
    data = write(house_prices(rows=50), tmp_path / "houses.csv")
    spec = {"source": str(data), "target": "price"}
    bad_param = make_project(
        {
            "data": spec,
            "model": {"task": "regression", "trainer": "lightgbm", "params": {"depth": 3}},
        },
        tmp_path / "a",
    )
    with Platform.open(bad_param) as platform, pytest.raises(Invalid, match="depth") as info:
        platform.run()
    assert "num_leaves" in info.value.hint

    bad_gate = make_project(
        {
            "data": spec,
            "model": {"task": "regression"},
            "gates": [{"metric": "test_auc", "min": 0.5}],
        },
        tmp_path / "b",
    )
    with (
        Platform.open(bad_gate) as platform,
        pytest.raises(InvalidConfig, match="test_auc") as gate,
    ):
        platform.run()
    assert "test_r2" in gate.value.hint


def test_cli_predict_writes_values_for_a_regression_model(
    prices_project: Path, tmp_path: Path
) -> None:
    import subprocess
    import sys

    with Platform.open(prices_project) as platform:
        platform.run()
    rows = house_prices(rows=4, seed=11).drop(columns=["price"])
    source = write(rows, tmp_path / "new-houses.csv")
    target = tmp_path / "scored.csv"
    done = subprocess.run(
        [sys.executable, "-m", "decisionloop", "predict", "prices", "-i", str(source),
         "-o", str(target), "-p", str(prices_project)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    scored = pd.read_csv(target)
    assert list(scored.columns) == [*rows.columns, "value"]
    assert "probability" not in scored.columns
    assert scored["value"].between(0, 1_000).all()


def test_init_makes_a_regression_project_of_a_numeric_target(tmp_path: Path) -> None:
    import subprocess
    import sys

    import yaml

    data = write(house_prices(), tmp_path / "houses.csv")
    folder = tmp_path / "houses"
    for args in (
        ["init", str(folder), "--data", str(data), "--target", "price"],
        ["run", str(folder)],
    ):
        done = subprocess.run(
            [sys.executable, "-m", "decisionloop", *args],
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
    document = yaml.safe_load((folder / "decisionloop.yaml").read_text())
    assert document["model"]["task"] == "regression"
    assert document["gates"] == [{"metric": "test_r2", "min": 0.5, "severity": "block"}]
    assert document["data"].get("positive") is None
    with Platform.open(folder) as platform:
        assert platform.get_version("houses@champion").metrics["test_r2"] > 0.5


def test_init_refuses_a_regression_of_text_or_with_a_positive_class(tmp_path: Path) -> None:
    from decisionloop.project import init_project

    data = write(house_prices(rows=50), tmp_path / "houses.csv")
    with pytest.raises(InvalidConfig, match="not numeric"):
        init_project(tmp_path / "a", data=data, target="district", task="regression")
    with pytest.raises(InvalidConfig, match="--positive"):
        init_project(tmp_path / "b", data=data, target="price", task="regression", positive="1")
    # auto: a text target with two values stays a classification
    loans = write(loan_defaults(rows=200), tmp_path / "loans.csv")
    init_project(tmp_path / "c", data=loans, target="status")
    assert "task: classification" in (tmp_path / "c" / "decisionloop.yaml").read_text()
