"""Data: reading sources, profiling, validation, binary labels and snapshots."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from decisionloop.config import ColumnSpec
from decisionloop.data.labels import encode_target, infer_positive, label_text, target_classes
from decisionloop.data.profile import identifier_like, infer_column_type, profile_columns
from decisionloop.data.sources import read_table
from decisionloop.data.validation import validate_frame
from decisionloop.errors import Invalid, NotFound

# --- sources.read_table -----------------------------------------------------------------------


def test_read_csv(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("age,plan,churned\n31,basic,Yes\n45,pro,No\n")

    frame = read_table(str(path))

    assert list(frame.columns) == ["age", "plan", "churned"]
    assert frame["age"].tolist() == [31, 45]
    assert frame["plan"].tolist() == ["basic", "pro"]
    assert frame["churned"].tolist() == ["Yes", "No"]


def test_read_csv_by_file_url(tmp_path: Path) -> None:
    path = tmp_path / "with space.csv"
    path.write_text("a\n1\n2\n")

    frame = read_table(path.as_uri())

    assert frame["a"].tolist() == [1, 2]


def test_read_parquet(tmp_path: Path) -> None:
    path = tmp_path / "d.parquet"
    pd.DataFrame({"x": [1.5, 2.5], "y": ["a", "b"]}).to_parquet(path)

    frame = read_table(str(path))

    assert frame["x"].tolist() == [1.5, 2.5]
    assert frame["y"].tolist() == ["a", "b"]


def test_read_json_records(tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    path.write_text(json.dumps([{"a": 1, "b": "x"}, {"a": 2, "b": "y"}, {"a": 3, "b": None}]))

    frame = read_table(str(path))

    assert list(frame.columns) == ["a", "b"]
    assert frame["a"].tolist() == [1, 2, 3]
    assert frame["b"].tolist()[:2] == ["x", "y"]
    assert frame["b"].isna().tolist() == [False, False, True]


def test_column_names_become_strings(tmp_path: Path) -> None:
    # pandas turns the JSON key "1" into the integer label 1
    path = tmp_path / "n.json"
    path.write_text(json.dumps([{"1": 5}, {"1": 6}]))

    assert list(read_table(str(path)).columns) == ["1"]


def test_missing_file_is_not_found(tmp_path: Path) -> None:
    path = tmp_path / "nope.csv"

    with pytest.raises(NotFound) as info:
        read_table(str(path))

    assert str(path) in info.value.message


def test_empty_file_is_invalid(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")

    with pytest.raises(Invalid, match="empty"):
        read_table(str(path))


def test_blank_csv_is_invalid(tmp_path: Path) -> None:
    path = tmp_path / "blank.csv"
    path.write_text("\n\n")

    with pytest.raises(Invalid, match="no columns"):
        read_table(str(path))


def test_header_only_csv_is_invalid(tmp_path: Path) -> None:
    path = tmp_path / "header.csv"
    path.write_text("a,b,c\n")

    with pytest.raises(Invalid, match="header but no rows"):
        read_table(str(path))


def test_corrupt_parquet_is_invalid(tmp_path: Path) -> None:
    path = tmp_path / "x.parquet"
    path.write_bytes(os.urandom(2048))

    with pytest.raises(Invalid) as info:
        read_table(str(path))

    assert "cannot read parquet file" in info.value.message
    assert "uncorrupted parquet" in info.value.hint


def test_malformed_json_is_invalid(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text('[{"a": 1}, {"a": ')

    with pytest.raises(Invalid, match="cannot read json file"):
        read_table(str(path))


@pytest.mark.parametrize("name", ["data.txt", "data.xlsx", "data"])
def test_unsupported_extension_is_invalid(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_text("a,b\n1,2\n")

    with pytest.raises(Invalid, match="unsupported data file type"):
        read_table(str(path))


def test_folder_is_invalid(tmp_path: Path) -> None:
    folder = tmp_path / "looks_like.csv"
    folder.mkdir()

    with pytest.raises(Invalid, match="is a folder"):
        read_table(str(folder))


def test_remote_scheme_is_invalid() -> None:
    with pytest.raises(Invalid, match="scheme 's3' is not supported"):
        read_table("s3://bucket/data.csv")


# --- profile ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("series", "expected"),
    [
        (pd.Series([True, False]), "boolean"),
        (pd.Series([1, 2, 3]), "integer"),
        (pd.Series([1, None, 3], dtype="Int64"), "integer"),
        (pd.Series([1.0, None, 3.0]), "integer"),  # integers with gaps read as floats
        (pd.Series([1.0, 2.0, 3.0]), "number"),
        (pd.Series([1.5, None, 3.0]), "number"),
        (pd.Series([None, None], dtype="float64"), "number"),
        (pd.Series(pd.to_datetime(["2024-01-01", "2024-02-01"])), "datetime"),
        (pd.Series(["a", "b"]), "string"),
        (pd.Series(["a", None], dtype=object), "string"),
    ],
)
def test_infer_column_type(series: pd.Series, expected: str) -> None:
    assert infer_column_type(series) == expected


def test_profile_columns() -> None:
    frame = pd.DataFrame(
        {
            "id": [1, 2, 3],
            "score": [0.5, None, 1.5],
            "plan": ["a", "b", "a"],
            "active": [True, False, True],
        }
    )

    specs = profile_columns(frame)

    assert list(specs) == ["id", "score", "plan", "active"]
    assert {name: (s.type, s.nullable) for name, s in specs.items()} == {
        "id": ("integer", False),
        "score": ("number", True),
        "plan": ("string", False),
        "active": ("boolean", False),
    }


def test_identifier_like_finds_unique_strings_and_row_numbers() -> None:
    n = 30
    frame = pd.DataFrame(
        {
            "customer_id": [f"C{i:04d}" for i in range(n)],
            "row": list(range(1, n + 1)),
            "unique_but_not_sequential": [i * 3 for i in range(n)],
            "plan": ["a", "b"] * (n // 2),
            "amount": [float(i) + 0.5 for i in range(n)],
            "id_with_gap": [f"X{i}" for i in range(n - 1)] + [None],
        }
    )

    assert identifier_like(frame) == ["customer_id", "row"]


def test_identifier_like_ignores_small_frames() -> None:
    frame = pd.DataFrame({"id": [f"C{i}" for i in range(20)], "row": list(range(20))})

    assert identifier_like(frame) == []


# --- validation -------------------------------------------------------------------------------


def test_validate_frame_coerces_every_type() -> None:
    frame = pd.DataFrame(
        {
            "age": ["31", "45", None],
            "score": ["0.5", "1e2", "-3"],
            "active": ["Yes", " no ", "TRUE"],
            "flag": [True, False, True],
            "plan": [1, "pro", None],
            "signup": ["2024-01-01", "2024-02-03T10:00:00", None],
            "undeclared": [1, 2, 3],
        }
    )
    columns = {
        "age": ColumnSpec(type="integer"),
        "score": ColumnSpec(type="number"),
        "active": ColumnSpec(type="boolean"),
        "flag": ColumnSpec(type="boolean"),
        "plan": ColumnSpec(type="string"),
        "signup": ColumnSpec(type="datetime"),
    }

    out = validate_frame(frame, columns)

    assert list(out.columns) == list(columns)  # undeclared columns are dropped
    assert out["age"].dtype == "float64"
    assert out["age"].tolist()[:2] == [31.0, 45.0]
    assert math.isnan(out["age"].iloc[2])
    assert out["score"].tolist() == [0.5, 100.0, -3.0]
    assert out["active"].tolist() == [1.0, 0.0, 1.0]
    assert out["flag"].tolist() == [1.0, 0.0, 1.0]
    assert out["plan"].tolist() == ["1", "pro", None]
    assert out["signup"].tolist()[:2] == [
        pd.Timestamp("2024-01-01", tz="UTC"),
        pd.Timestamp("2024-02-03 10:00:00", tz="UTC"),
    ]
    assert pd.isna(out["signup"].iloc[2])
    assert out.index.equals(frame.index)


def test_datetime_coercion_accepts_mixed_iso_precision() -> None:
    # pandas infers one format from the first value; later values with a time must still parse
    frame = pd.DataFrame({"t": ["2024-01-01", "2024-01-02T10:30:00Z", "2024-01-03 08:00"]})

    out = validate_frame(frame, {"t": ColumnSpec(type="datetime")})

    assert out["t"].tolist() == [
        pd.Timestamp("2024-01-01", tz="UTC"),
        pd.Timestamp("2024-01-02 10:30", tz="UTC"),
        pd.Timestamp("2024-01-03 08:00", tz="UTC"),
    ]


def test_boolean_coercion_of_numeric_zero_one_with_gaps() -> None:
    # a 0/1 column with a missing value is read from CSV as 1.0 / NaN / 0.0
    frame = pd.DataFrame({"b": [1.0, None, 0.0], "i": [0, 1, 1]})
    columns = {"b": ColumnSpec(type="boolean"), "i": ColumnSpec(type="boolean")}

    out = validate_frame(frame, columns)

    assert out["b"].tolist()[::2] == [1.0, 0.0]
    assert math.isnan(out["b"].iloc[1])
    assert out["i"].tolist() == [0.0, 1.0, 1.0]


def test_boolean_numeric_other_than_zero_one_is_invalid() -> None:
    with pytest.raises(Invalid, match=r"column 'b' is declared boolean .*e\.g\. 2\.0"):
        validate_frame(pd.DataFrame({"b": [1.0, 2.0, 0.0]}), {"b": ColumnSpec(type="boolean")})


def test_non_numeric_value_names_column_and_example() -> None:
    frame = pd.DataFrame({"age": ["31", "abc", "abc", "40"], "plan": ["a", "b", "c", "d"]})
    columns = {"age": ColumnSpec(type="integer"), "plan": ColumnSpec(type="string")}

    with pytest.raises(Invalid) as info:
        validate_frame(frame, columns)

    message = info.value.message
    assert "column 'age' is declared integer but has values that are not" in message
    assert "(2 row(s), e.g. 'abc')" in message
    assert "plan" not in message


def test_fractional_value_in_integer_column_is_invalid() -> None:
    with pytest.raises(Invalid, match=r"column 'n' is declared integer .*e\.g\. 1\.5"):
        validate_frame(pd.DataFrame({"n": [1.0, 1.5, 2.0]}), {"n": ColumnSpec(type="integer")})


@pytest.mark.parametrize(
    ("kind", "bad"),
    [("number", "n/a"), ("boolean", "maybe"), ("datetime", "not a date")],
)
def test_uncoercible_values_are_invalid(kind: str, bad: str) -> None:
    frame = pd.DataFrame({"c": ["1", bad] if kind != "datetime" else ["2024-01-01", bad]})
    if kind == "boolean":
        frame = pd.DataFrame({"c": ["yes", bad]})

    with pytest.raises(Invalid) as info:
        validate_frame(frame, {"c": ColumnSpec(type=kind)})  # type: ignore[arg-type]

    assert f"column 'c' is declared {kind}" in info.value.message
    assert repr(bad) in info.value.message


def test_nulls_in_non_nullable_column_are_invalid() -> None:
    frame = pd.DataFrame({"plan": ["a", None, "b", None]})

    with pytest.raises(Invalid) as info:
        validate_frame(frame, {"plan": ColumnSpec(type="string", nullable=False)})

    assert "column 'plan' is declared not nullable but has missing values" in info.value.message
    assert "(2 row(s), e.g. 1, 3)" in info.value.message


def test_nulls_in_nullable_column_are_fine() -> None:
    out = validate_frame(pd.DataFrame({"x": [1.0, None]}), {"x": ColumnSpec(type="number")})

    assert out["x"].isna().tolist() == [False, True]


def test_missing_column_is_invalid() -> None:
    frame = pd.DataFrame({"a": [1]})
    columns = {
        "a": ColumnSpec(type="integer"),
        "c": ColumnSpec(type="string"),
        "b": ColumnSpec(type="number"),
    }

    with pytest.raises(Invalid, match=r"missing column\(s\): b, c"):
        validate_frame(frame, columns)


def test_required_limits_the_columns_that_must_exist() -> None:
    frame = pd.DataFrame({"a": ["1", "2"]})
    columns = {"a": ColumnSpec(type="integer"), "target": ColumnSpec(type="string")}

    out = validate_frame(frame, columns, required={"a"})

    assert list(out.columns) == ["a"]
    assert out["a"].tolist() == [1.0, 2.0]
    with pytest.raises(Invalid, match="missing column"):
        validate_frame(frame, columns, required={"a", "target"})


def test_many_problems_are_summarised() -> None:
    frame = pd.DataFrame({f"c{i}": ["x"] for i in range(7)})
    columns = {f"c{i}": ColumnSpec(type="number") for i in range(7)}

    with pytest.raises(Invalid) as info:
        validate_frame(frame, columns)

    assert info.value.message.endswith("; and 2 more")
    assert "'c4'" in info.value.message
    assert "'c5'" not in info.value.message


# --- labels -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "classes", "positive"),
    [
        (["Yes", "No", "No", "No"], ["No", "Yes"], "Yes"),
        ([1, 0, 0, 0], ["0", "1"], "1"),
        ([True, False, False], ["False", "True"], "True"),
        ([1.0, 0.0, 0.0], ["0", "1"], "1"),
        (["0", "1", "1", "1"], ["0", "1"], "1"),
        (["stay", "leave", "stay", "stay"], ["leave", "stay"], "leave"),  # rarer value
        (["b", "a", "b", "a"], ["a", "b"], "a"),  # tie: alphabetical
    ],
)
def test_classes_and_inferred_positive(values: list, classes: list[str], positive: str) -> None:
    series = pd.Series(values)

    assert target_classes(series, "y") == classes
    assert infer_positive(series, "y") == positive


def test_label_text_spells_equal_values_alike() -> None:
    assert label_text(1.0) == label_text(1) == label_text("1") == "1"
    assert label_text(True) == "True"
    assert label_text(0.5) == "0.5"


def test_encode_target_yes_no() -> None:
    y, negative = encode_target(pd.Series(["Yes", "No", "Yes"]), "churned", "Yes")

    assert y.tolist() == [1, 0, 1]
    assert y.dtype == np.int32
    assert negative == "No"


def test_encode_target_floats_match_text_positive() -> None:
    y, negative = encode_target(pd.Series([1.0, 0.0, 0.0, 1.0]), "y", "1")

    assert y.tolist() == [1, 0, 0, 1]
    assert negative == "0"


def test_encode_target_booleans() -> None:
    y, negative = encode_target(pd.Series([False, True, True]), "y", "True")

    assert y.tolist() == [0, 1, 1]
    assert negative == "False"


def test_encode_target_negative_as_positive() -> None:
    y, negative = encode_target(pd.Series(["Yes", "No", "Yes"]), "y", "No")

    assert y.tolist() == [0, 1, 0]
    assert negative == "Yes"


def test_one_class_is_invalid() -> None:
    with pytest.raises(Invalid, match=r"target column 'y' has only one class \(Yes\)"):
        target_classes(pd.Series(["Yes", "Yes"]), "y")
    with pytest.raises(Invalid, match="only one class"):
        infer_positive(pd.Series([1.0, 1]), "y")


def test_no_values_is_invalid() -> None:
    with pytest.raises(Invalid, match="no values"):
        target_classes(pd.Series([None, None], dtype=object), "y")


def test_three_classes_is_invalid() -> None:
    with pytest.raises(Invalid, match=r"has 3 classes \(a, b, c\); binary is supported"):
        target_classes(pd.Series(["a", "b", "c", "a"]), "y")


def test_missing_target_values_are_invalid() -> None:
    with pytest.raises(Invalid, match=r"target column 'y' has 2 missing value\(s\)"):
        encode_target(pd.Series(["Yes", None, "No", None]), "y", "Yes")


def test_positive_not_a_class_is_invalid() -> None:
    with pytest.raises(Invalid) as info:
        encode_target(pd.Series(["Yes", "No"]), "y", "yes")

    assert "positive class 'yes' is not a value of 'y' (No, Yes)" in info.value.message
    assert "data.positive" in info.value.hint


# --- snapshots --------------------------------------------------------------------------------


def test_boolean_column_with_gaps_is_profiled_as_boolean(tmp_path: Path) -> None:
    path = tmp_path / "flags.csv"
    path.write_text("flag,n\nTrue,1\n,2\nFalse,3\n")
    frame = read_table(str(path))
    assert infer_column_type(frame["flag"]) == "boolean"
    coerced = validate_frame(frame, {"flag": ColumnSpec(type="boolean")})
    assert coerced["flag"].tolist()[0] == 1.0
    assert coerced["flag"].isna().tolist() == [False, True, False]
