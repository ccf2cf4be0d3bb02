"""Conformance tests for :class:`~eventledger.storage.PersonalDataStorage`: the subjects'
data keys and the streams that hold their values."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from eventledger import EventStore, NewEvent, Snapshot
from eventledger.storage import PersonalDataStorage, SubjectKey
from eventledger.testing._storage_support import OpensStore, close_to, rolled_back

__all__ = ["PersonalDataConformance"]

T0 = datetime(2024, 5, 1, 9, 30, 0, 654321, tzinfo=UTC)
T1 = datetime(2024, 6, 1, 9, 30, 0, tzinfo=UTC)


class PersonalDataConformance(OpensStore):
    """Tests every :class:`~eventledger.storage.PersonalDataStorage` passes. Subclass it
    and provide ``store_url`` (a fresh, empty store)."""

    @pytest.fixture
    def personal(self, store: EventStore) -> PersonalDataStorage:
        assert "personal_data" in store.capabilities
        storage = store.personal_data_storage()
        assert isinstance(storage, PersonalDataStorage)
        return storage

    async def test_keys_added_in_a_transaction_are_found_with_their_streams(
        self, store: EventStore, personal: PersonalDataStorage
    ) -> None:
        ann, bob = SubjectKey("ann", b"\x00wrapped-a\xff", T0), SubjectKey("bob", b"b", T0)
        async with store.transaction() as tx:
            kept = await personal.add_subject_keys(
                tx, [ann, bob], [("ann", "Order-2"), ("ann", "Order-1"), ("bob", "Order-1")]
            )
        assert {s: k.wrapped for s, k in kept.items()} == {"ann": ann.wrapped, "bob": b"b"}
        found = await personal.subject_keys(["ann", "bob", "nobody"])
        assert sorted(found) == ["ann", "bob"]
        assert found["ann"].wrapped == ann.wrapped
        assert close_to(found["ann"].created_at, T0)
        assert found["ann"].forgotten_at is None
        assert await personal.subject_streams("ann") == ["Order-1", "Order-2"]
        assert await personal.subject_streams("nobody") == []
        assert await personal.subject_keys([]) == {}

    async def test_the_first_key_of_a_subject_stays_and_links_are_kept_once(
        self, store: EventStore, personal: PersonalDataStorage
    ) -> None:
        async with store.transaction() as tx:
            await personal.add_subject_keys(tx, [SubjectKey("ann", b"first", T0)], [("ann", "S-1")])
        async with store.transaction() as tx:
            kept = await personal.add_subject_keys(
                tx, [SubjectKey("ann", b"second", T1)], [("ann", "S-1"), ("ann", "S-2")]
            )
        assert kept["ann"].wrapped == b"first"  # the caller sees it lost, and seals again
        assert (await personal.subject_keys(["ann"]))["ann"].wrapped == b"first"
        assert await personal.subject_streams("ann") == ["S-1", "S-2"]

    async def test_what_a_rolled_back_transaction_added_is_not_kept(
        self, store: EventStore, personal: PersonalDataStorage
    ) -> None:
        async with rolled_back(store) as tx:
            await personal.add_subject_keys(tx, [SubjectKey("ann", b"k", T0)], [("ann", "S-1")])
        assert await personal.subject_keys(["ann"]) == {}
        assert await personal.subject_streams("ann") == []

    async def test_forgetting_drops_the_key_keeps_the_row_and_discards_snapshots(
        self, store: EventStore, personal: PersonalDataStorage
    ) -> None:
        await store.append("S-1", [NewEvent("Happened", {})])
        await store.save_snapshot(Snapshot("S-1", 1, "Thing", "f", {"secret": "x"}))
        await store.save_snapshot(Snapshot("S-9", 1, "Thing", "f", {"n": 1}))
        async with store.transaction() as tx:
            await personal.add_subject_keys(tx, [SubjectKey("ann", b"k", T0)], [("ann", "S-1")])
        async with store.transaction(appends=True) as tx:
            streams = await personal.forget_subject(tx, "ann", T1)
        assert streams == ["S-1"]
        gone = (await personal.subject_keys(["ann"]))["ann"]
        assert gone.wrapped is None
        assert gone.forgotten_at is not None
        assert close_to(gone.forgotten_at, T1)
        assert await store.load_snapshot("S-1") is None
        assert await store.load_snapshot("S-9") is not None
        # Forgetting again keeps the first time; a new key is not taken.
        async with store.transaction(appends=True) as tx:
            await personal.forget_subject(tx, "ann", datetime(2025, 1, 1, tzinfo=UTC))
        async with store.transaction() as tx:
            kept = await personal.add_subject_keys(tx, [SubjectKey("ann", b"new", T1)], [])
        assert kept["ann"].wrapped is None
        again = (await personal.subject_keys(["ann"]))["ann"]
        assert again.forgotten_at is not None
        assert close_to(again.forgotten_at, T1)

    async def test_a_subject_never_seen_can_be_forgotten_ahead(
        self, store: EventStore, personal: PersonalDataStorage
    ) -> None:
        async with store.transaction(appends=True) as tx:
            assert await personal.forget_subject(tx, "zed", T1) == []
        found = (await personal.subject_keys(["zed"]))["zed"]
        assert (found.wrapped, found.forgotten_at is not None) == (None, True)

    async def test_a_rolled_back_forget_forgets_nothing(
        self, store: EventStore, personal: PersonalDataStorage
    ) -> None:
        async with store.transaction() as tx:
            await personal.add_subject_keys(tx, [SubjectKey("ann", b"k", T0)], [("ann", "S-1")])
        async with rolled_back(store) as tx:
            await personal.forget_subject(tx, "ann", T1)
        assert (await personal.subject_keys(["ann"]))["ann"].wrapped == b"k"
