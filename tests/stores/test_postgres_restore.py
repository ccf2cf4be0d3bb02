"""A logical dump restored into a new PostgreSQL cluster keeps its order, and new
events sort after the restored ones although the new cluster's transaction ids
start again from the beginning."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg
import pytest

from eventledger import NewEvent, OperationalError, open_store
from tests.postgres_urls import with_settings

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # pgserver's platformdirs warns about XDG_RUNTIME_DIR
    from pgserver._commands import POSTGRES_BIN_PATH
    from pgserver.postgres_server import get_server


@contextmanager
def _fresh_cluster() -> Iterator[str]:
    """A brand-new PostgreSQL cluster: its transaction ids start near 700."""
    with tempfile.TemporaryDirectory(prefix="el-restore-") as folder:
        server = get_server(Path(folder) / "pg", cleanup_mode="stop")
        try:
            yield server.get_uri()
        finally:
            server.cleanup()


@pytest.fixture
def two_fresh_clusters() -> Iterator[tuple[str, str]]:
    # Both sides are vanilla clusters from pgserver, so the dump holds nothing
    # specific to whatever server EVENTLEDGER_TEST_DATABASE_URL names.
    with _fresh_cluster() as source, _fresh_cluster() as target:
        yield source, target


async def _burn_transaction_ids(url: str, count: int) -> None:
    """Use up transaction ids, as a long-lived cluster would have (one subtransaction each)."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("CREATE TEMP TABLE burn (n integer)")
        await conn.execute(
            "DO $$ BEGIN FOR i IN 1.." + str(count) + " LOOP"
            " BEGIN INSERT INTO burn VALUES (i); EXCEPTION WHEN OTHERS THEN NULL; END;"
            " END LOOP; END $$"
        )
    finally:
        await conn.close()


def _run(tool: str, *args: str) -> None:
    command = [str(POSTGRES_BIN_PATH / tool), *args]
    done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    assert done.returncode == 0, f"{tool} failed ({done.returncode}): {done.stderr}"


async def test_order_survives_a_dump_restored_into_a_new_cluster(
    two_fresh_clusters: tuple[str, str], tmp_path: Path
) -> None:
    source_dsn, fresh_cluster = two_fresh_clusters
    schema = "restored_log"
    await _burn_transaction_ids(source_dsn, 20_000)
    source = await open_store(with_settings(source_dsn, schema=schema))
    try:
        for n in range(30):
            await source.append(f"Order-{n % 4}", [NewEvent("Placed", {"n": n})])
        before = [e async for e in source.read_all()]
    finally:
        await source.close()

    dump = tmp_path / "dump.sql"
    _run("pg_dump", "--no-owner", f"--schema={schema}", f"--file={dump}", source_dsn)
    _run("psql", "--quiet", "-v", "ON_ERROR_STOP=1", f"--file={dump}", fresh_cluster)

    # The situation the store must repair: the new cluster's transaction ids are far
    # behind the restored positions.
    conn = await asyncpg.connect(fresh_cluster)
    try:
        xid = await conn.fetchval("SELECT pg_current_xact_id()::text::bigint")
    finally:
        await conn.close()
    assert xid << 20 < before[0].position

    restored = await open_store(with_settings(fresh_cluster, schema=schema))
    try:
        after = [e async for e in restored.read_all()]
        assert [(e.id, e.position) for e in after] == [(e.id, e.position) for e in before]
        assert await restored.head_position() == before[-1].position

        new_ids = []
        for n in range(5):
            event = NewEvent("Placed", {"n": 100 + n}, id=uuid.uuid4())
            new_ids.append(event.id)
            result = await restored.append(f"Order-{n}", [event])
            assert result.position > before[-1].position
        tail = [e async for e in restored.read_all(after=before[-1].position)]
        assert [e.id for e in tail] == new_ids
        everything = [e.position async for e in restored.read_all()]
        assert everything == sorted(set(everything))
        assert (await restored.append("Order-0", [NewEvent("Paid", {})])).version == 10
    finally:
        await restored.close()

    # Opening again changes nothing more: the repair happens once.
    again = await open_store(with_settings(fresh_cluster, schema=schema))
    try:
        assert len([e async for e in again.read_all()]) == 36
    finally:
        await again.close()


async def test_a_process_that_stays_up_across_a_restore_appends_after_the_restored_head(
    tmp_path: Path,
) -> None:
    """The cluster behind the store's URL is replaced by a fresh one holding a dump of
    the log; the open store reconnects, and its new events land above the restored ones,
    where a follower that passed the restored head finds them."""
    pgdata = tmp_path / "pg"
    schema = "stays_up"
    server = get_server(pgdata, cleanup_mode="stop")
    url = server.get_uri()
    dump = tmp_path / "dump.sql"
    try:
        await _burn_transaction_ids(url, 20_000)
        store = await open_store(with_settings(url, schema=schema, pool_max_size="2"))
        try:
            for n in range(10):
                await store.append(f"Order-{n}", [NewEvent("Placed", {"n": n})])
            checkpoint = await store.head_position()  # a follower got this far
            _run("pg_dump", "--no-owner", f"--schema={schema}", f"--file={dump}", url)
            # The same address, a new cluster: its transaction ids start again.
            server.cleanup()
            shutil.rmtree(pgdata)
            server = get_server(pgdata, cleanup_mode="stop")
            assert server.get_uri() == url
            _run("psql", "--quiet", "-v", "ON_ERROR_STOP=1", f"--file={dump}", url)
            # The store's old connections are gone; the next call opens new ones, and
            # the first of them repairs the positions before any append runs.
            appended = None
            for _ in range(3):  # a call may meet one dead connection first
                try:
                    appended = await store.append("Order-new", [NewEvent("Placed", {})])
                    break
                except OperationalError:
                    continue
            assert appended is not None
            assert appended.position > checkpoint
            tail = [e async for e in store.read_all(after=checkpoint)]
            assert [e.stream_id for e in tail] == ["Order-new"]
        finally:
            await store.close()
    finally:
        server.cleanup()
