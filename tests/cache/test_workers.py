"""Several server processes share one Redis: what one writes (and waits for), any other
answers at once, cached or not. Two apps in this process, then ``eventledger serve
--workers 2 --cache`` as a real program."""

from __future__ import annotations

import asyncio
import json
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import pytest

from eventledger import open_store
from eventledger.http import ApiKeys, create_app
from tests.cache.redis_server import delete_prefix, unique_prefix
from tests.cache.test_outage import lookups, order
from tests.cli.conftest import ORDERS_APP, Cli, spawn, stop
from tests.cli.test_demo import free_port, interrupt, serving
from tests.http.conftest import Api, orders_application, serve
from tests.http.test_api import place

pytestmark = pytest.mark.postgres


async def test_what_one_app_writes_the_other_answers_at_once_through_the_shared_cache(
    shared_store_url: str, redis_url: str, prefix: str
) -> None:
    cache = f"{redis_url}?prefix={prefix}"
    store = await open_store(shared_store_url)
    keys = ApiKeys(store)
    _, admin = await keys.create("user:root", ["read", "write", "admin"])
    _, writer = await keys.create("service:shop", ["read", "write"])
    apis: list[Api] = []
    async with AsyncExitStack() as stack:
        for _ in range(2):
            app = create_app(orders_application(), shared_store_url, cache=cache, rate_limits=None)
            url = await stack.enter_async_context(serve(app))
            client = await stack.enter_async_context(httpx.AsyncClient(base_url=url, timeout=30))
            apis.append(Api(url, client, store, keys, admin, writer, writer))
        first, second = apis
        assert (
            await first.post("/commands/AddStock", {"sku": "BOOK", "quantity": 1000})
        ).is_success
        for n in range(15):
            writing, reading = (first, second) if n % 2 else (second, first)
            placed = await writing.post("/commands/PlaceOrder?wait=order_list", place(f"w-{n}"))
            assert placed.json()["caught_up"] is True, placed.text
            for _ in range(3):  # kept by one, served by both
                for api in apis:
                    assert (await order(api, f"w-{n}"))["status"] == "created"
            cancelled = await reading.post(
                "/commands/CancelOrder?wait=order_list", {"order_id": f"w-{n}", "reason": "no"}
            )
            assert cancelled.json()["caught_up"] is True, cancelled.text
            for _ in range(3):  # what was cached before the cancel is never served after it
                for api in apis:
                    assert (await order(api, f"w-{n}"))["status"] == "cancelled"
            listed = await writing.get("/read-models/order_list/documents?status=cancelled")
            assert listed.json()["total"] == n + 1
        assert await lookups(first, "hit") > 0
    await store.close()


async def test_serve_with_workers_and_a_cache_answers_every_read_with_the_latest_write(
    tmp_path: Path, redis_url: str
) -> None:
    folder = tmp_path / "here"
    folder.mkdir()
    cli = Cli(folder)
    store = f"sqlite:///{tmp_path}/served.db"
    made = json.loads(
        cli.ok("keys", "create", "user:root", "--scope", "admin", "--scope", "write",
               "--scope", "read", "--json", "--store", store).out
    )  # fmt: skip
    headers = {"Authorization": f"Bearer {made['key']}"}
    port = free_port()
    prefix = unique_prefix()
    cache = f"{redis_url}?prefix={prefix}"
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", timeout=30, headers=headers
    ) as client:
        process = await spawn(
            cli, "serve", ORDERS_APP, "--store", store, "--port", str(port),
            "--workers", "2", "--cache", cache,
        )  # fmt: skip
        try:
            await serving(process, client)
            stocked = await client.post("/commands/AddStock", json={"sku": "BOOK", "quantity": 99})
            assert stocked.status_code == 200, stocked.text
            for n in range(5):
                placed = await client.post(
                    "/commands/PlaceOrder?wait=order_list", json=place(f"s-{n}")
                )
                assert placed.json()["caught_up"] is True, placed.text
                cancelled = await client.post(
                    "/commands/CancelOrder?wait=order_list",
                    json={"order_id": f"s-{n}", "reason": "changed my mind"},
                )
                assert cancelled.json()["caught_up"] is True, cancelled.text
                answers = await asyncio.gather(
                    *(client.get(f"/read-models/order_list/documents/s-{n}") for _ in range(20))
                )
                assert {a.json()["status"] for a in answers} == {"cancelled"}
            metrics = (await client.get("/metrics")).text
            hits = [
                line
                for line in metrics.splitlines()
                if line.startswith("eventledger_query_cache_lookups_total")
                and 'outcome="hit"' in line
            ]
            assert hits, metrics
            assert sum(float(line.rsplit(" ", 1)[1]) for line in hits) > 0, metrics
            _, err, _ = await interrupt(process)
        finally:
            await stop(process)
            delete_prefix(redis_url, prefix)
    assert "Traceback" not in err, err


async def test_serve_refuses_a_cache_that_is_no_redis_url_in_one_line(tmp_path: Path) -> None:
    cli = Cli(tmp_path)
    line = await asyncio.to_thread(
        cli.fails, "serve", ORDERS_APP, "--store", "memory://", "--cache", "http://x"
    )
    assert line.startswith("error: the query cache is a Redis URL (redis://host:6379/0"), line
