"""The memory backend's command log."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from eventledger.errors import KeyTaken
from eventledger.records import AppendResult, ExpectedVersion, NewEvent
from eventledger.storage import CommandRecord
from eventledger.stores.base import StoreTransaction
from eventledger.stores.memory.log import MemoryLog, in_transaction

__all__ = ["MemoryCommandLog"]


class MemoryCommandLog:
    """:class:`~eventledger.storage.CommandLog` of a memory store."""

    def __init__(self, log: MemoryLog) -> None:
        self.log = log

    async def by_key(self, key: str) -> CommandRecord | None:
        with self.log.lock:
            command_id = self.log.command_keys.get(key)
            return None if command_id is None else self.log.commands[command_id]

    async def by_id(self, command_id: uuid.UUID) -> CommandRecord | None:
        with self.log.lock:
            return self.log.commands.get(command_id)

    async def correlated(self, correlation_id: str, limit: int) -> list[CommandRecord]:
        with self.log.lock:
            records = list(self.log.commands.values())
        return [r for r in records if r.correlation_id == correlation_id][:limit]

    async def append_recorded(
        self,
        stream_id: str,
        events: Sequence[NewEvent],
        expected: ExpectedVersion,
        record: CommandRecord,
        value: Any,
    ) -> AppendResult | None:
        return None  # a transaction costs no round trip here

    async def record(self, tx: StoreTransaction, record: CommandRecord) -> None:
        memory_tx = in_transaction(tx)
        key = record.idempotency_key
        stamped = dataclasses.replace(record, recorded_at=datetime.now(UTC))

        def key_is_free() -> None:
            if key is not None and key in self.log.command_keys:
                raise KeyTaken(f"idempotency key {key!r} was recorded by another command")

        def add() -> None:
            self.log.commands[record.id] = stamped
            if key is not None:
                self.log.command_keys[key] = record.id

        with self.log.lock:
            key_is_free()
        if key is not None and key in memory_tx.command_keys:
            raise KeyTaken(f"idempotency key {key!r} was recorded earlier in this transaction")
        memory_tx.require(key_is_free)
        memory_tx.defer(add)
        if key is not None:
            memory_tx.command_keys.add(key)
