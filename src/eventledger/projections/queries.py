"""Queries on read models as their current generation has them: documents, SQL, pages of a
SQL read model's table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventledger.errors import InvalidInput, NotFound
from eventledger.projections.base import DocumentProjection, Projection, RunScope, SqlProjection
from eventledger.projections.documents import DocumentQueries
from eventledger.storage import SqlTables

__all__ = ["ReadModelQueries"]

MAX_PAGE = 1000


class ReadModelQueries:
    """What a runner answers about its read models (see :class:`ProjectionRunner`)."""

    def __init__(self, scope: RunScope) -> None:
        self.scope = scope

    def documents(self, projection: Projection) -> DocumentQueries:
        if not isinstance(projection, DocumentProjection):
            raise InvalidInput(f"{projection.name} is not a document projection")
        queries = DocumentQueries(self.scope.read_side, projection.view, projection.indexes)
        cache = self.scope.cache_for(projection)
        if cache is None:
            return queries
        return cache.documents(projection.name, queries, self.scope.read_side)

    async def query(self, projection: Projection, sql: str, *args: Any) -> list[Sequence[Any]]:
        tables = self._sql_projection(projection)
        views = {t: self._sql().qualified(t) for t in tables.tables}
        return await self._sql().query(sql.format(**views), *args)

    async def rows(
        self,
        projection: Projection,
        table: str,
        *,
        order_by: Sequence[str] = (),
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[list[str], list[dict[str, Any]]]:
        tables = self._sql_projection(projection)
        if table not in tables.tables:
            raise NotFound(
                f"{projection.name} has no table {table!r}; tables: {', '.join(tables.tables)}"
            )
        if not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
            raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}, not {limit!r}")
        if not isinstance(offset, int) or offset < 0:
            raise InvalidInput(f"offset must be an int >= 0, not {offset!r}")
        cache = self.scope.cache_for(projection)
        if cache is not None:
            query = [table, list(order_by), limit, offset]

            async def page() -> tuple[list[str], list[dict[str, Any]]]:
                return await self._page(table, order_by, limit, offset)

            return await cache.answer(projection.name, self.scope.read_side, "rows", query, page)
        return await self._page(table, order_by, limit, offset)

    async def _page(
        self, table: str, order_by: Sequence[str], limit: int, offset: int
    ) -> tuple[list[str], list[dict[str, Any]]]:
        sql = self._sql()
        columns = await sql.columns(table)
        order = []
        for item in order_by:
            column = item.removeprefix("-")
            if column not in columns:
                raise InvalidInput(
                    f"order_by {item!r}: {table} has the columns {', '.join(columns)}"
                )
            order.append((column, item.startswith("-")))
        return columns, await sql.page(table, order, limit, offset)

    def _sql_projection(self, projection: Projection) -> SqlProjection:
        if not isinstance(projection, SqlProjection):
            raise InvalidInput(f"{projection.name} is not a SQL projection")
        return projection

    def _sql(self) -> SqlTables:
        if self.scope.sql is None:
            self.scope.store.require("sql_tables")
            raise AssertionError("unreachable")  # pragma: no cover
        return self.scope.sql
