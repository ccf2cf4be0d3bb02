"""The PostgreSQL store, for production. Needs the ``postgres`` extra (asyncpg).

URL: any libpq-style ``postgresql://user:password@host:port/database`` URL
that asyncpg accepts, plus these query settings, which eventledger takes for
itself:

- ``schema=NAME``: the schema that holds the tables (default ``eventledger``);
- ``pool_min_size=N`` / ``pool_max_size=N``: the connection pool (default 1 / 10);
- ``application_name=NAME``: how the connections show in ``pg_stat_activity``
  (default ``eventledger``).

How the global order works, and why readers never skip an event although
writers commit concurrently: see ``sql/0001_events.sql`` beside this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import asyncpg

from eventledger import _json
from eventledger._validation import PreparedEvent
from eventledger.errors import (
    ConflictError,
    DuplicateEventId,
    InvalidInput,
    OperationalError,
    SchemaVersionError,
    StoreClosed,
    WrongExpectedVersion,
)
from eventledger.records import (
    AppendResult,
    ExpectedState,
    ExpectedVersion,
    RecordedEvent,
    Snapshot,
    StreamInfo,
)
from eventledger.storage import (
    CONCERNS,
    CommandLog,
    Concern,
    KeyStorage,
    ProcessStorage,
    ReadSideStorage,
    SqlTables,
)
from eventledger.stores._keys import prefix_upper_bound
from eventledger.stores._migrations import load_migrations
from eventledger.stores._notify import signal_for
from eventledger.stores._repeats import FoundEvent, resolve_repeat
from eventledger.stores._sql.command_log import SqlCommandLog
from eventledger.stores._sql.keys import SqlKeyStorage
from eventledger.stores._sql.processes import SqlProcessStorage
from eventledger.stores.base import MAX_VERSION, EventStore, StoreTransaction
from eventledger.stores.postgres.append import (
    EXPECTED_CODES,
    append_many_sql,
    append_one_sql,
    pack,
)
from eventledger.stores.postgres.dialect import PostgresDialect
from eventledger.stores.postgres.pool import ConnectionPool, PoolClosed
from eventledger.stores.postgres.read_side import PostgresReadSide
from eventledger.stores.postgres.tables import PostgresTables
from eventledger.stores.postgres.url import check_schema, int_setting, redact, split_url

if TYPE_CHECKING:
    Connection = asyncpg.Connection[asyncpg.Record]

__all__ = ["PostgresStore"]

T = TypeVar("T")

_COLUMNS = "id, stream_id, version, position, type, schema_version, data, metadata, recorded_at"
MAX_APPEND_ATTEMPTS = 100

# tuple.__new__ bound to the record type: builds an event from a row in C.
_make_event: Callable[[asyncpg.Record], RecordedEvent] = functools.partial(
    tuple.__new__, RecordedEvent
)


# What a connection that died under us raises (InternalClientError: a server that
# cut an idle connection leaves asyncpg's protocol in a state it cannot leave).
_CONNECTION_ERRORS = (
    OSError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.InternalClientError,
)


def _leaves_connection_idle(error: asyncpg.PostgresError) -> bool:
    """Whether the connection is still fit for use after the server reported `error`.

    Statement errors leave it idle; connection failures (class 08), shutdowns and
    cancellations (class 57) and FATAL errors do not.
    """
    state = error.sqlstate or ""
    severity = getattr(error, "severity", "") or ""
    return not (state.startswith(("08", "57")) or severity in ("FATAL", "PANIC"))


async def _init_connection(conn: asyncpg.Connection) -> None:
    # JSON travels as text: both directions are then plain C calls (bytes.decode
    # out, orjson.loads in), with no Python function per value.
    await conn.set_type_codec(
        "jsonb", schema="pg_catalog", encoder=bytes.decode, decoder=_json.loads, format="text"
    )


class _PostgresTransaction(StoreTransaction):
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
            sql = store._tx_append_one_sql
            args = (stream_id, code, *events[0], self._events_so_far)
        else:
            sql = store._tx_append_many_sql
            args = (stream_id, code, pack(events), self._events_so_far)
        try:
            row = await self.connection.fetchrow(sql, *args)
        except asyncpg.UniqueViolationError as error:
            # The transaction is aborted now, and asking another connection could wait
            # forever on a pool of one: explain with what is known.
            if error.constraint_name == "events_id_key":
                raise DuplicateEventId(
                    stream_id,
                    [str(e.id) for e in events],
                    "some of them are recorded already; inside a transaction every appended"
                    " event must be new",
                ) from None
            if error.constraint_name == "events_stream_version_key":
                raise ConflictError(
                    f"another transaction appended to {stream_id!r} at the same time"
                    f" (this one expected {expected!r}); run it again"
                ) from None
            raise OperationalError(f"append to {stream_id!r} failed: {error}") from error
        except (asyncpg.DeadlockDetectedError, asyncpg.SerializationError) as error:
            raise ConflictError(
                f"append to {stream_id!r} collided with a concurrent transaction ({error});"
                " run this one again"
            ) from error
        assert row is not None  # the statement always answers one row
        actual, version, position = row
        if version is None:
            raise WrongExpectedVersion(stream_id, expected, actual)
        self._events_so_far += len(events)
        return AppendResult(version, position)

    async def execute(self, sql: str, *args: Any) -> None:
        await self.connection.execute(sql, *args)

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        await self.connection.executemany(sql, rows)

    async def fetch(self, sql: str, *args: Any) -> list[Sequence[Any]]:
        return [tuple(row) for row in await self.connection.fetch(sql, *args)]

    async def fetch_records(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        return [dict(row) for row in await self.connection.fetch(sql, *args)]


# Appends tell other processes about themselves with a NOTIFY, sent apart from the
# append (a NOTIFY inside it would serialise all committing writers) and at most
# this often; readers also poll, so a lost notification only costs latency.
NOTIFY_INTERVAL = 0.02


class PostgresStore(EventStore):
    """An event store in a PostgreSQL schema."""

    backend = "postgres"
    capabilities: ClassVar[frozenset[Concern]] = frozenset(CONCERNS)

    def __init__(
        self, pool: ConnectionPool, schema: str, url: str, dsn: str = "", connect: Any = None
    ) -> None:
        self._pool = pool
        self.schema = schema
        self.url = url
        self._dsn = dsn
        self._connect = connect
        self._signal = signal_for(f"postgres://{redact(dsn)}#{schema}")
        self._channel = f"eventledger_{schema}"[:63]
        self._notify_task: asyncio.Task[None] | None = None
        self._listener: asyncpg.Connection | None = None
        self._listen_task: asyncio.Task[None] | None = None
        q = f'"{schema}"'
        self._q = q
        self._dialect = PostgresDialect(schema)
        # One statement, one round trip: read the stream's last version, check the
        # expected version, insert. Concurrent writers of one stream collide on UNIQUE
        # (stream_id, version); the loser gets a unique violation and decides again.
        # One event (the common case) binds plain values; a batch binds arrays.
        self._append_one_sql = append_one_sql(q)
        self._append_many_sql = append_many_sql(q)
        # The same statements for appends inside a transaction (see StoreTransaction.append).
        self._tx_append_one_sql = append_one_sql(q, in_transaction=True)
        self._tx_append_many_sql = append_many_sql(q, in_transaction=True)
        self._read_all_sql = (
            f"SELECT {_COLUMNS} FROM {q}.events"
            f" WHERE position > $1 AND position < {q}.visible_limit()"
            " ORDER BY position LIMIT $2"
        )
        self._read_all_since_sql = (
            f"SELECT {_COLUMNS} FROM {q}.events"
            f" WHERE position > $1 AND position < {q}.visible_limit() AND recorded_at >= $3"
            " ORDER BY position LIMIT $2"
        )

    @classmethod
    async def open(cls, url: str) -> PostgresStore:
        dsn, settings = split_url(url)
        schema = check_schema(settings.get("schema", "eventledger"))
        application_name = settings.get("application_name", "eventledger")
        min_size = int_setting(settings, "pool_min_size", 1)
        max_size = int_setting(settings, "pool_max_size", 10)
        if not 1 <= min_size <= max_size:
            raise InvalidInput(
                f"pool sizes must satisfy 1 <= pool_min_size <= pool_max_size,"
                f" not {min_size} and {max_size}"
            )

        async def connect() -> asyncpg.Connection:
            conn = await asyncpg.connect(
                dsn,
                # The store's statements are few and prepared once per connection; with
                # custom plans PostgreSQL would plan the append anew on every call.
                server_settings={
                    "plan_cache_mode": "force_generic_plan",
                    "application_name": application_name,
                },
            )
            await _init_connection(conn)
            return conn

        pool = ConnectionPool(connect, max_size)
        try:
            await pool.open(min_size)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            raise OperationalError(
                f"cannot connect to PostgreSQL at {redact(dsn)}: {error}"
            ) from error
        store = cls(pool, schema, redact(url), dsn, connect)
        try:
            await store._migrate()
        except BaseException:
            await pool.close()
            raise
        return store

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[Connection]:
        conn = await self._acquire()
        reusable = False
        try:
            yield conn
            reusable = True
        except asyncpg.PostgresError as error:
            reusable = _leaves_connection_idle(error)
            raise
        except _CONNECTION_ERRORS as error:
            raise OperationalError(f"PostgreSQL {self.url}: {error}") from error
        finally:
            self._pool.release(conn, reusable)

    async def _acquire(self) -> Connection:
        try:
            return await self._pool.acquire()
        except PoolClosed:
            raise StoreClosed(f"the store {self.url} is closed") from None
        except _CONNECTION_ERRORS as error:
            raise OperationalError(f"cannot connect to PostgreSQL {self.url}: {error}") from error

    async def _run(self, work: Callable[[Connection], Awaitable[T]]) -> T:
        """Run a read on a pooled connection; once more on another if the first died."""
        try:
            async with self._connection() as conn:
                return await work(conn)
        except OperationalError as error:
            if not isinstance(error.__cause__, _CONNECTION_ERRORS):
                raise
        async with self._connection() as conn:
            return await work(conn)

    async def _migrate(self) -> None:
        q = self._q
        migrations = load_migrations(__package__)
        lock = "SELECT pg_advisory_xact_lock(hashtext('eventledger migrate ' || $1))"
        async with self._connection() as conn:
            for migration in migrations:
                async with conn.transaction():
                    await conn.execute(lock, self.schema)
                    await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {q}")
                    await conn.execute(
                        f"CREATE TABLE IF NOT EXISTS {q}.schema_migrations ("
                        " version integer PRIMARY KEY, name text NOT NULL,"
                        " applied_at timestamptz NOT NULL DEFAULT now())"
                    )
                    current = await conn.fetchval(
                        f"SELECT coalesce(max(version), 0) FROM {q}.schema_migrations"
                    )
                    if current > len(migrations):
                        raise SchemaVersionError(
                            f"schema {self.schema} is at version {current}, but this eventledger"
                            f" knows only up to {len(migrations)}; upgrade eventledger"
                        )
                    if current < migration.version:
                        await conn.execute(migration.sql.replace("__SCHEMA__", q))
                        await conn.execute(
                            f"INSERT INTO {q}.schema_migrations (version, name) VALUES ($1, $2)",
                            migration.version,
                            migration.name,
                        )
            async with conn.transaction():
                await conn.execute(lock, self.schema)
                await self._repair_positions_after_restore(conn)

    async def _repair_positions_after_restore(self, conn: Connection) -> None:
        """Keep new positions after old ones when transaction ids restarted.

        A logical dump restored into a new cluster brings events whose
        positions came from the old cluster's (higher) transaction ids. New
        transactions would sort before them, so the offset added to
        transaction ids is raised past the highest position recorded.
        """
        q = self._q
        row = await conn.fetchrow(
            f"SELECT (SELECT max(position) FROM {q}.events) AS highest,"
            " pg_current_xact_id()::text::bigint AS xid, o.xid_offset"
            f" FROM {q}.position_offset o FOR UPDATE"
        )
        assert row is not None
        highest, xid, offset = row["highest"], row["xid"], row["xid_offset"]
        if highest is not None and highest >= (xid + offset) << 20:
            new_offset = (highest >> 20) + 1 - xid + 1
            await conn.execute(f"UPDATE {q}.position_offset SET xid_offset = $1", new_offset)

    async def _append(
        self, stream_id: str, expected: ExpectedVersion, events: list[PreparedEvent]
    ) -> AppendResult:
        code = EXPECTED_CODES[expected] if isinstance(expected, ExpectedState) else expected
        ids = [e.id for e in events]
        args: tuple[Any, ...]
        if len(events) == 1:
            sql, args = self._append_one_sql, (stream_id, code, *events[0])
        else:
            # A batch travels as one JSON array: PostgreSQL parses it once, and the
            # client joins bytes it already has instead of encoding five arrays.
            sql, args = self._append_many_sql, (stream_id, code, pack(events))
        lost_connections = 0
        for _attempt in range(MAX_APPEND_ATTEMPTS):
            conn = await self._acquire()  # the hot path: no context manager
            reusable = False
            try:
                row = await conn.fetchrow(sql, *args)
                reusable = True
                assert row is not None  # the statement always answers one row
                actual, version, position = row
            except (*_CONNECTION_ERRORS, asyncpg.AdminShutdownError) as error:
                # The connection died. Trying again on another is safe: if the first
                # try committed, the same event ids make the retry return its result.
                lost_connections += 1
                if lost_connections > 1:
                    raise OperationalError(f"PostgreSQL {self.url}: {error}") from error
                continue
            except asyncpg.UniqueViolationError as error:
                reusable = True
                if error.constraint_name not in ("events_id_key", "events_stream_version_key"):
                    raise OperationalError(f"append to {stream_id!r} failed: {error}") from error
                # Either these ids exist (a retry, or a reuse of ids), or another writer
                # took the next version of the stream first.
                found = await self._find_ids(ids)
                if found:
                    return resolve_repeat(stream_id, expected, ids, found)
                if isinstance(expected, int) or expected is ExpectedState.NO_STREAM:
                    actual = await self._stream_version(stream_id)
                    raise WrongExpectedVersion(stream_id, expected, actual) from None
                continue  # ANY or STREAM_EXISTS: decide again on the new version
            except asyncpg.PostgresError as error:
                reusable = _leaves_connection_idle(error)
                raise OperationalError(f"append to {stream_id!r} failed: {error}") from error
            finally:
                self._pool.release(conn, reusable)
            if version is not None:
                return AppendResult(version, position)
            found = await self._find_ids(ids)
            if found:
                return resolve_repeat(stream_id, expected, ids, found)
            raise WrongExpectedVersion(stream_id, expected, actual)
        raise ConflictError(
            f"append to {stream_id!r} lost the race for the stream's next version"
            f" {MAX_APPEND_ATTEMPTS} times in a row; too many writers append to this one stream"
        )

    async def _find_ids(self, ids: list[Any]) -> list[FoundEvent]:
        rows = await self._run(
            lambda conn: conn.fetch(
                f"SELECT id, stream_id, version, position FROM {self._q}.events"
                " WHERE id = ANY($1::uuid[])",
                ids,
            )
        )
        return [FoundEvent(r[0], r[1], r[2], r[3]) for r in rows]

    async def _read_stream_page(
        self, stream_id: str, cursor: int, backwards: bool, size: int, as_of: datetime | None
    ) -> list[RecordedEvent]:
        condition, order = ("version <= $2", "DESC") if backwards else ("version >= $2", "ASC")
        time_filter = "" if as_of is None else " AND recorded_at <= $4"
        sql = (
            f"SELECT {_COLUMNS} FROM {self._q}.events WHERE stream_id = $1 AND {condition}"
            f"{time_filter} ORDER BY version {order} LIMIT $3"
        )
        params: tuple[Any, ...] = (stream_id, cursor, size)
        if as_of is not None:
            params += (as_of,)
        rows = await self._run(lambda conn: conn.fetch(sql, *params))
        return list(map(_make_event, rows))

    async def _read_all_page(
        self, after: int, size: int, since: datetime | None
    ) -> list[RecordedEvent]:
        if since is None:
            rows = await self._run(lambda conn: conn.fetch(self._read_all_sql, after, size))
        else:
            rows = await self._run(
                lambda conn: conn.fetch(self._read_all_since_sql, after, size, since)
            )
        return list(map(_make_event, rows))

    async def _first_position_since(self, since: datetime) -> int | None:
        found: int | None = await self._run(
            lambda conn: conn.fetchval(
                f"SELECT min(position) FROM {self._q}.events WHERE recorded_at >= $1", since
            )
        )
        return found

    async def _stream_version(self, stream_id: str) -> int:
        version = await self._run(
            lambda conn: conn.fetchval(
                f"SELECT max(version) FROM {self._q}.events WHERE stream_id = $1", stream_id
            )
        )
        return int(version or 0)

    async def _list_streams(self, prefix: str, after: str | None, limit: int) -> list[StreamInfo]:
        # Streams are the distinct stream ids of the log: walk the (stream_id, version)
        # index from one id to the next (a "loose index scan"), one index probe a stream.
        if after is not None and after >= prefix:
            lower, first_op = after, ">"
        else:
            lower, first_op = prefix, ">="
        upper = prefix_upper_bound(prefix)
        bound = "" if upper is None else " AND e.stream_id < $3"
        q = self._q
        sql = (
            "WITH RECURSIVE ids(stream_id) AS ("
            f" (SELECT e.stream_id FROM {q}.events e WHERE e.stream_id {first_op} $1{bound}"
            "   ORDER BY e.stream_id LIMIT 1)"
            " UNION ALL"
            f" SELECT (SELECT e.stream_id FROM {q}.events e"
            f"          WHERE e.stream_id > ids.stream_id{bound} ORDER BY e.stream_id LIMIT 1)"
            "   FROM ids WHERE ids.stream_id IS NOT NULL)"
            " SELECT i.stream_id, last.version, first.recorded_at, last.recorded_at"
            " FROM (SELECT stream_id FROM ids WHERE stream_id IS NOT NULL LIMIT $2) i"
            f" CROSS JOIN LATERAL (SELECT e.version, e.recorded_at FROM {q}.events e"
            "   WHERE e.stream_id = i.stream_id ORDER BY e.version DESC LIMIT 1) last"
            f" CROSS JOIN LATERAL (SELECT e.recorded_at FROM {q}.events e"
            "   WHERE e.stream_id = i.stream_id AND e.version = 1) first"
            " ORDER BY i.stream_id"
        )
        params: list[Any] = [lower, limit] + ([] if upper is None else [upper])
        rows = await self._run(lambda conn: conn.fetch(sql, *params))
        return [StreamInfo(r[0], r[1], r[2], r[3]) for r in rows]

    async def _count_events(self, after: int, limit: int | None) -> int:
        count = await self._run(
            lambda conn: conn.fetchval(
                f"SELECT count(*) FROM (SELECT 1 FROM {self._q}.events WHERE position > $1"
                f" AND position < {self._q}.visible_limit() LIMIT $2) AS counted",
                after,
                limit,
            )
        )
        return int(count)

    async def _head_position(self) -> int:
        position = await self._run(
            lambda conn: conn.fetchval(
                f"SELECT max(position) FROM {self._q}.events"
                f" WHERE position < {self._q}.visible_limit()"
            )
        )
        return int(position or 0)

    async def _read_event(self, event_id: uuid.UUID) -> RecordedEvent | None:
        row = await self._run(
            lambda conn: conn.fetchrow(
                f"SELECT {_COLUMNS} FROM {self._q}.events"
                f" WHERE id = $1 AND position < {self._q}.visible_limit()",
                event_id,
            )
        )
        return None if row is None else _make_event(row)

    async def _read_correlated(self, correlation_id: str, limit: int) -> list[RecordedEvent]:
        rows = await self._run(
            lambda conn: conn.fetch(
                f"SELECT {_COLUMNS} FROM {self._q}.events"
                " WHERE (metadata->>'correlation_id') = $1"
                f" AND position < {self._q}.visible_limit() ORDER BY position LIMIT $2",
                correlation_id,
                limit,
            )
        )
        return [_make_event(row) for row in rows]

    async def _save_snapshot(self, snapshot: Snapshot, state: bytes) -> None:
        await self._run(
            lambda conn: conn.execute(
                f"INSERT INTO {self._q}.snapshots (stream_id, version, kind, fingerprint, state)"
                " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (stream_id, version) DO UPDATE"
                " SET kind = excluded.kind, fingerprint = excluded.fingerprint,"
                " state = excluded.state, recorded_at = excluded.recorded_at",
                snapshot.stream_id,
                snapshot.version,
                snapshot.kind,
                snapshot.fingerprint,
                state,
            )
        )

    async def _load_snapshot(self, stream_id: str, max_version: int | None) -> Snapshot | None:
        row = await self._run(
            lambda conn: conn.fetchrow(
                "SELECT stream_id, version, kind, fingerprint, state, recorded_at"
                f" FROM {self._q}.snapshots WHERE stream_id = $1 AND version <= $2"
                " ORDER BY version DESC LIMIT 1",
                stream_id,
                MAX_VERSION if max_version is None else max_version,
            )
        )
        return None if row is None else Snapshot(*row)

    # --- the read side -------------------------------------------------------------------

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[StoreTransaction]:
        self._check_open()
        conn = await self._acquire()
        reusable = False
        tx = _PostgresTransaction(conn, self)
        try:
            async with conn.transaction():
                yield tx
            reusable = True
        except asyncpg.PostgresError as error:
            reusable = _leaves_connection_idle(error)
            raise
        except _CONNECTION_ERRORS as error:
            raise OperationalError(f"PostgreSQL {self.url}: {error}") from error
        except BaseException:
            # The body failed (a conflict, a handler's error) and the rollback went
            # through: the connection is as good as new.
            reusable = not conn.is_closed() and not conn.is_in_transaction()
            raise
        finally:
            self._pool.release(conn, reusable)
        if tx.appended:
            self._appended()

    def transaction(self) -> AbstractAsyncContextManager[StoreTransaction]:
        return self._transaction()

    async def fetch(self, sql: str, *args: Any) -> list[Sequence[Any]]:
        self._check_open()
        rows = await self._run(lambda conn: conn.fetch(sql, *args))
        return [tuple(row) for row in rows]

    async def fetch_records(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        self._check_open()
        rows = await self._run(lambda conn: conn.fetch(sql, *args))
        return [dict(row) for row in rows]

    def _appended(self) -> None:
        super()._appended()
        if self._notify_task is None or self._notify_task.done():
            self._notify_task = asyncio.ensure_future(self._notify_others())

    async def _notify_others(self) -> None:
        await asyncio.sleep(NOTIFY_INTERVAL)
        if self._closed:
            return
        # Readers poll as well, so a lost wake-up only costs latency.
        with contextlib.suppress(OperationalError, StoreClosed, asyncpg.PostgresError):
            # Its own little transaction; no need to wait for the disk for a wake-up call.
            await self._run(
                lambda conn: conn.execute(
                    "SELECT set_config('synchronous_commit', 'off', true), pg_notify($1, '')",
                    self._channel,
                )
            )

    async def wait_for_appends(self, since: int, timeout: float) -> bool:
        # Listen from a task of the store's own, so that a waiter given up on (cancelled)
        # never leaves a half-made connection behind.
        if (self._listener is None or self._listener.is_closed()) and (
            self._listen_task is None or self._listen_task.done()
        ):
            self._listen_task = asyncio.ensure_future(self._listen())
        return await super().wait_for_appends(since, timeout)

    async def _listen(self) -> None:
        try:
            listener = await self._connect()
        except (*_CONNECTION_ERRORS, asyncpg.PostgresError):
            return  # polling still works; try again on the next wait
        try:
            await listener.add_listener(self._channel, self._on_notification)
        except (*_CONNECTION_ERRORS, asyncpg.PostgresError):
            listener.terminate()
            return
        if self._closed:
            await listener.close()
            return
        self._listener = listener

    def _on_notification(self, *_: Any) -> None:
        self._signal.ring()

    # --- what the PostgreSQL backend keeps besides the log --------------------------------------

    @property
    def schema_version(self) -> int:
        return len(load_migrations(__package__))

    def read_side(self) -> ReadSideStorage:
        return PostgresReadSide(self, self._dialect)

    def sql_tables(self) -> SqlTables:
        return PostgresTables(self, self._dialect, self.schema)

    def command_log(self) -> CommandLog:
        return SqlCommandLog(self, self._dialect)

    def process_storage(self) -> ProcessStorage:
        return SqlProcessStorage(self, self._dialect)

    def key_storage(self) -> KeyStorage:
        return SqlKeyStorage(self, self._dialect)

    async def _close(self) -> None:
        if self._notify_task is not None and not self._notify_task.done():
            self._notify_task.cancel()
        if self._listen_task is not None and not self._listen_task.done():
            await asyncio.wait({self._listen_task}, timeout=10)  # it closes what it made
        if self._listener is not None:
            listener, self._listener = self._listener, None
            try:
                await asyncio.wait_for(listener.close(), timeout=5)
            except Exception:  # a listener that cannot close cleanly is cut off
                listener.terminate()
        await self._pool.close()
