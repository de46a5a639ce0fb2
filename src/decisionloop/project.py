"""`decisionloop init`: profile a data file and write the project file. No code needed."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Literal

from decisionloop.config import PROJECT_FILE, STATE_DIR, dump_project_file, load_settings
from decisionloop.errors import Conflict, InvalidConfig

DEFAULT_GATES = [{"metric": "test_auc", "min": 0.7, "severity": "block"}]
#: a regression model must explain at least half of the target's variance on held-out rows
REGRESSION_GATES = [{"metric": "test_r2", "min": 0.5, "severity": "block"}]

TaskChoice = Literal["auto", "classification", "regression"]


def init_project(
    folder: Path,
    *,
    data: Path,
    target: str,
    positive: str | None = None,
    entity: str | None = None,
    timestamp: str | None = None,
    sensitive: list[str] | None = None,
    name: str | None = None,
    copy_data: bool = False,
    force: bool = False,
    task: TaskChoice = "auto",
) -> Path:
    """Profile ``data`` and write ``folder/decisionloop.yaml``; returns the file's path.

    ``task="auto"`` makes a regression project of a numeric target with more than two
    distinct values and a (binary) classification project of anything else."""
    from decisionloop.data.labels import infer_positive, label_text, target_classes
    from decisionloop.data.profile import identifier_like, profile_columns
    from decisionloop.data.sources import read_table

    folder = folder.resolve()
    project_file = folder / PROJECT_FILE
    if project_file.exists() and not force:
        raise Conflict(f"{project_file} exists already", hint="pass --force to overwrite it")
    frame = read_table(str(data.resolve()))
    sensitive = sensitive or []
    for option, column in [
        ("--target", target),
        ("--entity", entity),
        ("--timestamp", timestamp),
    ] + [("--sensitive", s) for s in sensitive]:
        if column is not None and column not in frame.columns:
            raise InvalidConfig(
                f"{option} {column!r} is not a column of {data}",
                hint=f"columns are: {', '.join(map(str, frame.columns[:20]))}",
            )
    if task == "auto":
        task = "regression" if _numeric_target(frame[target]) else "classification"
    if task == "regression":
        if positive is not None:
            raise InvalidConfig(
                "--positive names a class; a regression target has none",
                hint="drop --positive, or pass --task classification",
            )
        if not _numeric_target(frame[target], min_values=2):
            raise InvalidConfig(
                f"--target {target!r} is not numeric: a regression needs a numeric target",
                hint="pass --task classification, or choose a numeric column",
            )
    else:
        classes = target_classes(frame[target], target)
        if positive is None:
            positive = infer_positive(frame[target], target)
        elif label_text(positive) not in classes:
            raise InvalidConfig(
                f"--positive {positive!r} is not a value of {target!r} ({', '.join(classes)})",
                hint="pass one of the target's values",
            )
    if timestamp is not None:
        import pandas as pd

        frame[timestamp] = pd.to_datetime(frame[timestamp], errors="coerce", utc=True)
    columns = profile_columns(frame)
    exclude = [c for c in identifier_like(frame) if c not in (target, entity)]
    folder.mkdir(parents=True, exist_ok=True)
    source: str
    if copy_data:
        (folder / "data").mkdir(exist_ok=True)
        target_path = folder / "data" / data.name
        if data.resolve() != target_path.resolve():
            shutil.copyfile(data, target_path)
        source = f"data/{data.name}"
    else:
        source = _relative_or_absolute(data.resolve(), folder)
    document: dict[str, Any] = {
        "name": name or _model_name(folder.name),
        "description": (
            f"Predicts {target} from {data.name}."
            if task == "regression"
            else f"Predicts {target} = {positive} from {data.name}."
        ),
        "data": {
            "source": source,
            "target": target,
            "positive": label_text(positive) if positive is not None else None,
            "entity": entity,
            "timestamp": timestamp,
            "sensitive": sensitive,
            "exclude": exclude,
            "columns": {
                n: contract_entry(frame[n], spec, n == entity) for n, spec in columns.items()
            },
            "contract": {"key": [entity]} if entity else {},
        },
        "model": {
            "task": task,
            "trainer": "xgboost",
            "params": {"n_estimators": 300, "max_depth": 4, "learning_rate": 0.05},
            "test_size": 0.2,
            "seed": 42,
            **({"threshold": 0.5} if task == "classification" else {}),
        },
        "gates": REGRESSION_GATES if task == "regression" else DEFAULT_GATES,
    }
    project_file.write_text(dump_project_file(document), encoding="utf-8")
    gitignore = folder / ".gitignore"
    if not gitignore.exists():
        gitignore.write_text(f"{STATE_DIR}/\n", encoding="utf-8")
    load_settings(folder)  # what we wrote must load
    return project_file


def _numeric_target(series: Any, min_values: int = 3) -> bool:
    """A number column (not boolean) with at least ``min_values`` distinct values."""
    import pandas as pd

    if pd.api.types.is_bool_dtype(series) or not pd.api.types.is_numeric_dtype(series):
        return False
    return bool(series.nunique(dropna=True) >= min_values)


#: string columns with at most this many distinct values get an `allowed` list
MAX_ALLOWED_VALUES = 20


def contract_entry(series: Any, spec: Any, is_entity: bool) -> dict[str, Any]:
    """A column's contract as profiled: type, nullability, the allowed values of a small
    category, and a learned outlier range (a warning) for numbers. Tighten it by hand."""
    entry: dict[str, Any] = {"type": spec.type}
    if not spec.nullable:
        entry["nullable"] = False
    if is_entity:
        return entry
    if spec.type == "string":
        values = sorted(str(v) for v in series.dropna().unique())
        if 0 < len(values) <= MAX_ALLOWED_VALUES:
            entry["allowed"] = values
    elif spec.type in ("integer", "number") and series.nunique() > MAX_ALLOWED_VALUES:
        entry["outliers"] = {"method": "iqr", "factor": 3.0, "severity": "warn"}
    return entry


def _relative_or_absolute(path: Path, folder: Path) -> str:
    try:
        return path.relative_to(folder).as_posix()
    except ValueError:
        return str(path)


def _model_name(folder_name: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "_.-" else "-" for c in folder_name).strip("-._")
    if not cleaned or not cleaned[0].isalpha():
        cleaned = f"model-{cleaned}" if cleaned else "model"
    return cleaned[:100]
