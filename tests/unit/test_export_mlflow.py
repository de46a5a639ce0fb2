"""The MLflow export's pure parts: batching within MLflow's limits, tag splitting, params,
credentials and error translation (the server itself: tests/integration/test_mlflow_export.py)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from decisionloop.errors import Conflict, Invalid, NotFound, Unauthenticated, Unavailable
from decisionloop.export.mlflow_mapping import MAX_TAG_VALUE, flat_params, log_batches, long_tag
from decisionloop.export.mlflow_rest import MLflowCredentials, MLflowRestClient, _server_error


def test_batches_respect_mlflow_limits_and_lose_nothing() -> None:
    params = {f"p{i}": str(i) for i in range(250)}
    tags = {f"t{i}": str(i) for i in range(130)}
    metrics = [{"key": "m", "value": float(i), "timestamp": 0, "step": i} for i in range(2500)]
    batches = list(log_batches(params, tags, metrics))
    for batch in batches:
        assert len(batch["params"]) <= 100
        assert len(batch["tags"]) <= 100
        assert len(batch["metrics"]) <= 1000
        assert len(batch["params"]) + len(batch["tags"]) + len(batch["metrics"]) <= 1000
    assert [p["key"] for b in batches for p in b["params"]] == list(params)
    assert [t["key"] for b in batches for t in b["tags"]] == list(tags)
    assert [m["step"] for b in batches for m in b["metrics"]] == list(range(2500))
    assert list(log_batches({}, {}, [])) == []


def test_long_tag_values_are_split_in_order() -> None:
    text = "x" * MAX_TAG_VALUE + "y" * 10
    parts = long_tag("k", text)
    assert list(parts) == ["k", "k.2"]
    assert "".join(parts.values()) == text
    assert long_tag("k", "short") == {"k": "short"}


def test_nested_params_become_dotted_text() -> None:
    flat = flat_params({"a": 1, "b": {"c": True, "d": {"e": "x"}}, "f": [1, 2], "g": {}})
    assert flat == {"a": "1", "b.c": "true", "b.d.e": "x", "f": "[1,2]", "g": "{}"}


def test_credentials_follow_mlflow_clients() -> None:
    assert MLflowCredentials(token="t").authorization() == "Bearer t"
    assert MLflowCredentials(username="ada", password="pw").authorization() == "Basic YWRhOnB3"
    assert MLflowCredentials().authorization() is None


@pytest.mark.parametrize(
    ("status", "code", "kind"),
    [
        (404, "RESOURCE_DOES_NOT_EXIST", NotFound),
        (400, "RESOURCE_ALREADY_EXISTS", Conflict),
        (400, "INVALID_PARAMETER_VALUE", Invalid),
        (401, "", Unauthenticated),
        (500, "INTERNAL_ERROR", Unavailable),
    ],
)
def test_server_errors_become_one_line_decisionloop_errors(
    status: int, code: str, kind: type[Exception]
) -> None:
    payload = json.dumps({"error_code": code, "message": "line one\nline two"}).encode()
    error = _server_error(status, payload, "POST", "runs/create")
    assert type(error) is kind
    assert "\n" not in str(error)
    assert "line one line two" in str(error)


def test_only_http_tracking_uris() -> None:
    with pytest.raises(Invalid, match="not an http"):
        MLflowRestClient("file:///tmp/mlruns").call("GET", "experiments/search")


def test_import_stays_light() -> None:
    code = (
        "import sys, decisionloop.export, decisionloop.cli.export_commands; "
        "print(sorted(sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    for heavy in ("'mlflow'", "'pandas'", "'sqlalchemy'", "'xgboost'"):
        assert heavy not in loaded
