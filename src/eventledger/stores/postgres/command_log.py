"""The command log on PostgreSQL: the shared SQL, and a command's events and its record
written by one statement (one round trip where a transaction takes four: BEGIN, the
append, the record, COMMIT)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import asyncpg

from eventledger import _validation as check
from eventledger.errors import (
    ConflictError,
    DuplicateEventId,
    KeyTaken,
    OperationalError,
    WrongExpectedVersion,
)
from eventledger.observability import instruments, tracing
from eventledger.records import AppendResult, ExpectedState, ExpectedVersion, NewEvent
from eventledger.storage import CommandRecord
from eventledger.stores._sql.command_log import SqlCommandLog
from eventledger.stores.postgres.append import COMMAND_KEY_CONSTRAINT, EXPECTED_CODES, pack
from eventledger.stores.postgres.faults import is_connection_failure, leaves_connection_idle

if TYPE_CHECKING:
    from eventledger.stores.postgres.store import PostgresStore

__all__ = ["PostgresCommandLog"]


class PostgresCommandLog(SqlCommandLog):
    """:class:`~eventledger.storage.CommandLog` of a PostgreSQL store."""

    store: PostgresStore

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
        store.refuse_writes_if_read_only()
        stream_id = check.check_stream_id(stream_id)
        expected = check.check_expected_version(expected)
        prepared = check.prepare_events(list(events), store.max_event_size)
        if any(e.personal for e in events):
            sealed, sealing = await store.keyring.seal(stream_id, events)
            if sealing is not None and (sealing.keys or sealing.links):
                # New keys or links are stored in the events' transaction: that path.
                return None
            prepared = check.prepare_events(sealed, store.max_event_size)
        d = self.sql
        code = EXPECTED_CODES[expected] if isinstance(expected, ExpectedState) else expected
        fields = (
            record.id,
            record.name,
            record.idempotency_key,
            record.payload_hash,
            d.json_param(record.payload),
            record.correlation_id,
            record.causation_id,
            record.actor,
            d.json_param(value),
        )
        args: tuple[Any, ...]
        if len(prepared) == 1:
            sql, args = store.statements.command_append_one, (stream_id, code, *prepared[0])
        else:
            sql, args = store.statements.command_append_many, (stream_id, code, pack(prepared))
        started = time.perf_counter()
        with tracing.span(
            f"append {stream_id}",
            attributes={
                "eventledger.stream_id": stream_id,
                "eventledger.events": len(prepared),
                "eventledger.backend": store.backend,
            },
        ):
            row = await self._run(stream_id, expected, record, sql, (*args, *fields))
        actual, version, position = row
        if version is None:
            raise WrongExpectedVersion(stream_id, expected, actual)
        instruments.current.appended(store.backend, len(prepared), time.perf_counter() - started)
        store._appended()  # wake this process's readers, as a commit does
        return AppendResult(version, position)

    async def _run(
        self,
        stream_id: str,
        expected: ExpectedVersion,
        record: CommandRecord,
        sql: str,
        args: tuple[Any, ...],
    ) -> Sequence[Any]:
        store = self.store
        conn = await store.acquire()
        reusable = False
        try:
            row = await conn.fetchrow(sql, *args)
            reusable = True
        except asyncpg.UniqueViolationError as error:
            # One statement: nothing of it was written.
            reusable = True
            if error.constraint_name == COMMAND_KEY_CONSTRAINT:
                raise KeyTaken(
                    f"idempotency key {record.idempotency_key!r} was recorded by another command"
                ) from None
            if error.constraint_name == "events_id_key":
                raise DuplicateEventId(
                    stream_id, [], "some of the command's events are recorded already"
                ) from None
            if error.constraint_name == "events_stream_version_key":
                raise ConflictError(
                    f"another writer appended to {stream_id!r} at the same time (this"
                    f" command expected {expected!r}); run it again"
                ) from None
            raise OperationalError(f"append to {stream_id!r} failed: {error}") from error
        except (asyncpg.DeadlockDetectedError, asyncpg.SerializationError) as error:
            reusable = True
            raise ConflictError(
                f"append to {stream_id!r} collided with a concurrent transaction ({error});"
                " run this one again"
            ) from error
        except Exception as error:
            if is_connection_failure(error):
                raise OperationalError(f"PostgreSQL {store.url}: {error}") from error
            reusable = leaves_connection_idle(error)
            raise OperationalError(f"append to {stream_id!r} failed: {error}") from error
        finally:
            store.release(conn, reusable)
        assert row is not None  # the statement always answers one row
        return tuple(row)
