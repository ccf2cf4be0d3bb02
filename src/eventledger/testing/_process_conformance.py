"""Conformance tests for :class:`~eventledger.storage.ProcessStorage`: process-manager
instances and their deadlines."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from eventledger import EventStore
from eventledger.storage import InstanceRow, ProcessStorage, TimeoutRow
from eventledger.testing._storage_support import OpensStore, close_to, rolled_back

__all__ = ["ProcessStorageConformance"]

T0 = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)


def _instance(
    instance_id: str,
    status: str = "active",
    updated: int = 0,
    process: str = "fulfilment",
    **state: Any,
) -> InstanceRow:
    return InstanceRow(
        process,
        instance_id,
        status,
        {"step": "reserve", **state},
        {"timeouts": [], "compensations": ["release_stock"]},
        T0,
        T0 + timedelta(seconds=updated),
    )


def _timeout(
    due_in: float, instance_id: str = "o-1", process: str = "fulfilment", name: str = "payment"
) -> TimeoutRow:
    return TimeoutRow(
        uuid.uuid4(),
        process,
        instance_id,
        name,
        datetime.now(UTC) + timedelta(seconds=due_in),
        {"correlation_id": "corr-1", "attempt": 1},
    )


def _same_instance(found: InstanceRow | None, row: InstanceRow) -> bool:
    return (
        found is not None
        and (found.process, found.instance_id, found.status, found.state, found.bookkeeping)
        == (row.process, row.instance_id, row.status, row.state, row.bookkeeping)
        and close_to(found.started_at, row.started_at)
        and close_to(found.updated_at, row.updated_at)
    )


def _same_timeout(found: TimeoutRow, row: TimeoutRow) -> bool:
    return (found.id, found.process, found.instance_id, found.name, found.metadata) == (
        row.id,
        row.process,
        row.instance_id,
        row.name,
        row.metadata,
    ) and close_to(found.due_at, row.due_at)


def _ids(rows: Sequence[InstanceRow]) -> list[str]:
    return [row.instance_id for row in rows]


class ProcessStorageConformance(OpensStore):
    """Tests every :class:`~eventledger.storage.ProcessStorage` passes. Subclass it and
    provide ``store_url`` (a fresh, empty store)."""

    @pytest.fixture
    def processes(self, store: EventStore) -> ProcessStorage:
        assert "processes" in store.capabilities
        storage = store.process_storage()
        assert isinstance(storage, ProcessStorage)
        return storage

    # --- instances ----------------------------------------------------------------------

    async def test_saved_instances_are_found_by_id(
        self, store: EventStore, processes: ProcessStorage
    ) -> None:
        rows = [_instance("o-1", order={"total": "28.00"}), _instance("o-2", "completed", 5)]
        other = _instance("o-1", process="billing", step="invoice")
        async with store.transaction() as tx:
            await processes.save(tx, [*rows, other], [], [])
        found = await processes.instances("fulfilment", ["o-1", "o-2", "o-unknown"])
        assert set(found) == {"o-1", "o-2"}
        assert _same_instance(found["o-1"], rows[0])
        assert _same_instance(found["o-2"], rows[1])
        billing = await processes.instances("billing", ["o-1", "o-2"])
        assert set(billing) == {"o-1"}
        assert _same_instance(billing["o-1"], other)
        assert await processes.instances("fulfilment", []) == {}

    async def test_saving_an_instance_again_updates_it(
        self, store: EventStore, processes: ProcessStorage
    ) -> None:
        async with store.transaction() as tx:
            await processes.save(tx, [_instance("o-1")], [], [])
        changed = _instance("o-1", "failed", 30, step="compensate", reason="declined")
        async with store.transaction() as tx:
            await processes.save(tx, [changed], [], [])
        found = await processes.instances("fulfilment", ["o-1"])
        assert _same_instance(found.get("o-1"), changed)
        assert len(await processes.list_instances("fulfilment", None, 10, 0)) == 1

    async def test_instances_saved_in_a_rolled_back_transaction_are_not_kept(
        self, store: EventStore, processes: ProcessStorage
    ) -> None:
        async with store.transaction() as tx:
            await processes.save(tx, [_instance("o-1")], [], [])
        async with rolled_back(store) as tx:
            await processes.save(
                tx, [_instance("o-1", "completed", 9), _instance("o-2")], [_timeout(-5)], []
            )
        found = await processes.instances("fulfilment", ["o-1", "o-2"])
        assert set(found) == {"o-1"}
        assert _same_instance(found["o-1"], _instance("o-1"))
        assert await processes.due("fulfilment", datetime.now(UTC), 10) == []

    async def test_instances_are_listed_most_recently_updated_first(
        self, store: EventStore, processes: ProcessStorage
    ) -> None:
        rows = [
            _instance("o-1", "active", 10),
            _instance("o-2", "completed", 30),
            _instance("o-3", "active", 20),
            _instance("o-4", "active", 20),  # ties by id
            _instance("o-5", "failed", 5),
            _instance("o-9", "active", 99, process="billing"),
        ]
        async with store.transaction() as tx:
            await processes.save(tx, rows, [], [])
        every = await processes.list_instances("fulfilment", None, 10, 0)
        assert _ids(every) == ["o-2", "o-3", "o-4", "o-1", "o-5"]
        assert _same_instance(every[0], rows[1])
        active = await processes.list_instances("fulfilment", "active", 10, 0)
        assert _ids(active) == ["o-3", "o-4", "o-1"]
        assert _ids(await processes.list_instances("fulfilment", "active", 2, 1)) == [
            "o-4",
            "o-1",
        ]
        assert _ids(await processes.list_instances("fulfilment", None, 2, 0)) == ["o-2", "o-3"]
        assert await processes.list_instances("fulfilment", None, 10, 5) == []
        assert await processes.list_instances("shipping", None, 10, 0) == []

    async def test_instances_are_counted_by_status(
        self, store: EventStore, processes: ProcessStorage
    ) -> None:
        assert await processes.count_instances("fulfilment") == {}
        rows = [
            _instance("o-1", "active", 10),
            _instance("o-2", "completed", 30),
            _instance("o-3", "active", 20),
            _instance("o-9", "failed", 99, process="billing"),
        ]
        async with store.transaction() as tx:
            await processes.save(tx, rows, [], [])
        assert await processes.count_instances("fulfilment") == {"active": 2, "completed": 1}
        assert await processes.count_instances("billing") == {"failed": 1}

    async def test_instances_are_paged_after_the_last_one_seen(
        self, store: EventStore, processes: ProcessStorage
    ) -> None:
        rows = [
            _instance("o-1", "active", 10),
            _instance("o-2", "completed", 30),
            _instance("o-3", "active", 20),
            _instance("o-4", "active", 20),  # ties by id
            _instance("o-5", "failed", 5),
        ]
        async with store.transaction() as tx:
            await processes.save(tx, rows, [], [])
        seen: list[str] = []
        after = None
        while True:
            page = await processes.list_instances("fulfilment", None, 2, 0, after=after)
            if not page:
                break
            seen += _ids(page)
            after = (page[-1].updated_at, page[-1].instance_id)
        assert seen == ["o-2", "o-3", "o-4", "o-1", "o-5"]
        third = next(r for r in rows if r.instance_id == "o-3")
        after_tie = await processes.list_instances(
            "fulfilment", "active", 10, 0, after=(third.updated_at, "o-3")
        )
        assert _ids(after_tie) == ["o-4", "o-1"]

    # --- deadlines ----------------------------------------------------------------------

    async def test_due_deadlines_come_earliest_first(
        self, store: EventStore, processes: ProcessStorage
    ) -> None:
        late, early, future = _timeout(-10), _timeout(-20, "o-2"), _timeout(3600)
        elsewhere = _timeout(-30, process="billing")
        async with store.transaction() as tx:
            await processes.save(tx, [], [late, future, early, elsewhere], [])
        due = await processes.due("fulfilment", datetime.now(UTC), 10)
        assert [t.id for t in due] == [early.id, late.id]
        assert _same_timeout(due[0], early)
        assert _same_timeout(due[1], late)
        assert [t.id for t in await processes.due("fulfilment", datetime.now(UTC), 1)] == [early.id]
        # `now` decides what is due.
        later = datetime.now(UTC) + timedelta(hours=2)
        assert [t.id for t in await processes.due("fulfilment", later, 10)] == [
            early.id,
            late.id,
            future.id,
        ]
        assert await processes.due("fulfilment", early.due_at - timedelta(seconds=1), 10) == []
        assert [t.id for t in await processes.due("billing", datetime.now(UTC), 10)] == [
            elsewhere.id
        ]

    async def test_a_fired_deadline_is_no_longer_due(
        self, store: EventStore, processes: ProcessStorage
    ) -> None:
        first, second = _timeout(-20), _timeout(-10)
        async with store.transaction() as tx:
            await processes.save(tx, [], [first, second], [])
        await processes.mark_fired(first.id)
        await processes.mark_fired(uuid.uuid4())
        due = await processes.due("fulfilment", datetime.now(UTC), 10)
        assert [t.id for t in due] == [second.id]

    async def test_cancelled_deadlines_are_removed(
        self, store: EventStore, processes: ProcessStorage
    ) -> None:
        first, second, third = _timeout(-30), _timeout(-20), _timeout(-10)
        async with store.transaction() as tx:
            await processes.save(tx, [], [first, second, third], [])
        async with store.transaction() as tx:
            await processes.save(tx, [_instance("o-1")], [], [first.id, third.id, uuid.uuid4()])
        due = await processes.due("fulfilment", datetime.now(UTC), 10)
        assert [t.id for t in due] == [second.id]

    async def test_a_deadline_scheduled_again_under_a_stored_id_is_left_alone(
        self, store: EventStore, processes: ProcessStorage
    ) -> None:
        kept = _timeout(-10)
        async with store.transaction() as tx:
            await processes.save(tx, [], [kept], [])
        again = TimeoutRow(
            kept.id, kept.process, kept.instance_id, "other", kept.due_at + timedelta(hours=5), {}
        )
        async with store.transaction() as tx:
            await processes.save(tx, [], [again], [])
        (due,) = await processes.due("fulfilment", datetime.now(UTC), 10)
        assert _same_timeout(due, kept)
        # A fired deadline stays fired.
        await processes.mark_fired(kept.id)
        async with store.transaction() as tx:
            await processes.save(tx, [], [kept], [])
        assert await processes.due("fulfilment", datetime.now(UTC), 10) == []

    async def test_a_deadline_cancelled_in_a_rolled_back_transaction_stays(
        self, store: EventStore, processes: ProcessStorage
    ) -> None:
        kept = _timeout(-10)
        async with store.transaction() as tx:
            await processes.save(tx, [], [kept], [])
        async with rolled_back(store) as tx:
            await processes.save(tx, [], [], [kept.id])
        assert [t.id for t in await processes.due("fulfilment", datetime.now(UTC), 10)] == [kept.id]
