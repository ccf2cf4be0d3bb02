"""A primary and a streaming standby on loopback (tests/standby.py), and a real server
(uvicorn on a loopback port) that writes to the primary and reads from the standby."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest

from eventledger import Application, OperationalError, open_store
from eventledger.examples.orders.commands import handlers
from eventledger.examples.orders.domain import Order
from eventledger.examples.orders.read_models import CustomerOrders, DailySales, OrderList
from eventledger.examples.orders.stock import StockItem
from eventledger.http import create_app
from tests import standby
from tests.http.conftest import serve
from tests.postgres_urls import with_settings

READ_FROM = "eventledger-read-from"
FALLBACK = "eventledger-fallback"
MIN_POSITION = "Eventledger-Min-Position"


@pytest.fixture(scope="module")
def clusters() -> Iterator[tuple[standby.Cluster, standby.Cluster]]:
    with standby.primary_and_standby() as pair:
        yield pair


@dataclass
class Served:
    client: httpx.AsyncClient
    primary: standby.Cluster
    replica: standby.Cluster
    schema: str

    async def command(self, name: str, body: dict[str, Any], wait: str | None = None) -> int:
        """Send a command; the position of its answer."""
        path = f"/commands/{name}" + (f"?wait={wait}" if wait else "")
        response = await self.client.post(path, json=body)
        assert response.status_code == 200, response.text
        position: int = response.json()["position"]
        assert READ_FROM not in response.headers  # commands are the primary's
        return position

    async def read(self, path: str, owed: int | None = None, **params: Any) -> httpx.Response:
        headers = {} if owed is None else {MIN_POSITION: str(owed)}
        return await self.client.get(path, headers=headers, params=params)

    async def on_standby(self, sql: str) -> Any:
        conn = await asyncpg.connect(self.replica.url)
        try:
            return await conn.fetchval(sql)
        finally:
            await conn.close()


async def replayed(url: str, timeout: float = 30) -> None:
    """Wait until the standby has replayed the schema the primary made (`url` read-only)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            store = await open_store(with_settings(url, read_only="true"))
        except OperationalError:
            assert loop.time() < deadline, "the standby never showed the schema"
            await asyncio.sleep(0.05)
        else:
            await store.close()
            return


def orders_application() -> Application:
    """The Orders example's commands and read models, without its process (which would
    move orders on while a test looks at them)."""
    return Application(
        "orders",
        commands=handlers,
        aggregates=[Order, StockItem],
        projections=[OrderList, CustomerOrders, DailySales],
    )


@asynccontextmanager
async def served(
    primary: standby.Cluster,
    replica: standby.Cluster,
    *,
    replica_down: bool = False,
    **settings: str,
) -> AsyncIterator[Served]:
    """The Orders application served on the primary (a schema of its own) with the
    standby as its read URL (which names no schema: it takes the primary's); with
    `replica_down`, the standby is stopped before the server starts."""
    schema = f"replica_{uuid.uuid4().hex[:8]}"
    primary_url = with_settings(primary.url, schema=schema)
    store = await open_store(primary_url)  # the schema, made before the server starts
    await store.close()
    await replayed(with_settings(replica.url, schema=schema))
    if replica_down:
        await asyncio.to_thread(replica.stop)
    read_url = with_settings(replica.url, replica_retry_after="0.2", **settings)
    app = create_app(
        orders_application(),
        primary_url,
        allow_anonymous=True,
        rate_limits=None,
        read_url=read_url,
    )
    async with serve(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as client:
        yield Served(client, primary, replica, schema)


def place(order_id: str, customer: str = "alice") -> dict[str, Any]:
    return {
        "order_id": order_id,
        "customer_id": customer,
        "lines": [{"sku": "BOOK", "quantity": 2, "unit_price": "12.50"}],
        "customer": {"name": customer.title(), "email": f"{customer}@example.com"},
    }
