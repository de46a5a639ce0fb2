"""The error tree: codes, statuses, hints and problem documents."""

from __future__ import annotations

import pytest

import decisionloop.errors as errors
from decisionloop.errors import (
    Conflict,
    DecisionLoopError,
    Forbidden,
    GateFailed,
    IntegrityError,
    Invalid,
    InvalidConfig,
    NotFound,
    TooLarge,
    Unauthenticated,
    Unavailable,
)

ALL = [getattr(errors, name) for name in errors.__all__]

# (class, code, http status, gRPC status) as documented in the module docstring
DOCUMENTED = [
    (NotFound, "not_found", 404, "NOT_FOUND"),
    (Conflict, "conflict", 409, "ALREADY_EXISTS"),
    (Invalid, "invalid", 422, "INVALID_ARGUMENT"),
    (InvalidConfig, "invalid_config", 422, "INVALID_ARGUMENT"),
    (Forbidden, "forbidden", 403, "PERMISSION_DENIED"),
    (Unauthenticated, "unauthenticated", 401, "UNAUTHENTICATED"),
    (TooLarge, "too_large", 413, "RESOURCE_EXHAUSTED"),
    (Unavailable, "unavailable", 503, "UNAVAILABLE"),
    (IntegrityError, "integrity", 500, "DATA_LOSS"),
    (GateFailed, "gate_failed", 409, "FAILED_PRECONDITION"),
]


def test_all_lists_every_error_class() -> None:
    assert {cls for cls, *_ in DOCUMENTED} | {DecisionLoopError} == set(ALL)


@pytest.mark.parametrize("cls", ALL)
def test_every_class_subclasses_the_base(cls: type) -> None:
    assert issubclass(cls, DecisionLoopError)
    assert issubclass(cls, Exception)


def test_invalid_config_is_an_invalid() -> None:
    assert issubclass(InvalidConfig, Invalid)
    with pytest.raises(Invalid):
        raise InvalidConfig("bad", file="f.yaml", key="k")


def test_codes_are_unique() -> None:
    codes = [cls.code for cls in ALL]

    assert len(codes) == len(set(codes)) == len(ALL)


@pytest.mark.parametrize(("cls", "code", "http", "grpc"), DOCUMENTED)
def test_documented_statuses(cls: type[DecisionLoopError], code: str, http: int, grpc: str) -> None:
    assert cls.code == code
    assert cls.http_status == http
    assert cls.grpc_status == grpc


def test_only_integrity_errors_are_internal() -> None:
    internal = {cls for cls in ALL if not cls.user_error}

    assert internal == {IntegrityError}


def test_str_includes_hint() -> None:
    error = NotFound("model 'churn' not found", hint="run `decisionloop train` first")

    assert str(error) == "model 'churn' not found (hint: run `decisionloop train` first)"
    assert error.message == "model 'churn' not found"
    assert error.hint == "run `decisionloop train` first"


def test_str_without_hint_is_just_the_message() -> None:
    assert str(Conflict("exists already")) == "exists already"


def test_to_problem_fields() -> None:
    problem = TooLarge("body too large", hint="send fewer rows").to_problem()

    assert problem == {
        "type": "https://decisionloop.dev/errors/too_large",
        "title": "TooLarge",
        "status": 413,
        "detail": "body too large",
        "code": "too_large",
        "hint": "send fewer rows",
    }


@pytest.mark.parametrize("cls", ALL)
def test_to_problem_matches_class(cls: type[DecisionLoopError]) -> None:
    problem = cls("boom", hint="fix it").to_problem()

    assert problem["status"] == cls.http_status
    assert problem["code"] == cls.code
    assert problem["title"] == cls.__name__
    assert problem["type"] == f"https://decisionloop.dev/errors/{cls.code}"


def test_invalid_config_message_names_file_and_key() -> None:
    error = InvalidConfig(
        "Input should be a valid integer",
        file="/p/decisionloop.yaml",
        key="serving.port",
        hint="see the docs",
    )

    assert error.file == "/p/decisionloop.yaml"
    assert error.key == "serving.port"
    assert error.message == "/p/decisionloop.yaml: serving.port: Input should be a valid integer"
    assert str(error) == f"{error.message} (hint: see the docs)"
    assert error.to_problem()["detail"] == error.message
    assert error.to_problem()["code"] == "invalid_config"


def test_invalid_config_with_only_file_or_nothing() -> None:
    assert InvalidConfig("bad", file="x.yaml").message == "x.yaml: bad"
    assert InvalidConfig("bad", key="a.b").message == "a.b: bad"
    assert InvalidConfig("bad").message == "bad"
