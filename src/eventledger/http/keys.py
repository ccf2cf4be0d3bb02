"""API keys for the HTTP server, kept in the store (hashed).

A key reads ``el_<id>_<secret>``: the id finds the key, the secret proves it.
Only the secret's SHA-256 is stored, so the full key is shown once, when it is
made. Each key has an owner (who becomes the actor of what it does) and scopes:

- ``read``: streams, events, read models, status;
- ``write``: commands;
- ``admin``: rebuilding and resetting projections, the dead-letter queue;
- ``metrics``: ``GET /metrics`` only (for Prometheus).

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

A key may expire by itself (``create(..., expires_in=timedelta(days=90))``), and
``rotate(key_id, overlap=timedelta(hours=1))`` makes its successor (same owner, same
scopes) and lets the old key expire when the overlap ends, so that clients can move
to the new key while both are valid. An expired key is refused like a revoked one.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from eventledger.errors import InvalidInput, NotFound
from eventledger.storage import KeyStorage, StoredKey
from eventledger.stores.base import EventStore

__all__ = ["SCOPES", "ApiKey", "ApiKeys"]

SCOPES = ("read", "write", "admin", "metrics")
_KEY = re.compile(r"el_([0-9a-f]{16})_([A-Za-z0-9_-]{43})")
_OWNER = re.compile(r"[^\x00-\x1f\x7f]{1,100}")


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    owner: str
    scopes: frozenset[str]
    created_at: datetime
    revoked_at: datetime | None = None
    expires_at: datetime | None = None

    @property
    def active(self) -> bool:
        """Neither revoked nor expired (now)."""
        return self.revoked_at is None and not self.expired

    @property
    def expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= datetime.now(UTC)


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

    async def create(
        self,
        owner: str,
        scopes: Iterable[str] = ("read",),
        *,
        expires_at: datetime | None = None,
        expires_in: timedelta | float | None = None,
    ) -> tuple[ApiKey, str]:
        """A new key: its record, and the full key (shown this once, never stored).

        The key expires at `expires_at` (a time with its zone), or `expires_in` (a
        timedelta, or seconds) from now; by default never."""
        now = datetime.now(UTC)
        expiry = _expiry(now, expires_at, expires_in)
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
        stored = StoredKey(key_id, owner, _digest(secret), chosen, now, expires_at=expiry)
        await self._storage.add_key(stored)
        return _public(stored), f"el_{key_id}_{secret}"

    async def rotate(
        self,
        key_id: str,
        *,
        overlap: timedelta | float = timedelta(hours=1),
        expires_at: datetime | None = None,
        expires_in: timedelta | float | None = None,
    ) -> tuple[ApiKey, str, ApiKey]:
        """A successor of a key (by its id, or the full key): a new key with the same
        owner and scopes, and the old key set to expire after `overlap` (a timedelta,
        or seconds; sooner if it expires sooner already), so that both are valid while
        clients change over. The new key expires at `expires_at` or in `expires_in`;
        by default it lives as long as the old one was made to (forever if that one
        had no expiry). Returns the new key's record, the full new key (shown this
        once) and the old key's record as it is now."""
        lapse = _seconds(overlap, "overlap")
        old = await self._find(key_id)
        if old.revoked_at is not None:
            raise InvalidInput(
                f"key {old.id} of {old.owner} is revoked; a revoked key has no successor"
                " (make a new one with keys create)"
            )
        now = datetime.now(UTC)
        if expires_at is None and expires_in is None and old.expires_at is not None:
            expires_in = max(old.expires_at - old.created_at, timedelta(seconds=1))
        new, secret = await self.create(
            old.owner, old.scopes, expires_at=expires_at, expires_in=expires_in
        )
        await self._storage.expire_key(old.id, now + timedelta(seconds=lapse))
        self._forget(old.id)
        return new, secret, _public(await self._storage.get_key(old.id) or old)

    async def list(self, *, include_revoked: bool = False) -> list[ApiKey]:
        """The keys, oldest first: the active ones, or all with `include_revoked`
        (revoked and expired ones too)."""
        keys = [_public(k) for k in await self._storage.list_keys()]
        return [k for k in keys if include_revoked or k.active]

    async def revoke(self, key_id: str) -> ApiKey:
        """Revoke a key (by its id, or the full key); revoking twice changes nothing."""
        found = await self._find(key_id)
        if found.revoked_at is None:
            await self._storage.revoke_key(found.id, datetime.now(UTC))
            found = await self._storage.get_key(found.id) or found
        self._forget(found.id)
        return _public(found)

    async def verify(self, presented: str) -> ApiKey | None:
        """The active key a client presented, or None (unknown, wrong, revoked or
        expired)."""
        found = await self.identify(presented)
        return found if found is not None and found.active else None

    async def identify(self, presented: str) -> ApiKey | None:
        """The key a client presented if its secret is right, active or not (None:
        unknown or wrong), so that a server can say that a key expired."""
        now = time.monotonic()
        cached = self._cache.get(presented)
        if cached is not None and now - cached[0] < self.cache_seconds:
            return cached[1]
        found = await self._identify(presented)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[presented] = (now, found)
        return found

    async def active(self, key_id: str) -> ApiKey | None:
        """The key with this id if it is still active (remembered like `verify`): how a
        session made with a key finds out that the key was revoked or expired."""
        now = time.monotonic()
        cached = self._cache.get(f"id:{key_id}")
        if cached is None or now - cached[0] >= self.cache_seconds:
            stored = await self._storage.get_key(key_id)
            cached = (now, None if stored is None else _public(stored))
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[f"id:{key_id}"] = cached
        found = cached[1]
        return found if found is not None and found.active else None

    @staticmethod
    def id_of(presented: str) -> str | None:
        """The id part of a full key (``el_<id>_<secret>``), if it looks like one."""
        match = _KEY.fullmatch(presented) if isinstance(presented, str) else None
        return match.group(1) if match else None

    async def _find(self, key_id: str) -> StoredKey:
        match = _KEY.fullmatch(key_id) if isinstance(key_id, str) else None
        wanted = match.group(1) if match else key_id
        found = await self._storage.get_key(wanted) if isinstance(wanted, str) else None
        if found is None:
            shown = f"el_{match.group(1)}_..." if match else key_id
            raise NotFound(f"no API key with id {shown!r}")
        return found

    def _forget(self, key_id: str) -> None:
        """Drop what this process remembers of a key (it changed)."""
        self._cache = {
            k: v
            for k, v in self._cache.items()
            if k != f"id:{key_id}" and (v[1] is None or v[1].id != key_id)
        }

    async def _identify(self, presented: str) -> ApiKey | None:
        match = _KEY.fullmatch(presented) if isinstance(presented, str) else None
        if match is None:
            return None
        key_id, secret = match.groups()
        stored = await self._storage.get_key(key_id)
        if stored is None:
            return None
        # Constant time: how much of a guess was right never shows in the answer's time.
        if not hmac.compare_digest(stored.secret_hash, _digest(secret)):
            return None
        return _public(stored)


def _public(stored: StoredKey) -> ApiKey:
    return ApiKey(
        stored.id,
        stored.owner,
        stored.scopes,
        stored.created_at,
        stored.revoked_at,
        stored.expires_at,
    )


def _seconds(value: timedelta | float, name: str) -> float:
    seconds = value.total_seconds() if isinstance(value, timedelta) else value
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, int | float)
        or not 0 <= seconds < 1e10  # a few centuries
    ):
        raise InvalidInput(f"{name} is a timedelta or seconds, 0 or more, not {value!r}")
    return float(seconds)


def _expiry(
    now: datetime, expires_at: datetime | None, expires_in: timedelta | float | None
) -> datetime | None:
    """When a new key expires (None: never), checked."""
    if expires_at is not None and expires_in is not None:
        raise InvalidInput("give expires_at or expires_in, not both")
    if expires_in is not None:
        seconds = _seconds(expires_in, "expires_in")
        if seconds <= 0:
            raise InvalidInput(f"expires_in must be more than 0, not {expires_in!r}")
        return now + timedelta(seconds=seconds)
    if expires_at is None:
        return None
    if not isinstance(expires_at, datetime) or expires_at.tzinfo is None:
        raise InvalidInput(
            f"expires_at is a datetime with its time zone (say UTC), not {expires_at!r}"
        )
    if expires_at <= now:
        raise InvalidInput(
            f"expires_at {expires_at.isoformat()} is not in the future; a key must be valid"
            " for a while"
        )
    if expires_at.year > 9998:
        raise InvalidInput(f"expires_at {expires_at.isoformat()} is too far away")
    return expires_at.astimezone(UTC)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()
