"""The memory backend's API keys."""

from __future__ import annotations

import dataclasses
from datetime import datetime

from eventledger.storage import StoredKey
from eventledger.stores.memory.log import MemoryLog

__all__ = ["MemoryKeyStorage"]


class MemoryKeyStorage:
    """:class:`~eventledger.storage.KeyStorage` of a memory store."""

    def __init__(self, log: MemoryLog) -> None:
        self.log = log

    async def add_key(self, key: StoredKey) -> None:
        with self.log.lock:
            self.log.api_keys[key.id] = key

    async def get_key(self, key_id: str) -> StoredKey | None:
        with self.log.lock:
            return self.log.api_keys.get(key_id)

    async def list_keys(self) -> list[StoredKey]:
        with self.log.lock:
            keys = list(self.log.api_keys.values())
        return sorted(keys, key=lambda k: (k.created_at, k.id))

    async def revoke_key(self, key_id: str, when: datetime) -> None:
        with self.log.lock:
            key = self.log.api_keys.get(key_id)
            if key is not None and key.revoked_at is None:
                self.log.api_keys[key_id] = dataclasses.replace(key, revoked_at=when)

    async def expire_key(self, key_id: str, when: datetime) -> None:
        with self.log.lock:
            key = self.log.api_keys.get(key_id)
            if key is not None and (key.expires_at is None or key.expires_at > when):
                self.log.api_keys[key_id] = dataclasses.replace(key, expires_at=when)
