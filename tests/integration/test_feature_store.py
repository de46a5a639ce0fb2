"""The feature store end to end on a small project, with the online store on SQLite and on a
real Redis: plan/apply, point-in-time training sets, incremental materialization, TTL on read,
the skew check, training through a service and serving by entity id."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import yaml
from starlette.testclient import TestClient

from decisionloop.errors import Conflict, NotFound
from decisionloop.platform import Platform
from tests.feature_project import DAY, NOW, history, iso, write_feature_project


@pytest.fixture(params=["sqlite", "redis"])
def project(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Path]:
    if request.param == "redis":
        redis_url: str = request.getfixturevalue("redis_url")
        prefix = f"dltest{uuid.uuid4().hex[:10]}"
        online_url = f"{redis_url}?prefix={prefix}"
    else:
        online_url = "sqlite:///.decisionloop/online.db"
    yield write_feature_project(tmp_path, online_url)
    if request.param == "redis":
        import redis

        client = redis.Redis.from_url(redis_url)
        for key in client.scan_iter(f"{prefix}:*"):
            client.delete(key)
        client.close()


@pytest.fixture
def platform(project: Path) -> Iterator[Platform]:
    with Platform.open(project) as opened:
        opened.dataset("history").ingest()
        yield opened


def test_plan_then_apply_records_every_definition(platform: Platform, project: Path) -> None:
    plan = platform.features.plan()
    assert {(c.action, c.kind, c.name) for c in plan.changes} == {
        ("add", "entity", "customer"),
        ("add", "feature_view", "profile"),
        ("add", "on_demand_feature_view", "ratios"),
        ("add", "on_demand_feature_view", "bands"),
        ("add", "feature_service", "churn_svc"),
        ("add", "feature_service", "with_request"),
    }
    platform.features.apply()
    assert platform.features.plan().pending == []
    assert len(platform.metadata.features.list_definitions()) == 6

    document = yaml.safe_load((project / "decisionloop.yaml").read_text())
    document["features"]["views"]["profile"]["description"] = "customer profile"
    del document["features"]["services"]["with_request"]
    (project / "decisionloop.yaml").write_text(yaml.safe_dump(document))
    with Platform.open(project) as reopened:
        pending = {(c.action, c.name): c for c in reopened.features.plan().pending}
        assert set(pending) == {("change", "profile"), ("remove", "with_request")}
        assert pending[("change", "profile")].details == ["description: '' -> 'customer profile'"]
        # not applied yet: lookups refuse to serve what was not reviewed
        with pytest.raises(Conflict):
            reopened.features.get_online_features("churn_svc", [{"customer_id": "c002"}])
        reopened.features.apply()
        history = reopened.metadata.features.definition_history("feature_view", "profile")
        assert len(history) == 2


def test_training_set_is_point_in_time_correct(platform: Platform) -> None:
    platform.features.apply()
    entity = pd.DataFrame(
        {
            "customer_id": ["c000", "c000", "c000", "c001", "c002", "zzz"],
            "at": [
                NOW - 30 * DAY,  # the 40-day-old row (10 days old then)
                NOW - 10 * DAY,  # the 20-day-old row; the 5-day-old one is in its future
                NOW,  # the newest row
                NOW - 10 * DAY,  # its only row is 80 days old then: beyond the 30-day TTL
                NOW - 25 * DAY,  # before c002's only row
                NOW,  # unknown customer
            ],
            "label": [1, 0, 1, 0, 1, 0],
        }
    )
    training = platform.features.get_historical_features(
        entity, service="churn_svc", timestamp="at"
    )
    frame = training.to_pandas()
    assert list(frame["customer_id"]) == list(entity["customer_id"])
    assert list(frame["label"]) == [1, 0, 1, 0, 1, 0]
    spend = frame["spend"].tolist()
    assert spend[:3] == [5.0, 20.0, 99.0]
    assert all(pd.isna(v) for v in spend[3:])
    assert frame["visit_band"].tolist()[:3] == ["low", "low", "high"]
    assert frame["visit_band"].isna().tolist()[3:] == [True, True, True]
    lineage = training.feature_versions
    assert lineage["service"]["name"] == "churn_svc"
    assert lineage["views"]["profile"]["features"] == ["plan", "spend", "visits"]
    assert lineage["views"]["profile"]["snapshot"] == (
        platform.dataset("history").snapshots(limit=1)[0].content_hash
    )


def test_request_fields_and_sql_on_demand_features(platform: Platform) -> None:
    platform.features.apply()
    platform.features.materialize()
    entity = pd.DataFrame({"customer_id": ["c000"], "at": [NOW], "discount": [4.0]})
    offline = platform.features.get_historical_features(
        entity, service="with_request", timestamp="at"
    ).to_pandas()
    online = platform.features.get_online_features(
        "with_request", [{"customer_id": "c000", "discount": 4.0}]
    )
    assert offline["net_spend"].tolist() == [95.0] == online.columns["net_spend"]
    assert offline["spend_per_visit"].tolist() == [11.0] == online.columns["spend_per_visit"]
    with pytest.raises(Exception, match="discount"):
        platform.features.get_online_features("with_request", [{"customer_id": "c000"}])


def test_materialize_incrementally_and_enforce_the_ttl_on_read(
    platform: Platform, project: Path
) -> None:
    platform.features.apply()
    first = platform.features.materialize()
    assert [(m.view, m.mode, m.rows_read, m.entities) for m in first] == [
        ("profile", "full", 202, 200)
    ]
    found = platform.features.get_online_features(
        "churn_svc", [{"customer_id": "c000"}, {"customer_id": "c001"}, {"customer_id": "nobody"}]
    )
    assert found.columns["spend"] == [99.0, None, None]  # c001: 90 days old, TTL 30 days
    assert found.found["profile"] == [True, False, False]
    assert found.columns["visit_band"] == ["high", None, None]
    assert found.unknown_entities() == ["c001", "nobody"]

    # a new batch: a newer row for c002, and a late row for c000 older than what is online
    late = pd.DataFrame(
        [
            ("c002", iso(NOW - DAY), "basic", 11.0, 2),
            ("c000", iso(NOW - 8 * DAY), "basic", 1.0, 1),
        ],
        columns=["customer_id", "updated_at", "plan", "spend", "visits"],
    )
    late.to_csv(project / "data" / "more.csv", index=False)
    platform.dataset("history").ingest(str(project / "data" / "more.csv"), mode="append")
    second = platform.features.materialize()
    assert [(m.mode, m.rows_read, m.entities) for m in second] == [("incremental", 2, 2)]
    found = platform.features.get_online_features(
        "churn_svc", [{"customer_id": "c000"}, {"customer_id": "c002"}]
    )
    assert found.columns["spend"] == [99.0, 11.0]  # the late, older c000 row did not win
    assert platform.features.materialize()[0].rows_read == 0  # nothing new
    full = platform.features.materialize(full=True)[0]
    assert (full.mode, full.rows_read, full.entities) == ("full", 204, 200)
    # the data set replaced by one without c199: a full materialization stops serving it
    kept = history()
    kept[kept["customer_id"] != "c199"].to_csv(project / "data" / "replaced.csv", index=False)
    platform.dataset("history").ingest(str(project / "data" / "replaced.csv"), mode="replace")
    replaced = platform.features.materialize()[0]
    assert (replaced.mode, replaced.entities) == ("full", 199)
    gone = platform.features.get_online_features("churn_svc", [{"customer_id": "c199"}])
    assert gone.found["profile"] == [False]
    records = platform.features.materializations("profile")
    assert [m.mode for m in records] == ["full", "full", "incremental", "incremental", "full"]
    assert records[0].watermark is not None


def test_check_skew_finds_rows_the_online_store_has_not_seen(
    platform: Platform, project: Path
) -> None:
    platform.features.apply()
    platform.features.materialize()
    rows = [{"customer_id": f"c{i:03d}"} for i in range(2, 12)]
    platform.features.get_online_features("churn_svc", rows)
    report = platform.features.check_skew("churn_svc")
    assert report.rows == 10
    assert report.consistent

    # a row dated before those lookups arrives but is not materialized: the online store
    # served a stale value, which training (point in time) would not have used
    late = pd.DataFrame(
        [("c005", iso(NOW - 2 * DAY), "pro", 123.0, 3)],
        columns=["customer_id", "updated_at", "plan", "spend", "visits"],
    )
    late.to_csv(project / "data" / "late.csv", index=False)
    platform.dataset("history").ingest(str(project / "data" / "late.csv"), mode="append")
    report = platform.features.check_skew("churn_svc")
    by_name = {f.name: f for f in report.features}
    assert not report.consistent
    assert by_name["spend"].mismatches == 1
    assert by_name["spend"].examples == [("c005", 70.0, 123.0)]
    assert by_name["plan"].mismatches == 0
    assert by_name["visit_band"].mismatches == 1  # visits 5 -> 3: high -> low


def test_train_and_serve_through_the_service(platform: Platform, project: Path) -> None:
    result = platform.run()
    run = platform.runs.get(result.run_id)
    assert run.feature_versions is not None
    assert run.feature_versions["service"]["name"] == "churn_svc"
    assert set(run.params["features"]) == {"plan", "spend", "visits", "visit_band"}
    version = platform.get_version(f"churnlite/{result.version}")
    assert version.signature["features"]["service"] == "churn_svc"

    # the run's rows are rebuilt from its recorded definitions and snapshots
    reproduction = platform.runs.reproduce(result.run_id)
    assert reproduction.matches

    scored, online = platform.predict_entities(
        f"churnlite/{result.version}", [{"customer_id": "c002"}, {"customer_id": "c009"}]
    )
    direct = platform.predict(f"churnlite/{result.version}", online.to_frame())
    assert list(scored.probabilities) == list(direct.probabilities)
    with pytest.raises(NotFound, match="c001"):
        platform.predict_entities(f"churnlite/{result.version}", [{"customer_id": "c001"}])

    from decisionloop.serving.http import create_app

    with TestClient(create_app(platform), raise_server_exceptions=False) as client:
        answer = client.post("/v1/models/churnlite/predict", json={"entity_ids": ["c002"]})
        assert answer.status_code == 200, answer.text
        prediction = answer.json()["predictions"][0]
        assert prediction["customer_id"] == "c002"
        assert prediction["probability"] == pytest.approx(float(scored.probabilities[0]))
        missing = client.post("/v1/models/churnlite/predict", json={"entity_ids": ["c001"]})
        assert missing.status_code == 404
        assert missing.json()["code"] == "not_found"
        features = client.post(
            "/v1/feature-services/churn_svc/online", json={"entities": [{"customer_id": "c000"}]}
        )
        assert features.status_code == 200
        assert features.json()["features"]["spend"] == [99.0]
        bad = client.post("/v1/feature-services/churn_svc/online", json={"entity_ids": [{"x": 1}]})
        assert bad.status_code == 422
        unknown = client.post("/v1/feature-services/nope/online", json={"entity_ids": ["c0"]})
        assert unknown.status_code == 404
        # bad bodies: a 4xx problem document each, never a traceback
        route = "/v1/feature-services/churn_svc/online"
        for body, status in [
            ({}, 422),  # neither entities nor entity_ids
            ({"entity_ids": []}, 422),  # nothing to look up
            ({"entity_ids": "c002"}, 422),  # not a list
            ({"entity_ids": [True]}, 422),  # a boolean is not an id
            ({"entities": [{"customer_id": ["c002"]}]}, 422),  # not a scalar
            ({"entities": [{"plan": "pro"}]}, 422),  # no join key
            ({"entity_ids": ["c002"] * 20_000}, 413),  # over serving.max_rows_per_request
        ]:
            answer = client.post(route, json=body)
            assert answer.status_code == status, (body, answer.text)
            assert answer.json()["status"] == status
        garbled = client.post(
            route, content=b"{not json", headers={"content-type": "application/json"}
        )
        assert garbled.status_code in (400, 422)
