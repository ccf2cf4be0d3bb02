"""API keys for the HTTP server, kept in the store (hashed).

A key reads ``el_<id>_<secret>``: the id finds the key, the secret proves it.
Only the secret's SHA-256 is stored, so the full key is shown once, when it is
made. Each key has an owner (who becomes the actor of what it does) and scopes:

- ``read``: streams, events, read models, status;
- ``write``: commands;
- ``admin``: rebuilding and resetting projections, the dead-letter queue.

>>> import asyncio
>>> from eventledger import open_store
>>> async def main() -> tuple[str, bool]:
...     async with await open_store("memory://") as store:
...         keys = ApiKeys(store)
...         key, secret = await keys.create("service:checkout", ["read", "write"])
...         found = await keys.verify(secret)
...         await keys.revoke(key.id)
...         return found.owner if found else "", await keys.verify(secret) is None
>>> asyncio.run(main())
('service:checkout', True)
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from eventledger._sql import EPOCH, SqlDialect
from eventledger.errors import InvalidInput, NotFound
from eventledger.stores.base import EventStore
from eventledger.stores.memory import MemoryStore

__all__ = ["SCOPES", "ApiKey", "ApiKeys"]

SCOPES = ("read", "write", "admin")
_KEY = re.compile(r"el_([0-9a-f]{16})_([A-Za-z0-9_-]{43})")
_OWNER = re.compile(r"[^\x00-\x1f\x7f]{1,100}")


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    owner: str
    scopes: frozenset[str]
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


class ApiKeys:
    """Create, list, revoke and verify the API keys of one store.

    Verified keys are remembered for `cache_seconds` (default 5), so a request
    costs no database round trip for its key; a revoked key is refused within
    that time everywhere (at once in the process that revoked it).
    """

    def __init__(self, store: EventStore, *, cache_seconds: float = 5.0) -> None:
        self.store = store
        self.cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, ApiKey | None]] = {}
        self._memory = store.log.api_keys if isinstance(store, MemoryStore) else None
        self._sql = None if isinstance(store, MemoryStore) else SqlDialect(store)

    async def create(self, owner: str, scopes: Iterable[str] = ("read",)) -> tuple[ApiKey, str]:
        """A new key: its record, and the full key (shown this once, never stored)."""
        if not isinstance(owner, str) or not _OWNER.fullmatch(owner):
            raise InvalidInput(
                f"a key's owner is 1 to 100 printable characters, not {owner!r}; it becomes the"
                " actor of what the key does (say 'service:checkout' or 'user:alice')"
            )
        chosen = frozenset(scopes)
        unknown = chosen - set(SCOPES)
        if not chosen or unknown:
            raise InvalidInput(
                f"scopes are some of {', '.join(SCOPES)},"
                f" not {', '.join(sorted(unknown)) or 'none'}"
            )
        key_id = secrets.token_hex(8)
        secret = secrets.token_urlsafe(32)
        key = ApiKey(key_id, owner, chosen, datetime.now(UTC))
        digest = _digest(secret)
        if self._memory is not None:
            self._memory[key_id] = (key, digest)
        else:
            sql = self._sql
            assert sql is not None
            async with self.store.transaction() as tx:
                await tx.execute(
                    f"INSERT INTO {sql.t('api_keys')} (id, owner, secret_hash, scopes, created_at)"
                    f" VALUES ({sql.marks(5)})",
                    key_id,
                    owner,
                    digest,
                    " ".join(sorted(chosen)),
                    sql.time_param(key.created_at),
                )
        return key, f"el_{key_id}_{secret}"

    async def list(self, *, include_revoked: bool = False) -> list[ApiKey]:
        """The keys, oldest first."""
        if self._memory is not None:
            keys = [key for key, _ in self._memory.values()]
        else:
            sql = self._sql
            assert sql is not None
            rows = await self.store.fetch(
                f"SELECT id, owner, scopes, created_at, revoked_at FROM {sql.t('api_keys')}"
            )
            keys = [self._key(sql, row) for row in rows]
        keys.sort(key=lambda k: (k.created_at, k.id))
        return [k for k in keys if include_revoked or k.active]

    async def revoke(self, key_id: str) -> ApiKey:
        """Revoke a key (by its id, or the full key); revoking twice changes nothing."""
        match = _KEY.fullmatch(key_id) if isinstance(key_id, str) else None
        wanted = match.group(1) if match else key_id
        found = [k for k in await self.list(include_revoked=True) if k.id == wanted]
        if not found:
            raise NotFound(f"no API key with id {key_id!r}")
        key = found[0]
        if key.active:
            key = dataclasses.replace(key, revoked_at=datetime.now(UTC))
            if self._memory is not None:
                self._memory[key.id] = (key, self._memory[key.id][1])
            else:
                sql = self._sql
                assert sql is not None
                async with self.store.transaction() as tx:
                    await tx.execute(
                        f"UPDATE {sql.t('api_keys')} SET revoked_at = {sql.p(1)}"
                        f" WHERE id = {sql.p(2)}",
                        sql.time_param(key.revoked_at or datetime.now(UTC)),
                        key.id,
                    )
        self._cache = {k: v for k, v in self._cache.items() if v[1] is None or v[1].id != key.id}
        return key

    async def verify(self, presented: str) -> ApiKey | None:
        """The active key a client presented, or None (unknown, wrong or revoked)."""
        now = time.monotonic()
        cached = self._cache.get(presented)
        if cached is not None and now - cached[0] < self.cache_seconds:
            return cached[1]
        found = await self._verify(presented)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[presented] = (now, found)
        return found

    async def _verify(self, presented: str) -> ApiKey | None:
        match = _KEY.fullmatch(presented) if isinstance(presented, str) else None
        if match is None:
            return None
        key_id, secret = match.groups()
        if self._memory is not None:
            entry = self._memory.get(key_id)
            if entry is None:
                return None
            key, digest = entry
            assert isinstance(key, ApiKey)
        else:
            sql = self._sql
            assert sql is not None
            rows = await self.store.fetch(
                f"SELECT id, owner, scopes, created_at, revoked_at, secret_hash"
                f" FROM {sql.t('api_keys')} WHERE id = {sql.p(1)}",
                key_id,
            )
            if not rows:
                return None
            key, digest = self._key(sql, rows[0]), str(rows[0][5])
        if not hmac.compare_digest(digest, _digest(secret)) or not key.active:
            return None
        return key

    @staticmethod
    def _key(sql: SqlDialect, row: Any) -> ApiKey:
        return ApiKey(
            row[0],
            row[1],
            frozenset(row[2].split()),
            sql.time_value(row[3]) or EPOCH,
            sql.time_value(row[4]),
        )


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()
