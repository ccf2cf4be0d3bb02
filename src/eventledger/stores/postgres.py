"""The PostgreSQL store, for production. Needs the ``postgres`` extra (asyncpg).

URL: any libpq-style ``postgresql://user:password@host:port/database`` URL
that asyncpg accepts, plus these query settings, which eventledger takes for
itself:

- ``schema=NAME``: the schema that holds the tables (default ``eventledger``);
- ``pool_min_size=N`` / ``pool_max_size=N``: the connection pool (default 1 / 10).

How the global order works, and why readers never skip an event although
writers commit concurrently: see ``sql/postgres/0001_events.sql``.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from eventledger import _json
from eventledger._validation import PreparedEvent
from eventledger.errors import (
    InvalidInput,
    OperationalError,
    SchemaVersionError,
    UnsupportedStoreURL,
    WrongExpectedVersion,
)
from eventledger.records import (
    AppendResult,
    ExpectedState,
    ExpectedVersion,
    RecordedEvent,
    StreamInfo,
)
from eventledger.stores._keys import prefix_upper_bound
from eventledger.stores._migrations import load_migrations
from eventledger.stores._repeats import FoundEvent, resolve_repeat
from eventledger.stores.base import DEFAULT_PAGE_SIZE, EventStore

if TYPE_CHECKING:
    import asyncpg
    from asyncpg.pool import PoolConnectionProxy

    Connection = PoolConnectionProxy[asyncpg.Record]

__all__ = ["PostgresStore"]

T = TypeVar("T")

_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_OUR_SETTINGS = {"schema", "pool_min_size", "pool_max_size"}
_COLUMNS = "id, stream_id, version, position, type, schema_version, data, metadata, recorded_at"
_EXPECTED_CODES = {
    ExpectedState.ANY: -1,
    ExpectedState.STREAM_EXISTS: -2,
    ExpectedState.NO_STREAM: 0,
}
WRONG_EXPECTED_VERSION_STATE = "EL409"

_make_event = RecordedEvent._make


def _jsonb_encode(value: bytes) -> bytes:
    return b"\x01" + value  # jsonb binary format: a version byte, then the JSON text


def _jsonb_decode(value: bytes) -> Any:
    return _json.loads(memoryview(value)[1:])


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec(
        "jsonb",
        schema="pg_catalog",
        encoder=_jsonb_encode,
        decoder=_jsonb_decode,
        format="binary",
    )


def split_url(url: str) -> tuple[str, dict[str, str]]:
    """Separate eventledger's own settings from the URL handed to asyncpg."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    ours = {k: v for k, v in query if k in _OUR_SETTINGS}
    rest = [(k, v) for k, v in query if k not in _OUR_SETTINGS]
    return urlunsplit(parts._replace(query=urlencode(rest))), ours


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        parts = parts._replace(netloc=netloc)
    return urlunsplit(parts)


class PostgresStore(EventStore):
    """An event store in a PostgreSQL schema."""

    def __init__(self, pool: asyncpg.Pool, schema: str, url: str) -> None:
        self._pool = pool
        self.schema = schema
        self.url = url
        q = f'"{schema}"'
        self._q = q
        self._append_sql = f"SELECT {q}.append_events($1, $2, $3, $4, $5, $6, $7)"
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
        try:
            import asyncpg
        except ImportError:
            raise UnsupportedStoreURL(
                "PostgreSQL needs the asyncpg driver: pip install 'eventledger[postgres]'"
            ) from None
        dsn, settings = split_url(url)
        schema = settings.get("schema", "eventledger")
        if not _SCHEMA_NAME.fullmatch(schema):
            raise InvalidInput(
                f"schema {schema!r} is not valid: use lower-case letters, digits and '_',"
                " starting with a letter or '_', at most 63 characters"
            )
        min_size = _int_setting(settings, "pool_min_size", 1)
        max_size = _int_setting(settings, "pool_max_size", 10)
        if not 1 <= min_size <= max_size:
            raise InvalidInput(
                f"pool sizes must satisfy 1 <= pool_min_size <= pool_max_size,"
                f" not {min_size} and {max_size}"
            )
        try:
            pool = await asyncpg.create_pool(
                dsn, min_size=min_size, max_size=max_size, init=_init_connection
            )
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            raise OperationalError(
                f"cannot connect to PostgreSQL at {_redact(dsn)}: {error}"
            ) from error
        store = cls(pool, schema, _redact(url))
        try:
            await store._migrate()
        except BaseException:
            await pool.close()
            raise
        return store

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[Connection]:
        import asyncpg

        try:
            async with self._pool.acquire() as conn:
                yield conn
        except (OSError, asyncpg.InterfaceError, asyncpg.PostgresConnectionError) as error:
            raise OperationalError(f"PostgreSQL {self.url}: {error}") from error

    async def _run(self, work: Callable[[Connection], Awaitable[T]]) -> T:
        async with self._connection() as conn:
            return await work(conn)

    async def _migrate(self) -> None:
        q = self._q
        migrations = load_migrations("postgres")
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
        import asyncpg

        code = _EXPECTED_CODES[expected] if isinstance(expected, ExpectedState) else expected
        args = (
            stream_id,
            code,
            [e.id for e in events],
            [e.type for e in events],
            [e.schema_version for e in events],
            [e.data for e in events],
            [e.metadata for e in events],
        )
        try:
            async with self._connection() as conn:
                version, position = await conn.fetchval(self._append_sql, *args)
                return AppendResult(version, position)
        except asyncpg.UniqueViolationError as error:
            if error.constraint_name != "events_id_key":
                raise OperationalError(f"append to {stream_id!r} failed: {error}") from error
        except asyncpg.PostgresError as error:
            if error.sqlstate != WRONG_EXPECTED_VERSION_STATE:
                raise OperationalError(f"append to {stream_id!r} failed: {error}") from error
            found = await self._find_ids([e.id for e in events])
            if not found:
                actual = int(getattr(error, "detail", None) or 0)
                raise WrongExpectedVersion(stream_id, expected, actual) from None
            return resolve_repeat(stream_id, expected, [e.id for e in events], found)
        found = await self._find_ids([e.id for e in events])
        return resolve_repeat(stream_id, expected, [e.id for e in events], found)

    async def _find_ids(self, ids: list[Any]) -> list[FoundEvent]:
        rows = await self._run(
            lambda conn: conn.fetch(
                f"SELECT id, stream_id, version, position FROM {self._q}.events"
                " WHERE id = ANY($1::uuid[])",
                ids,
            )
        )
        return [FoundEvent(r[0], r[1], r[2], r[3]) for r in rows]

    async def _read_stream(
        self,
        stream_id: str,
        from_version: int | None,
        backwards: bool,
        limit: int | None,
        as_of: datetime | None,
    ) -> AsyncIterator[RecordedEvent]:
        if backwards:
            cursor = from_version if from_version is not None else (1 << 62)
            condition, order = "version <= $2", "DESC"
        else:
            cursor = from_version or 1
            condition, order = "version >= $2", "ASC"
        time_filter = "" if as_of is None else " AND recorded_at <= $4"
        sql = (
            f"SELECT {_COLUMNS} FROM {self._q}.events WHERE stream_id = $1 AND {condition}"
            f"{time_filter} ORDER BY version {order} LIMIT $3"
        )
        remaining = limit
        while remaining is None or remaining > 0:
            size = DEFAULT_PAGE_SIZE if remaining is None else min(remaining, DEFAULT_PAGE_SIZE)
            params: list[Any] = [stream_id, cursor, size]
            if as_of is not None:
                params.append(as_of)
            async with self._connection() as conn:
                rows = await conn.fetch(sql, *params)
            for row in rows:
                yield _make_event(row)
            if len(rows) < size:
                return
            cursor = rows[-1][2] + (-1 if backwards else 1)
            if remaining is not None:
                remaining -= len(rows)

    async def _read_all(
        self, after: int, limit: int | None, since: datetime | None
    ) -> AsyncIterator[RecordedEvent]:
        sql = self._read_all_sql
        extra: tuple[Any, ...] = ()
        if since is not None:
            start = await self._run(
                lambda conn: conn.fetchval(
                    f"SELECT min(position) FROM {self._q}.events WHERE recorded_at >= $1", since
                )
            )
            if start is None:
                return
            after = max(after, start - 1)
            sql, extra = self._read_all_since_sql, (since,)
        remaining = limit
        while remaining is None or remaining > 0:
            size = DEFAULT_PAGE_SIZE if remaining is None else min(remaining, DEFAULT_PAGE_SIZE)
            async with self._connection() as conn:
                rows = await conn.fetch(sql, after, size, *extra)
            for row in rows:
                yield _make_event(row)
            if len(rows) < size:
                return
            after = rows[-1][3]
            if remaining is not None:
                remaining -= len(rows)

    async def _stream_version(self, stream_id: str) -> int:
        version = await self._run(
            lambda conn: conn.fetchval(
                f"SELECT version FROM {self._q}.streams WHERE stream_id = $1", stream_id
            )
        )
        return int(version or 0)

    async def _list_streams(self, prefix: str, after: str | None, limit: int) -> list[StreamInfo]:
        conditions = ["stream_id >= $1"]
        params: list[Any] = [prefix]
        upper = prefix_upper_bound(prefix)
        if upper is not None:
            params.append(upper)
            conditions.append(f"stream_id < ${len(params)}")
        if after is not None:
            params.append(after)
            conditions.append(f"stream_id > ${len(params)}")
        params.append(limit)
        sql = (
            f"SELECT stream_id, version, created_at, updated_at FROM {self._q}.streams"
            f" WHERE {' AND '.join(conditions)} ORDER BY stream_id LIMIT ${len(params)}"
        )
        rows = await self._run(lambda conn: conn.fetch(sql, *params))
        return [StreamInfo(r[0], r[1], r[2], r[3]) for r in rows]

    async def _head_position(self) -> int:
        position = await self._run(
            lambda conn: conn.fetchval(
                f"SELECT max(position) FROM {self._q}.events"
                f" WHERE position < {self._q}.visible_limit()"
            )
        )
        return int(position or 0)

    async def _close(self) -> None:
        await self._pool.close()


def _int_setting(settings: dict[str, str], name: str, default: int) -> int:
    text = settings.get(name)
    if text is None:
        return default
    try:
        return int(text)
    except ValueError:
        raise InvalidInput(f"{name} must be an integer, not {text!r}") from None
