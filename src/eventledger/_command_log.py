"""Where handled commands are recorded: the idempotency record and the audit trail.

A command's row is written in the transaction of its events, so a command is
either recorded with everything it wrote or not at all. A second row with the
same idempotency key is refused by the database (``UNIQUE``), not only here.
"""

from __future__ import annotations

import abc
import dataclasses
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from eventledger._sql import EPOCH, SqlDialect
from eventledger.records import JSONObject
from eventledger.stores.base import EventStore, StoreTransaction
from eventledger.stores.memory import MemoryStore, MemoryTransaction


@dataclass(frozen=True, slots=True)
class CommandRecord:
    """A command that was handled: what, by whom, why, and what it wrote."""

    id: uuid.UUID
    name: str
    idempotency_key: str | None
    payload_hash: str
    payload: JSONObject
    correlation_id: str
    causation_id: str
    actor: str | None
    result: JSONObject
    recorded_at: datetime = EPOCH


class KeyTaken(Exception):
    """Another command recorded this idempotency key first (the transaction must roll back)."""


class CommandLog(abc.ABC):
    @abc.abstractmethod
    async def by_key(self, key: str) -> CommandRecord | None: ...

    @abc.abstractmethod
    async def by_id(self, command_id: uuid.UUID) -> CommandRecord | None: ...

    @abc.abstractmethod
    async def correlated(self, correlation_id: str, limit: int) -> list[CommandRecord]: ...

    @abc.abstractmethod
    async def record(self, tx: StoreTransaction, record: CommandRecord) -> None:
        """Add the record in `tx`; raises :class:`KeyTaken` if its key is recorded."""


def command_log_for(store: EventStore) -> CommandLog:
    if isinstance(store, MemoryStore):
        return MemoryCommandLog(store)
    return SqlCommandLog(store)


_COLUMNS = (
    "id, name, idempotency_key, payload_hash, payload, correlation_id, causation_id, actor,"
    " result, recorded_at"
)


class SqlCommandLog(CommandLog, SqlDialect):
    def _row(self, row: Any) -> CommandRecord:
        return CommandRecord(
            self.uuid_value(row[0]),
            row[1],
            row[2],
            row[3],
            self.json_value(row[4]),
            row[5],
            row[6],
            row[7],
            self.json_value(row[8]),
            self.time_value(row[9]) or EPOCH,
        )

    async def _select(self, where: str, *args: Any) -> list[CommandRecord]:
        rows = await self.store.fetch(
            f"SELECT {_COLUMNS} FROM {self.t('commands')} WHERE {where}", *args
        )
        return [self._row(row) for row in rows]

    async def by_key(self, key: str) -> CommandRecord | None:
        found = await self._select(f"idempotency_key = {self.p(1)}", key)
        return found[0] if found else None

    async def by_id(self, command_id: uuid.UUID) -> CommandRecord | None:
        found = await self._select(f"id = {self.p(1)}", self.uuid_param(command_id))
        return found[0] if found else None

    async def correlated(self, correlation_id: str, limit: int) -> list[CommandRecord]:
        return await self._select(
            f"correlation_id = {self.p(1)} ORDER BY recorded_at LIMIT {self.p(2)}",
            correlation_id,
            limit,
        )

    async def record(self, tx: StoreTransaction, record: CommandRecord) -> None:
        # ON CONFLICT DO NOTHING: a concurrent holder of the key makes PostgreSQL wait
        # for it to commit, then insert nothing; the transaction stays usable either way.
        row = await tx.fetchrow(
            f"INSERT INTO {self.t('commands')} ({_COLUMNS})"
            f" VALUES ({self.marks(9)}, {self.now()})"
            " ON CONFLICT DO NOTHING RETURNING id",
            self.uuid_param(record.id),
            record.name,
            record.idempotency_key,
            record.payload_hash,
            self.json_param(record.payload),
            record.correlation_id,
            record.causation_id,
            record.actor,
            self.json_param(record.result),
        )
        if row is None:
            raise KeyTaken(record.idempotency_key)


class MemoryCommandLog(CommandLog):
    def __init__(self, store: MemoryStore) -> None:
        self.log = store.log

    async def by_key(self, key: str) -> CommandRecord | None:
        with self.log.lock:
            command_id = self.log.command_keys.get(key)
            return None if command_id is None else self.log.commands[command_id]

    async def by_id(self, command_id: uuid.UUID) -> CommandRecord | None:
        with self.log.lock:
            found: CommandRecord | None = self.log.commands.get(command_id)
            return found

    async def correlated(self, correlation_id: str, limit: int) -> list[CommandRecord]:
        with self.log.lock:
            records: list[CommandRecord] = list(self.log.commands.values())
        return [r for r in records if r.correlation_id == correlation_id][:limit]

    async def record(self, tx: StoreTransaction, record: CommandRecord) -> None:
        assert isinstance(tx, MemoryTransaction)
        key = record.idempotency_key
        stamped = dataclasses.replace(record, recorded_at=datetime.now(UTC))

        def key_is_free() -> None:
            if key is not None and key in self.log.command_keys:
                raise KeyTaken(key)

        def add() -> None:
            self.log.commands[record.id] = stamped
            if key is not None:
                self.log.command_keys[key] = record.id

        with self.log.lock:
            key_is_free()
        tx.require(key_is_free)
        tx.defer(add)
