"""The MLflow side of benchmarks/registry.py; runs in its own virtual environment.

Not for direct use: registry.py writes a JSON config and runs

    .venvs/mlflow/bin/python _mlflow_side.py run CONFIG.json         timings as JSON on stdout
    .venvs/mlflow/bin/python _mlflow_side.py score-once CONFIG.json  load the champion, score 1 row

Only the standard library is imported at module level, so a fresh process pays for exactly
what each mode needs. Every timing is a list of seconds; the parent takes the medians.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

MARKER = "BENCH-JSON "
NAME = "churn"
ALIAS = "champion"
#: given explicitly in the registration loop: MLflow's default (inferring the requirements by
#: loading the model in a subprocess) costs seconds per version and is measured separately
PIP_REQUIREMENTS = ["mlflow", "xgboost", "pandas", "scikit-learn"]
#: the bulk-registered versions are tagged TAG_KEY = i % TAG_SPREAD; the tag search asks for one
TAG_KEY, TAG_SPREAD, TAG_VALUE = "batch", 10, "3"
TAG_FILTER = f"tags.{TAG_KEY}='{TAG_VALUE}'"
REGISTRY_KEYS = ("register", "tag", "search_name", "search_tag", "set_alias", "resolve")


def encode(frame: Any, features: list[str], categorical: list[str], columns: Any = None) -> Any:
    """Raw columns to the model's float matrix: a plain one-hot in pandas."""
    import pandas as pd

    x = pd.get_dummies(frame[features], columns=categorical, dtype="float64")
    if columns is not None:
        x = x.reindex(columns=list(columns), fill_value=0.0)
    return x.astype("float64")


def binary_metrics(y_true: Any, proba: Any, threshold: float) -> dict[str, float]:
    """The same eight metrics DecisionLoop records per split."""
    import numpy as np
    from sklearn.metrics import (
        accuracy_score,
        brier_score_loss,
        f1_score,
        log_loss,
        precision_score,
        recall_score,
        roc_auc_score,
    )

    predicted = (proba >= threshold).astype(int)
    clipped = np.clip(proba, 1e-7, 1 - 1e-7)
    return {
        "auc": float(roc_auc_score(y_true, proba)),
        "accuracy": float(accuracy_score(y_true, predicted)),
        "log_loss": float(log_loss(y_true, clipped, labels=[0, 1])),
        "precision": float(precision_score(y_true, predicted, zero_division=0)),
        "recall": float(recall_score(y_true, predicted, zero_division=0)),
        "f1": float(f1_score(y_true, predicted, zero_division=0)),
        "brier": float(brier_score_loss(y_true, proba)),
        "positive_rate": float(np.mean(y_true)),
    }


def log_register_alias(
    model: Any,
    *,
    client: Any,
    params: dict[str, Any],
    metrics: dict[str, float],
    signature: Any,
    pip_requirements: list[str] | None,
) -> int:
    """One registry write as an MLflow user does it: run, params, metrics, model, version, alias."""
    import mlflow
    import mlflow.xgboost

    with mlflow.start_run():
        mlflow.log_params(params)
        mlflow.log_metrics(metrics)
        info = mlflow.xgboost.log_model(
            model, name="model", signature=signature, pip_requirements=pip_requirements
        )
        version = mlflow.register_model(info.model_uri, NAME)
        client.set_registered_model_alias(NAME, ALIAS, version.version)
    return int(version.version)


def xgb_classifier(params: dict[str, Any]) -> Any:
    """The model both sides train, as a user writes it with XGBoost's scikit-learn API."""
    import xgboost as xgb

    return xgb.XGBClassifier(
        n_estimators=params["n_estimators"],
        max_depth=params["max_depth"],
        learning_rate=params["learning_rate"],
        subsample=params["subsample"],
        colsample_bytree=params["colsample_bytree"],
        min_child_weight=params["min_child_weight"],
        early_stopping_rounds=params["early_stopping_rounds"],
        random_state=params["seed"],
        objective="binary:logistic",
        eval_metric="logloss",
    )


def read_encoded(config: dict[str, Any]) -> tuple[Any, Any]:
    """The CSV as the model's one-hot float matrix and the 0/1 target."""
    import pandas as pd

    raw = pd.read_csv(config["csv"])
    x = encode(raw, config["features"], config["categorical"])
    y = (raw[config["target"]].astype(str) == config["positive"]).to_numpy(dtype="int32")
    return x, y


def train_log_register(config: dict[str, Any], client: Any) -> tuple[Any, dict[str, float], Any]:
    """The end-to-end equivalent of ``platform.run()``: read, encode, train, evaluate, register."""
    from mlflow.models import infer_signature

    x, y = read_encoded(config)
    split = config["split"]
    params = config["params"]
    model = xgb_classifier(params)
    fit, valid = split["fit"], split["valid"]
    model.fit(x.iloc[fit], y[fit], eval_set=[(x.iloc[valid], y[valid])], verbose=False)
    threshold = config["threshold"]
    metrics: dict[str, float] = {}
    for part in ("train", "test"):
        rows = split[part]
        proba = model.predict_proba(x.iloc[rows])[:, 1]
        metrics.update(
            {f"{part}_{k}": v for k, v in binary_metrics(y[rows], proba, threshold).items()}
        )
    x_train = x.iloc[split["train"]]
    signature = infer_signature(x_train, model.predict(x_train))
    log_register_alias(
        model,
        client=client,
        params=params,
        metrics=metrics,
        signature=signature,
        pip_requirements=PIP_REQUIREMENTS,
    )
    return model, metrics, signature


def run(config: dict[str, Any]) -> dict[str, Any]:
    import mlflow
    import mlflow.pyfunc
    import mlflow.xgboost
    import pandas as pd
    import sklearn.metrics  # noqa: F401  (imported before any timing, as on our side)
    import xgboost  # noqa: F401
    from mlflow import MlflowClient

    sizes = config["sizes"]
    work = Path(config["workdir"])
    work.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{work / 'mlflow.db'}"
    times: dict[str, list[float]] = {}
    clock = time.perf_counter

    start = clock()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    client = MlflowClient()
    experiment = client.create_experiment(NAME, artifact_location=(work / "artifacts").as_uri())
    mlflow.set_experiment(experiment_id=experiment)
    times["setup"] = [clock() - start]  # creates the schema (excluded from the table)

    # the first run in a process also pays lazy imports: timed apart, left out of the table
    start = clock()
    train_log_register(config, client)
    times["end_to_end_first"] = [clock() - start]
    times["end_to_end"] = []
    for _ in range(sizes["end_to_end"]):
        start = clock()
        model, metrics, signature = train_log_register(config, client)
        times["end_to_end"].append(clock() - start)

    booster = model.get_booster()
    params = config["params"]

    def register_copies(key: str, count: int, pip_requirements: list[str] | None) -> None:
        times[key] = []
        for i in range(count):
            start = clock()
            # a distinct model per version (as on our side), so nothing is deduplicated
            booster.set_attr(benchmark_copy=f"{key}-{i}")
            log_register_alias(
                model,
                client=client,
                params=params,
                metrics=metrics,
                signature=signature,
                pip_requirements=pip_requirements,
            )
            times[key].append(clock() - start)

    register_copies("register_default_requirements", sizes["register_default"], None)
    register_copies("save_register_alias", sizes["save_register_alias"], PIP_REQUIREMENTS)
    times.update(training_overhead(config, client, metrics))
    times.update(registry_operations(client, sizes))

    raw = pd.read_csv(config["csv"])
    features, categorical = config["features"], config["categorical"]
    one_row = raw.iloc[[config["one_row"]]]
    batch = raw.iloc[config["batch_rows"]]
    uri_champion = f"models:/{NAME}@{ALIAS}"

    times["cold_load_predict_1"] = []
    for _ in range(sizes["cold"]):
        start = clock()
        loaded = mlflow.pyfunc.load_model(uri_champion)
        columns = loaded.metadata.get_input_schema().input_names()
        loaded.predict(encode(one_row, features, categorical, columns))
        times["cold_load_predict_1"].append(clock() - start)

    columns = loaded.metadata.get_input_schema().input_names()
    times["predict_batch_raw"] = []
    for _ in range(sizes["batch"]):
        start = clock()
        loaded.predict(encode(batch, features, categorical, columns))
        times["predict_batch_raw"].append(clock() - start)

    encoded = encode(batch, features, categorical, columns)
    times["predict_batch_encoded"] = []
    for _ in range(sizes["batch"]):
        start = clock()
        loaded.predict(encoded)
        times["predict_batch_encoded"].append(clock() - start)

    times["load_warm"] = []  # imports done, nothing cached: what every load_model call costs
    for _ in range(sizes["load_warm"]):
        start = clock()
        mlflow.pyfunc.load_model(uri_champion)
        times["load_warm"].append(clock() - start)

    versions = client.search_model_versions(f"name='{NAME}'")
    return {
        "times": times,
        "test_auc": metrics["test_auc"],
        "versions": len(versions),
        "tag_matches": len(client.search_model_versions(f"tags.{TAG_KEY}='{TAG_VALUE}'")),
        "tracking_uri": uri,
    }


def registry_operations(client: Any, sizes: dict[str, int]) -> dict[str, list[float]]:
    """Metadata-only registry calls: register (pointing at the champion's logged model), tag,
    search by name and by tag, move the alias, resolve it."""
    clock = time.perf_counter
    times: dict[str, list[float]] = {key: [] for key in REGISTRY_KEYS}
    champion = client.get_model_version_by_alias(NAME, ALIAS)
    bulk: list[int] = []
    for _ in range(sizes["register"]):
        start = clock()
        version = client.create_model_version(
            NAME, champion.source, run_id=champion.run_id, model_id=champion.model_id
        )
        times["register"].append(clock() - start)
        bulk.append(int(version.version))
    for i, number in enumerate(bulk):
        start = clock()
        client.set_model_version_tag(NAME, str(number), TAG_KEY, str(i % TAG_SPREAD))
        times["tag"].append(clock() - start)
    for key, query in (("search_name", f"name='{NAME}'"), ("search_tag", TAG_FILTER)):
        for _ in range(sizes["search"]):
            start = clock()
            client.search_model_versions(query)
            times[key].append(clock() - start)
    for i in range(sizes["alias"]):
        start = clock()
        client.set_registered_model_alias(NAME, ALIAS, bulk[-1 - i % 2])
        times["set_alias"].append(clock() - start)
    client.set_registered_model_alias(NAME, ALIAS, bulk[-1])
    for _ in range(sizes["resolve"]):
        start = clock()
        client.get_model_version_by_alias(NAME, ALIAS)
        times["resolve"].append(clock() - start)
    return times


def training_overhead(
    config: dict[str, Any], client: Any, metrics: dict[str, float]
) -> dict[str, list[float]]:
    """A bare ``XGBClassifier.fit`` against the same fit inside an MLflow run that records what
    DecisionLoop's run records: params, the per-round validation curve, best iteration, metrics."""
    import mlflow
    from mlflow.entities import Metric, Param

    x, y = read_encoded(config)
    fit, valid = config["split"]["fit"], config["split"]["valid"]
    x_fit, y_fit, x_valid, y_valid = x.iloc[fit], y[fit], x.iloc[valid], y[valid]
    params = config["params"]
    clock = time.perf_counter
    times: dict[str, list[float]] = {"train_bare": [], "train_tracked": []}
    for _ in range(config["sizes"]["training"]):
        start = clock()
        xgb_classifier(params).fit(x_fit, y_fit, eval_set=[(x_valid, y_valid)], verbose=False)
        times["train_bare"].append(clock() - start)

        start = clock()
        with mlflow.start_run() as run:
            mlflow.log_params(params)
            model = xgb_classifier(params)
            model.fit(x_fit, y_fit, eval_set=[(x_valid, y_valid)], verbose=False)
            now = int(time.time() * 1000)
            curve = model.evals_result()["validation_0"]["logloss"]
            client.log_batch(
                run.info.run_id,
                metrics=[
                    Metric("validation_logloss", float(v), now, step)
                    for step, v in enumerate(curve)
                ],
                params=[Param("best_iteration", str(model.best_iteration))],
                synchronous=True,
            )
            mlflow.log_metrics(metrics)
        times["train_tracked"].append(clock() - start)
    return times


def score_once(config: dict[str, Any]) -> None:
    """A fresh process: import, load the champion from the registry, score one raw row."""
    import mlflow
    import mlflow.pyfunc
    import pandas as pd

    mlflow.set_tracking_uri(config["tracking_uri"])
    loaded = mlflow.pyfunc.load_model(f"models:/{NAME}@{ALIAS}")
    columns = loaded.metadata.get_input_schema().input_names()
    row = pd.DataFrame([config["row"]])
    loaded.predict(encode(row, config["features"], config["categorical"], columns))


def main() -> None:
    mode, path = sys.argv[1], sys.argv[2]
    config = json.loads(Path(path).read_text())
    if mode == "run":
        print(MARKER + json.dumps(run(config)), flush=True)
    elif mode == "score-once":
        score_once(config)
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main()
