"""SQL read models' tables in the store's PostgreSQL schema."""

from __future__ import annotations

from eventledger.stores._sql.dialect import Dialect
from eventledger.stores._sql.tables import SqlTablesBase
from eventledger.stores.base import EventStore, StoreTransaction

__all__ = ["PostgresTables"]


class PostgresTables(SqlTablesBase):
    """:class:`~eventledger.storage.SqlTables` of a PostgreSQL store: the tables live in
    the store's schema, which a batch's transaction puts first on its search path."""

    def __init__(self, store: EventStore, dialect: Dialect, schema: str) -> None:
        super().__init__(store, dialect)
        self.schema = schema

    async def prepare(self, tx: StoreTransaction) -> None:
        await tx.execute(f'SET LOCAL search_path TO "{self.schema}"')

    async def table_exists(self, tx: StoreTransaction, table: str) -> bool:
        return bool(await tx.fetchval("SELECT to_regclass($1) IS NOT NULL", table))

    def qualified(self, name: str) -> str:
        return f'"{self.schema}".{name}'

    async def columns(self, table: str) -> list[str]:
        found = await self.store.fetch(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position",
            self.schema,
            table,
        )
        return [str(row[0]) for row in found]
