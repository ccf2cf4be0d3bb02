"""Redis down, then back: every answer stays right, queries go to the database without
waiting on Redis, one warning says so, the metrics count it, and the cache serves again
when Redis answers. A Redis that freezes with its data (SIGSTOP) and thaws serves
nothing of before a commit made meanwhile."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from eventledger import Application, NewEvent, open_store
from eventledger.cache import CachedDocumentQueries, QueryCache
from eventledger.examples.orders.commands import handlers
from eventledger.examples.orders.domain import Order
from eventledger.examples.orders.read_models import OrderList
from eventledger.examples.orders.stock import StockItem
from eventledger.http import ApiKeys, create_app
from eventledger.projections import ProjectionRunner
from tests.cache.accounts import Accounts
from tests.cache.conftest import Counting
from tests.cache.redis_server import RedisServer, unique_prefix
from tests.cache.test_consistency import active
from tests.http.conftest import Api, serve
from tests.http.test_api import place
from tests.http.test_metrics import parse, value

pytestmark = pytest.mark.postgres

WARNING = "the query cache at"


@asynccontextmanager
async def orders_api(store_url: str, cache: str) -> AsyncIterator[Api]:
    """The Orders application served with `cache`, and its keys."""
    store = await open_store(store_url)
    keys = ApiKeys(store)
    _, admin = await keys.create("user:root", ["read", "write", "admin"])
    _, writer = await keys.create("service:shop", ["read", "write"])
    _, reader = await keys.create("user:auditor", ["read"])
    application = Application(  # no fulfilment process: statuses move only when told
        "orders", commands=handlers, aggregates=[Order, StockItem], projections=[OrderList]
    )
    app = create_app(application, store_url, cache=cache, rate_limits=None)
    try:
        async with serve(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as client:
            yield Api(url, client, store, keys, admin, writer, reader)
    finally:
        await store.close()


async def lookups(api: Api, outcome: str) -> float:
    answer = await api.get("/metrics", key=api.admin)
    assert answer.status_code == 200, answer.text
    samples = parse(answer.text)
    if outcome == "errors":
        return sum(
            v for (name, _), v in samples.items() if name == "eventledger_query_cache_errors_total"
        )
    return value(
        samples, "eventledger_query_cache_lookups_total", read_model="order_list", outcome=outcome
    )


async def order(api: Api, order_id: str) -> dict[str, Any]:
    answer = await api.get(f"/read-models/order_list/documents/{order_id}")
    assert answer.status_code == 200, answer.text
    doc: dict[str, Any] = answer.json()
    return doc


async def until_served(api: Api, order_id: str, status: str, within: float = 15) -> None:
    """Read until a hit is counted; every answer on the way must be right."""
    deadline = time.monotonic() + within
    hits = await lookups(api, "hit")
    while True:
        assert (await order(api, order_id))["status"] == status
        if await lookups(api, "hit") > hits:
            return
        assert time.monotonic() < deadline, "the cache never served again"
        await asyncio.sleep(0.05)


async def test_redis_down_then_back_answers_stay_right_one_warning_and_counted(
    shared_store_url: str, throwaway_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="eventledger.cache")
    url = f"{throwaway_redis.url}?prefix={unique_prefix()}"
    async with orders_api(shared_store_url, url) as api:
        assert (await api.post("/commands/AddStock", {"sku": "BOOK", "quantity": 1000})).is_success
        placed = await api.post("/commands/PlaceOrder?wait=order_list", place("o-0"))
        assert placed.json()["caught_up"] is True
        await until_served(api, "o-0", "created")

        throwaway_redis.stop()
        slowest = 0.0
        for n in range(1, 21):
            answer = await api.post("/commands/PlaceOrder?wait=order_list", place(f"o-{n}"))
            assert answer.json()["caught_up"] is True, answer.text
            started = time.monotonic()
            assert (await order(api, f"o-{n}"))["status"] == "created"
            assert (await order(api, "o-0"))["status"] == "created"
            slowest = max(slowest, time.monotonic() - started)
            paid = await api.post(
                "/commands/PayOrder?wait=order_list",
                {"order_id": f"o-{n}", "amount": "25.00", "payment_id": f"p-{n}"},
            )
            assert paid.json()["caught_up"] is True, paid.text
            assert (await order(api, f"o-{n}"))["status"] == "paid"
        assert slowest < 1.0, f"a read took {slowest:.2f} s while Redis was down"
        assert await lookups(api, "unavailable") > 0
        assert await lookups(api, "errors") > 0
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len([r for r in warnings if WARNING in r.getMessage()]) == 1, warnings

        throwaway_redis.start()
        await until_served(api, "o-20", "paid")
        cancelled = await api.post(
            "/commands/CancelOrder?wait=order_list", {"order_id": "o-20", "reason": "test"}
        )
        assert cancelled.json()["caught_up"] is True, cancelled.text
        assert (await order(api, "o-20"))["status"] == "cancelled"
        await until_served(api, "o-20", "cancelled")
    assert any("answers again" in r.getMessage() for r in caplog.records)


async def test_a_frozen_redis_that_thaws_serves_nothing_older_than_a_commit_made_meanwhile(
    shared_store_url: str, throwaway_redis: RedisServer, counted: Counting
) -> None:
    prefix = unique_prefix()
    stores = [await open_store(shared_store_url) for _ in range(2)]
    caches = [QueryCache(throwaway_redis.url, prefix=prefix) for _ in range(2)]
    runner = ProjectionRunner(stores[0], [Accounts()], cache=caches[0], poll_interval=0.05)
    reader = ProjectionRunner(stores[1], [Accounts()], cache=caches[1]).documents("accounts")
    assert isinstance(reader, CachedDocumentQueries)
    await runner.start()
    try:
        await active(runner)
        done = await stores[0].append("Account-f", [NewEvent("Opened", {"owner": "fay"})])
        await runner.wait_until("accounts", done.position)
        await until_hit(reader, counted, balance=0)

        throwaway_redis.pause()
        started = time.monotonic()
        done = await stores[0].append("Account-f", [NewEvent("Deposited", {"amount": 5})])
        await runner.wait_until("accounts", done.position, timeout=30)
        committed = time.monotonic() - started
        throwaway_redis.resume()
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:  # never the entry from before the commit
            assert (await reader.get("f"))["balance"] == 5  # type: ignore[index]
            await asyncio.sleep(0.01)
        # The runner could not mark the change: it waited out the window it had asked for.
        assert committed >= caches[0].window
        await until_hit(reader, counted, balance=5)
    finally:
        throwaway_redis.resume()
        await runner.stop()
        for cache in caches:
            await cache.close()
        for store in stores:
            await store.close()


async def until_hit(reader: CachedDocumentQueries, counted: Counting, balance: int) -> None:
    deadline = time.monotonic() + 15
    while True:
        hits = counted.outcomes["hit"]
        assert (await reader.get("f"))["balance"] == balance  # type: ignore[index]
        if counted.outcomes["hit"] > hits:
            return
        assert time.monotonic() < deadline, dict(counted.outcomes)
        await asyncio.sleep(0.02)
