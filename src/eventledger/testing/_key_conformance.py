"""Conformance tests for :class:`~eventledger.storage.KeyStorage`: the HTTP server's API keys."""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from eventledger import EventStore
from eventledger.storage import KeyStorage, StoredKey
from eventledger.testing._storage_support import OpensStore, close_to

__all__ = ["KeyStorageConformance"]

T0 = datetime(2024, 5, 1, 9, 30, 0, 654321, tzinfo=UTC)


def _key(key_id: str, minutes: int = 0, scopes: frozenset[str] | None = None) -> StoredKey:
    return StoredKey(
        key_id,
        f"owner of {key_id}",
        hashlib.sha256(key_id.encode()).hexdigest(),
        frozenset({"read", "write"}) if scopes is None else scopes,
        T0 + timedelta(minutes=minutes),
    )


def _same(found: StoredKey | None, key: StoredKey) -> bool:
    return (
        found is not None
        and (found.id, found.owner, found.secret_hash, found.scopes)
        == (key.id, key.owner, key.secret_hash, key.scopes)
        and close_to(found.created_at, key.created_at)
        and (
            found.revoked_at is None
            if key.revoked_at is None
            else close_to(found.revoked_at, key.revoked_at)
        )
        and (
            found.expires_at is None
            if key.expires_at is None
            else close_to(found.expires_at, key.expires_at)
        )
    )


class KeyStorageConformance(OpensStore):
    """Tests every :class:`~eventledger.storage.KeyStorage` passes. Subclass it and provide
    ``store_url`` (a fresh, empty store)."""

    @pytest.fixture
    def keys(self, store: EventStore) -> KeyStorage:
        assert "api_keys" in store.capabilities
        storage = store.key_storage()
        assert isinstance(storage, KeyStorage)
        return storage

    async def test_an_added_key_is_found_by_its_id(self, keys: KeyStorage) -> None:
        key = _key("k-1", scopes=frozenset({"read", "admin", "write"}))
        await keys.add_key(key)
        found = await keys.get_key("k-1")
        assert _same(found, key)
        assert found is not None
        assert found.revoked_at is None

    async def test_a_key_without_scopes_keeps_none(self, keys: KeyStorage) -> None:
        key = _key("k-1", scopes=frozenset())
        await keys.add_key(key)
        assert _same(await keys.get_key("k-1"), key)

    async def test_an_unknown_key_is_not_found(self, keys: KeyStorage) -> None:
        assert await keys.get_key("k-unknown") is None
        assert await keys.list_keys() == []

    async def test_keys_are_listed_oldest_first_revoked_ones_too(self, keys: KeyStorage) -> None:
        newest, oldest, middle = _key("k-a", 20), _key("k-b", 0), _key("k-c", 10)
        for key in (newest, oldest, middle):
            await keys.add_key(key)
        await keys.revoke_key("k-c", T0 + timedelta(hours=1))
        listed = await keys.list_keys()
        assert [key.id for key in listed] == ["k-b", "k-c", "k-a"]
        assert _same(listed[0], oldest)
        assert listed[1].revoked_at is not None

    async def test_a_revoked_key_keeps_the_time_it_was_first_revoked(
        self, keys: KeyStorage
    ) -> None:
        await keys.add_key(_key("k-1"))
        await keys.add_key(_key("k-2"))
        first = T0 + timedelta(days=1, microseconds=7)
        await keys.revoke_key("k-1", first)
        await keys.revoke_key("k-1", first + timedelta(days=1))
        found = await keys.get_key("k-1")
        assert found is not None
        assert close_to(found.revoked_at, first)
        assert _same(found, dataclasses.replace(_key("k-1"), revoked_at=first))
        untouched = await keys.get_key("k-2")
        assert untouched is not None
        assert untouched.revoked_at is None
        await keys.revoke_key("k-unknown", first)
        assert await keys.get_key("k-unknown") is None

    async def test_a_key_keeps_the_time_it_expires_and_none_means_never(
        self, keys: KeyStorage
    ) -> None:
        expiring = dataclasses.replace(_key("k-1"), expires_at=T0 + timedelta(days=90))
        await keys.add_key(expiring)
        await keys.add_key(_key("k-2"))
        assert _same(await keys.get_key("k-1"), expiring)
        never = await keys.get_key("k-2")
        assert never is not None
        assert never.expires_at is None
        listed = await keys.list_keys()
        assert _same(listed[0], expiring)

    async def test_expiring_a_key_sets_its_time_unless_it_expires_sooner(
        self, keys: KeyStorage
    ) -> None:
        await keys.add_key(_key("k-never"))
        soon = T0 + timedelta(days=1, microseconds=3)
        await keys.add_key(dataclasses.replace(_key("k-soon"), expires_at=soon))
        await keys.add_key(_key("k-other"))
        later = T0 + timedelta(days=2)
        await keys.expire_key("k-never", later)
        await keys.expire_key("k-soon", later)
        never = await keys.get_key("k-never")
        assert never is not None
        assert close_to(never.expires_at, later)
        kept = await keys.get_key("k-soon")
        assert kept is not None
        assert close_to(kept.expires_at, soon)
        earlier = T0 + timedelta(hours=1)
        await keys.expire_key("k-soon", earlier)
        moved = await keys.get_key("k-soon")
        assert moved is not None
        assert close_to(moved.expires_at, earlier)
        other = await keys.get_key("k-other")
        assert other is not None
        assert other.expires_at is None
        assert other.revoked_at is None
        await keys.expire_key("k-unknown", later)
        assert await keys.get_key("k-unknown") is None
