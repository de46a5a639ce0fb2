"""ONNX export: every trainer and task, trained through the loop, scored by onnxruntime from
raw columns (a missing number, an unseen category) exactly as the bundle scores them."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from decisionloop.errors import Invalid, NotFound
from decisionloop.export.onnx import TOLERANCE, export_onnx, onnx_feeds
from decisionloop.platform import Platform
from decisionloop.registry.bundle import ModelBundle
from decisionloop.training.registry import TRAINERS
from tests.datasets import loan_defaults, write
from tests.e2e.test_cli_loop import cli

ort = pytest.importorskip("onnxruntime", reason="needs pip install 'decisionloop[onnx]'")

pytestmark = pytest.mark.slow

CASES = [(name, task) for name, cls in TRAINERS.items() for task in cls.tasks]
SMALL = {
    "xgboost": {"n_estimators": 30, "learning_rate": 0.3, "early_stopping_rounds": 5},
    "lightgbm": {"n_estimators": 30, "learning_rate": 0.3, "early_stopping_rounds": 5},
    "random_forest": {"n_estimators": 25},
    "gradient_boosting": {"n_estimators": 30, "early_stopping_rounds": 5},
}
#: the regression target: debt_ratio, from the other columns (status becomes a feature)
TARGETS = {"classification": "status", "regression": "debt_ratio"}


@pytest.fixture(scope="module")
def loans_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write(loan_defaults(rows=300), tmp_path_factory.mktemp("onnx-data") / "loans.csv")


def train(
    make_project: Callable[..., Path],
    folder: Path,
    data: Path,
    trainer: str,
    task: str,
    *,
    target: str | None = None,
) -> Path:
    project = make_project(
        {
            "name": "loans",
            "data": {
                "source": str(data),
                "target": target or TARGETS[task],
                "exclude": ["loan_ref"],
                **({"positive": "default"} if task == "classification" else {}),
            },
            "model": {"task": task, "trainer": trainer, "params": SMALL.get(trainer, {})},
            "gates": [],
        },
        folder,
    )
    with Platform.open(project) as platform:
        platform.run(tune=False)
    return project


def raw_rows() -> pd.DataFrame:
    """Raw rows as a caller sends them: a missing income, an unseen and a known region."""
    return pd.DataFrame(
        {
            "loan_ref": ["X-1", "X-2", "X-3", "X-4"],
            "applicant_income": [41_250.5, np.nan, 18_000.0, np.nan],
            "age": [34, 51, 29, 70],
            "has_guarantor": [True, False, False, True],
            "debt_ratio": [0.42, 1.05, 0.11, 0.77],
            "region": ["east", "north", "atlantis", "atlantis"],
            "status": ["repaid", "default", "repaid", "default"],
        }
    )


def score_onnx(path: Path, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [output.name for output in session.get_outputs()]
    return dict(zip(names, session.run(None, feeds), strict=True))


def hand_made_feeds(rows: pd.DataFrame, bundle: ModelBundle) -> dict[str, np.ndarray]:
    """The raw columns typed by hand (not through onnx_feeds), one array per input."""
    dtypes = {
        "applicant_income": "float64",
        "age": "int64",
        "has_guarantor": bool,
        "debt_ratio": "float64",
        "region": object,
        "status": object,
    }
    return {
        name: rows[name].to_numpy(dtype=dtypes[name]) for name in bundle.preprocessor.input_columns
    }


@pytest.mark.parametrize(("trainer", "task"), CASES)
def test_export_scores_raw_columns_like_the_bundle(
    trainer: str,
    task: str,
    make_project: Callable[..., Path],
    loans_csv: Path,
    tmp_path: Path,
) -> None:
    project = train(make_project, tmp_path / "project", loans_csv, trainer, task)
    target = tmp_path / "out" / "model.onnx"

    with Platform.open(project) as platform:
        result = export_onnx(platform, "loans@champion", target)
        _, bundle = platform.load_model("loans@champion")

    assert result.path == target
    assert result.sha256 == hashlib.sha256(target.read_bytes()).hexdigest()
    assert (result.model, result.version, result.flavor, result.task) == (
        "loans",
        1,
        trainer,
        task,
    )
    assert result.rows_checked > 240  # the snapshot's rows plus the edge rows
    assert 0 <= result.max_abs_diff <= TOLERANCE
    types = {tensor.name: tensor.onnx_type for tensor in result.inputs}
    assert types["applicant_income"] == "tensor(double)"
    assert types["age"] == "tensor(int64)"
    assert types["has_guarantor"] == "tensor(bool)"
    assert types["region"] == "tensor(string)"
    assert TARGETS[task] not in types
    assert "loan_ref" not in types

    rows = raw_rows().drop(columns=[TARGETS[task]])
    got = score_onnx(target, hand_made_feeds(rows, bundle))
    if task == "classification":
        assert [t.name for t in result.outputs] == ["probability", "label"]
        expected = bundle.predict_proba(rows)
        np.testing.assert_allclose(got["probability"], expected, rtol=0, atol=TOLERANCE)
        assert got["probability"].dtype == np.float64
        assert list(got["label"]) == bundle.labels(expected)
        assert set(got["label"]) <= {"default", "repaid"}
    else:
        assert [t.name for t in result.outputs] == ["value"]
        expected = bundle.predict_value(rows)
        np.testing.assert_allclose(got["value"], expected, rtol=0, atol=TOLERANCE)
    assert got[result.outputs[0].name].shape == (4,)  # one score per raw row


def test_unseen_category_encodes_as_no_category(
    make_project: Callable[..., Path], loans_csv: Path, tmp_path: Path
) -> None:
    project = train(
        make_project, tmp_path / "project", loans_csv, "logistic_regression", "classification"
    )
    with Platform.open(project) as platform:
        result = export_onnx(platform, "loans/1", tmp_path / "m.onnx")
        _, bundle = platform.load_model("loans/1")
    rows = raw_rows().drop(columns=["status"]).iloc[[2, 2]].reset_index(drop=True)
    rows.loc[1, "region"] = ""  # an empty string matches no category either
    got = score_onnx(result.path, onnx_feeds(rows, result.inputs))["probability"]

    model: Any = bundle.model
    coefficients = dict(zip(bundle.preprocessor.feature_names, model.coefficients, strict=True))
    row = rows.iloc[0]
    linear = model.intercept + sum(
        coefficients[name] * float(np.float32(row[name]))  # the features are float32
        for name in ("applicant_income", "age", "has_guarantor", "debt_ratio")
    )
    np.testing.assert_allclose(got, [1 / (1 + np.exp(-linear))] * 2, rtol=0, atol=1e-12)


def test_large_regression_values_are_compared_relative_to_their_size(
    make_project: Callable[..., Path], tmp_path: Path
) -> None:
    frame = loan_defaults(rows=300).dropna(subset=["applicant_income"])
    data = write(frame, tmp_path / "incomes.csv")
    project = train(
        make_project, tmp_path / "project", data, "random_forest", "regression",
        target="applicant_income",
    )  # fmt: skip

    with Platform.open(project) as platform:
        result = export_onnx(platform, "loans/1", tmp_path / "incomes.onnx")
        _, bundle = platform.load_model("loans/1")

    rows = raw_rows().drop(columns=["applicant_income"])
    expected = bundle.predict_value(rows)
    got = score_onnx(result.path, onnx_feeds(rows, result.inputs))["value"]
    assert expected.min() > 1_000  # incomes: float32 trees keep ~7 significant digits
    np.testing.assert_allclose(got, expected, rtol=TOLERANCE, atol=0)


def test_export_is_reproducible_and_described(
    make_project: Callable[..., Path], loans_csv: Path, tmp_path: Path
) -> None:
    import onnx

    project = train(make_project, tmp_path / "project", loans_csv, "xgboost", "classification")
    with Platform.open(project) as platform:
        first = export_onnx(platform, "loans@champion", tmp_path / "a.onnx")
        second = export_onnx(platform, "loans/1", tmp_path / "b.onnx")
        version = platform.get_version("loans/1")

    assert first.sha256 == second.sha256
    model = onnx.load(str(first.path))
    props = {p.key: p.value for p in model.metadata_props}
    assert props["decisionloop.model"] == "loans"
    assert props["decisionloop.version"] == "1"
    assert props["decisionloop.flavor"] == "xgboost"
    assert props["decisionloop.artifact_sha256"] == version.artifact_sha256
    assert json.loads(props["decisionloop.classes"]) == ["repaid", "default"]
    assert {o.domain or "ai.onnx": o.version for o in model.opset_import}["ai.onnx"] == 15
    assert not list(tmp_path.glob(".*.onnx*"))  # no temporary file left behind


def test_export_errors(make_project: Callable[..., Path], loans_csv: Path, tmp_path: Path) -> None:
    project = train(make_project, tmp_path / "project", loans_csv, "lightgbm", "classification")
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with Platform.open(project) as platform:
        with pytest.raises(NotFound):
            export_onnx(platform, "loans/7", tmp_path / "m.onnx")
        with pytest.raises(Invalid, match="cannot write") as caught:
            export_onnx(platform, "loans/1", blocker / "m.onnx")
        assert "folder you can write to" in caught.value.hint
        with pytest.raises(Invalid, match="Is a directory"):
            export_onnx(platform, "loans/1", tmp_path)
    assert blocker.read_text() == "not a folder"


@pytest.fixture(scope="module")
def cli_project(tmp_path_factory: pytest.TempPathFactory, loans_csv: Path) -> Path:
    folder = tmp_path_factory.mktemp("onnx-cli") / "loans"
    cli("init", str(folder), "--data", str(loans_csv), "--target", "status")
    cli("run", str(folder))
    return folder


def test_cli_writes_the_file_and_prints_json(cli_project: Path, tmp_path: Path) -> None:
    target = tmp_path / "exported" / "loans.onnx"

    result = cli(
        "export", "onnx", "loans@champion", "--output", str(target),
        "-p", str(cli_project), "--json",
    )  # fmt: skip

    shown = json.loads(result.stdout)
    assert shown["path"] == str(target)
    assert shown["sha256"] == hashlib.sha256(target.read_bytes()).hexdigest()
    assert (shown["model"], shown["version"], shown["task"]) == ("loans", 1, "classification")
    assert [o["name"] for o in shown["outputs"]] == ["probability", "label"]
    assert {i["name"]: i["type"] for i in shown["inputs"]}["region"] == "tensor(string)"
    assert 0 <= shown["max_abs_diff"] <= TOLERANCE

    table = cli("export", "onnx", "loans/1", "-o", str(target), "-p", str(cli_project))
    assert "probability tensor(double)" in table.stdout
    assert shown["sha256"] in table.stdout


@pytest.mark.parametrize(
    ("ref", "output", "message"),
    [
        ("loans/9", "m.onnx", "has no version 9"),
        ("nope@champion", "m.onnx", "nope"),
        ("loans/1", "blocker/m.onnx", "cannot write"),
    ],
)
def test_cli_errors_are_one_line_exit_2(
    cli_project: Path, tmp_path: Path, ref: str, output: str, message: str
) -> None:
    (tmp_path / "blocker").write_text("a file where a folder should be")

    result = cli(
        "export", "onnx", ref, "--output", str(tmp_path / output), "-p", str(cli_project),
        check=False,
    )  # fmt: skip

    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert message in lines[0]
    assert not (tmp_path / "m.onnx").exists()
