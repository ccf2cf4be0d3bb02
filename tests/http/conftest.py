"""A real server (uvicorn on a loopback port) with the Orders application, and keys."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
import pytest_asyncio
import uvicorn
from fastapi import FastAPI

from eventledger import Application, EventStore, open_store
from eventledger.examples.orders.commands import handlers
from eventledger.examples.orders.domain import Order, OrderCreated
from eventledger.examples.orders.fulfilment import OrderFulfilment
from eventledger.examples.orders.read_models import (
    CustomerOrders,
    DailySales,
    OrderList,
)
from eventledger.examples.orders.stock import StockItem
from eventledger.http import ApiKeys, create_app
from eventledger.projections import Context, DocumentProjection, RetryPolicy, on


class Fragile(DocumentProjection):
    """Fails on orders of the customer 'mallory' while `broken` (for the dead letters)."""

    name = "fragile"
    categories = ("Order",)
    retry = RetryPolicy(max_attempts=2, initial_delay=0.001, max_delay=0.01)
    broken: ClassVar[bool] = True

    @on
    async def created(self, event: OrderCreated, context: Context) -> None:
        if event.customer_id == "mallory" and type(self).broken:
            raise ValueError("mallory's orders break this read model")
        assert context.docs is not None
        await context.docs.put(context.aggregate_id, {"customer_id": event.customer_id})


def orders_application(*extra: Any) -> Application:
    return Application(
        "orders",
        commands=handlers,
        aggregates=[Order, StockItem],
        projections=[OrderList, CustomerOrders, DailySales, OrderFulfilment, *extra],
    )


@asynccontextmanager
async def serve(app: FastAPI) -> AsyncIterator[str]:
    """Serve `app` with uvicorn on a free loopback port; yields its base URL."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.ensure_future(server.serve())
    while not server.started:
        if task.done():
            task.result()  # the server failed to start: say why
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)


@dataclass
class Api:
    url: str
    client: httpx.AsyncClient
    store: EventStore
    keys: ApiKeys
    admin: str
    writer: str
    reader: str

    @staticmethod
    def auth(key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}

    async def post(self, path: str, body: Any = None, key: str | None = None, **kw: Any) -> Any:
        headers = {**self.auth(key or self.writer), **kw.pop("headers", {})}
        return await self.client.post(path, json=body, headers=headers, **kw)

    async def get(self, path: str, key: str | None = None, **kw: Any) -> Any:
        headers = {**self.auth(key or self.reader), **kw.pop("headers", {})}
        return await self.client.get(path, headers=headers, **kw)


@pytest.fixture(params=["sqlite", "postgres"])
def server_store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/events.db"
    url: str = request.getfixturevalue("postgres_schema_url")
    return url


@pytest_asyncio.fixture
async def api(server_store_url: str) -> AsyncIterator[Api]:
    Fragile.broken = True
    store = await open_store(server_store_url)
    keys = ApiKeys(store)
    _, admin = await keys.create("user:root", ["read", "write", "admin"])
    _, writer = await keys.create("service:shop", ["read", "write"])
    _, reader = await keys.create("user:auditor", ["read"])
    app = create_app(orders_application(Fragile), server_store_url, keepalive_seconds=0.3)
    async with serve(app) as url, httpx.AsyncClient(base_url=url, timeout=20) as client:
        yield Api(url, client, store, keys, admin, writer, reader)
    await store.close()
