"""`eventledger retention apply`, run as a real program on SQLite and PostgreSQL: a dry
run changes nothing, a run deletes what the policy no longer keeps and says so per
stream, a bad policy is one clear line."""

from __future__ import annotations

import asyncio
import json

from eventledger import NewEvent, open_store
from eventledger.retention import RETENTION_STREAM, STREAM_TRUNCATED
from tests.cli.conftest import Cli, table


async def fill(url: str) -> None:
    async with await open_store(url) as store:
        for stream_id, count in (("Reading-1", 5), ("Reading-2", 2), ("Order-1", 5)):
            for n in range(count):
                await store.append(stream_id, [NewEvent("Measured", {"n": n})])


async def versions(url: str, stream_id: str) -> list[int]:
    async with await open_store(url) as store:
        return [e.version async for e in store.read_stream(stream_id)]


async def tombstones(url: str) -> list[tuple[str, str]]:
    async with await open_store(url) as store:
        return [(e.type, e.data["stream_id"]) async for e in store.read_stream(RETENTION_STREAM)]


async def test_retention_apply_dry_run_then_deletes_and_prints_each_stream(
    cli: Cli, store_url: str
) -> None:
    await fill(store_url)
    args = ("retention", "apply", "--category", "Reading", "--max-count", "3")
    planned = await asyncio.to_thread(cli.ok, *args, "--dry-run", "--store", store_url)
    assert table(planned.out) == [
        {"stream_id": "Reading-1", "category": "Reading", "before_version": "3",
         "would_delete": "2"},
    ]  # fmt: skip
    assert "2 events in 1 streams would be deleted" in planned.err
    assert await versions(store_url, "Reading-1") == [1, 2, 3, 4, 5]

    done = await asyncio.to_thread(cli.ok, *args, "--store", store_url, "--json")
    assert json.loads(done.out) == [
        {"stream_id": "Reading-1", "category": "Reading", "before_version": 3, "deleted": 2}
    ]
    assert await versions(store_url, "Reading-1") == [3, 4, 5]
    assert await versions(store_url, "Order-1") == [1, 2, 3, 4, 5]
    assert await tombstones(store_url) == [(STREAM_TRUNCATED, "Reading-1")]
    again = await asyncio.to_thread(cli.ok, *args, "--store", store_url, "--json")
    assert json.loads(again.out) == []


async def test_retention_apply_refuses_a_policy_without_limits(cli: Cli, store_url: str) -> None:
    await fill(store_url)
    line = await asyncio.to_thread(
        cli.fails, "retention", "apply", "--category", "Reading", "--store", store_url
    )
    assert line == "error: a retention policy for 'Reading' needs max_age, max_count or both"
    bad_age = await asyncio.to_thread(
        cli.fails,
        "retention", "apply", "--category", "Reading", "--max-age", "soon",
        "--store", store_url,
    )  # fmt: skip
    assert "a duration is a number and a unit" in bad_age
