"""SQL read models' own tables: portable placeholders, views, pages of rows."""

from __future__ import annotations

import abc
import re
from collections.abc import Mapping, Sequence
from typing import Any

from eventledger.errors import InvalidInput
from eventledger.stores._sql.dialect import Dialect
from eventledger.stores.base import EventStore, StoreTransaction

__all__ = ["SqlTablesBase"]

# ":name", but not "::type" casts and not inside a word.
_NAMED = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


class SqlTablesBase(abc.ABC):
    """:class:`~eventledger.storage.SqlTables`, but for what each backend asks its catalog."""

    def __init__(self, store: EventStore, dialect: Dialect) -> None:
        self.store = store
        self.sql = dialect

    def bind(self, sql: str, params: Mapping[str, Any]) -> tuple[str, list[Any]]:
        args: list[Any] = []

        def placeholder(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in params:
                raise InvalidInput(f"no value for :{name} in {sql!r}")
            args.append(params[name])
            return self.sql.p(len(args))

        return _NAMED.sub(placeholder, sql), args

    async def prepare(self, tx: StoreTransaction) -> None:  # noqa: B027 - a hook, empty by default
        """Nothing to do where unqualified names find the read models' tables already."""

    @abc.abstractmethod
    async def table_exists(self, tx: StoreTransaction, table: str) -> bool: ...

    async def drop_table(self, tx: StoreTransaction, table: str) -> None:
        await tx.execute(f"DROP TABLE IF EXISTS {table}{self.sql.cascade}")

    async def point_view(self, tx: StoreTransaction, view: str, table: str) -> None:
        await tx.execute(f"DROP VIEW IF EXISTS {view}")
        await tx.execute(f"CREATE VIEW {view} AS SELECT * FROM {table}")

    @abc.abstractmethod
    def qualified(self, name: str) -> str: ...

    @abc.abstractmethod
    async def columns(self, table: str) -> list[str]: ...

    async def page(
        self, table: str, order_by: Sequence[tuple[str, bool]], limit: int, offset: int
    ) -> list[dict[str, Any]]:
        d = self.sql
        order = [f'"{column}" {"DESC" if descending else "ASC"}' for column, descending in order_by]
        order.append("1")  # a stable order for paging
        return await self.store.fetch_records(
            f"SELECT * FROM {self.qualified(table)} ORDER BY {', '.join(order)}"
            f" LIMIT {d.p(1)} OFFSET {d.p(2)}",
            limit,
            offset,
        )

    async def query(self, sql: str, *args: Any) -> list[Sequence[Any]]:
        return await self.store.fetch(sql, *args)
