"""Pages of SQL read models' tables through the cache: served with their values' types
intact, and never older than a commit. Queries and answers the cache cannot represent
exactly are computed every time."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from decimal import Decimal
from typing import Any, ClassVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventledger import NewEvent, RecordedEvent, open_store
from eventledger.cache import QueryCache, _answers
from eventledger.projections import Context, ProjectionRunner, SqlProjection, on
from tests.cache.conftest import Counting
from tests.cache.test_consistency import active

pytestmark = pytest.mark.postgres


class Sales(SqlProjection):
    name = "sales"
    categories = ("Sale",)
    tables: ClassVar[dict[str, str]] = {
        "sales": "CREATE TABLE {sales} (id TEXT PRIMARY KEY, cents INTEGER NOT NULL,"
        " price NUMERIC(12, 2), ratio REAL)"
    }

    @on("Sold")
    async def sold(self, event: RecordedEvent, context: Context) -> None:
        await context.execute(
            "INSERT INTO {sales} (id, cents, price, ratio)"
            " VALUES (:id, :cents, CAST(:cents AS NUMERIC(12, 2)) / 100, :ratio)",
            id=context.aggregate_id,
            cents=event.data["cents"],
            ratio=event.data["cents"] / 7,
        )


async def test_table_pages_are_served_with_their_types_and_follow_commits(
    shared_store_url: str, caches: list[QueryCache], counted: Counting
) -> None:
    store = await open_store(shared_store_url)
    runner = ProjectionRunner(store, [Sales()], cache=caches[0], poll_interval=0.05)
    other = await open_store(shared_store_url)
    reader = ProjectionRunner(other, [Sales()], cache=caches[1])
    await runner.start()
    try:
        await active(runner, "sales")
        for n in range(3):
            done = await store.append(f"Sale-s{n}", [NewEvent("Sold", {"cents": 100 + n})])
        await runner.wait_until("sales", done.position)
        first = await runner.queries.rows(runner.get("sales"), "sales", order_by=["-cents"])
        await asyncio.sleep(0.1)  # the release after the last commit
        for _ in range(5):
            again = await reader.rows("sales", "sales", order_by=["-cents"])
            assert again == first
            assert [type(v) for v in again[1][0].values()] == [
                type(v) for v in first[1][0].values()
            ]
        assert counted.outcomes["hit"] >= 4
        done = await store.append("Sale-s9", [NewEvent("Sold", {"cents": 999})])
        await runner.wait_until("sales", done.position)
        _, rows = await reader.rows("sales", "sales", order_by=["-cents"])
        assert rows[0]["id"] == "s9"
        assert len(rows) == 4
    finally:
        await runner.stop()
        await store.close()
        await other.close()


values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(1 << 63), (1 << 63) - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=20,
)
cells = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text()
    | st.decimals(allow_nan=False)
    | st.binary(max_size=20)
    | st.datetimes(timezones=st.none() | st.just(dt.UTC))
    | st.dates()
    | st.times()
    | st.timedeltas()
    | st.uuids()
)


@given(docs=st.lists(st.dictionaries(st.text(max_size=8), values, max_size=5), max_size=5))
def test_documents_decode_to_equal_documents(docs: list[dict[str, Any]]) -> None:
    assert _answers.decode("find", _answers.encode("find", docs)) == docs


@given(rows=st.lists(st.dictionaries(st.text(max_size=8), cells, max_size=5), max_size=5))
def test_rows_decode_to_equal_rows_of_the_same_types(rows: list[dict[str, Any]]) -> None:
    columns = sorted({k for row in rows for k in row})
    decoded_columns, decoded = _answers.decode("rows", _answers.encode("rows", (columns, rows)))
    assert decoded_columns == columns
    for before, after in zip(rows, decoded, strict=True):
        assert list(before) == list(after)
        for key, value in before.items():
            if isinstance(value, float) and value != value:
                assert after[key] != after[key]
                continue
            assert after[key] == value
            assert type(after[key]) is type(value)


def test_queries_of_different_types_never_share_a_key() -> None:
    keys = {
        _answers.key_of("find", [{"total": value}])
        for value in (1, 1.0, Decimal("1"), Decimal("1.0"), "1", True, None, [1], (1,))
    }
    assert len(keys) == 8  # a list and a tuple are the same query ("any of")


def test_what_the_cache_cannot_represent_is_computed_not_kept() -> None:
    with pytest.raises(_answers.Uncacheable):
        _answers.key_of("get", [object()])
    with pytest.raises(_answers.Uncacheable):
        _answers.encode("rows", (["x"], [{"x": object()}]))
    with pytest.raises(_answers.Uncacheable):
        _answers.encode("get", {"x": float("nan")})
    assert _answers.key_of("get", [str(uuid.uuid4())]) != _answers.key_of("get", ["other"])
