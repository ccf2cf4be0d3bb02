"""SQL read models' tables in the SQLite file."""

from __future__ import annotations

from eventledger.stores._sql.tables import SqlTablesBase
from eventledger.stores.base import StoreTransaction

__all__ = ["SqliteTables"]


class SqliteTables(SqlTablesBase):
    """:class:`~eventledger.storage.SqlTables` of a SQLite store."""

    async def table_exists(self, tx: StoreTransaction, table: str) -> bool:
        return bool(
            await tx.fetchval(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?", table
            )
        )

    def qualified(self, name: str) -> str:
        return name

    async def columns(self, table: str) -> list[str]:
        found = await self.store.fetch("SELECT name FROM pragma_table_info(?)", table)
        return [str(row[0]) for row in found]
