"""The live feed: Server-Sent Events over a real socket, resumable, filtered, kept alive."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.http.conftest import Api


@dataclass
class Message:
    id: str | None = None
    event: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


async def messages(response: httpx.Response, comments: list[str]) -> AsyncIterator[Message]:
    """Parse an event stream into messages (comments go to `comments`)."""
    current = Message()
    async for line in response.aiter_lines():
        if line == "":
            if current.data or current.id is not None:
                yield current
            current = Message()
        elif line.startswith(":"):
            comments.append(line)
        elif line.startswith("id: "):
            current.id = line[4:]
        elif line.startswith("event: "):
            current.event = line[7:]
        elif line.startswith("data: "):
            current.data = json.loads(line[6:])


async def collect(api: Api, count: int, **options: Any) -> tuple[list[Message], list[str]]:
    """Open the feed and take `count` messages from it (fewer if it goes quiet for 2 s)."""
    found: list[Message] = []
    comments: list[str] = []
    headers = {**api.auth(api.reader), **options.pop("headers", {})}
    async with api.client.stream("GET", "/events/live", headers=headers, **options) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        stream = messages(response, comments).__aiter__()
        while len(found) < count:
            try:
                found.append(await asyncio.wait_for(stream.__anext__(), 2))
            except (TimeoutError, StopAsyncIteration):
                break
    return found, comments


async def add_stock(api: Api, sku: str, quantity: int = 1) -> int:
    response = await api.post("/commands/AddStock", {"sku": sku, "quantity": quantity})
    assert response.status_code == 200
    position: int = response.json()["position"]
    return position


async def test_the_feed_replays_the_log_in_order_and_resumes_after_the_last_event_seen(
    api: Api,
) -> None:
    positions = [await add_stock(api, f"S{n}") for n in range(5)]
    first, _ = await asyncio.wait_for(collect(api, 5, params={"after": 0}), 10)
    assert [int(m.id or 0) for m in first] == positions
    assert [m.event for m in first] == ["StockAdded"] * 5
    assert [m.data["stream_id"] for m in first] == [f"Stock-S{n}" for n in range(5)]
    assert first[0].data["position"] == positions[0]
    # A client that reconnects with the last id it saw goes on right after it.
    rest, _ = await asyncio.wait_for(
        collect(api, 3, headers={"Last-Event-ID": str(positions[1])}), 10
    )
    assert [int(m.id or 0) for m in rest] == positions[2:]


async def test_the_feed_delivers_new_events_as_they_are_appended(api: Api) -> None:
    old = await add_stock(api, "OLD")
    listening = asyncio.ensure_future(collect(api, 3))  # from the visible head on
    await asyncio.sleep(0.3)
    fresh = [await add_stock(api, "NEW", 2), await add_stock(api, "NEW", 3)]
    received, _ = await asyncio.wait_for(listening, 10)
    ids = [int(m.id or 0) for m in received]
    # "From now" starts at the head readers can see, which on PostgreSQL may still be
    # just before the last commit (while another transaction is open): never later.
    if ids[0] == old:
        ids = ids[1:]
    assert ids[:2] == fresh
    assert [m.data["data"]["quantity"] for m in received if int(m.id or 0) in fresh] == [2, 3]


async def test_filters_keep_event_types_and_categories(api: Api) -> None:
    await add_stock(api, "BOOK", 10)
    book = {"sku": "BOOK", "quantity": 1, "unit_price": "9.00"}
    placed = await api.post(
        "/commands/PlaceOrder", {"order_id": "o-1", "customer_id": "a", "lines": [book]}
    )
    assert placed.status_code == 200
    orders, _ = await asyncio.wait_for(
        collect(api, 1, params={"after": 0, "categories": "Order"}), 10
    )
    assert [m.event for m in orders] == ["OrderCreated"]
    typed, _ = await asyncio.wait_for(
        collect(api, 1, params={"after": 0, "types": "StockAdded,Nothing"}), 10
    )
    assert [m.event for m in typed] == ["StockAdded"]


async def test_an_idle_feed_sends_keep_alive_comments(api: Api) -> None:
    comments: list[str] = []
    async with api.client.stream("GET", "/events/live", headers=api.auth(api.reader)) as response:

        async def read() -> None:
            async for _ in messages(response, comments):
                pass

        reader = asyncio.ensure_future(read())
        await asyncio.sleep(1.0)  # the test server keeps alive every 0.3 s
        reader.cancel()
    assert comments.count(": keep-alive") >= 2


async def test_a_bad_resume_point_or_filter_is_refused(api: Api) -> None:
    for headers, params in (
        ({"Last-Event-ID": "abc"}, {}),
        ({"Last-Event-ID": "-3"}, {}),
        ({}, {"types": "Not A Type"}),
        ({}, {"after": "-1"}),
    ):
        response = await api.get("/events/live", headers=headers, params=params)
        assert response.status_code == 400, (headers, params, response.text)
        assert response.headers["content-type"] == "application/problem+json"
    unauthenticated = await api.client.get("/events/live")
    assert unauthenticated.status_code == 401
