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

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from eventledger.errors import InvalidInput, NotFound
from eventledger.storage import KeyStorage, StoredKey
from eventledger.stores.base import EventStore

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
        self._storage: KeyStorage = store.key_storage()
        self._cache: dict[str, tuple[float, ApiKey | None]] = {}

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
        stored = StoredKey(key_id, owner, _digest(secret), chosen, datetime.now(UTC))
        await self._storage.add_key(stored)
        return _public(stored), f"el_{key_id}_{secret}"

    async def list(self, *, include_revoked: bool = False) -> list[ApiKey]:
        """The keys, oldest first."""
        keys = [_public(k) for k in await self._storage.list_keys()]
        return [k for k in keys if include_revoked or k.active]

    async def revoke(self, key_id: str) -> ApiKey:
        """Revoke a key (by its id, or the full key); revoking twice changes nothing."""
        match = _KEY.fullmatch(key_id) if isinstance(key_id, str) else None
        wanted = match.group(1) if match else key_id
        found = await self._storage.get_key(wanted) if isinstance(wanted, str) else None
        if found is None:
            raise NotFound(f"no API key with id {key_id!r}")
        if found.revoked_at is None:
            await self._storage.revoke_key(found.id, datetime.now(UTC))
            found = await self._storage.get_key(found.id) or found
        self._cache = {k: v for k, v in self._cache.items() if v[1] is None or v[1].id != found.id}
        return _public(found)

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

    async def active(self, key_id: str) -> ApiKey | None:
        """The key with this id if it is still active (remembered like `verify`): how a
        session made with a key finds out that the key was revoked."""
        now = time.monotonic()
        cached = self._cache.get(f"id:{key_id}")
        if cached is not None and now - cached[0] < self.cache_seconds:
            return cached[1]
        stored = await self._storage.get_key(key_id)
        found = None if stored is None or stored.revoked_at else _public(stored)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[f"id:{key_id}"] = (now, found)
        return found

    @staticmethod
    def id_of(presented: str) -> str | None:
        """The id part of a full key (``el_<id>_<secret>``), if it looks like one."""
        match = _KEY.fullmatch(presented) if isinstance(presented, str) else None
        return match.group(1) if match else None

    async def _verify(self, presented: str) -> ApiKey | None:
        match = _KEY.fullmatch(presented) if isinstance(presented, str) else None
        if match is None:
            return None
        key_id, secret = match.groups()
        stored = await self._storage.get_key(key_id)
        if stored is None:
            return None
        if not hmac.compare_digest(stored.secret_hash, _digest(secret)) or stored.revoked_at:
            return None
        return _public(stored)


def _public(stored: StoredKey) -> ApiKey:
    return ApiKey(stored.id, stored.owner, stored.scopes, stored.created_at, stored.revoked_at)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()
