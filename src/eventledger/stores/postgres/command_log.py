"""The command log on PostgreSQL: the shared SQL, and a command's events and its record
written by one statement (one round trip where a transaction takes four: BEGIN, the
append, the record, COMMIT)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from eventledger._validation import PreparedEvent
from eventledger.errors import (
    IntegrityError,
    OperationalError,
    WrongExpectedVersion,
)
from eventledger.records import AppendResult, ExpectedState, ExpectedVersion
from eventledger.storage import CommandRecord
from eventledger.stores._sql.command_log import SqlCommandLog, key_taken
from eventledger.stores.postgres.append import COMMAND_KEY_CONSTRAINT, EXPECTED_CODES, pack
from eventledger.stores.postgres.faults import (
    APPEND_COLLISIONS,
    append_refused,
    is_connection_failure,
    leaves_connection_idle,
)

if TYPE_CHECKING:
    from eventledger.stores.postgres.store import PostgresStore

__all__ = ["PostgresCommandLog"]


class PostgresCommandLog(SqlCommandLog):
    """:class:`~eventledger.storage.CommandLog` of a PostgreSQL store."""

    store: PostgresStore

    async def _append_and_record(
        self,
        stream_id: str,
        expected: ExpectedVersion,
        events: list[PreparedEvent],
        record: CommandRecord,
        value: Any,
    ) -> AppendResult:
        store = self.store
        store.refuse_writes_if_read_only()
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
        if len(events) == 1:
            sql, args = store.statements.command_append_one, (stream_id, code, *events[0])
        else:
            sql, args = store.statements.command_append_many, (stream_id, code, pack(events))
        actual, version, position = await self._run(
            stream_id, expected, record, [str(e.id) for e in events], sql, (*args, *fields)
        )
        if version is None:
            raise WrongExpectedVersion(stream_id, expected, actual)
        return AppendResult(version, position)

    async def _run(
        self,
        stream_id: str,
        expected: ExpectedVersion,
        record: CommandRecord,
        ids: list[str],
        sql: str,
        args: tuple[Any, ...],
    ) -> Sequence[Any]:
        store = self.store
        for attempt in (1, 2):
            conn = await store.acquire()
            reusable = False
            try:
                row = await conn.fetchrow(sql, *args)
                reusable = True
            except APPEND_COLLISIONS as error:
                # One statement: nothing of it was written.
                reusable = True
                constraint = error.constraint_name
                if constraint == COMMAND_KEY_CONSTRAINT:
                    raise key_taken(record) from None
                if constraint == "commands_pkey":
                    raise IntegrityError(f"command {record.id} is recorded already") from None
                raise append_refused(error, stream_id, expected, ids, "command") from error
            except Exception as error:
                if not is_connection_failure(error):
                    reusable = leaves_connection_idle(error)
                    raise OperationalError(f"append to {stream_id!r} failed: {error}") from error
                if attempt == 2:
                    raise OperationalError(f"PostgreSQL {store.url}: {error}") from error
                # The connection died (a pooled one the server closed, say). Running the
                # statement again on another is safe: if the first run committed, the
                # second is refused and append_recorded finds the command recorded.
                continue
            finally:
                store.release(conn, reusable)
            assert row is not None  # the statement always answers one row
            return tuple(row)
        raise AssertionError("unreachable")  # pragma: no cover
