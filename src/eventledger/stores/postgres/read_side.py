"""The read side in the store's PostgreSQL schema."""

from __future__ import annotations

from collections.abc import Mapping

from eventledger.stores._sql.read_side import SqlReadSide
from eventledger.stores.base import StoreTransaction, library_sql

__all__ = ["PostgresReadSide"]


class PostgresReadSide(SqlReadSide):
    """:class:`~eventledger.storage.ReadSideStorage` of a PostgreSQL store."""

    @library_sql
    async def _upsert_documents(
        self, tx: StoreTransaction, table: str, upserts: Mapping[str, bytes | str]
    ) -> None:
        # One statement for the whole batch: ids and documents as two arrays.
        await tx.execute(
            f"INSERT INTO {self.sql.object_name(table)} (id, doc)"
            " SELECT * FROM unnest($1::text[], $2::text[]::json[])"
            " ON CONFLICT (id) DO UPDATE SET doc = excluded.doc",
            list(upserts),
            [doc.decode() if isinstance(doc, bytes) else doc for doc in upserts.values()],
        )
