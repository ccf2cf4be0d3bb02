"""Conformance tests for :class:`~eventledger.storage.SqlTables`: SQL read models' own tables.

A store that does not keep SQL tables (no ``"sql_tables"`` in its capabilities) must
refuse to hand them out with :class:`~eventledger.UnsupportedFeature`; every test here
checks that on such a store, and stops.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from eventledger import EventStore, InvalidInput, UnsupportedFeature
from eventledger.storage import SqlTables
from eventledger.testing._storage_support import OpensStore, rolled_back

__all__ = ["SqlTablesConformance"]

# Portable SQL: what SQLite and PostgreSQL (and any SQL read model's author) both accept.
SALES_DDL = (
    "CREATE TABLE {table} (day TEXT PRIMARY KEY, region TEXT NOT NULL, total INTEGER NOT NULL)"
)
INSERT_SALE = "INSERT INTO {table} (day, region, total) VALUES (:day, :region, :total)"
SALES: list[dict[str, Any]] = [
    {"day": "2024-05-01", "region": "north", "total": 30},
    {"day": "2024-05-02", "region": "south", "total": 10},
    {"day": "2024-05-03", "region": "north", "total": 20},
    {"day": "2024-05-04", "region": "south", "total": 40},
]


def _tables(store: EventStore) -> SqlTables | None:
    """The store's SQL tables; None (after checking the refusal) if it keeps none."""
    if "sql_tables" not in store.capabilities:
        with pytest.raises(UnsupportedFeature):
            store.sql_tables()
        return None
    tables = store.sql_tables()
    assert isinstance(tables, SqlTables)
    return tables


async def _create_sales(
    store: EventStore,
    tables: SqlTables,
    table: str = "sales_g1",
    rows: Sequence[Mapping[str, Any]] = SALES,
    view: str | None = "sales",
) -> None:
    async with store.transaction() as tx:
        await tables.prepare(tx)
        await tx.execute(SALES_DDL.format(table=table))
        for row in rows:
            await tx.execute(*_bound(tables, INSERT_SALE.format(table=table), row))
        if view is not None:
            await tables.point_view(tx, view, table)


def _bound(tables: SqlTables, sql: str, params: Mapping[str, Any]) -> tuple[Any, ...]:
    text, args = tables.bind(sql, params)
    return (text, *args)


async def _days(tables: SqlTables, name: str) -> list[str]:
    rows = await tables.query(f"SELECT day FROM {tables.qualified(name)} ORDER BY day")
    return [str(row[0]) for row in rows]


class SqlTablesConformance(OpensStore):
    """Tests every :class:`~eventledger.storage.SqlTables` passes, and the refusal of a store
    without them. Subclass it and provide ``store_url`` (a fresh, empty store)."""

    async def test_bind_makes_named_parameters_the_backends_in_order(
        self, store: EventStore
    ) -> None:
        tables = _tables(store)
        if tables is None:
            return
        sql, args = tables.bind(
            "SELECT CAST(:a AS INTEGER) + CAST(:b AS INTEGER), CAST(:a AS INTEGER)",
            {"a": 2, "b": 3, "unused": 4},
        )
        assert ":a" not in sql
        assert ":b" not in sql
        assert args == [2, 3, 2]
        rows = await tables.query(sql, *args)
        assert [tuple(row) for row in rows] == [(5, 2)]

    async def test_bind_leaves_casts_alone_and_binds_nothing_without_names(
        self, store: EventStore
    ) -> None:
        tables = _tables(store)
        if tables is None:
            return
        sql, args = tables.bind("SELECT x::text FROM t WHERE y = :y", {"y": 1})
        assert "x::text" in sql
        assert args == [1]
        assert tables.bind("SELECT 1", {}) == ("SELECT 1", [])

    async def test_bind_refuses_a_name_without_a_value(self, store: EventStore) -> None:
        tables = _tables(store)
        if tables is None:
            return
        with pytest.raises(InvalidInput):
            tables.bind("SELECT :present, :missing", {"present": 1})

    async def test_a_table_created_after_prepare_exists_and_keeps_its_rows(
        self, store: EventStore
    ) -> None:
        tables = _tables(store)
        if tables is None:
            return
        async with store.transaction() as tx:
            await tables.prepare(tx)
            assert not await tables.table_exists(tx, "sales_g1")
        await _create_sales(store, tables, view=None)
        async with store.transaction() as tx:
            await tables.prepare(tx)
            assert await tables.table_exists(tx, "sales_g1")
            assert not await tables.table_exists(tx, "sales_g2")
            # Unqualified names in the transaction find the table.
            count = await tx.fetchval("SELECT count(*) FROM sales_g1")
        assert int(count) == len(SALES)
        assert await _days(tables, "sales_g1") == [row["day"] for row in SALES]

    async def test_a_table_created_in_a_rolled_back_transaction_does_not_exist(
        self, store: EventStore
    ) -> None:
        tables = _tables(store)
        if tables is None:
            return
        async with rolled_back(store) as tx:
            await tables.prepare(tx)
            await tx.execute(SALES_DDL.format(table="sales_g1"))
            assert await tables.table_exists(tx, "sales_g1")
        async with store.transaction() as tx:
            await tables.prepare(tx)
            assert not await tables.table_exists(tx, "sales_g1")
        assert await tables.columns("sales_g1") == []

    async def test_rows_written_in_a_rolled_back_transaction_are_not_kept(
        self, store: EventStore
    ) -> None:
        tables = _tables(store)
        if tables is None:
            return
        await _create_sales(store, tables)
        async with rolled_back(store) as tx:
            await tables.prepare(tx)
            extra = {"day": "2024-06-01", "region": "west", "total": 1}
            await tx.execute(*_bound(tables, INSERT_SALE.format(table="sales_g1"), extra))
        assert await _days(tables, "sales") == [row["day"] for row in SALES]

    async def test_a_view_shows_the_table_it_points_to(self, store: EventStore) -> None:
        tables = _tables(store)
        if tables is None:
            return
        await _create_sales(store, tables)
        assert await _days(tables, "sales") == [row["day"] for row in SALES]
        # A rebuild fills a second generation, points the view at it, drops the first.
        await _create_sales(store, tables, "sales_g2", SALES[:1], view=None)
        async with store.transaction() as tx:
            await tables.prepare(tx)
            await tables.point_view(tx, "sales", "sales_g2")
            await tables.drop_table(tx, "sales_g1")
        assert await _days(tables, "sales") == [SALES[0]["day"]]
        async with store.transaction() as tx:
            await tables.prepare(tx)
            assert not await tables.table_exists(tx, "sales_g1")
            assert await tables.table_exists(tx, "sales_g2")
            await tables.drop_table(tx, "never_created")

    async def test_columns_are_listed_in_order_for_tables_and_views(
        self, store: EventStore
    ) -> None:
        tables = _tables(store)
        if tables is None:
            return
        await _create_sales(store, tables)
        assert await tables.columns("sales_g1") == ["day", "region", "total"]
        assert await tables.columns("sales") == ["day", "region", "total"]
        assert await tables.columns("no_such_table") == []

    async def test_pages_of_rows_are_ordered_by_the_columns_given(self, store: EventStore) -> None:
        tables = _tables(store)
        if tables is None:
            return
        await _create_sales(store, tables)
        by_total = await tables.page("sales", [("total", True)], 10, 0)
        assert by_total == sorted(SALES, key=lambda row: -int(row["total"]))
        assert await tables.page("sales", [("total", False)], 2, 1) == [SALES[2], SALES[0]]
        assert await tables.page("sales", [("total", False)], 2, 4) == []
        by_region = await tables.page("sales", [("region", False), ("total", True)], 10, 0)
        assert [row["day"] for row in by_region] == [
            "2024-05-01",
            "2024-05-03",
            "2024-05-04",
            "2024-05-02",
        ]
        pages = [await tables.page("sales", [], 1, offset) for offset in range(len(SALES))]
        assert sorted(row["day"] for page in pages for row in page) == [r["day"] for r in SALES]

    async def test_queries_read_tables_and_views_outside_transactions(
        self, store: EventStore
    ) -> None:
        tables = _tables(store)
        if tables is None:
            return
        await _create_sales(store, tables)
        sql, args = tables.bind(
            f"SELECT region, SUM(total) FROM {tables.qualified('sales')}"
            " WHERE total >= :least GROUP BY region ORDER BY region",
            {"least": 20},
        )
        rows = await tables.query(sql, *args)
        assert [(row[0], int(row[1])) for row in rows] == [("north", 50), ("south", 40)]
