"""The HTTP surface over a trained project: answers, problem documents, and bounds."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from decisionloop.platform import Platform
from decisionloop.project import init_project
from decisionloop.serving.http import create_app
from tests.datasets import loan_defaults, write


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("http")
    data = write(loan_defaults(rows=400), root / "loans.csv")
    init_project(root / "loans", data=data, target="status", name="loans")
    with Platform.open(root / "loans") as platform:
        platform.run()
    return root / "loans"


@pytest.fixture(scope="module")
def client(project: Path) -> Iterator[TestClient]:
    platform = Platform.open(project, serving={"max_body_bytes": 4096, "max_rows_per_request": 20})
    with TestClient(create_app(platform), raise_server_exceptions=False) as test_client:
        yield test_client
    platform.close()


def rows(count: int = 2) -> list[dict[str, object]]:
    frame = loan_defaults(rows=max(count, 30), seed=9).drop(columns=["status", "loan_ref"])
    records: list[dict[str, object]] = frame.head(count).to_dict(orient="records")
    return records


def assert_problem(response: Any, status: int, fragment: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, object] = response.json()
    assert body["status"] == status
    assert fragment.lower() in json.dumps(body).lower()
    return body


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready", "models": 1}


def test_list_models(client: TestClient) -> None:
    assert client.get("/v1/models").json() == {
        "models": [{"name": "loans", "latest_version": 1, "aliases": {"champion": 1}}]
    }


def test_predict_instances_by_default_alias(client: TestClient) -> None:
    response = client.post("/v1/models/loans/predict", json={"instances": rows(3)})
    assert response.status_code == 200
    body = response.json()
    assert body["model"] == "loans"
    assert body["version"] == 1
    assert body["threshold"] == 0.5
    assert len(body["predictions"]) == 3
    for prediction in body["predictions"]:
        assert 0.0 <= prediction["probability"] <= 1.0
        expected = "default" if prediction["probability"] >= 0.5 else "repaid"
        assert prediction["label"] == expected
    assert response.headers["x-request-id"] == body["request_id"]


def test_every_way_to_name_the_version_gives_the_same_scores(client: TestClient) -> None:
    payload = {"instances": rows(2)}
    answers = [
        client.post(url, json=payload).json()["predictions"]
        for url in (
            "/v1/models/loans/predict",
            "/v1/models/loans@champion/predict",
            "/v1/models/loans/predict?version=1",
            "/v1/models/loans/predict?alias=champion",
        )
    ]
    assert all(answer == answers[0] for answer in answers)


def test_columnar_inputs_match_instances(client: TestClient) -> None:
    records = rows(2)
    columns = {key: [r[key] for r in records] for key in records[0]}
    by_rows = client.post("/v1/models/loans/predict", json={"instances": records}).json()
    by_columns = client.post("/v1/models/loans/predict", json={"inputs": columns}).json()
    assert by_rows["predictions"] == by_columns["predictions"]


def test_extra_columns_are_ignored_and_missing_values_allowed(client: TestClient) -> None:
    record = rows(1)[0] | {"unrelated": "x", "applicant_income": None}
    response = client.post("/v1/models/loans/predict", json={"instances": [record]})
    assert response.status_code == 200


def test_request_id_is_echoed(client: TestClient) -> None:
    response = client.post(
        "/v1/models/loans/predict", json={"instances": rows(1)}, headers={"x-request-id": "abc-123"}
    )
    assert response.json()["request_id"] == "abc-123"


@pytest.mark.parametrize(
    ("url", "payload", "status", "fragment"),
    [
        ("/v1/models/ghost/predict", {"instances": rows(1)}, 404, "ghost"),
        ("/v1/models/loans/predict?version=9", {"instances": rows(1)}, 404, "version 9"),
        ("/v1/models/loans/predict?alias=staging", {"instances": rows(1)}, 404, "@staging"),
        ("/v1/models/loans/predict?version=x", {"instances": rows(1)}, 422, "version"),
        ("/v1/models/bad name!/predict", {"instances": rows(1)}, 422, "model reference"),
        ("/v1/models/loans/predict", {"rows": []}, 422, "instances"),
        ("/v1/models/loans/predict", {"instances": []}, 422, "no rows"),
        ("/v1/models/loans/predict", {"instances": [1, 2]}, 422, "list of objects"),
        ("/v1/models/loans/predict", {"instances": [{"age": [1]}]}, 422, "scalar"),
        ("/v1/models/loans/predict", [1, 2], 422, "json object"),
        ("/v1/models/loans/predict", {"inputs": {"age": [1, 2], "region": ["x"]}}, 422, "length"),
        ("/v1/models/loans/predict", {"instances": [{"age": 30}]}, 422, "missing column"),
        (
            "/v1/models/loans/predict",
            {"instances": [rows(1)[0] | {"age": "old"}]},
            422,
            "'age' is declared integer",
        ),
        ("/v1/models/loans/predict", {"instances": [{"age": 1}] * 21}, 413, "limit of 20"),
    ],
)
def test_bad_requests_get_problem_documents(
    client: TestClient, url: str, payload: object, status: int, fragment: str
) -> None:
    assert_problem(client.post(url, json=payload), status, fragment)


def test_invalid_json_is_422(client: TestClient) -> None:
    response = client.post(
        "/v1/models/loans/predict",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert_problem(response, 422, "not valid json")


def test_oversized_body_is_413_even_without_content_length(client: TestClient) -> None:
    big = json.dumps({"instances": [{"region": "x" * 5000}]}).encode()
    assert_problem(client.post("/v1/models/loans/predict", content=big), 413, "exceeds")

    def chunks() -> Iterator[bytes]:
        yield big[:3000]
        yield big[3000:]

    assert_problem(client.post("/v1/models/loans/predict", content=chunks()), 413, "exceeds")


def test_unknown_route_and_method_are_json(client: TestClient) -> None:
    assert_problem(client.get("/nope"), 404, "not found")
    assert_problem(client.get("/v1/models/loans/predict"), 405, "method")
