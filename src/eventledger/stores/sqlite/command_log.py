"""The command log on SQLite: the shared SQL, and a command's events and its record
written in one call on the writer's thread (one hop where a transaction takes four:
BEGIN, the append, the record, COMMIT)."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from eventledger._validation import PreparedEvent
from eventledger.records import AppendResult, ExpectedVersion
from eventledger.storage import CommandRecord
from eventledger.stores._sql.command_log import SqlCommandLog, key_taken, result_json

if TYPE_CHECKING:
    from eventledger.stores.sqlite.store import SQLiteStore

__all__ = ["SQLiteCommandLog"]


class SQLiteCommandLog(SqlCommandLog):
    """:class:`~eventledger.storage.CommandLog` of a SQLite store."""

    store: SQLiteStore

    async def _append_and_record(
        self,
        stream_id: str,
        expected: ExpectedVersion,
        events: list[PreparedEvent],
        record: CommandRecord,
        value: Any,
    ) -> AppendResult:
        insert = self.insert_sql()

        def row_for(appended: AppendResult) -> tuple[Any, ...]:
            made = result_json(record, stream_id, len(events), appended, value)
            return self.insert_args(dataclasses.replace(record, result=made))

        def refused() -> Exception:
            return key_taken(record)

        return await self.store.append_with_row(
            stream_id, expected, events, insert, row_for, refused
        )
