"""Model cards on a small trained project: the evaluation artifact, the card, its renderers
and the CLI command."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from decisionloop.cards import (
    build_card,
    load_evaluation,
    render_card,
    render_html,
    render_json,
    render_markdown,
    save_evaluation,
)
from decisionloop.cards.considerations import metric_label, retrain_conditions
from decisionloop.cards.evaluation import ARTIFACT_TAG, SHA256_TAG, recompute_evaluation
from decisionloop.errors import IntegrityError, Invalid
from decisionloop.platform import Platform
from tests.datasets import loan_defaults, write

DESCRIPTION = 'Loan risk <script>alert("x")</script> & more'


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    import yaml

    folder = tmp_path_factory.mktemp("loans-card")
    write(loan_defaults(), folder / "loans.csv")
    project = {
        "name": "loans",
        "description": DESCRIPTION,
        "data": {
            "source": "loans.csv",
            "target": "status",
            "positive": "default",
            "entity": "loan_ref",
            "sensitive": ["region"],
        },
        "gates": [{"metric": "test_auc", "min": 0.7, "severity": "block"}],
    }
    (folder / "decisionloop.yaml").write_text(yaml.safe_dump(project))
    with Platform.open(folder) as platform:
        platform.run()
        yield platform


def test_a_version_without_a_stored_evaluation_is_rescored_from_its_run(
    trained: Platform,
) -> None:
    # the loop stores the test rows with every version; a version registered before it did
    # has no such tags
    stored = load_evaluation(trained, "loans", 1)
    assert stored is not None
    assert stored.source == "stored"
    for tag in (ARTIFACT_TAG, SHA256_TAG):
        trained.delete_tag("loans/1", tag)
    version = trained.get_version("loans/1")
    assert load_evaluation(trained, "loans", 1) is None
    evaluation = recompute_evaluation(trained, version)
    assert evaluation is not None
    assert evaluation.source == "recomputed"
    assert evaluation.rows == version.params["split"]["test_rows"]
    assert set(evaluation.groups) == {"region"}
    # the rescored rows give back the AUC the loop recorded
    from sklearn.metrics import roc_auc_score

    auc = roc_auc_score(evaluation.y_true, evaluation.scores)
    assert auc == pytest.approx(version.metrics["test_auc"], abs=1e-6)
    # what the loop stored is what rescoring the recorded split gives
    assert (stored.y_true == evaluation.y_true).all()
    assert stored.scores == pytest.approx(evaluation.scores, abs=1e-9)


def test_a_saved_evaluation_round_trips_hash_verified(trained: Platform) -> None:
    version = trained.get_version("loans/1")
    computed = recompute_evaluation(trained, version)
    assert computed is not None
    key = save_evaluation(trained, "loans", 1, computed.y_true, computed.scores, computed.groups)
    tagged = trained.get_version("loans/1").tags
    assert tagged[ARTIFACT_TAG] == key
    assert len(tagged[SHA256_TAG]) == 64
    loaded = load_evaluation(trained, "loans", 1)
    assert loaded is not None
    assert loaded.source == "stored"
    np.testing.assert_array_equal(loaded.y_true, computed.y_true)
    np.testing.assert_allclose(loaded.scores, computed.scores)
    assert list(loaded.groups["region"]) == list(computed.groups["region"])
    card = build_card(trained, "loans/1")
    assert card.quantitative_analysis.evaluation_source == "stored"

    trained.set_tag("loans/1", SHA256_TAG, "0" * 64)
    try:
        with pytest.raises(IntegrityError):
            load_evaluation(trained, "loans", 1)
    finally:
        trained.set_tag("loans/1", SHA256_TAG, tagged[SHA256_TAG])


def test_save_evaluation_refuses_rows_of_different_lengths(trained: Platform) -> None:
    with pytest.raises(Invalid, match="equal length"):
        save_evaluation(trained, "loans", 1, [0, 1, 1], [0.2, 0.4])
    with pytest.raises(Invalid, match="region"):
        save_evaluation(trained, "loans", 1, [0, 1], [0.2, 0.4], {"region": ["a"]})


def test_the_card_is_filled_from_what_was_recorded(trained: Platform) -> None:
    card = build_card(trained, "loans@champion")
    details, params = card.model_details, card.model_parameters
    assert details.version_id == "loans/1"
    assert details.version == 1
    assert details.algorithm == "XGBoost (tree-based gradient boosting)"
    assert details.description == DESCRIPTION
    assert details.lineage.snapshot_rows == 800
    assert details.lineage.snapshot_hash == trained.get_version("loans/1").snapshot_hash
    assert details.lineage.environment_lock_hash
    assert params.training_rows == 640
    assert params.test_rows == 160
    # 3 numeric columns, has_guarantor as a flag; region one-hot is sensitive
    assert params.feature_count == len(params.feature_names) == 8
    assert {g.name for g in params.feature_groups} >= {"numeric", "sensitive"}
    auc = card.metric("auc")
    assert auc is not None
    assert auc.test == trained.get_version("loans/1").metrics["test_auc"]
    analysis = card.quantitative_analysis
    assert analysis.statistical_parity_column == "region"
    assert 0 < (analysis.statistical_parity or 0) <= 1
    assert analysis.roc_curve is not None
    assert analysis.roc_curve["fpr"][0] == 0.0
    assert analysis.expected_calibration_error is not None
    assert analysis.feature_importance[0][0] == "debt_ratio"  # the data's strongest driver
    assert card.considerations.usage.retrain_conditions == ("retrain if test AUC < 0.70",)
    assert card.considerations.usage.namespace == "production"
    # the loop measured drift of the test rows against the training rows: none here
    assert card.considerations.drift is not None
    assert not card.considerations.drift.dataset_drift
    assert [g.metric for g in card.gates] == ["test_auc"]
    assert card.gates_passed
    assert card.business_impact is None


def test_limitations_name_the_groups_that_under_perform(trained: Platform) -> None:
    card = build_card(trained, "loans/1")
    report = card.quantitative_analysis.fairness[0]
    recalls = {g["group"]: g["true_positive_rate"] for g in report.groups}
    worst = min(recalls, key=lambda g: recalls[g])
    limitations = "\n".join(card.considerations.limitations)
    assert f"region = {worst}: recall {recalls[worst]:.2f}" in limitations
    assert "no input drift against the training rows (test rows compared) yet" in limitations


def test_a_drift_report_is_summarised(trained: Platform) -> None:
    drift = {
        "share_drifted": 0.5,
        "dataset_drift": True,
        "drifted_columns": ["debt_ratio"],
        "columns": [
            {"column": "debt_ratio", "method": "ks", "statistic": 0.4, "drifted": True},
            {"column": "age", "method": "ks", "statistic": 0.01, "drifted": False},
        ],
    }
    card = build_card(trained, "loans/1", drift=drift, business_impact="$1M saved")
    assert card.considerations.drift is not None
    assert card.considerations.drift.drifted_columns == ("debt_ratio",)
    assert any("debt_ratio" in text for text in card.considerations.limitations)
    markdown = render_markdown(card)
    assert "50% of columns drifted (debt_ratio)" in markdown
    assert "## 7. Business Impact\n- $1M saved" in markdown
    assert render_html(card).count("data:image/png;base64,") == 5


def test_markdown_follows_the_chapters_layout(trained: Platform) -> None:
    markdown = render_markdown(build_card(trained, "loans/1"))
    headings = re.findall(r"^## (.+)$", markdown, flags=re.MULTILINE)
    assert headings[:4] == [
        "1. Model Details",
        "2. Performance",
        "3. Limitations",
        "4. Usage Notes",
    ]
    for field in ("**ID**: loans/1", "**Algorithm**: XGBoost", "**Training Data**: 640 loan"):
        assert field in markdown
    assert re.search(r"\*\*AUC\*\*: 0\.\d\d \(Train\), 0\.\d\d \(Test\)", markdown)
    assert "retrain if test AUC < 0.70" in markdown
    assert "## 7. Business Impact\n- not measured yet" in markdown


def test_html_is_self_contained_and_escapes_project_strings(trained: Platform) -> None:
    page = render_html(build_card(trained, "loans/1"))
    assert page.startswith("<!DOCTYPE html>")
    assert "<script" not in page
    assert "Loan risk &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; more" in page
    assert not re.search(r"(src|href)=\"(?!data:)", page)
    assert "http://" not in page
    assert "https://" not in page
    # ROC, calibration, importance, fairness and the drift measured at training
    assert page.count('src="data:image/png;base64,') == 5


def test_json_uses_the_model_card_toolkit_sections(trained: Platform) -> None:
    document = json.loads(render_json(build_card(trained, "loans/1")))
    for section in ("model_details", "model_parameters", "quantitative_analysis"):
        assert section in document
    assert document["considerations"]["usage"]["retrain_conditions"] == [
        "retrain if test AUC < 0.70"
    ]
    assert document["model_details"]["lineage"]["snapshot_rows"] == 800
    assert document["gates"][0]["passed"] is True
    with pytest.raises(Invalid, match="card format"):
        render_card(build_card(trained, "loans/1"), "pdf")


@pytest.mark.parametrize(
    ("metric", "label"),
    [("test_auc", "test AUC"), ("train_log_loss", "train log loss"), ("ece", "ECE")],
)
def test_metric_labels(metric: str, label: str) -> None:
    assert metric_label(metric) == label


def test_retrain_conditions_come_from_blocking_gates_only() -> None:
    report = {
        "results": [
            {"kind": "threshold", "metric": "test_auc", "min": 0.8, "severity": "block"},
            {"kind": "threshold", "metric": "test_ece", "max": 0.05, "severity": "block"},
            {"kind": "threshold", "metric": "test_f1", "min": 0.5, "severity": "warn"},
            {"kind": "champion", "metric": "test_auc", "severity": "block", "bound": "x"},
        ]
    }
    assert retrain_conditions(report) == (
        "retrain if test AUC < 0.80",
        "retrain if test ECE > 0.05",
    )


def test_the_card_command_writes_each_format(trained: Platform, tmp_path: Path) -> None:
    from decisionloop.cli.main import app

    runner = CliRunner()
    project = str(trained.settings.project_dir)
    shown = runner.invoke(app, ["card", "loans@champion", "--project", project])
    assert shown.exit_code == 0, shown.output
    assert "# Model Card \u2013 loans" in shown.stdout
    target = tmp_path / "card.html"
    written = runner.invoke(
        app, ["card", "loans/1", "-f", "html", "-o", str(target), "-p", project]
    )
    assert written.exit_code == 0, written.output
    assert target.read_text().startswith("<!DOCTYPE html>")
    as_json = runner.invoke(app, ["card", "loans/1", "--format", "json", "-p", project])
    assert json.loads(as_json.stdout)["model_details"]["version_id"] == "loans/1"
    wrong = runner.invoke(app, ["card", "loans/1", "--format", "pdf", "-p", project])
    assert wrong.exit_code != 0
    assert isinstance(wrong.exception, Invalid)
