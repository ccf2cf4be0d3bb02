"""Only event writers hold readers back (docs/ordering.md), on a real PostgreSQL.

Each test holds some transaction open at a chosen point and asks what a reader
sees; the order of events is set by awaiting one step after another, never by
sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
import uuid
import warnings
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
import pytest_asyncio

from eventledger import EventStore, InvalidInput, NewEvent, open_store
from eventledger.stores.postgres import split_url
from tests.postgres_urls import with_settings

pytestmark = pytest.mark.postgres


def _database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


async def _positions(store: EventStore, after: int = 0) -> list[int]:
    return [e.position async for e in store.read_all(after=after)]


@pytest_asyncio.fixture
async def store(postgres_schema_url: str) -> AsyncIterator[EventStore]:
    opened = await open_store(postgres_schema_url)
    yield opened
    await opened.close()


@pytest_asyncio.fixture
async def stranger(postgres_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A session of someone else's in the same database (not eventledger's)."""
    conn = await asyncpg.connect(split_url(postgres_url)[0])
    yield conn
    conn.terminate()


@pytest_asyncio.fixture
async def other_database(postgres_url: str) -> AsyncIterator[str]:
    """The URL of another database in the same cluster."""
    name = f"el_other_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(split_url(postgres_url)[0])
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield _database(split_url(postgres_url)[0], name)
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@contextlib.asynccontextmanager
async def held_writer(store: EventStore, stream: str) -> AsyncIterator[int]:
    """A store transaction that appended one event and waits, open, until the block ends
    (then it commits). Yields the position its event will have."""
    appended: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    finish = asyncio.Event()

    async def write() -> None:
        async with store.transaction() as tx:
            result = await tx.append(stream, [NewEvent("Held", {})])
            appended.set_result(result.position)
            await finish.wait()

    task = asyncio.ensure_future(write())
    try:
        yield await appended
    finally:
        finish.set()
        await task


async def test_an_older_writer_that_commits_after_a_younger_one_is_waited_for(
    store: EventStore,
) -> None:
    first = await store.append("Before-1", [NewEvent("Before", {})])
    async with held_writer(store, "Older-1") as older:
        younger = await store.append("Younger-1", [NewEvent("Younger", {})])
        assert older < younger.position
        # The younger event is committed, but an older writer may still commit below it.
        assert await _positions(store) == [first.position]
        horizon = await store.horizon()
        assert horizon.lagging
        assert horizon.events_held == 1
        assert horizon.visible_head == first.position
        assert horizon.committed_head == younger.position
    assert await _positions(store) == [first.position, older, younger.position]
    assert not (await store.horizon()).lagging


async def test_the_writer_that_holds_readers_is_named(store: EventStore) -> None:
    async with held_writer(store, "Older-1"):
        await store.append("Younger-1", [NewEvent("Younger", {})])
        holder = (await store.horizon()).holder
        assert holder is not None
        assert holder.application_name == "eventledger"
        assert holder.state == "idle in transaction"
        assert holder.pid is not None
        assert holder.query is not None
        assert holder.query.startswith("/* eventledger append */ WITH")
        assert f"pid {holder.pid}" in holder.describe()


async def test_an_idle_transaction_that_wrote_in_another_database_holds_nobody(
    store: EventStore, other_database: str
) -> None:
    conn = await asyncpg.connect(other_database)
    try:
        await conn.execute("CREATE TABLE t (n int)")
        await conn.execute("BEGIN")
        await conn.execute("INSERT INTO t VALUES (1)")  # it has a transaction id now
        assert await conn.fetchval("SELECT pg_current_xact_id_if_assigned() IS NOT NULL")
        result = await store.append("Order-1", [NewEvent("Placed", {})])
        assert await _positions(store) == [result.position]
        assert not (await store.horizon()).lagging
    finally:
        conn.terminate()


async def test_an_idle_transaction_that_wrote_other_tables_here_holds_nobody(
    store: EventStore, stranger: asyncpg.Connection
) -> None:
    table = f"stranger_{uuid.uuid4().hex[:8]}"
    await stranger.execute(f"CREATE TABLE {table} (n int)")
    try:
        await stranger.execute("BEGIN")
        await stranger.execute(f"INSERT INTO {table} VALUES (1)")
        result = await store.append("Order-1", [NewEvent("Placed", {})])
        assert await _positions(store) == [result.position]
        # A long report (a transaction with a snapshot and an id) changes nothing either.
        await stranger.execute("SELECT count(*) FROM pg_class")
        second = await store.append("Order-1", [NewEvent("Paid", {})])
        assert await _positions(store) == [result.position, second.position]
    finally:
        await stranger.execute("ROLLBACK")
        await stranger.execute(f"DROP TABLE {table}")


async def _limit_for(reader: asyncpg.Connection, schema: str, snapshot: str, offset: int) -> int:
    """The limit a reader computes now for a statement that took `snapshot` earlier."""
    limit: int = await reader.fetchval(
        f'SELECT "{schema}".visible_limit_at($1::text::pg_snapshot, $2)', snapshot, offset
    )
    return limit


async def test_a_transaction_that_ends_after_the_readers_snapshot_holds_only_if_it_wrote(
    store: EventStore, stranger: asyncpg.Connection, postgres_url: str, postgres_schema_url: str
) -> None:
    """A transaction that the reader's snapshot saw running, and that has ended by the
    time the reader looks at the locks, holds only if it added events (which that
    snapshot cannot show): one that wrote nothing here, or rolled back, does not.
    (Seen in CI: a lease renewal committing in that window held a page back.)"""
    schema = split_url(postgres_schema_url)[1]["schema"]
    table = f"stranger_{uuid.uuid4().hex[:8]}"
    await stranger.execute(f"CREATE TABLE {table} (n int)")
    reader = await asyncpg.connect(split_url(postgres_url)[0])
    try:
        offset = await reader.fetchval(f'SELECT xid_offset FROM "{schema}".position_offset')

        async def snapshot_while(begin: str) -> tuple[str, int]:
            await stranger.execute("BEGIN")
            await stranger.execute(begin)
            xid = int(await stranger.fetchval("SELECT pg_current_xact_id()::text"))
            # A younger transaction commits, so the snapshot lists the stranger as running.
            await store.append("Younger-1", [NewEvent("Younger", {})])
            snapshot = await reader.fetchval("SELECT pg_current_snapshot()::text")
            return snapshot, (xid + offset) << 20

        # Wrote another table, committed: cleared.
        snapshot, position = await snapshot_while(f"INSERT INTO {table} VALUES (1)")
        await stranger.execute("COMMIT")
        assert await _limit_for(reader, schema, snapshot, offset) > position

        # Appended, rolled back: cleared.
        snapshot, position = await snapshot_while(f'SELECT "{schema}".begin_writing()')
        await _insert_raw_event(stranger, schema)
        await stranger.execute("ROLLBACK")
        assert await _limit_for(reader, schema, snapshot, offset) > position

        # Appended, committed: the snapshot cannot show its event, so it holds.
        snapshot, position = await snapshot_while(f'SELECT "{schema}".begin_writing()')
        await _insert_raw_event(stranger, schema)
        await stranger.execute("COMMIT")
        assert await _limit_for(reader, schema, snapshot, offset) == position
        # A statement that starts now sees the event, and nothing holds it.
        assert len(await _positions(store)) == 4
    finally:
        await reader.close()
        await stranger.execute(f"DROP TABLE {table}")


async def _insert_raw_event(conn: asyncpg.Connection, schema: str) -> None:
    await conn.execute(
        f'INSERT INTO "{schema}".events (position, id, stream_id, version, type,'
        " schema_version, data, metadata, recorded_at) VALUES"
        " ((pg_current_xact_id()::text::bigint"
        f' + (SELECT xid_offset FROM "{schema}".position_offset)) << 20,'
        " gen_random_uuid(), 'Raw-1', 1, 'Raw', 1, '{}', '{}', now())"
    )


async def test_a_store_transaction_that_writes_rows_first_declares_itself_a_writer(
    store: EventStore,
) -> None:
    read_side = store.read_side()

    async def undeclared() -> None:
        async with store.transaction() as tx:
            await read_side.set_checkpoint(tx, "proc", 1)
            await tx.append("Proc-1", [NewEvent("Step", {})])

    # Undeclared, the append after other writes is refused before anything is sent.
    with pytest.raises(InvalidInput, match=r"appends=True"):
        await undeclared()
    assert await read_side.get_checkpoint("proc") is None
    # Declared, it works, and readers wait for it from its first write on.
    appended: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    finish = asyncio.Event()

    async def write() -> None:
        async with store.transaction(appends=True) as tx:
            await read_side.set_checkpoint(tx, "proc", 1)
            result = await tx.append("Proc-1", [NewEvent("Step", {})])
            appended.set_result(result.position)
            await finish.wait()

    task = asyncio.ensure_future(write())
    mine = await appended
    later = await store.append("Other-1", [NewEvent("Later", {})])
    assert await _positions(store) == []
    finish.set()
    await task
    assert await _positions(store) == [mine, later.position]
    assert await read_side.get_checkpoint("proc") == 1


async def test_the_database_refuses_an_append_by_a_transaction_that_wrote_first(
    store: EventStore, stranger: asyncpg.Connection, postgres_schema_url: str
) -> None:
    """The rule holds for SQL that bypasses eventledger, and after ROLLBACK TO SAVEPOINT
    released a marker taken inside the savepoint."""
    schema = split_url(postgres_schema_url)[1]["schema"]
    insert = (
        f'INSERT INTO "{schema}".events (position, id, stream_id, version, type,'
        " schema_version, data, metadata, recorded_at) VALUES"
        " ((pg_current_xact_id()::text::bigint << 20) + $2, $1::uuid, 'Raw-' || $1::uuid::text,"
        " 1, 'Raw',"
        " 1, '{}', '{}', now())"
    )
    # An insert into a transaction that has an id already is refused (and its rows go).
    await stranger.execute("BEGIN")
    await stranger.execute("SELECT pg_current_xact_id()")
    with pytest.raises(asyncpg.PostgresError, match="wrote before its first append"):
        await stranger.execute(insert, uuid.uuid4(), 0)
    await stranger.execute("ROLLBACK")
    # With an id taken first, even asking for the marker is refused.
    await stranger.execute("BEGIN")
    await stranger.execute("SELECT pg_current_xact_id()")
    with pytest.raises(asyncpg.PostgresError, match="wrote before"):
        await stranger.execute(f'SELECT "{schema}".begin_writing()')
    await stranger.execute("ROLLBACK")
    # A marker taken inside a savepoint goes with ROLLBACK TO SAVEPOINT; the id stays.
    await stranger.execute("BEGIN")
    await stranger.execute("SAVEPOINT s")
    await stranger.execute(f'SELECT "{schema}".begin_writing()')
    await stranger.execute(insert, uuid.uuid4(), 0)
    await stranger.execute(insert, uuid.uuid4(), 1)  # the flag lets it go on
    await stranger.execute("ROLLBACK TO SAVEPOINT s")
    with pytest.raises(asyncpg.PostgresError, match="wrote before its first append"):
        await stranger.execute(insert, uuid.uuid4(), 2)
    await stranger.execute("ROLLBACK")
    assert await _positions(store) == []


async def test_a_crashed_writers_events_never_appear_and_hold_nobody(
    store: EventStore, stranger: asyncpg.Connection
) -> None:
    appended = asyncio.Event()
    never = asyncio.Event()

    async def write() -> None:
        async with store.transaction() as tx:
            await tx.append("Crash-1", [NewEvent("Lost", {})])
            appended.set()
            await never.wait()

    task = asyncio.ensure_future(write())
    await appended.wait()
    later = await store.append("Order-1", [NewEvent("Placed", {})])
    assert await _positions(store) == []
    pids = await stranger.fetch(
        "SELECT pid FROM pg_stat_activity WHERE state = 'idle in transaction'"
        " AND query LIKE '%events%' AND pid <> pg_backend_pid()"
    )
    assert pids
    await stranger.execute("SELECT pg_terminate_backend($1)", pids[0]["pid"])
    deadline = asyncio.get_running_loop().time() + 10
    while await _positions(store) != [later.position]:  # the server rolls back as it goes
        assert asyncio.get_running_loop().time() < deadline, "the crashed writer still holds"
        await asyncio.sleep(0.01)
    task.cancel()
    with contextlib.suppress(BaseException):
        await task
    assert [e.stream_id async for e in store.read_all()] == ["Order-1"]


async def test_a_warning_names_the_holder_once_readers_wait_too_long(
    postgres_schema_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = await open_store(with_settings(postgres_schema_url, horizon_warning="0.2"))
    try:
        with caplog.at_level(logging.WARNING, logger="eventledger.stores.postgres"):
            async with held_writer(store, "Older-1"):
                await store.append("Younger-1", [NewEvent("Younger", {})])
                deadline = asyncio.get_running_loop().time() + 10
                while "held back" not in caplog.text:
                    assert asyncio.get_running_loop().time() < deadline, caplog.text
                    await _positions(store)  # a reader at the end of the log looks
                    await asyncio.sleep(0.05)
        assert "idle in transaction" in caplog.text
    finally:
        await store.close()


# --- prepared transactions need a server that allows them -----------------------------


@pytest.fixture(scope="module")
def prepared_capable() -> Iterator[str]:
    """A throwaway cluster with max_prepared_transactions > 0 (a restart sets it)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pgserver.postgres_server import get_server

    with tempfile.TemporaryDirectory(prefix="el-prepared-") as folder:
        pgdata = Path(folder) / "pg"
        server = get_server(pgdata, cleanup_mode="stop")
        server.psql("ALTER SYSTEM SET max_prepared_transactions = 10;")
        server.cleanup()
        server = get_server(pgdata, cleanup_mode="stop")
        try:
            yield server.get_uri()
        finally:
            server.cleanup()


@pytest_asyncio.fixture
async def prepared_store(prepared_capable: str) -> AsyncIterator[EventStore]:
    opened = await open_store(with_settings(prepared_capable, schema=f"p_{uuid.uuid4().hex[:8]}"))
    yield opened
    await opened.close()


async def test_a_prepared_transaction_of_another_database_holds_nobody(
    prepared_store: EventStore, prepared_capable: str
) -> None:
    admin = await asyncpg.connect(prepared_capable)
    name = f"el_other_{uuid.uuid4().hex[:8]}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    conn = await asyncpg.connect(_database(prepared_capable, name))
    gid = f"el-{uuid.uuid4().hex}"
    try:
        await conn.execute("CREATE TABLE t (n int)")
        await conn.execute("BEGIN")
        await conn.execute("INSERT INTO t VALUES (1)")
        await conn.execute(f"PREPARE TRANSACTION '{gid}'")
        result = await prepared_store.append("Order-1", [NewEvent("Placed", {})])
        assert await _positions(prepared_store) == [result.position]
    finally:
        await conn.execute(f"ROLLBACK PREPARED '{gid}'")
        await conn.close()
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()


async def test_a_prepared_transaction_here_holds_until_resolved_and_is_named(
    prepared_store: EventStore, prepared_capable: str
) -> None:
    """Conservative by design: PREPARE moves its locks one by one, so whether it holds the
    marker cannot be told; status names it so that an operator can resolve it."""
    conn = await asyncpg.connect(prepared_capable)
    gid = f"el-{uuid.uuid4().hex}"
    try:
        await conn.execute("CREATE TEMP TABLE IF NOT EXISTS scratch (n int)")
        await conn.execute("CREATE TABLE IF NOT EXISTS prepared_scratch (n int)")
        await conn.execute("BEGIN")
        await conn.execute("INSERT INTO prepared_scratch VALUES (1)")
        await conn.execute(f"PREPARE TRANSACTION '{gid}'")
        result = await prepared_store.append("Order-1", [NewEvent("Placed", {})])
        assert await _positions(prepared_store) == []
        holder = (await prepared_store.horizon()).holder
        assert holder is not None
        assert holder.prepared_gid == gid
        assert gid in holder.describe()
        await conn.execute(f"ROLLBACK PREPARED '{gid}'")
        assert await _positions(prepared_store) == [result.position]
    finally:
        with contextlib.suppress(asyncpg.PostgresError):
            await conn.execute(f"ROLLBACK PREPARED '{gid}'")
        await conn.close()


async def test_a_prepared_writer_is_waited_for_and_its_events_come_in_order(
    prepared_store: EventStore, prepared_capable: str
) -> None:
    schema = prepared_store.schema  # type: ignore[attr-defined]
    conn = await asyncpg.connect(prepared_capable)
    gid = f"el-{uuid.uuid4().hex}"
    try:
        await conn.execute("BEGIN")
        await conn.execute(f'SELECT "{schema}".begin_writing()')  # what raw SQL must do
        position = await conn.fetchval(
            f'INSERT INTO "{schema}".events (position, id, stream_id, version, type,'
            " schema_version, data, metadata, recorded_at) SELECT"
            " ((pg_current_xact_id()::text::bigint + o.xid_offset) << 20), $1, 'Prep-1', 1,"
            f" 'Prepared', 1, '{{}}', '{{}}', now() FROM \"{schema}\".position_offset o"
            " RETURNING position",
            uuid.uuid4(),
        )
        await conn.execute(f"PREPARE TRANSACTION '{gid}'")
        later = await prepared_store.append("Order-1", [NewEvent("Placed", {})])
        assert await _positions(prepared_store) == []
        await conn.execute(f"COMMIT PREPARED '{gid}'")
        assert await _positions(prepared_store) == [position, later.position]
    finally:
        with contextlib.suppress(asyncpg.PostgresError):
            await conn.execute(f"ROLLBACK PREPARED '{gid}'")
        await conn.close()
