"""`eventledger retention apply`, run as a real program on SQLite and PostgreSQL: a dry
run changes nothing, a run deletes what the policy no longer keeps and says so per
stream, a bad policy is one clear line."""

from __future__ import annotations

import asyncio
import json

import httpx

from eventledger import NewEvent, open_store
from eventledger.retention import RETENTION_STREAM, STREAM_TRUNCATED
from tests.cli.conftest import DEMO_APP, Cli, spawn, stop, table
from tests.cli.test_demo import free_port, serving, until


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


READINGS_APP = """
from eventledger import Application
from eventledger.retention import RetentionPolicy

application = Application(
    "readings",
    retention=[RetentionPolicy("Reading", max_count=4), RetentionPolicy("Order", max_count=1)],
)
"""


async def test_retention_apply_takes_the_policies_of_the_application_and_the_toml_file(
    cli: Cli, store_url: str
) -> None:
    await fill(store_url)
    (cli.folder / "readings.py").write_text(READINGS_APP)
    # The file's policy takes the place of the application's for Reading.
    (cli.folder / "eventledger.toml").write_text("[retention.Reading]\nmax_count = 3\n")
    done = await asyncio.to_thread(
        cli.ok, "retention", "apply", "--app", "readings:application", "--store", store_url,
        "--json",
    )  # fmt: skip
    assert json.loads(done.out) == [
        {"stream_id": "Reading-1", "category": "Reading", "before_version": 3, "deleted": 2},
        {"stream_id": "Order-1", "category": "Order", "before_version": 5, "deleted": 4},
    ]
    assert await versions(store_url, "Reading-1") == [3, 4, 5]

    (cli.folder / "eventledger.toml").write_text("[retention.Reading]\nmax_age = 30\n")
    line = await asyncio.to_thread(cli.fails, "retention", "apply", "--store", store_url)
    assert line == (
        'error: eventledger.toml: [retention.Reading]: max_age is a duration in quotes ("30d"),'
        " not 30"
    )
    (cli.folder / "eventledger.toml").write_text("[retention.Reading]\nmax_size = 3\n")
    line = await asyncio.to_thread(cli.fails, "retention", "apply", "--store", store_url)
    assert line == (
        "error: eventledger.toml: [retention.Reading] sets ['max_size']; it takes max_age and"
        " max_count"
    )
    (cli.folder / "eventledger.toml").unlink()
    line = await asyncio.to_thread(cli.fails, "retention", "apply", "--store", store_url)
    assert line.startswith("error: no retention policies: give --category with --max-age")
    line = await asyncio.to_thread(
        cli.fails, "retention", "apply", "--max-count", "2", "--store", store_url
    )
    assert line == "error: --max-age and --max-count need --category (the streams they cover)"


async def test_serve_applies_the_retention_policies_every_period(cli: Cli, store_url: str) -> None:
    await fill(store_url)
    (cli.folder / "readings.py").write_text(READINGS_APP)
    line = await asyncio.to_thread(
        cli.fails, "serve", DEMO_APP, "--store", store_url, "--retention-every", "1h",
    )  # fmt: skip
    assert line.startswith(f"error: --retention-every 1h: {DEMO_APP} has no retention policies")
    (cli.folder / "eventledger.toml").write_text("[retention.Reading]\nmax_count = 2\n")
    line = await asyncio.to_thread(
        cli.fails, "serve", "readings:application", "--store", store_url,
        "--retention-every", "0s",
    )  # fmt: skip
    assert line == "error: --retention-every is at least 1s, not 0s"

    port = free_port()
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        process = await spawn(
            cli, "serve", "readings:application", "--store", store_url, "--port", str(port),
            "--retention-every", "1s", "--no-projections",
        )  # fmt: skip
        try:
            await serving(process, client)

            async def trimmed() -> bool:
                return await versions(store_url, "Reading-1") == [4, 5]

            await until(trimmed, "the server applies the file's policy to Reading-1")
            assert await versions(store_url, "Order-1") == [5]
        finally:
            await stop(process)
