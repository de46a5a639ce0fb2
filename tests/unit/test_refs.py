"""ModelRef: parsing ``name``, ``name@alias`` and ``name/version``."""

from __future__ import annotations

import pytest

from decisionloop.errors import Invalid
from decisionloop.refs import DEFAULT_ALIAS, ModelRef


def test_parse_bare_name() -> None:
    ref = ModelRef.parse("churn")

    assert ref == ModelRef("churn", None, None)
    assert ref.resolved_alias() == DEFAULT_ALIAS == "champion"


def test_parse_name_with_alias() -> None:
    ref = ModelRef.parse("churn@challenger")

    assert (ref.name, ref.alias, ref.version) == ("churn", "challenger", None)
    assert ref.resolved_alias() == "challenger"


def test_parse_name_with_version() -> None:
    ref = ModelRef.parse("churn.v2-x/7")

    assert (ref.name, ref.alias, ref.version) == ("churn.v2-x", None, 7)
    assert isinstance(ref.version, int)
    assert ref.resolved_alias() is None


def test_parse_strips_surrounding_whitespace() -> None:
    assert ModelRef.parse("  churn/3\n") == ModelRef("churn", version=3)


def test_version_keeps_leading_zeros_as_number() -> None:
    assert ModelRef.parse("churn/007").version == 7


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "a b",
        "x@",
        "x/",
        "x/abc",
        "x/1/2",
        "x/-1",
        "x@1st",
        "x@a@b",
        "x@alias/3",
        "../etc",
        "/etc/passwd",
        "1churn",
        "churn/1234567890",
        "x" * 101,
        "x@" + "a" * 51,
    ],
)
def test_bad_references_are_invalid(text: str) -> None:
    with pytest.raises(Invalid) as info:
        ModelRef.parse(text)

    assert repr(text) in info.value.message
    assert "NAME@ALIAS" in info.value.hint


@pytest.mark.parametrize("text", ["churn", "churn@champion", "churn@stage_2", "churn/12"])
def test_str_round_trip(text: str) -> None:
    ref = ModelRef.parse(text)

    assert str(ref) == text
    assert ModelRef.parse(str(ref)) == ref


def test_str_of_constructed_refs() -> None:
    assert str(ModelRef("churn")) == "churn"
    assert str(ModelRef("churn", alias="prod")) == "churn@prod"
    assert str(ModelRef("churn", version=4)) == "churn/4"


def test_longest_valid_parts_are_accepted() -> None:
    name, alias = "x" * 100, "a" * 50

    assert ModelRef.parse(f"{name}@{alias}") == ModelRef(name, alias=alias)
    assert ModelRef.parse(f"{name}/999999999").version == 999_999_999


def test_refs_are_hashable_and_frozen() -> None:
    ref = ModelRef.parse("churn/1")

    assert {ref, ModelRef("churn", version=1)} == {ref}
    with pytest.raises(AttributeError):
        ref.name = "other"  # type: ignore[misc]
