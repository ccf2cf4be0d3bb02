"""Store transactions on PostgreSQL: appends to several streams and the rows that belong
with them, committed together.

A transaction opened with ``appends=True`` takes the writers' marker right after
``BEGIN`` (see ``docs/ordering.md``); otherwise its first append takes it, which
is why a transaction that appends must append before anything else. After a
transaction in which SQL other than the store's own ran, the session is reset in the
same round trip as the ``COMMIT`` (session settings, cursors, listeners and session
advisory locks that the SQL may have left behind), so the next user of the connection
gets a clean one. The storage modules' statements (command records, documents,
checkpoints, process state) run under ``tx.library_statements()`` and need none.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import asyncpg

from eventledger._validation import PreparedEvent
from eventledger.errors import (
    InvalidInput,
    OperationalError,
    WrongExpectedVersion,
)
from eventledger.records import AppendResult, ExpectedState, ExpectedVersion
from eventledger.stores.base import StoreTransaction
from eventledger.stores.postgres.append import EXPECTED_CODES, pack
from eventledger.stores.postgres.faults import (
    APPEND_COLLISIONS,
    append_refused,
    is_connection_failure,
)

if TYPE_CHECKING:
    from eventledger.stores.postgres.store import Connection, PostgresStore

__all__ = ["PostgresTransaction", "transaction"]

_RESET = "; RESET ALL; CLOSE ALL; UNLISTEN *; SELECT pg_advisory_unlock_all()"
MARKER_REFUSED = "EL001"


class PostgresTransaction(StoreTransaction):
    def __init__(self, conn: Connection, store: PostgresStore) -> None:
        self.connection = conn
        self._store = store
        self._events_so_far = 0

    async def _append(
        self, stream_id: str, expected: ExpectedVersion, events: list[PreparedEvent]
    ) -> AppendResult:
        store = self._store
        if self._events_so_far + len(events) >= 1 << 20:
            raise InvalidInput(
                f"a transaction appends at most {(1 << 20) - 1} events; split the work"
            )
        code = EXPECTED_CODES[expected] if isinstance(expected, ExpectedState) else expected
        args: tuple[Any, ...]
        if len(events) == 1:
            sql = store.statements.tx_append_one
            args = (stream_id, code, *events[0], self._events_so_far)
        else:
            sql = store.statements.tx_append_many
            args = (stream_id, code, pack(events), self._events_so_far)
        try:
            row = await self.connection.fetchrow(sql, *args)
        except APPEND_COLLISIONS as error:
            # The transaction is aborted now, and asking another connection could wait
            # forever on a pool of one: explain with what is known.
            ids = [str(e.id) for e in events]
            raise append_refused(error, stream_id, expected, ids, "transaction") from error
        except asyncpg.PostgresError as error:
            if error.sqlstate == MARKER_REFUSED:
                raise InvalidInput(
                    "this transaction wrote before its first append; append first, or open"
                    " it with store.transaction(appends=True)"
                ) from None
            if is_connection_failure(error):
                raise  # the transaction's own handling names the server
            # A lock or statement timeout, say: as a plain append or a command says it.
            raise OperationalError(f"append to {stream_id!r} failed: {error}") from error
        assert row is not None  # the statement always answers one row
        actual, version, position = row
        if version is None:
            raise WrongExpectedVersion(stream_id, expected, actual)
        self._events_so_far += len(events)
        return AppendResult(version, position)

    async def _execute(self, sql: str, *args: Any) -> None:
        await self.connection.execute(sql, *args)

    async def _executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        await self.connection.executemany(sql, rows)

    async def _fetch(self, sql: str, *args: Any) -> list[Sequence[Any]]:
        return [tuple(row) for row in await self.connection.fetch(sql, *args)]

    async def _fetch_records(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        return [dict(row) for row in await self.connection.fetch(sql, *args)]


@asynccontextmanager
async def transaction(store: PostgresStore, appends: bool) -> AsyncIterator[StoreTransaction]:
    """A transaction on a pooled connection (see the module's docs)."""
    store.refuse_writes_if_read_only()
    begin = f"BEGIN; SELECT {store.quoted_schema}.begin_writing()" if appends else "BEGIN"
    conn = await store.acquire()
    reusable = False
    try:
        try:
            await conn.execute(begin)
        except Exception as error:
            if not is_connection_failure(error):
                raise
            # Nothing ran yet: begin again on a fresh connection.
            store.release(conn, False)
            conn = await store.acquire()
            await conn.execute(begin)
        tx = PostgresTransaction(conn, store)
        tx.appends_declared = appends
        tx.max_event_size = store.max_event_size
        tx.owner = store
        try:
            yield tx
        except Exception:
            # Roll back. A connection interrupted mid-call (cancelled: a BaseException)
            # is not reused; the server rolls back when it goes.
            if not conn.is_closed():
                with contextlib.suppress(Exception):
                    await conn.execute("ROLLBACK")
                    reusable = not conn.is_in_transaction()
            raise
        # A commit that fails leaves the session unreset: the connection goes.
        await conn.execute("COMMIT" + (_RESET if tx.statements_of_others else ""))
        reusable = True
    except Exception as error:
        if is_connection_failure(error):
            reusable = False
            raise OperationalError(f"PostgreSQL {store.url}: {error}") from error
        raise
    finally:
        store.release(conn, reusable)
    store.committed(tx)
