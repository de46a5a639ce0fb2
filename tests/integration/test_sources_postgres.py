"""PostgresSource on the local PostgreSQL server: streamed batches, types, read-only, errors."""

from __future__ import annotations

import datetime as dt
import decimal

import pyarrow as pa
import pytest

from decisionloop.config import Settings
from decisionloop.data.batches import POSITION, RawBatch, Source
from decisionloop.data.sources import PostgresSource, open_source
from decisionloop.errors import Invalid, Unavailable

pytestmark = pytest.mark.postgres

ROWS = 25_000


def conninfo(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


@pytest.fixture
def shop_url(fresh_postgres_url: str) -> str:
    """A database with a 25,000-row ``customers`` table of assorted column types."""
    import psycopg

    with psycopg.connect(conninfo(fresh_postgres_url)) as conn:
        conn.execute(
            """
            CREATE TABLE customers (
                id integer PRIMARY KEY,
                name text,
                balance numeric(12, 2),
                score double precision,
                active boolean,
                signed_up timestamptz,
                born date,
                visits bigint,
                tags jsonb
            )
            """
        )
        conn.execute(
            """
            INSERT INTO customers
            SELECT n,
                   'customer ' || n,
                   n * 1.25,
                   CASE WHEN n %% 10 = 0 THEN NULL ELSE n / 4.0 END,
                   n %% 2 = 0,
                   timestamptz '2024-01-01 00:00:00+00' + n * interval '1 minute',
                   date '1990-01-01' + (n %% 1000),
                   n::bigint * 1000000,
                   jsonb_build_object('n', n)
            FROM generate_series(1, %s) AS n
            """,
            (ROWS,),
        )
    return fresh_postgres_url


def read_all(source: Source, max_batch_rows: int = 100_000) -> list[RawBatch]:
    try:
        return list(source.read(max_batch_rows=max_batch_rows))
    finally:
        source.close()


def test_query_streams_in_batches_with_positions_and_types(shop_url: str) -> None:
    source = PostgresSource(shop_url, "SELECT * FROM customers ORDER BY id")

    batches = read_all(source, max_batch_rows=10_000)

    tables = [batch.table for batch in batches]
    assert [len(table) for table in tables if table is not None] == [10_000, 10_000, 5_000]
    assert [batch.origin.rsplit("#", 1)[1] for batch in batches] == [
        "rows=1-10000",
        "rows=10001-20000",
        "rows=20001-25000",
    ]
    assert all(batch.origin.startswith(source.origin) for batch in batches)
    whole = pa.concat_tables([table for table in tables if table is not None])
    assert whole.column_names == [
        "id",
        "name",
        "balance",
        "score",
        "active",
        "signed_up",
        "born",
        "visits",
        "tags",
        POSITION,
    ]
    schema = whole.schema
    assert schema.field("id").type == pa.int32()
    assert schema.field("name").type == pa.string()
    assert schema.field("balance").type == pa.decimal128(12, 2)
    assert schema.field("score").type == pa.float64()
    assert schema.field("active").type == pa.bool_()
    assert schema.field("signed_up").type == pa.timestamp("us", tz="UTC")
    assert schema.field("born").type == pa.date32()
    assert schema.field("visits").type == pa.int64()
    assert schema.field("tags").type == pa.string()
    positions = whole.column(POSITION).to_pylist()
    assert positions[0] == "query:1"
    assert positions[10_000] == "query:10001"
    assert positions[-1] == f"query:{ROWS}"
    row = whole.slice(9_999, 1).to_pylist()[0]
    assert row["id"] == 10_000
    assert row["name"] == "customer 10000"
    assert row["balance"] == decimal.Decimal("12500.00")
    assert row["score"] is None
    assert row["active"] is True
    assert row["signed_up"] == dt.datetime(2024, 1, 7, 22, 40, tzinfo=dt.UTC)
    assert row["visits"] == 10_000_000_000
    assert row["tags"] == '{"n": 10000}'
    assert whole.column("score").null_count == ROWS // 10


def test_batch_rows_caps_the_batch_size(shop_url: str) -> None:
    source = PostgresSource(shop_url, "SELECT id FROM customers WHERE id <= 7", batch_rows=3)

    batches = read_all(source)

    assert [batch.table.num_rows for batch in batches if batch.table is not None] == [3, 3, 1]


def test_unconstrained_numeric_and_text_fallback(shop_url: str) -> None:
    query = (
        "SELECT 1.5::numeric AS ratio, gen_random_uuid() AS id, ARRAY[1, 2] AS pair, '50%' AS label"
    )

    (batch,) = read_all(PostgresSource(shop_url, query))

    assert batch.table is not None
    row = batch.table.to_pylist()[0]
    assert row["ratio"] == 1.5
    assert len(row["id"]) == 36
    assert row["pair"] == "[1, 2]"
    assert row["label"] == "50%"


def test_empty_result_yields_nothing(shop_url: str) -> None:
    assert read_all(PostgresSource(shop_url, "SELECT * FROM customers WHERE id < 0")) == []


@pytest.mark.parametrize(
    "query",
    [
        "WITH gone AS (DELETE FROM customers RETURNING id) SELECT id FROM gone",
        "SELECT 1; DELETE FROM customers",
        "SELECT nextval('customers_seq')",
    ],
)
def test_a_query_that_writes_is_refused(shop_url: str, query: str) -> None:
    import psycopg

    with psycopg.connect(conninfo(shop_url), autocommit=True) as conn:
        conn.execute("CREATE SEQUENCE IF NOT EXISTS customers_seq")

    with pytest.raises(Invalid):
        read_all(PostgresSource(shop_url, query))

    with psycopg.connect(conninfo(shop_url)) as conn:
        count = conn.execute("SELECT count(*) FROM customers").fetchone()
        sequence = conn.execute("SELECT last_value, is_called FROM customers_seq").fetchone()
    assert count == (ROWS,)
    assert sequence == (1, False)


def test_a_refused_write_names_the_reason(shop_url: str) -> None:
    import psycopg

    with psycopg.connect(conninfo(shop_url), autocommit=True) as conn:
        conn.execute("CREATE SEQUENCE customers_seq")

    with pytest.raises(Invalid, match=r"tried to write.*read-only transaction") as info:
        read_all(PostgresSource(shop_url, "SELECT nextval('customers_seq')"))

    assert info.value.hint == "a source query only reads; use SELECT"


def test_a_bad_query_is_invalid_with_the_servers_message(shop_url: str) -> None:
    with pytest.raises(Invalid, match='column "nope" does not exist') as info:
        read_all(PostgresSource(shop_url, "SELECT nope FROM customers"))
    assert "42703" in str(info.value)

    with pytest.raises(Invalid, match="syntax error"):
        read_all(PostgresSource(shop_url, "SELEC 1"))
    with pytest.raises(Invalid, match="duplicate column name"):
        read_all(PostgresSource(shop_url, "SELECT id, id FROM customers"))
    with pytest.raises(Invalid, match="reserved column name"):
        read_all(PostgresSource(shop_url, "SELECT id AS _position FROM customers"))


def test_unreachable_server_is_unavailable() -> None:
    source = PostgresSource("postgresql://reader:s3cret@127.0.0.1:1/shop", "SELECT 1")

    with pytest.raises(Unavailable, match="cannot connect to PostgreSQL") as info:
        read_all(source)

    assert "s3cret" not in str(info.value)
    assert "127.0.0.1:1" in str(info.value)
    assert "server is running" in info.value.hint
    assert info.value.__cause__ is not None


def test_stop_ends_the_read_after_the_current_batch(shop_url: str) -> None:
    source = PostgresSource(shop_url, "SELECT id FROM customers ORDER BY id")
    reader = source.read(max_batch_rows=1_000)

    first = next(reader)
    source.stop()
    rest = list(reader)

    assert first.table is not None
    assert first.table.num_rows == 1_000
    assert rest == []
    source.close()


def test_open_source_builds_a_postgres_source(shop_url: str) -> None:
    source = open_source(
        shop_url, Settings(), query="SELECT count(*) AS n FROM customers WHERE active"
    )

    (batch,) = read_all(source)

    assert batch.table is not None
    assert batch.table.to_pylist() == [{"n": ROWS // 2, POSITION: "query:1"}]
