"""The PostgreSQL store, for production. Needs the ``postgres`` extra (asyncpg).

URL: any libpq-style ``postgresql://user:password@host:port/database`` URL that
asyncpg accepts, plus eventledger's own settings (the schema, the pool, timeouts,
``read_only``): see :mod:`eventledger.stores.postgres.url`.

How the global order works, why readers never skip an event although writers
commit concurrently, and why only writers hold readers back: ``docs/ordering.md``
and ``sql/0007_writer_horizon.sql`` beside this module.

Connection failures (a restart, a failover, a network cut) surface as
:class:`~eventledger.OperationalError`; reads run once more on a fresh connection,
and appends too (their event ids make a repeat harmless).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import asyncpg

from eventledger import _json
from eventledger._validation import PreparedEvent
from eventledger.errors import (
    ConflictError,
    InvalidInput,
    OperationalError,
    StoreClosed,
    WrongExpectedVersion,
)
from eventledger.records import (
    AppendResult,
    ExpectedState,
    ExpectedVersion,
    Horizon,
    RecordedEvent,
    Snapshot,
    StreamInfo,
)
from eventledger.storage import (
    CONCERNS,
    CommandLog,
    Concern,
    KeyStorage,
    PersonalDataStorage,
    ProcessStorage,
    ReadSideStorage,
    RetentionStorage,
    SqlTables,
)
from eventledger.stores._keys import prefix_upper_bound
from eventledger.stores._migrations import load_migrations
from eventledger.stores._notify import signal_for
from eventledger.stores._repeats import FoundEvent, resolve_repeat
from eventledger.stores._sql.keys import SqlKeyStorage
from eventledger.stores._sql.processes import SqlProcessStorage
from eventledger.stores.base import MAX_VERSION, EventStore, StoreTransaction, TimeWindow
from eventledger.stores.postgres import schema as schema_sql
from eventledger.stores.postgres.append import (
    EXPECTED_CODES,
    append_many_sql,
    append_one_sql,
    pack,
)
from eventledger.stores.postgres.command_log import PostgresCommandLog
from eventledger.stores.postgres.dialect import PostgresDialect
from eventledger.stores.postgres.faults import is_connection_failure, leaves_connection_idle
from eventledger.stores.postgres.horizon import read_horizon
from eventledger.stores.postgres.pool import ConnectionPool, PoolClosed, PoolTimeout
from eventledger.stores.postgres.read_side import PostgresReadSide
from eventledger.stores.postgres.tables import PostgresTables
from eventledger.stores.postgres.transaction import transaction
from eventledger.stores.postgres.url import PostgresSettings, redact

if TYPE_CHECKING:
    Connection = asyncpg.Connection[asyncpg.Record]

__all__ = ["PostgresStore"]

log = logging.getLogger("eventledger.stores.postgres")

T = TypeVar("T")

_COLUMNS = "id, stream_id, version, position, type, schema_version, data, metadata, recorded_at"
MAX_APPEND_ATTEMPTS = 100
NOTIFY_INTERVAL = 0.02
"""Appends tell other processes about themselves with a NOTIFY, sent apart from the
append (a NOTIFY inside it would serialise all committing writers) and at most this
often; readers also poll, so a lost notification only costs latency."""
HORIZON_CHECK_INTERVAL = 5.0
"""How often a reader at the end of the log asks who holds it back, at most."""

# tuple.__new__ bound to the record type: builds an event from a row in C.
_make_event: Callable[[asyncpg.Record], RecordedEvent] = functools.partial(
    tuple.__new__, RecordedEvent
)


async def _init_connection(conn: asyncpg.Connection) -> None:
    # JSON travels as text: both directions are then plain C calls (bytes.decode
    # out, orjson.loads in), with no Python function per value.
    for kind in ("json", "jsonb"):
        await conn.set_type_codec(
            kind, schema="pg_catalog", encoder=bytes.decode, decoder=_json.loads, format="text"
        )


@dataclass(frozen=True, slots=True)
class Statements:
    """The store's own SQL, made once per store."""

    append_one: str
    append_many: str
    tx_append_one: str
    tx_append_many: str
    command_append_one: str
    command_append_many: str
    read_all: str
    read_all_window: str

    @classmethod
    def for_schema(cls, q: str, marker: schema_sql.Marker) -> Statements:
        # The visible limit as an InitPlan: computed once per statement, with the snapshot
        # the page is read with.
        below = f"position < (SELECT {q}.visible_limit())"
        return cls(
            append_one_sql(q),
            append_many_sql(q),
            append_one_sql(q, marker),
            append_many_sql(q, marker),
            append_one_sql(q, command=True),
            append_many_sql(q, command=True),
            f"SELECT {_COLUMNS} FROM {q}.events WHERE position > $1 AND {below}"
            " ORDER BY position LIMIT $2",
            f"SELECT {_COLUMNS} FROM {q}.events WHERE position > $1 AND {below}"
            " AND ($3::timestamptz IS NULL OR recorded_at >= $3)"
            " AND ($4::timestamptz IS NULL OR recorded_at <= $4)"
            " AND ($5::bigint IS NULL OR position <= $5) ORDER BY position LIMIT $2",
        )


class PostgresStore(EventStore):
    """An event store in a PostgreSQL schema."""

    backend = "postgres"
    capabilities: ClassVar[frozenset[Concern]] = frozenset(CONCERNS)

    def __init__(
        self,
        pool: ConnectionPool,
        settings: PostgresSettings,
        url: str,
        connect: Callable[[], Awaitable[asyncpg.Connection]],
    ) -> None:
        self._pool = pool
        self.settings = settings
        self.schema = settings.schema
        self.url = url
        self.read_only = settings.read_only
        self._connect = connect
        self._signal = signal_for(f"postgres://{redact(settings.dsn)}#{settings.schema}")
        self._channel = f"eventledger_{settings.schema}"[:63]
        self._notify_task: asyncio.Task[None] | None = None
        self._listener: asyncpg.Connection | None = None
        self._listen_task: asyncio.Task[None] | None = None
        self._horizon_task: asyncio.Task[None] | None = None
        self._horizon_checked = 0.0
        self._held_since: float | None = None
        self._held_warned = 0.0
        self.quoted_schema = self._q = f'"{settings.schema}"'
        self._dialect = PostgresDialect(settings.schema)
        self.statements = Statements.for_schema(self._q, schema_sql.Marker(settings.schema))

    @classmethod
    async def open(cls, url: str) -> PostgresStore:
        settings = PostgresSettings.from_url(url)
        ready = False  # new connections check positions once the schema is there

        async def connect() -> asyncpg.Connection:
            conn = await asyncpg.connect(
                settings.dsn,
                server_settings=settings.server_settings(),
                timeout=settings.pool_timeout,
            )
            try:
                await _init_connection(conn)
                # After a restore into a new cluster, repair before the first append.
                if (
                    ready
                    and not settings.read_only
                    and await schema_sql.positions_need_repair(conn, settings.schema)
                ):
                    await schema_sql.repair_positions(conn, settings.schema)
            except BaseException:
                conn.terminate()
                raise
            return conn

        pool = ConnectionPool(
            connect,
            settings.pool_max_size,
            timeout=settings.pool_timeout,
            max_lifetime=settings.pool_max_lifetime,
        )
        try:
            await pool.open(settings.pool_min_size)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as error:
            raise OperationalError(
                f"cannot connect to PostgreSQL at {redact(settings.dsn)}: {error}"
            ) from error
        store = cls(pool, settings, redact(url), connect)
        try:
            async with store._connection() as conn:
                if settings.read_only:
                    await schema_sql.check_version(conn, settings.schema)
                elif await conn.fetchval("SELECT pg_is_in_recovery()"):
                    raise OperationalError(
                        f"{store.url} is a standby (in recovery): it takes no writes; open it"
                        " with read_only=true, and write through the primary"
                    )
                else:
                    await schema_sql.migrate(conn, settings.schema)
        except BaseException:
            await pool.close()
            raise
        ready = True
        return store

    # --- connections ----------------------------------------------------------------------

    async def acquire(self) -> Connection:
        """A pooled connection (give it back with :meth:`release`)."""
        try:
            return await self._pool.acquire()
        except PoolClosed:
            raise StoreClosed(f"the store {self.url} is closed") from None
        except PoolTimeout as error:
            raise OperationalError(f"PostgreSQL {self.url}: {error}") from None
        except Exception as error:
            if is_connection_failure(error) or isinstance(error, asyncpg.PostgresError):
                raise OperationalError(
                    f"cannot connect to PostgreSQL {self.url}: {error}"
                ) from error
            raise

    def release(self, conn: Connection, reusable: bool) -> None:
        self._pool.release(conn, reusable)

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[Connection]:
        conn = await self.acquire()
        reusable = False
        try:
            yield conn
            reusable = True
        except Exception as error:
            reusable = leaves_connection_idle(error)
            if is_connection_failure(error):
                raise OperationalError(f"PostgreSQL {self.url}: {error}") from error
            raise
        finally:
            self._pool.release(conn, reusable)

    async def _run(self, work: Callable[[Connection], Awaitable[T]]) -> T:
        """Run a read on a pooled connection; once more on another if the first died."""
        try:
            async with self._connection() as conn:
                return await work(conn)
        except OperationalError as error:
            if error.__cause__ is None or not is_connection_failure(error.__cause__):
                raise
            log.info("PostgreSQL %s: a connection failed (%s); trying another", self.url, error)
        async with self._connection() as conn:
            return await work(conn)

    def refuse_writes_if_read_only(self) -> None:
        if self.read_only:
            raise InvalidInput(
                f"the store {self.url} is open read-only (read_only=true): write through a"
                " store opened on the primary"
            )

    # --- the log --------------------------------------------------------------------------

    async def _append(
        self, stream_id: str, expected: ExpectedVersion, events: list[PreparedEvent]
    ) -> AppendResult:
        self.refuse_writes_if_read_only()
        code = EXPECTED_CODES[expected] if isinstance(expected, ExpectedState) else expected
        ids = [e.id for e in events]
        args: tuple[Any, ...]
        if len(events) == 1:
            sql, args = self.statements.append_one, (stream_id, code, *events[0])
        else:
            # A batch travels as one JSON array: PostgreSQL parses it once, and the
            # client joins bytes it already has instead of encoding five arrays.
            sql, args = self.statements.append_many, (stream_id, code, pack(events))
        lost_connections = 0
        for _attempt in range(MAX_APPEND_ATTEMPTS):
            conn = await self.acquire()  # the hot path: no context manager
            reusable = False
            try:
                row = await conn.fetchrow(sql, *args)
                reusable = True
                assert row is not None  # the statement always answers one row
                actual, version, position = row
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
            except Exception as error:
                if not is_connection_failure(error):
                    reusable = leaves_connection_idle(error)
                    raise OperationalError(f"append to {stream_id!r} failed: {error}") from error
                # The connection died. Trying again on another is safe: if the first try
                # committed, the same event ids make the retry return its result.
                lost_connections += 1
                if lost_connections > 1:
                    raise OperationalError(f"PostgreSQL {self.url}: {error}") from error
                continue
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
        # A soft-deleted stream hides its versions below hidden_before (eventledger.retention).
        sql = (
            f"SELECT {_COLUMNS} FROM {self._q}.events WHERE stream_id = $1 AND {condition}"
            f"{time_filter} AND version >= coalesce((SELECT m.hidden_before"
            f" FROM {self._q}.stream_marks m WHERE m.stream_id = $1), 0)"
            f" ORDER BY version {order} LIMIT $3"
        )
        params: tuple[Any, ...] = (stream_id, cursor, size)
        if as_of is not None:
            params += (as_of,)
        rows = await self._run(lambda conn: conn.fetch(sql, *params))
        return list(map(_make_event, rows))

    async def _read_all_page(
        self, after: int, size: int, window: TimeWindow | None
    ) -> list[RecordedEvent]:
        statements = self.statements
        if window is None:
            rows = await self._run(lambda conn: conn.fetch(statements.read_all, after, size))
        else:
            since, until, upto = window
            rows = await self._run(
                lambda conn: conn.fetch(statements.read_all_window, after, size, since, until, upto)
            )
        if len(rows) < size:
            self._watch_horizon()  # at the visible end of the log: is someone holding it?
        return list(map(_make_event, rows))

    async def _last_position_until(self, until: datetime) -> int | None:
        found: int | None = await self._run(
            lambda conn: conn.fetchval(
                f"SELECT max(position) FROM {self._q}.events WHERE recorded_at <= $1", until
            )
        )
        return found

    async def _first_position_since(self, since: datetime) -> int | None:
        found: int | None = await self._run(
            lambda conn: conn.fetchval(
                f"SELECT min(position) FROM {self._q}.events WHERE recorded_at >= $1", since
            )
        )
        return found

    async def _stream_version(self, stream_id: str) -> int:
        # Versions go on after events deleted for good (eventledger.retention).
        version = await self._run(
            lambda conn: conn.fetchval(
                f"SELECT greatest(max(version), (SELECT m.deleted_before - 1"
                f" FROM {self._q}.stream_marks m WHERE m.stream_id = $1))"
                f" FROM {self._q}.events WHERE stream_id = $1",
                stream_id,
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
            " FROM (SELECT stream_id FROM ids WHERE stream_id IS NOT NULL"
            # Not soft-deleted (eventledger.retention), or appended to since. Scalar
            # subqueries in a CASE: a join here would make the planner walk every stream.
            f"   AND CASE WHEN (SELECT m.hidden_before FROM {q}.stream_marks m"
            "     WHERE m.stream_id = ids.stream_id) IS NULL THEN true"
            f"     ELSE (SELECT m.hidden_before FROM {q}.stream_marks m"
            "       WHERE m.stream_id = ids.stream_id)"
            f"       <= (SELECT max(e.version) FROM {q}.events e WHERE e.stream_id = ids.stream_id)"
            "     END"
            "   LIMIT $2) i"
            f" CROSS JOIN LATERAL (SELECT e.version, e.recorded_at FROM {q}.events e"
            "   WHERE e.stream_id = i.stream_id ORDER BY e.version DESC LIMIT 1) last"
            f" CROSS JOIN LATERAL (SELECT e.recorded_at FROM {q}.events e"
            "   WHERE e.stream_id = i.stream_id ORDER BY e.version LIMIT 1) first"
            " ORDER BY i.stream_id"
        )
        params: list[Any] = [lower, limit] + ([] if upper is None else [upper])
        rows = await self._run(lambda conn: conn.fetch(sql, *params))
        return [StreamInfo(r[0], r[1], r[2], r[3]) for r in rows]

    async def _count_events(self, after: int, upto: int, limit: int | None) -> int:
        q = self._q
        count = await self._run(
            lambda conn: conn.fetchval(
                f"SELECT count(*) FROM (SELECT 1 FROM {q}.events WHERE position > $1"
                f" AND position <= $3 AND position < (SELECT {q}.visible_limit())"
                " LIMIT $2) AS counted",
                after,
                limit,
                upto,
            )
        )
        return int(count)

    async def _head_position(self) -> int:
        q = self._q
        position = await self._run(
            lambda conn: conn.fetchval(
                f"SELECT max(position) FROM {q}.events"
                f" WHERE position < (SELECT {q}.visible_limit())"
            )
        )
        return int(position or 0)

    async def _horizon(self) -> Horizon:
        return await self._run(lambda conn: read_horizon(conn, self.schema))

    async def _read_event(self, event_id: uuid.UUID) -> RecordedEvent | None:
        q = self._q
        row = await self._run(
            lambda conn: conn.fetchrow(
                f"SELECT {_COLUMNS} FROM {q}.events e"
                f" WHERE id = $1 AND position < (SELECT {q}.visible_limit())"
                f" AND NOT EXISTS (SELECT 1 FROM {q}.stream_marks m"
                "  WHERE m.stream_id = e.stream_id AND e.version < m.hidden_before)",
                event_id,
            )
        )
        return None if row is None else _make_event(row)

    async def _read_correlated(self, correlation_id: str, limit: int) -> list[RecordedEvent]:
        q = self._q
        rows = await self._run(
            lambda conn: conn.fetch(
                f"SELECT {_COLUMNS} FROM {q}.events"
                " WHERE (metadata->>'correlation_id') = $1"
                f" AND position < (SELECT {q}.visible_limit()) ORDER BY position LIMIT $2",
                correlation_id,
                limit,
            )
        )
        return [_make_event(row) for row in rows]

    async def _save_snapshot(self, snapshot: Snapshot, state: bytes) -> None:
        self.refuse_writes_if_read_only()
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

    # --- who holds readers back -----------------------------------------------------------

    def _watch_horizon(self) -> None:
        now = time.monotonic()
        if now - self._horizon_checked < HORIZON_CHECK_INTERVAL or self._closed:
            return
        if self._horizon_task is not None and not self._horizon_task.done():
            return
        self._horizon_checked = now
        self._horizon_task = asyncio.ensure_future(self._check_horizon())

    async def _check_horizon(self) -> None:
        try:
            horizon = await self._horizon()
        except Exception:  # a check that fails says nothing; the next read tries again
            return
        now = time.monotonic()
        if not horizon.lagging:
            self._held_since = None
            return
        if self._held_since is None:
            self._held_since = now
        held_for = now - self._held_since
        warn_after = self.settings.horizon_warning
        if held_for >= warn_after and now - self._held_warned >= warn_after:
            self._held_warned = now
            holder = horizon.holder.describe() if horizon.holder else "an unknown transaction"
            log.warning(
                "readers of %s have been held back for %.0f s at position %d (%d committed"
                " events wait) by %s",
                self.url,
                held_for,
                horizon.visible_head,
                horizon.events_held,
                holder,
            )

    # --- transactions and queries ---------------------------------------------------------

    def transaction(
        self, *, appends: bool = False
    ) -> AbstractAsyncContextManager[StoreTransaction]:
        self._check_open()
        self.refuse_writes_if_read_only()
        return transaction(self, appends)

    def committed(self, tx: StoreTransaction) -> None:
        self._committed(tx)

    async def fetch(self, sql: str, *args: Any) -> list[Sequence[Any]]:
        self._check_open()
        rows = await self._run(lambda conn: conn.fetch(sql, *args))
        return [tuple(row) for row in rows]

    async def fetch_records(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        self._check_open()
        rows = await self._run(lambda conn: conn.fetch(sql, *args))
        return [dict(row) for row in rows]

    # --- wake-ups -------------------------------------------------------------------------

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
        except Exception:
            return  # polling still works; try again on the next wait
        try:
            await listener.add_listener(self._channel, self._on_notification)
        except Exception:  # on a standby there is no LISTEN: polling it is
            listener.terminate()
            return
        if self._closed:
            await listener.close()
            return
        self._listener = listener

    def _on_notification(self, *_: Any) -> None:
        self._signal.ring()

    # --- what the PostgreSQL backend keeps besides the log --------------------------------

    @property
    def schema_version(self) -> int:
        return len(load_migrations(schema_sql.__package__))

    def read_side(self) -> ReadSideStorage:
        return PostgresReadSide(self, self._dialect)

    def sql_tables(self) -> SqlTables:
        return PostgresTables(self, self._dialect, self.schema)

    def command_log(self) -> CommandLog:
        return PostgresCommandLog(self, self._dialect)

    def process_storage(self) -> ProcessStorage:
        return SqlProcessStorage(self, self._dialect)

    def key_storage(self) -> KeyStorage:
        return SqlKeyStorage(self, self._dialect)

    async def scrub(self, *, full: bool = False) -> None:
        self._check_open()
        tables = await self.fetch(
            "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables WHERE schemaname = $1",
            self.schema,
        )
        command = "VACUUM (FULL, ANALYZE)" if full else "VACUUM (ANALYZE)"
        async with self._connection() as conn:
            for (table,) in tables:
                await conn.execute(f"{command} {table}")

    def personal_data_storage(self) -> PersonalDataStorage:
        from eventledger.stores._sql.personal import SqlPersonalDataStorage

        return SqlPersonalDataStorage(self, self._dialect)

    def retention_storage(self) -> RetentionStorage:
        from eventledger.stores._sql.retention import SqlRetentionStorage

        return SqlRetentionStorage(self, self._dialect)

    async def _close(self) -> None:
        for task in (self._notify_task, self._horizon_task):
            if task is not None and not task.done():
                task.cancel()
        if self._listen_task is not None and not self._listen_task.done():
            await asyncio.wait({self._listen_task}, timeout=10)  # it closes what it made
        if self._listener is not None:
            listener, self._listener = self._listener, None
            try:
                await asyncio.wait_for(listener.close(), timeout=5)
            except Exception:  # a listener that cannot close cleanly is cut off
                listener.terminate()
        await self._pool.close()
