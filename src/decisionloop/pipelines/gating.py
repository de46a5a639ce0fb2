"""The loop's verdict on a candidate and what it keeps of it: the project's gates evaluated
with the fairness and drift reports and, when a champion gate asks, the @champion's scores on
the same test rows; then the reports and test rows stored with the registered version."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from decisionloop.errors import DecisionLoopError
from decisionloop.pipelines.assess import store_reports

if TYPE_CHECKING:
    from decisionloop.pipelines.loop import Prepared, Trained
    from decisionloop.platform import Platform


def keep_evaluation(
    platform: Platform,
    version: int,
    prepared: Prepared,
    trained: Trained,
    reports: Mapping[str, Any],
) -> None:
    """Store what the version's card and later comparisons need: the fairness and drift
    reports, and the test rows' labels, scores and sensitive columns."""
    from decisionloop.cards.evaluation import save_evaluation

    settings = platform.settings
    store_reports(platform, settings.name, version, reports)
    test_frame = prepared.frame.iloc[prepared.split.test_index]
    sensitive = settings.data.sensitive if settings.data else []
    groups = {c: test_frame[c].to_numpy() for c in sensitive if c in test_frame.columns}
    save_evaluation(platform, settings.name, version, trained.y_test, trained.test_scores, groups)


def gate_version(
    platform: Platform,
    prepared: Prepared,
    trained: Trained,
    reports: Mapping[str, Mapping[str, Any]] | None = None,
) -> Any:
    """Evaluate the project's gates on a trained candidate; the @champion is loaded and scored
    on the same test rows only when a champion gate asks for it. ``reports`` carries the
    fairness and drift reports' ``to_dict()`` under ``"fairness"`` and ``"drift"``."""
    from decisionloop.evaluation.gates import GateContext, evaluate_gates

    settings = platform.settings
    model_spec = settings.model
    test_frame = prepared.frame.iloc[prepared.split.test_index]
    context = GateContext(
        metrics=trained.metrics,
        y_true=trained.y_test,
        scores=trained.test_scores,
        task=model_spec.task,
        threshold=model_spec.threshold,
        test_frame=test_frame,
        model=settings.name,
    )
    wants_champion = any(gate.kind == "champion" for gate in settings.gates)
    return evaluate_gates(
        settings.gates,
        trained.metrics,
        context=context,
        champion=champion_scores(platform, prepared, test_frame) if wants_champion else None,
        reports=reports,
        project_dir=settings.project_dir,
        seed=model_spec.seed,
    )


def champion_scores(platform: Platform, prepared: Prepared, test_frame: Any) -> Any:
    """The current @champion's scores on the candidate's raw test rows, or a note saying why
    it cannot be compared (none yet, another task or positive class, inputs missing)."""
    from decisionloop.errors import NotFound
    from decisionloop.evaluation.gates import ChampionScores
    from decisionloop.pipelines.loop import CHAMPION

    settings = platform.settings
    try:
        version, bundle = platform.load_model(f"{settings.name}@{CHAMPION}")
    except NotFound:
        return ChampionScores(None, note="no @champion yet, nothing to compare with")
    number = version.version
    if bundle.task != settings.model.task:
        return ChampionScores(number, note=f"@champion (version {number}) is a {bundle.task} model")
    missing = sorted(set(bundle.preprocessor.input_columns) - set(test_frame.columns))
    if missing:
        note = (
            f"@champion (version {number}) needs columns the test rows lack: {', '.join(missing)}"
        )
        return ChampionScores(number, note=note)
    if bundle.task == "classification" and bundle.positive_label != prepared.positive:
        note = f"@champion (version {number}) predicts another positive class"
        return ChampionScores(number, note=note)
    try:
        scored = (
            bundle.predict_value(test_frame)
            if bundle.task == "regression"
            else bundle.predict_proba(test_frame)
        )
    except DecisionLoopError as exc:
        note = f"@champion (version {number}) cannot score the test rows ({exc.message})"
        return ChampionScores(number, note=note)
    return ChampionScores(number, scores=scored)
