"""A PostgreSQL store opened read-only runs no DDL and writes nothing (for a standby)."""

from __future__ import annotations

import asyncpg
import pytest

from eventledger import InvalidInput, NewEvent, SchemaVersionError, Snapshot, open_store
from eventledger.stores.postgres import split_url
from tests.postgres_urls import with_settings

pytestmark = pytest.mark.postgres


async def test_a_read_only_store_reads_and_refuses_every_write(postgres_schema_url: str) -> None:
    async with await open_store(postgres_schema_url) as writer:
        await writer.append("Order-1", [NewEvent("Placed", {"n": 1})])
    reader = await open_store(with_settings(postgres_schema_url, read_only="true"))
    try:
        assert [e.type async for e in reader.read_all()] == ["Placed"]
        assert [e.data async for e in reader.read_stream("Order-1")] == [{"n": 1}]
        with pytest.raises(InvalidInput, match="read-only"):
            await reader.append("Order-1", [NewEvent("Paid", {})])
        with pytest.raises(InvalidInput, match="read-only"):
            reader.transaction()
        with pytest.raises(InvalidInput, match="read-only"):
            await reader.save_snapshot(Snapshot("Order-1", 1, "Order", "f", {}))
    finally:
        await reader.close()


async def test_opening_read_only_creates_nothing_and_says_why_it_cannot(
    postgres_schema_url: str,
) -> None:
    with pytest.raises(SchemaVersionError, match="read-only store does not migrate"):
        await open_store(with_settings(postgres_schema_url, read_only="true"))
    dsn, settings = split_url(postgres_schema_url)
    conn = await asyncpg.connect(dsn)
    try:
        exists = await conn.fetchval(
            "SELECT count(*) FROM pg_namespace WHERE nspname = $1", settings["schema"]
        )
    finally:
        await conn.close()
    assert exists == 0
