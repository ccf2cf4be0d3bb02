"""Conformance tests for :class:`~eventledger.storage.ReadSideStorage`: checkpoints, leases,
dead letters and read-model generations (documents: ``_document_conformance``)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from eventledger import EventStore, RecordedEvent
from eventledger.storage import DeadLetter, ReadSideStorage
from eventledger.testing._document_conformance import DocumentConformance
from eventledger.testing._storage_support import eventually, recent, rolled_back

__all__ = ["ReadSideConformance"]

LONG_TTL = 30.0
"""A lease that cannot run out during a test."""
SHORT_TTL = 0.3
"""A lease that runs out soon (waited for by polling, with a deadline)."""


def _event(position: int, stream_id: str = "Order-7", kind: str = "OrderPlaced") -> RecordedEvent:
    return RecordedEvent(
        uuid.uuid4(),
        stream_id,
        position,
        position,
        kind,
        1,
        {"n": position},
        {},
        datetime.now(UTC),
    )


class ReadSideConformance(DocumentConformance):
    """Tests every :class:`~eventledger.storage.ReadSideStorage` passes (its document
    collections too). Subclass it and provide ``store_url`` (a fresh, empty store)."""

    # --- checkpoints ---------------------------------------------------------------------

    async def test_a_subscription_without_a_checkpoint_has_none(
        self, read_side: ReadSideStorage
    ) -> None:
        assert await read_side.get_checkpoint("order_list") is None
        assert await read_side.checkpoints() == {}

    async def test_checkpoints_are_set_replaced_listed_and_deleted(
        self, store: EventStore, read_side: ReadSideStorage
    ) -> None:
        async with store.transaction() as tx:
            await read_side.set_checkpoint(tx, "order_list", 0)
            await read_side.set_checkpoint(tx, "order_list@3", 17)
            await read_side.set_checkpoint(tx, "stock", 2**40)
        assert await read_side.get_checkpoint("order_list") == 0
        assert await read_side.get_checkpoint("order_list@3") == 17
        async with store.transaction() as tx:
            await read_side.set_checkpoint(tx, "order_list", 42)
        assert await read_side.get_checkpoint("order_list") == 42
        assert await read_side.checkpoints() == {
            "order_list": 42,
            "order_list@3": 17,
            "stock": 2**40,
        }
        async with store.transaction() as tx:
            await read_side.delete_checkpoint(tx, "order_list@3")
            await read_side.delete_checkpoint(tx, "never_set")
        assert await read_side.get_checkpoint("order_list@3") is None
        assert await read_side.checkpoints() == {"order_list": 42, "stock": 2**40}

    async def test_a_checkpoint_written_in_a_rolled_back_transaction_is_not_kept(
        self, store: EventStore, read_side: ReadSideStorage
    ) -> None:
        async with rolled_back(store) as tx:
            await read_side.set_checkpoint(tx, "order_list", 5)
        assert await read_side.get_checkpoint("order_list") is None
        assert await read_side.checkpoints() == {}

    async def test_a_rolled_back_change_or_delete_leaves_the_checkpoint_as_it_was(
        self, store: EventStore, read_side: ReadSideStorage
    ) -> None:
        async with store.transaction() as tx:
            await read_side.set_checkpoint(tx, "order_list", 5)
        async with rolled_back(store) as tx:
            await read_side.set_checkpoint(tx, "order_list", 9)
        assert await read_side.get_checkpoint("order_list") == 5
        async with rolled_back(store) as tx:
            await read_side.delete_checkpoint(tx, "order_list")
        assert await read_side.get_checkpoint("order_list") == 5

    # --- leases ------------------------------------------------------------------------

    async def test_a_free_lease_is_taken_and_another_owner_is_refused_while_it_holds(
        self, read_side: ReadSideStorage
    ) -> None:
        assert await read_side.lease("order_list") is None
        assert await read_side.acquire_lease("order_list", "worker-a", LONG_TTL)
        assert not await read_side.acquire_lease("order_list", "worker-b", LONG_TTL)
        held = await read_side.lease("order_list")
        assert held is not None
        assert (held.name, held.owner) == ("order_list", "worker-a")
        # Leases are per name.
        assert await read_side.acquire_lease("order_list@2", "worker-b", LONG_TTL)

    async def test_a_lease_tells_its_owner_and_an_expiry_in_the_future(
        self, read_side: ReadSideStorage
    ) -> None:
        before = datetime.now(UTC)
        assert await read_side.acquire_lease("order_list", "worker-a", LONG_TTL)
        held = await read_side.lease("order_list")
        assert held is not None
        assert held.owner == "worker-a"
        assert held.expires_at.tzinfo is not None
        assert recent(held.expires_at - timedelta(seconds=LONG_TTL), before)
        assert held.expires_at > datetime.now(UTC)

    async def test_the_owner_renews_its_lease(self, read_side: ReadSideStorage) -> None:
        assert await read_side.acquire_lease("order_list", "worker-a", SHORT_TTL)
        assert await read_side.acquire_lease("order_list", "worker-a", LONG_TTL)
        held = await read_side.lease("order_list")
        assert held is not None
        assert held.owner == "worker-a"
        assert held.expires_at > datetime.now(UTC) + timedelta(seconds=LONG_TTL / 2)
        assert not await read_side.acquire_lease("order_list", "worker-b", LONG_TTL)

    async def test_an_expired_lease_is_taken_over_by_another_owner(
        self, read_side: ReadSideStorage
    ) -> None:
        assert await read_side.acquire_lease("order_list", "worker-a", SHORT_TTL)

        async def taken_over() -> bool:
            return await read_side.acquire_lease("order_list", "worker-b", LONG_TTL)

        await eventually(taken_over, "worker-b takes the lease worker-a let run out")
        held = await read_side.lease("order_list")
        assert held is not None
        assert held.owner == "worker-b"
        assert not await read_side.acquire_lease("order_list", "worker-a", LONG_TTL)

    async def test_an_expired_lease_is_not_shown(self, read_side: ReadSideStorage) -> None:
        assert await read_side.acquire_lease("order_list", "worker-a", SHORT_TTL)

        async def gone() -> bool:
            return await read_side.lease("order_list") is None

        await eventually(gone, "the lease runs out")

    async def test_only_the_owner_releases_a_lease(self, read_side: ReadSideStorage) -> None:
        assert await read_side.acquire_lease("order_list", "worker-a", LONG_TTL)
        await read_side.release_lease("order_list", "worker-b")
        held = await read_side.lease("order_list")
        assert held is not None
        assert held.owner == "worker-a"
        await read_side.release_lease("order_list", "worker-a")
        assert await read_side.lease("order_list") is None
        assert await read_side.acquire_lease("order_list", "worker-b", LONG_TTL)
        await read_side.release_lease("never_held", "worker-a")

    async def test_a_lease_is_held_inside_a_transaction(
        self, store: EventStore, read_side: ReadSideStorage
    ) -> None:
        async with store.transaction() as tx:
            assert await read_side.hold_lease(tx, "order_list", "worker-a", LONG_TTL)
        held = await read_side.lease("order_list")
        assert held is not None
        assert held.owner == "worker-a"
        async with store.transaction() as tx:
            assert await read_side.hold_lease(tx, "order_list", "worker-a", LONG_TTL)
        async with store.transaction() as tx:
            assert not await read_side.hold_lease(tx, "order_list", "worker-b", LONG_TTL)
        held = await read_side.lease("order_list")
        assert held is not None
        assert held.owner == "worker-a"

    async def test_an_expired_lease_is_held_by_another_owner_inside_a_transaction(
        self, store: EventStore, read_side: ReadSideStorage
    ) -> None:
        assert await read_side.acquire_lease("order_list", "worker-a", SHORT_TTL)

        async def gone() -> bool:
            return await read_side.lease("order_list") is None

        await eventually(gone, "the lease runs out")
        async with store.transaction() as tx:
            assert await read_side.hold_lease(tx, "order_list", "worker-b", LONG_TTL)
        held = await read_side.lease("order_list")
        assert held is not None
        assert held.owner == "worker-b"

    # --- dead letters -------------------------------------------------------------------

    async def test_a_parked_event_is_kept_with_everything_about_its_failure(
        self, store: EventStore, read_side: ReadSideStorage
    ) -> None:
        event = _event(12, "Order-12", "orders.OrderPaid")
        before = datetime.now(UTC)
        async with store.transaction() as tx:
            letter_id = await read_side.park(
                tx, "order_list", event, 3, "ValueError: bad total", "Traceback:\n  line 1\n"
            )
        assert isinstance(letter_id, int)
        letter = await read_side.dead_letter(letter_id)
        assert isinstance(letter, DeadLetter)
        assert (
            letter.id,
            letter.subscription,
            letter.position,
            letter.event_id,
            letter.stream_id,
            letter.event_type,
            letter.attempts,
            letter.error,
            letter.traceback,
            letter.status,
            letter.resolved_at,
        ) == (
            letter_id,
            "order_list",
            12,
            event.id,
            "Order-12",
            "orders.OrderPaid",
            3,
            "ValueError: bad total",
            "Traceback:\n  line 1\n",
            "parked",
            None,
        )
        assert recent(letter.parked_at, before)
        assert await read_side.dead_letter(letter_id + 1000) is None

    async def test_dead_letters_get_increasing_ids_and_list_in_id_order(
        self, store: EventStore, read_side: ReadSideStorage
    ) -> None:
        ids = []
        for position, subscription in enumerate(["orders", "stock", "orders", "stock", "orders"]):
            async with store.transaction() as tx:
                ids.append(await read_side.park(tx, subscription, _event(position + 1), 1, "e", ""))
        assert ids == sorted(ids)
        assert len(set(ids)) == len(ids)
        async with store.transaction() as tx:
            more = [await read_side.park(tx, "orders", _event(n), 1, "e", "") for n in (6, 7)]
        assert ids[-1] < more[0] < more[1]
        everything = await read_side.dead_letters(None, None)
        assert [letter.id for letter in everything] == [*ids, *more]
        orders = await read_side.dead_letters("orders", None)
        assert [letter.id for letter in orders] == [ids[0], ids[2], ids[4], *more]
        assert [letter.position for letter in orders] == [1, 3, 5, 6, 7]
        assert await read_side.dead_letters("unknown", None) == []
        # One page at a time: ids above `after`, at most `limit`.
        page = await read_side.dead_letters("orders", None, after=ids[0], limit=2)
        assert [letter.id for letter in page] == [ids[2], ids[4]]
        rest = await read_side.dead_letters("orders", None, after=ids[4], limit=10)
        assert [letter.id for letter in rest] == more
        assert await read_side.dead_letters(None, None, after=more[-1]) == []

    async def test_resolving_a_dead_letter_sets_its_status_and_time(
        self, store: EventStore, read_side: ReadSideStorage
    ) -> None:
        async with store.transaction() as tx:
            first = await read_side.park(tx, "orders", _event(1), 1, "e", "")
            second = await read_side.park(tx, "orders", _event(2), 1, "e", "")
            third = await read_side.park(tx, "stock", _event(3), 1, "e", "")
        before = datetime.now(UTC)
        async with store.transaction() as tx:
            await read_side.resolve(tx, first, "retried")
            await read_side.resolve(tx, third, "skipped")
        retried = await read_side.dead_letter(first)
        assert retried is not None
        assert retried.status == "retried"
        assert recent(retried.resolved_at, before)
        assert retried.resolved_at is not None
        assert retried.resolved_at >= retried.parked_at
        still = await read_side.dead_letter(second)
        assert still is not None
        assert (still.status, still.resolved_at) == ("parked", None)

        def ids(letters: list[DeadLetter]) -> list[int]:
            return [letter.id for letter in letters]

        assert ids(await read_side.dead_letters("orders", "parked")) == [second]
        assert ids(await read_side.dead_letters("orders", "retried")) == [first]
        assert ids(await read_side.dead_letters(None, "skipped")) == [third]
        assert ids(await read_side.dead_letters("stock", "parked")) == []
        assert ids(await read_side.dead_letters(None, "parked")) == [second]

    async def test_a_rolled_back_transaction_parks_and_resolves_nothing(
        self, store: EventStore, read_side: ReadSideStorage
    ) -> None:
        async with rolled_back(store) as tx:
            lost = await read_side.park(tx, "orders", _event(1), 1, "e", "")
        assert await read_side.dead_letters(None, None) == []
        assert await read_side.dead_letter(lost) is None
        async with store.transaction() as tx:
            kept = await read_side.park(tx, "orders", _event(2), 1, "e", "")
        async with rolled_back(store) as tx:
            await read_side.resolve(tx, kept, "skipped")
        letter = await read_side.dead_letter(kept)
        assert letter is not None
        assert (letter.status, letter.resolved_at) == ("parked", None)

    # --- read-model generations ----------------------------------------------------------

    async def test_generations_are_set_and_replaced(
        self, store: EventStore, read_side: ReadSideStorage
    ) -> None:
        assert await read_side.generation("order_list") is None
        async with store.transaction() as tx:
            await read_side.set_generation(tx, "order_list", 1)
            await read_side.set_generation(tx, "stock", 4)
        assert await read_side.generation("order_list") == 1
        async with store.transaction() as tx:
            await read_side.set_generation(tx, "order_list", 2)
        assert await read_side.generation("order_list") == 2
        assert await read_side.generation("stock") == 4

    async def test_a_generation_set_in_a_rolled_back_transaction_is_not_kept(
        self, store: EventStore, read_side: ReadSideStorage
    ) -> None:
        async with rolled_back(store) as tx:
            await read_side.set_generation(tx, "order_list", 1)
        assert await read_side.generation("order_list") is None
        async with store.transaction() as tx:
            await read_side.set_generation(tx, "order_list", 1)
        async with rolled_back(store) as tx:
            await read_side.set_generation(tx, "order_list", 2)
        assert await read_side.generation("order_list") == 1
