"""``GET /events/live``: the log as it grows, as Server-Sent Events.

Each event is one message whose ``id`` is its global position, so a client that
reconnects with ``Last-Event-ID`` (browsers do it by themselves) goes on after
the last event it saw, missing none. Filters keep event types and stream
categories; a comment every `keepalive_seconds` keeps proxies from closing an
idle connection.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi.responses import StreamingResponse

from eventledger.errors import InvalidInput
from eventledger.http import models
from eventledger.http.auth import Principal, require
from eventledger.http.problems import Problem
from eventledger.records import RecordedEvent
from eventledger.stores.base import EventStore

PAGE = 500
POLL_SECONDS = 0.5
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]{0,199}")
_NAMES = r"^\s*[A-Za-z_][A-Za-z0-9_.]*(\s*,\s*[A-Za-z_][A-Za-z0-9_.]*)*\s*,?\s*$"


def add_routes(app: FastAPI) -> None:
    from eventledger.http.app import service_of

    app.state.closing = asyncio.Event()

    @app.get(
        "/events/live",
        tags=["events"],
        summary="The log as it grows (Server-Sent Events), resumable with Last-Event-ID",
        response_class=StreamingResponse,
        responses={
            200: {"content": {"text/event-stream": {}}, "description": "an endless stream"},
            400: {"model": Problem},
        },
    )
    async def live(
        request: Request,
        after: int | None = Query(
            None, ge=0, le=(1 << 63) - 1, description="start after this position (default: now)"
        ),
        types: str | None = Query(
            None, max_length=2000, pattern=_NAMES, description="event types, commas"
        ),
        categories: str | None = Query(
            None, max_length=2000, pattern=_NAMES, description="stream categories (`Order`), commas"
        ),
        last_event_id: str | None = Header(None, alias="Last-Event-ID"),
        _: Principal = Depends(require("read")),
    ) -> StreamingResponse:
        store = service_of(request).store
        start = after
        if last_event_id is not None:
            if not last_event_id.isdigit() or int(last_event_id) >= 1 << 63:
                raise InvalidInput(f"Last-Event-ID is a position, not {last_event_id!r:.80}")
            start = int(last_event_id)
        if start is None:
            start = await store.head_position()
        wanted_types = _names(types, "types")
        wanted_categories = _names(categories, "categories")
        feed = _feed(
            request,
            store,
            start,
            wanted_types,
            wanted_categories,
            request.app.state.keepalive_seconds,
        )
        return StreamingResponse(
            feed,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )


def _names(text: str | None, what: str) -> frozenset[str] | None:
    if text is None or not text.strip():
        return None
    names = frozenset(part.strip() for part in text.split(",") if part.strip())
    bad = [name for name in names if not _NAME.fullmatch(name)]
    if bad:
        raise InvalidInput(f"{what}: {bad[0]!r:.80} is not a name")
    return names


def frame(event: RecordedEvent) -> bytes:
    data = orjson.dumps(models.event_json(event))
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (event.position, event.type.encode(), data)


async def _feed(
    request: Request,
    store: EventStore,
    after: int,
    types: frozenset[str] | None,
    categories: frozenset[str] | None,
    keepalive: float,
) -> AsyncIterator[bytes]:
    closing: asyncio.Event = request.app.state.closing
    yield b"retry: 2000\n\n"
    cursor = after
    quiet_since = time.monotonic()
    while not closing.is_set():
        since = store.append_generation
        page = await store.read_page(after=cursor, limit=PAGE)
        count = len(page)
        for event in page:
            cursor = event.position
            if (types is None or event.type in types) and (
                categories is None or event.category in categories
            ):
                yield frame(event)
                quiet_since = time.monotonic()
        if count == PAGE:
            continue  # more to catch up on
        if await request.is_disconnected():
            return
        # Appends in this process, and on PostgreSQL in others, wake the feed at once;
        # appends by another process to a SQLite file are found by looking again soon.
        until_keepalive = max(0.0, keepalive - (time.monotonic() - quiet_since))
        waiter = asyncio.ensure_future(
            store.wait_for_appends(since, min(POLL_SECONDS, until_keepalive))
        )
        stopper = asyncio.ensure_future(closing.wait())
        try:
            await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopper.cancel()
            if not waiter.done():
                waiter.cancel()
        if time.monotonic() - quiet_since >= keepalive:
            yield b": keep-alive\n\n"
            quiet_since = time.monotonic()


async def close_feeds(app: Any) -> None:
    """Let live feeds end (the server is shutting down)."""
    app.state.closing.set()
