"""The JSON fast path on batches whose columns mix kinds (text in a numeric column, integers
and floats, booleans, nested values): it takes them, and gives exactly what decoding message
by message gives (rows, column order, types, text, errors, payloads)."""

from __future__ import annotations

import json
import random

import pyarrow as pa
import pytest

from decisionloop.data.batches import ERROR, PAYLOAD
from decisionloop.data.decoding import decode_json, decoded_columns, json_columns
from decisionloop.data.decoding.mixed import odd_pattern, skeleton, usual_kinds


def _table(values: list[bytes], *, fast: bool) -> pa.Table | None:
    columns = json_columns(values) if fast else decoded_columns(values, decode_json)
    if columns is None:
        return None
    return pa.table(
        [*columns.arrays, columns.errors, columns.payloads],
        names=[*columns.names, ERROR, PAYLOAD],
    )


def _same(values: list[bytes]) -> bool:
    """Whether the fast path took the batch; where it did, it equals the exact path."""
    exact = _table(values, fast=False)
    fast = _table(values, fast=True)
    assert exact is not None
    if fast is None:
        return False
    assert fast.schema == exact.schema
    # through JSON text, where NaN equals NaN and -0.0 differs from 0.0
    assert json.dumps(fast.to_pylist()) == json.dumps(exact.to_pylist())
    return True


def _numbers(rows: int, rng: random.Random) -> list[dict[str, object]]:
    """Records like a sensor's: a key, floats with two decimals (some integral, some negative
    zero), an integer and a category."""
    records: list[dict[str, object]] = []
    for i in range(rows):
        records.append(
            {
                "id": 1_000_000 + i,
                "x": round(rng.uniform(-10, 10), 2),
                "y": rng.choice([0.0, -0.0, 10.0, 2.5, 1e-05, 1.5e-7, 123456.75]),
                "n": rng.randrange(-5, 5),
                "c": rng.choice(["a", "b", "c"]),
            }
        )
    return records


def _encode(records: list[dict[str, object]]) -> list[bytes]:
    return [json.dumps(record).encode() for record in records]


def test_text_in_numeric_columns_takes_the_fast_path_exactly() -> None:
    rng = random.Random(7)
    records = _numbers(3000, rng)
    for index in rng.sample(range(3000), 40):
        records[index][rng.choice(["x", "y", "n"])] = rng.choice(["abc", "#VALUE!", "1.5", ""])
    for index in rng.sample(range(3000), 20):
        del records[index]["x"]  # a missing value
    assert _same(_encode(records))


def test_integral_floats_keep_how_they_were_written() -> None:
    # 10 and 10.0 read the same; the exact path writes the integer without a fraction
    tokens = [b"10", b"10.0", b"-0", b"-0.0", b"1e3", b"1E+2", b"2.5", b"0", b"12345678901234567"]
    tokens += [b"1e16", b"1.5e300", b"0.0001", b"0.00001", b"123456789012.5", b"-7"]
    values = [b'{"a": %s, "b": 1}' % token for token in tokens] * 3
    values += [b'{"a": "text", "b": 2}']
    assert _same(values)


def test_a_mixed_column_through_escapes_nesting_and_spacing() -> None:
    values = [
        b'{"k": 1.0, "o": {"k": 2}}',  # the key again, nested: the message is decoded
        b'{"\\u006b": 3.0}',  # the key spelled with an escape
        b'{ "k" :\t4.0 , "s": "a\\"k\\": 5"}',  # JSON space, and the key inside a string
        b'{"k": 5, "k2": 6.5}',
        b'{"k": "x"}',
    ]
    assert _same(values)


@pytest.mark.parametrize(
    ("kinds", "taken"),
    [
        ([b"1", b"2.5", b'"s"'], True),
        ([b"true", b"false", b"1"], True),
        ([b'"s"', b"true"], True),
        ([b"1", b'{"q": 1}'], True),
        ([b"[1, 2]", b'"s"'], True),
        ([b"1.5", b"null", b'"2021-02-03"'], True),
        # what only the exact path can tell: it takes the batch
        ([b"1", b"99999999999999999999"], False),
        ([b"0.5", b"9007199254740993"], False),
        ([b"1", b"NaN"], False),
    ],
)
def test_each_mix_of_kinds_matches_the_exact_path(kinds: list[bytes], taken: bool) -> None:
    rng = random.Random(len(kinds))
    usual, *odd = kinds
    values = []
    for i in range(600):
        kind = rng.choice(odd) if rng.random() < 0.05 else usual
        values.append(b'{"id": %d, "v": %s, "w": "x"}' % (i, kind))
    assert _same(values) is taken


def test_a_key_the_sample_missed_is_looked_for_by_its_first_conflict() -> None:
    rng = random.Random(3)
    values = [b'{"a": %d}' % i for i in range(600)]  # more than the sample
    for i in range(2000):
        late = b'"n/a"' if rng.random() < 0.03 else b"%d.5" % i
        values.append(b'{"a": %d, "late": %s}' % (i, late))
    assert _same(values)


def test_a_key_only_odd_messages_hold_and_column_order() -> None:
    # the first message is odd (decoded by Python) and brings keys in its own order
    values = [b'{"z": "text", "late": 1, "a": 1.5}']
    values += [b'{"a": %d.5, "z": %d}' % (i, i) for i in range(400)]
    values += [b'{"a": "n/a", "z": 1, "only": true}']
    assert _same(values)


def test_duplicate_keys_and_poisoned_messages_among_odd_ones() -> None:
    values = [b'{"a": %d.25}' % i for i in range(300)]
    values[10] = b'{"a": 1, "a": "two"}'  # Python keeps the last
    values[20] = b'{"a": "x"'  # not JSON
    values[30] = b'{"a": "\xff"}'  # not UTF-8
    values[40] = b'{"a": "\\ud800"}'  # an unpaired surrogate
    values[50] = b"[1]"
    values[60] = b'{"a": "ok"}'
    assert _same(values)


def test_random_mixed_batches_match_the_exact_path() -> None:
    rng = random.Random(20261126)
    atoms = [
        *[b"1", b"-7", b"0", b"-0", b"2.5", b"1e3", b"-0.0", b"10.0", b"0.00001", b"1e16"],
        *[b'"s"', b'"2021-02-03"', b'"\\u00e9"', b'"1.5"', b'""'],
        *[b"true", b"false", b"null", b"[1]", b'{"q": 1}', b"[]", b"{}"],
    ]
    keys = [b'"a"', b'"b"', b'"c d"', b'"\\u0065"', b'"f/g"']
    taken = 0
    for _ in range(60):
        # per key a usual kind and a few rare ones: the shape of a stream with some bad data
        usual = {key: rng.choice(atoms) for key in keys}
        rare = {key: rng.sample(atoms, rng.choice([0, 1, 2])) for key in keys}
        values = []
        for _ in range(rng.randint(50, 700)):
            fields = rng.sample(keys, rng.randint(1, len(keys)))
            parts = [
                key
                + b": "
                + (rng.choice(rare[key]) if rare[key] and rng.random() < 0.03 else usual[key])
                for key in fields
            ]
            value = b"{" + b", ".join(parts) + b"}"
            if rng.random() < 0.01:
                value = value[:-1]
            values.append(value)
        taken += _same(values)
    assert taken > 30  # mixed batches are the fast path's too


def test_skeletons_and_the_odd_pattern() -> None:
    assert skeleton({"a": 1, 'q"e': [1], "é": None}) == b'{"a":null,"q\\"e":null,"\\u00e9":null}'
    usual = usual_kinds([{"n": 1, "s": "x", "b": True, "o": {"k": 1}}, {"n": 2.5, "s": None}])
    assert usual == {"n": "number", "s": "string", "b": "bool", "o": "nested"}
    pattern = odd_pattern(usual)
    assert pattern is not None
    assert '"(?:n)"' in pattern
    assert '["tf\\[{]' in pattern
    assert odd_pattern(usual_kinds([{"a": None}])) is None
