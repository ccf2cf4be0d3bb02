"""The PostgreSQL store's connection pool under load, broken connections and cancellation."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import asyncpg
import pytest

from eventledger import (
    Command,
    CommandBus,
    CommandContext,
    CommandHandlers,
    NewEvent,
    OperationalError,
    open_store,
)
from eventledger.stores.postgres import split_url
from tests.postgres_urls import with_settings
from tests.test_commands import Account, registry


async def test_more_concurrent_calls_than_connections_all_complete(
    postgres_schema_url: str,
) -> None:
    store = await open_store(with_settings(postgres_schema_url, pool_max_size="2"))
    try:
        results = await asyncio.gather(
            *(store.append(f"Order-{n}", [NewEvent("Placed", {})]) for n in range(40))
        )
        assert all(r.version == 1 for r in results)
        assert len([e async for e in store.read_all()]) == 40
    finally:
        await store.close()


async def test_the_store_recovers_after_its_connections_are_killed(
    postgres_schema_url: str,
) -> None:
    name = f"el-kill-{uuid.uuid4().hex[:8]}"
    store = await open_store(with_settings(postgres_schema_url, application_name=name))
    admin = await asyncpg.connect(split_url(postgres_schema_url)[0])
    try:
        await store.append("Order-1", [NewEvent("Placed", {})])
        killed = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE application_name = $1",
            name,
        )
        assert killed >= 1
        failures = 0
        for _ in range(5):
            try:
                await store.append("Order-1", [NewEvent("Placed", {})])
                break
            except OperationalError:
                failures += 1  # the call that meets the dead connection fails cleanly
        assert failures == 0  # the append went again on a fresh connection
        assert await store.stream_version("Order-1") == 2
    finally:
        await admin.close()
        await store.close()


async def test_cancelled_calls_leave_the_pool_usable(postgres_schema_url: str) -> None:
    store = await open_store(with_settings(postgres_schema_url, pool_max_size="3"))
    try:
        for n in range(30):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    store.append(f"Order-{n}", [NewEvent("Placed", {})]), timeout=0.0005
                )
        results = await asyncio.gather(
            *(store.append(f"Later-{n}", [NewEvent("Placed", {})]) for n in range(10))
        )
        assert [r.version for r in results] == [1] * 10
        # Whatever was cancelled was either written whole or not at all.
        for n in range(30):
            assert await store.stream_version(f"Order-{n}") in (0, 1)
    finally:
        await store.close()


async def test_a_closed_store_fails_calls_that_wait_for_a_connection(
    postgres_schema_url: str,
) -> None:
    store = await open_store(with_settings(postgres_schema_url, pool_max_size="1"))
    calls = [
        asyncio.ensure_future(store.append(f"Order-{n}", [NewEvent("Placed", {})]))
        for n in range(5)
    ]
    await asyncio.sleep(0)
    await store.close()
    outcomes = await asyncio.gather(*calls, return_exceptions=True)
    for outcome in outcomes:
        assert not isinstance(outcome, BaseException) or isinstance(outcome, OperationalError), (
            repr(outcome)
        )


@pytest.mark.parametrize("size", ["0", "-1"])
async def test_a_pool_needs_at_least_one_connection(postgres_url: str, size: str) -> None:
    with pytest.raises(ValueError, match="pool sizes"):
        await open_store(with_settings(postgres_url, pool_min_size=size))


async def test_waiting_for_a_connection_has_a_time_limit_that_names_the_pool(
    postgres_schema_url: str,
) -> None:
    url = with_settings(postgres_schema_url, pool_max_size="1", pool_timeout="0.2")
    store = await open_store(url)
    hold = asyncio.Event()
    holding = asyncio.Event()

    async def keep_the_only_connection() -> None:
        async with store.transaction() as tx:
            await tx.append("Order-1", [NewEvent("Placed", {})])
            holding.set()
            await hold.wait()

    task = asyncio.ensure_future(keep_the_only_connection())
    try:
        await holding.wait()
        with pytest.raises(OperationalError, match=r"within 0.2 s: all 1 of the pool are busy"):
            await store.append("Order-2", [NewEvent("Placed", {})])
    finally:
        hold.set()
        await task
        await store.close()


async def test_the_stores_sessions_carry_its_timeouts_and_name(postgres_schema_url: str) -> None:
    url = with_settings(
        postgres_schema_url,
        statement_timeout="7",
        lock_timeout="3",
        idle_in_transaction_timeout="11",
        application_name="el-settings",
    )
    store = await open_store(url)
    try:
        rows = await store.fetch(
            "SELECT current_setting('statement_timeout'), current_setting('lock_timeout'),"
            " current_setting('idle_in_transaction_session_timeout'),"
            " current_setting('application_name')"
        )
        assert tuple(rows[0]) == ("7s", "3s", "11s", "el-settings")
    finally:
        await store.close()


async def test_sql_run_in_a_transaction_does_not_follow_the_connection_back(
    postgres_schema_url: str,
) -> None:
    store = await open_store(with_settings(postgres_schema_url, pool_max_size="1"))
    try:
        async with store.transaction() as tx:
            await tx.execute("SET search_path TO pg_catalog")  # a session setting
            await tx.execute("SELECT pg_advisory_lock(4242)")  # a session lock
        rows = await store.fetch(
            "SELECT current_setting('search_path'),"
            " (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
            "  AND pid = pg_backend_pid())"
        )
        assert rows[0][0] != "pg_catalog"
        assert rows[0][1] == 0
    finally:
        await store.close()


async def test_the_stores_own_statements_need_no_session_reset(
    postgres_schema_url: str,
) -> None:
    # A command's record and a projection's checkpoint are the store's own SQL: they
    # leave the session as they found it, so the COMMIT goes without RESET ALL and the
    # rest; SQL of one's own in the same transaction still brings the reset back.
    from eventledger.storage import CommandRecord

    store = await open_store(with_settings(postgres_schema_url, pool_max_size="1"))
    try:
        async with store.transaction() as tx:
            await tx.append("Order-r1", [NewEvent("Placed", {})])
            record = CommandRecord(uuid.uuid4(), "Place", None, "h", {}, "c", "c", None, {})
            await store.command_log().record(tx, record)
            await store.read_side().set_checkpoint(tx, "counts", 1)
            assert (tx.statements, tx.statements_of_others) == (2, 0)
            await tx.execute("SET search_path TO pg_catalog")
            assert (tx.statements, tx.statements_of_others) == (3, 1)
        rows = await store.fetch("SELECT current_setting('search_path')")
        assert rows[0][0] != "pg_catalog"
    finally:
        await store.close()


@pytest.mark.parametrize(
    ("setting", "value"),
    [("pool_timeout", "0"), ("statement_timeout", "-1"), ("lock_timeout", "soon"),
     ("read_only", "maybe")],
)  # fmt: skip
async def test_bad_settings_are_refused_naming_them(
    postgres_url: str, setting: str, value: str
) -> None:
    with pytest.raises(ValueError, match=setting):
        await open_store(with_settings(postgres_url, **{setting: value}))


class OpenAccount(Command):
    account_id: str


opening = CommandHandlers()


@opening.handler
async def open_account(command: OpenAccount, context: CommandContext) -> None:
    account = Account(id=command.account_id)  # a new aggregate: nothing is read first
    account.deposit(1)
    context.add(account)


async def test_a_command_whose_connection_dies_mid_statement_goes_again_on_a_fresh_one(
    postgres_schema_url: str,
) -> None:
    # A command's events and record are one statement. Its connection killed while the
    # statement runs (a failover, an administrator) must not fail the command or write
    # it twice: the statement went nowhere, so it runs again on another connection.
    name = f"el-kill-{uuid.uuid4().hex[:8]}"
    schema = split_url(postgres_schema_url)[1]["schema"]
    store = await open_store(with_settings(postgres_schema_url, application_name=name))
    bus = CommandBus(store, opening, registry=registry)
    admin = await asyncpg.connect(split_url(postgres_schema_url)[0])
    try:
        await bus.send(OpenAccount(account_id="a-0"))  # the schema exists now
        # The next insert into the log sleeps, once (a sequence is not rolled back).
        await admin.execute(
            f"""
            CREATE SEQUENCE "{schema}".slow_once;
            CREATE FUNCTION "{schema}".slow_once() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF nextval('"{schema}".slow_once') = 1 THEN PERFORM pg_sleep(30); END IF;
                RETURN NULL;
            END $$;
            CREATE TRIGGER slow_once BEFORE INSERT ON "{schema}".events
                FOR EACH STATEMENT EXECUTE FUNCTION "{schema}".slow_once();
            """
        )
        sending = asyncio.ensure_future(
            bus.send(OpenAccount(account_id="a-1"), idempotency_key="k-1")
        )
        killed = 0
        for _ in range(500):  # at most 5 s
            killed = await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE application_name = $1 AND wait_event = 'PgSleep'",
                name,
            )
            if killed:
                break
            await asyncio.sleep(0.01)
        assert killed == 1
        result = await asyncio.wait_for(sending, 10)
        assert not result.replayed
        assert await store.stream_version("Account-a-1") == 1
        recorded = await store.command_log().by_id(uuid.UUID(result.command_id))
        assert recorded is not None
        assert recorded.result["writes"] == [
            {"stream_id": "Account-a-1", "version": 1, "position": result.position, "events": 1}
        ]
    finally:
        await admin.close()
        await store.close()


async def test_a_lock_timeout_is_an_operational_error_on_every_append_path(
    postgres_schema_url: str,
) -> None:
    # Another session holds the log (a migration, an administrator's LOCK): a plain
    # append, an append in a transaction and a command's one statement all give up
    # after lock_timeout with OperationalError (a 503 over HTTP), writing nothing.
    store = await open_store(with_settings(postgres_schema_url, lock_timeout="1"))
    schema = split_url(postgres_schema_url)[1]["schema"]
    bus = CommandBus(store, opening, registry=registry)
    admin = await asyncpg.connect(split_url(postgres_schema_url)[0])
    try:
        await store.append("Warm-1", [NewEvent("Placed", {})])  # the schema exists now
        await admin.execute("BEGIN")
        await admin.execute(f'LOCK TABLE "{schema}".events IN SHARE ROW EXCLUSIVE MODE')
        with pytest.raises(OperationalError, match="lock timeout"):
            await store.append("Order-1", [NewEvent("Placed", {})])
        with pytest.raises(OperationalError, match="lock timeout"):
            async with store.transaction() as tx:
                await tx.append("Order-2", [NewEvent("Placed", {})])
        with pytest.raises(OperationalError, match="lock timeout"):
            await bus.send(OpenAccount(account_id="a-1"))
        await admin.execute("ROLLBACK")
        assert [e.stream_id async for e in store.read_all()] == ["Warm-1"]
        assert (await bus.send(OpenAccount(account_id="a-1"))).writes[0].version == 1
    finally:
        await admin.close()
        await store.close()
