"""Conformance tests for :class:`~eventledger.storage.CommandLog`: handled commands and their
idempotency keys."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from eventledger import (
    ANY,
    NO_STREAM,
    EventStore,
    IntegrityError,
    InvalidInput,
    KeyTaken,
    NewEvent,
    WrongExpectedVersion,
)
from eventledger.storage import CommandLog, CommandRecord
from eventledger.testing._storage_support import OpensStore, recent, rolled_back

__all__ = ["CommandLogConformance"]


def _command(key: str | None = None, correlation: str = "corr-1", **changes: Any) -> CommandRecord:
    fields: dict[str, Any] = {
        "id": uuid.uuid4(),
        "name": "orders.PlaceOrder",
        "idempotency_key": key,
        "payload_hash": "sha256:" + "ab" * 32,
        "payload": {"order_id": "o-1", "lines": [{"sku": "A-1", "qty": 2}], "note": None},
        "correlation_id": correlation,
        "causation_id": "cause-1",
        "actor": "user:7",
        "result": {"version": 3, "position": 12, "streams": ["Order-o-1"]},
    }
    fields.update(changes)
    return CommandRecord(**fields)


def _same(found: CommandRecord | None, record: CommandRecord) -> bool:
    """Whether `found` is `record` as stored (the store stamps ``recorded_at``)."""
    return found is not None and (
        found.id,
        found.name,
        found.idempotency_key,
        found.payload_hash,
        found.payload,
        found.correlation_id,
        found.causation_id,
        found.actor,
        found.result,
    ) == (
        record.id,
        record.name,
        record.idempotency_key,
        record.payload_hash,
        record.payload,
        record.correlation_id,
        record.causation_id,
        record.actor,
        record.result,
    )


class CommandLogConformance(OpensStore):
    """Tests every :class:`~eventledger.storage.CommandLog` passes. Subclass it and provide
    ``store_url`` (a fresh, empty store)."""

    @pytest.fixture
    def command_log(self, store: EventStore) -> CommandLog:
        assert "command_log" in store.capabilities
        log = store.command_log()
        assert isinstance(log, CommandLog)
        return log

    async def test_a_recorded_command_is_found_by_id_and_key(
        self, store: EventStore, command_log: CommandLog
    ) -> None:
        record = _command("key-1")
        before = datetime.now(UTC)
        async with store.transaction() as tx:
            await command_log.record(tx, record)
        by_id = await command_log.by_id(record.id)
        assert _same(by_id, record)
        assert by_id is not None
        assert recent(by_id.recorded_at, before)
        by_key = await command_log.by_key("key-1")
        assert _same(by_key, record)

    async def test_unknown_ids_and_keys_find_nothing(self, command_log: CommandLog) -> None:
        assert await command_log.by_id(uuid.uuid4()) is None
        assert await command_log.by_key("key-unknown") is None
        assert await command_log.correlated("corr-unknown", 10) == []

    async def test_a_command_without_a_key_or_actor_is_recorded(
        self, store: EventStore, command_log: CommandLog
    ) -> None:
        record = _command(None, actor=None, payload={}, result={})
        async with store.transaction() as tx:
            await command_log.record(tx, record)
        assert _same(await command_log.by_id(record.id), record)

    async def test_a_second_record_with_the_same_key_raises_key_taken_and_the_first_stays(
        self, store: EventStore, command_log: CommandLog
    ) -> None:
        first = _command("key-1")
        async with store.transaction() as tx:
            await command_log.record(tx, first)
        second = _command("key-1", name="orders.CancelOrder")
        with pytest.raises(KeyTaken):
            async with store.transaction() as tx:
                await command_log.record(tx, second)
        assert _same(await command_log.by_key("key-1"), first)
        assert await command_log.by_id(second.id) is None
        # The store is usable after the refused transaction rolled back.
        third = _command("key-2")
        async with store.transaction() as tx:
            await command_log.record(tx, third)
        assert _same(await command_log.by_key("key-2"), third)

    async def test_a_key_recorded_earlier_in_the_same_transaction_is_taken(
        self, store: EventStore, command_log: CommandLog
    ) -> None:
        first, second = _command("key-1"), _command("key-1")

        async def record_both() -> None:
            async with store.transaction() as tx:
                await command_log.record(tx, first)
                await command_log.record(tx, second)

        with pytest.raises(KeyTaken):
            await record_both()
        assert await command_log.by_key("key-1") is None
        assert await command_log.by_id(first.id) is None
        assert await command_log.by_id(second.id) is None

    async def test_commands_without_keys_never_conflict(
        self, store: EventStore, command_log: CommandLog
    ) -> None:
        records = [_command(None) for _ in range(3)]
        async with store.transaction() as tx:
            await command_log.record(tx, records[0])
            await command_log.record(tx, records[1])
        async with store.transaction() as tx:
            await command_log.record(tx, records[2])
        for record in records:
            assert _same(await command_log.by_id(record.id), record)

    async def test_a_command_recorded_in_a_rolled_back_transaction_is_not_kept(
        self, store: EventStore, command_log: CommandLog
    ) -> None:
        record = _command("key-1")
        async with rolled_back(store) as tx:
            await command_log.record(tx, record)
        assert await command_log.by_id(record.id) is None
        assert await command_log.by_key("key-1") is None
        assert await command_log.correlated("corr-1", 10) == []
        # Its key is free again.
        again = _command("key-1")
        async with store.transaction() as tx:
            await command_log.record(tx, again)
        assert _same(await command_log.by_key("key-1"), again)

    async def test_correlated_commands_come_in_the_order_recorded_up_to_the_limit(
        self, store: EventStore, command_log: CommandLog
    ) -> None:
        records = [
            _command(f"key-{n}", correlation="corr-1" if n != 2 else "corr-2") for n in range(5)
        ]
        for record in records:
            async with store.transaction() as tx:
                await command_log.record(tx, record)
        mine = [records[n].id for n in (0, 1, 3, 4)]
        assert [r.id for r in await command_log.correlated("corr-1", 10)] == mine
        assert [r.id for r in await command_log.correlated("corr-1", 2)] == mine[:2]
        (other,) = await command_log.correlated("corr-2", 10)
        assert _same(other, records[2])

    async def test_append_recorded_writes_the_events_and_the_record_or_leaves_it_to_a_tx(
        self, store: EventStore, command_log: CommandLog
    ) -> None:
        # Where the backend has a one-round-trip form, what it writes is what a
        # transaction with the append and the record writes, the result made from the
        # append; where it has none it says so (None) and writes nothing.
        record = _command("key-one", result={})
        events = [NewEvent("Placed", {"n": 1}), NewEvent("Noted", {"n": 2})]
        appended = await command_log.append_recorded(
            "Order-ar1", events, NO_STREAM, record, {"id": "o-1"}
        )
        if appended is None:
            assert await store.stream_version("Order-ar1") == 0
            assert await command_log.by_id(record.id) is None
            return
        stored = [e async for e in store.read_stream("Order-ar1")]
        assert [(e.type, e.data) for e in stored] == [("Placed", {"n": 1}), ("Noted", {"n": 2})]
        assert (appended.version, appended.position) == (2, stored[-1].position)
        found = await command_log.by_key("key-one")
        assert found is not None
        assert found.result == {
            "command_id": str(record.id),
            "command": record.name,
            "writes": [
                {"stream_id": "Order-ar1", "version": 2, "position": appended.position,
                 "events": 2}
            ],
            "position": appended.position,
            "value": {"id": "o-1"},
        }  # fmt: skip
        assert _same(found, dataclasses.replace(record, result=found.result))
        one = _command(None, result={})
        single = await command_log.append_recorded(
            "Order-ar1", [NewEvent("Paid", {})], 2, one, None
        )
        assert single is not None
        assert single.version == 3
        again = await command_log.by_id(one.id)
        assert again is not None
        assert again.result["value"] is None

    async def test_append_recorded_that_cannot_append_or_record_writes_nothing(
        self, store: EventStore, command_log: CommandLog
    ) -> None:
        first = _command("key-two", result={})
        if await command_log.append_recorded("Order-ar2", [NewEvent("A", {})], ANY, first, 1):
            # The key is recorded: a second command with it writes neither its events
            # nor its record.
            second = _command("key-two", result={})
            with pytest.raises(KeyTaken):
                await command_log.append_recorded("Order-ar3", [NewEvent("B", {})], ANY, second, 2)
            assert await store.stream_version("Order-ar3") == 0
            assert await command_log.by_id(second.id) is None
            # A version that does not match writes nothing either.
            third = _command(None, result={})
            with pytest.raises(WrongExpectedVersion):
                await command_log.append_recorded(
                    "Order-ar2", [NewEvent("C", {})], NO_STREAM, third, 3
                )
            assert await store.stream_version("Order-ar2") == 1
            assert await command_log.by_id(third.id) is None
            with pytest.raises(InvalidInput):
                await command_log.append_recorded("", [NewEvent("C", {})], ANY, third, 3)

    async def test_append_recorded_again_returns_the_first_result_and_writes_nothing_more(
        self, store: EventStore, command_log: CommandLog
    ) -> None:
        # A retry of a commit whose answer was lost (a connection that died after the
        # commit) is the same call again: same command, same event ids.
        for expected, key in ((NO_STREAM, "key-again"), (ANY, None)):
            events = [NewEvent("Placed", {"n": 1}), NewEvent("Noted", {"n": 2})]
            stream = f"Order-again-{key}"
            record = _command(key, result={})
            first = await command_log.append_recorded(stream, events, expected, record, 1)
            if first is None:
                return  # no one-round-trip form: the bus uses a transaction
            generation = store.append_generation
            again = await command_log.append_recorded(stream, events, expected, record, 1)
            assert again == first
            # Readers are woken (the first run's wake-up may have been lost with it).
            assert store.append_generation > generation
            assert await store.stream_version(stream) == 2
            # The same command id with other writes is refused, and writes nothing.
            with pytest.raises(IntegrityError, match=f"command {record.id} is recorded"):
                await command_log.append_recorded(stream, [NewEvent("Other", {})], ANY, record, 1)
            assert await store.stream_version(stream) == 2
