"""The command log in SQL. A second row with the same idempotency key is refused by the
database (``UNIQUE``), not only checked here."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from eventledger import _validation as check
from eventledger._validation import PreparedEvent
from eventledger.errors import ConflictError, IntegrityError, KeyTaken
from eventledger.records import AppendResult, ExpectedVersion, JSONObject, NewEvent
from eventledger.storage import EPOCH, CommandRecord
from eventledger.stores._sql.dialect import Dialect
from eventledger.stores.base import EventStore, StoreTransaction, library_sql

__all__ = ["SqlCommandLog", "key_taken", "result_json"]

_COLUMNS = (
    "id, name, idempotency_key, payload_hash, payload, correlation_id, causation_id, actor,"
    " result, recorded_at"
)


class SqlCommandLog:
    """:class:`~eventledger.storage.CommandLog` in the store's own database."""

    def __init__(self, store: EventStore, dialect: Dialect) -> None:
        self.store = store
        self.sql = dialect

    def _row(self, row: Sequence[Any]) -> CommandRecord:
        d = self.sql
        return CommandRecord(
            d.uuid_value(row[0]),
            row[1],
            row[2],
            row[3],
            d.json_value(row[4]),
            row[5],
            row[6],
            row[7],
            d.json_value(row[8]),
            d.time_value(row[9]) or EPOCH,
        )

    async def _select(self, where: str, *args: Any) -> list[CommandRecord]:
        rows = await self.store.fetch(
            f"SELECT {_COLUMNS} FROM {self.sql.t('commands')} WHERE {where}", *args
        )
        return [self._row(row) for row in rows]

    async def by_key(self, key: str) -> CommandRecord | None:
        found = await self._select(f"idempotency_key = {self.sql.p(1)}", key)
        return found[0] if found else None

    async def by_id(self, command_id: uuid.UUID) -> CommandRecord | None:
        found = await self._select(f"id = {self.sql.p(1)}", self.sql.uuid_param(command_id))
        return found[0] if found else None

    async def correlated(self, correlation_id: str, limit: int) -> list[CommandRecord]:
        d = self.sql
        return await self._select(
            f"correlation_id = {d.p(1)} ORDER BY recorded_at LIMIT {d.p(2)}",
            correlation_id,
            limit,
        )

    async def append_recorded(
        self,
        stream_id: str,
        events: Sequence[NewEvent],
        expected: ExpectedVersion,
        record: CommandRecord,
        value: Any,
    ) -> AppendResult | None:
        store = self.store
        store._check_open()
        stream_id = check.check_stream_id(stream_id)
        expected = check.check_expected_version(expected)
        listed = list(events)
        prepared = check.prepare_events(listed, store.max_event_size)
        if any(e.personal for e in listed):
            sealed, sealing = await store.keyring.seal(stream_id, listed)
            if sealing is not None and (sealing.keys or sealing.links):
                # New keys or links are stored in the events' transaction: that path.
                return None
            prepared = check.prepare_events(sealed, store.max_event_size)
        try:
            return await store.measured_append(
                stream_id,
                len(prepared),
                lambda: self._append_and_record(stream_id, expected, prepared, record, value),
            )
        except (ConflictError, IntegrityError):
            # Refused, unless this very command is recorded already: a retry of a commit
            # that went through (its answer lost with a connection, say) returns the
            # first result, as a retried append does.
            earlier = await self._recorded_already(record, stream_id, len(prepared))
            if earlier is None:
                raise
            store._appended()  # the first run's wake-up may have been lost with its answer
            return earlier

    async def _recorded_already(
        self, record: CommandRecord, stream_id: str, events: int
    ) -> AppendResult | None:
        found = await self.by_id(record.id)
        if found is None:
            return None
        writes = found.result.get("writes")
        if (
            found.name != record.name
            or found.payload_hash != record.payload_hash
            or not isinstance(writes, list)
            or len(writes) != 1
            or writes[0].get("stream_id") != stream_id
            or writes[0].get("events") != events
        ):
            raise IntegrityError(
                f"command {record.id} is recorded already, with other writes than"
                f" {events} event(s) to {stream_id!r}: a command id is used once"
            )
        return AppendResult(writes[0]["version"], writes[0]["position"])

    async def _append_and_record(
        self,
        stream_id: str,
        expected: ExpectedVersion,
        events: list[PreparedEvent],
        record: CommandRecord,
        value: Any,
    ) -> AppendResult:
        """The backend's one round trip (see ``append_recorded``); every SQL backend
        (PostgreSQL, SQLite) overrides it."""
        raise NotImplementedError

    @library_sql
    async def record(self, tx: StoreTransaction, record: CommandRecord) -> None:
        row = await tx.fetchrow(self.insert_sql(), *self.insert_args(record))
        if row is None:
            raise key_taken(record)

    def insert_sql(self) -> str:
        """The statement that adds a record: no row back when its key is taken."""
        d = self.sql
        # ON CONFLICT DO NOTHING: a concurrent holder of the key makes PostgreSQL wait
        # for it to commit, then insert nothing; the transaction stays usable either way.
        return (
            f"INSERT INTO {d.t('commands')} ({_COLUMNS}) VALUES ({d.marks(9)}, {d.now()})"
            " ON CONFLICT DO NOTHING RETURNING id"
        )

    def insert_args(self, record: CommandRecord) -> tuple[Any, ...]:
        d = self.sql
        return (
            d.uuid_param(record.id),
            record.name,
            record.idempotency_key,
            record.payload_hash,
            d.json_param(record.payload),
            record.correlation_id,
            record.causation_id,
            record.actor,
            d.json_param(record.result),
        )


def key_taken(record: CommandRecord) -> KeyTaken:
    return KeyTaken(f"idempotency key {record.idempotency_key!r} was recorded by another command")


def result_json(
    record: CommandRecord, stream_id: str, events: int, appended: AppendResult, value: Any
) -> JSONObject:
    """A one-stream command's result as ``CommandResult.to_json`` makes it."""
    return {
        "command_id": str(record.id),
        "command": record.name,
        "writes": [
            {
                "stream_id": stream_id,
                "version": appended.version,
                "position": appended.position,
                "events": events,
            }
        ],
        "position": appended.position,
        "value": value,
    }
