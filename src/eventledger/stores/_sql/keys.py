"""API keys in SQL (only the secret's hash)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from eventledger.storage import EPOCH, StoredKey
from eventledger.stores._sql.dialect import Dialect
from eventledger.stores.base import EventStore

__all__ = ["SqlKeyStorage"]

_COLUMNS = "id, owner, secret_hash, scopes, created_at, revoked_at, expires_at"


class SqlKeyStorage:
    """:class:`~eventledger.storage.KeyStorage` in the store's own database."""

    def __init__(self, store: EventStore, dialect: Dialect) -> None:
        self.store = store
        self.sql = dialect

    def _key(self, row: Sequence[Any]) -> StoredKey:
        d = self.sql
        return StoredKey(
            row[0],
            row[1],
            row[2],
            frozenset(str(row[3]).split()),
            d.time_value(row[4]) or EPOCH,
            d.time_value(row[5]),
            d.time_value(row[6]),
        )

    async def add_key(self, key: StoredKey) -> None:
        d = self.sql
        async with self.store.transaction() as tx:
            await tx.execute(
                f"INSERT INTO {d.t('api_keys')}"
                " (id, owner, secret_hash, scopes, created_at, expires_at)"
                f" VALUES ({d.marks(6)})",
                key.id,
                key.owner,
                key.secret_hash,
                " ".join(sorted(key.scopes)),
                d.time_param(key.created_at),
                None if key.expires_at is None else d.time_param(key.expires_at),
            )

    async def get_key(self, key_id: str) -> StoredKey | None:
        d = self.sql
        rows = await self.store.fetch(
            f"SELECT {_COLUMNS} FROM {d.t('api_keys')} WHERE id = {d.p(1)}", key_id
        )
        return self._key(rows[0]) if rows else None

    async def list_keys(self) -> list[StoredKey]:
        rows = await self.store.fetch(
            f"SELECT {_COLUMNS} FROM {self.sql.t('api_keys')} ORDER BY created_at, id"
        )
        return [self._key(row) for row in rows]

    async def revoke_key(self, key_id: str, when: datetime) -> None:
        d = self.sql
        async with self.store.transaction() as tx:
            await tx.execute(
                f"UPDATE {d.t('api_keys')} SET revoked_at = {d.p(1)}"
                f" WHERE id = {d.p(2)} AND revoked_at IS NULL",
                d.time_param(when),
                key_id,
            )

    async def expire_key(self, key_id: str, when: datetime) -> None:
        d = self.sql
        async with self.store.transaction() as tx:
            await tx.execute(
                f"UPDATE {d.t('api_keys')} SET expires_at = {d.p(1)}"
                f" WHERE id = {d.p(2)} AND (expires_at IS NULL OR expires_at > {d.p(3)})",
                d.time_param(when),
                key_id,
                d.time_param(when),
            )
