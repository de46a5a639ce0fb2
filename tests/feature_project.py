"""A small churn project whose model trains and serves through the feature store: a customer
history data set, a profile view (TTL 30 days), SQL and Python on-demand views, two services."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import yaml

NOW = datetime.now(UTC).replace(microsecond=0)
DAY = timedelta(days=1)


def iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def history() -> pd.DataFrame:
    """Customers c000..c199 with a profile 20 days ago; c000 also has an older (40 days) and a
    newer (5 days ago) row; c001's only row is 90 days old (beyond the 30-day TTL)."""
    rows = []
    for i in range(200):
        spend = 20.0 + (i % 10) * 10.0
        when = NOW - (90 * DAY if i == 1 else 20 * DAY)
        rows.append((f"c{i:03d}", iso(when), "pro" if i % 3 else "basic", spend, i % 7))
    rows.append(("c000", iso(NOW - 40 * DAY), "basic", 5.0, 1))
    rows.append(("c000", iso(NOW - 5 * DAY), "pro", 99.0, 9))
    return pd.DataFrame(rows, columns=["customer_id", "updated_at", "plan", "spend", "visits"])


def labels() -> pd.DataFrame:
    """Labels observed 10 days ago: churn when spend is low (a learnable signal)."""
    return pd.DataFrame(
        {
            "customer_id": [f"c{i:03d}" for i in range(200)],
            "observed_at": [iso(NOW - 10 * DAY)] * 200,
            "churned": ["yes" if (20.0 + (i % 10) * 10.0) < 60 else "no" for i in range(200)],
        }
    )


FEATURES_MODULE = """
from decisionloop.features import OnDemandFeatureView


def visit_band(row):
    visits = row["visits"]
    return {"visit_band": None if visits is None else ("high" if visits >= 4 else "low")}


definitions = [
    OnDemandFeatureView(
        name="bands",
        sources=["profile"],
        outputs={"visit_band": "string"},
        function="features:visit_band",
        mode="row",
    )
]
"""


def document(online_url: str) -> dict[str, object]:
    return {
        "name": "churnlite",
        "data": {
            "source": "data/labels.csv",
            "target": "churned",
            "positive": "yes",
            "entity": "customer_id",
            "timestamp": "observed_at",
            "features": "churn_svc",
            "columns": {
                "customer_id": {"type": "string", "nullable": False},
                "observed_at": {"type": "datetime", "nullable": False},
                "churned": {"type": "string", "allowed": ["no", "yes"]},
            },
        },
        "datasets": {
            "history": {
                "source": "data/history.csv",
                "columns": {
                    "customer_id": {"type": "string", "nullable": False},
                    "updated_at": {"type": "datetime", "nullable": False},
                    "plan": {"type": "string"},
                    "spend": {"type": "number"},
                    "visits": {"type": "integer"},
                },
                "contract": {"key": ["customer_id", "updated_at"]},
            }
        },
        "features": {
            "module": "features.py",
            "log_sample_rate": 1.0,
            "entities": {"customer": {"join_key": "customer_id"}},
            "views": {
                "profile": {
                    "entity": "customer",
                    "source": "history",
                    "timestamp": "updated_at",
                    "ttl": "30d",
                    "features": {"plan": "string", "spend": "number", "visits": "integer"},
                }
            },
            "on_demand": {
                "ratios": {
                    "sources": ["profile"],
                    "request": {"discount": "number"},
                    "outputs": {"spend_per_visit": "number", "net_spend": "number"},
                    "sql": {
                        "spend_per_visit": "spend / NULLIF(visits, 0)",
                        "net_spend": "spend - discount",
                    },
                }
            },
            "services": {
                "churn_svc": {"features": ["profile", "bands"]},
                "with_request": {"features": ["profile:spend", "ratios"]},
            },
        },
        "model": {"params": {"n_estimators": 20, "max_depth": 2}, "seed": 7},
        "gates": [],
        "storage": {"online_url": online_url},
    }


def write_feature_project(
    folder: Path, online_url: str = "sqlite:///.decisionloop/online.db"
) -> Path:
    """Write the project (data, features.py, decisionloop.yaml) into ``folder``."""
    (folder / "data").mkdir(parents=True, exist_ok=True)
    history().to_csv(folder / "data" / "history.csv", index=False)
    labels().to_csv(folder / "data" / "labels.csv", index=False)
    (folder / "features.py").write_text(FEATURES_MODULE)
    (folder / "decisionloop.yaml").write_text(yaml.safe_dump(document(online_url)))
    return folder
