"""Pages that read the log: streams, a stream's events, one event and its causes,
an aggregate in time, the global log and its live tail."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import FastAPI
from starlette.responses import Response

from eventledger.admin.diff import diff
from eventledger.admin.pages import (
    PAGE_SIZE,
    Page,
    add_page,
    int_param,
    show,
    text_param,
    time_param,
)
from eventledger.causation import CausalChain, CausalLink, causal_chain
from eventledger.errors import InvalidInput, NotFound
from eventledger.records import RecordedEvent

__all__ = ["add_browsing_pages"]

SCAN_LIMIT = 5000
"""Events the log page looks through for one filtered page, at most."""


def add_browsing_pages(app: FastAPI) -> None:
    add_page(app, "/admin/streams", streams)
    add_page(app, "/admin/streams/{stream_id:path}", stream)
    add_page(app, "/admin/events/{event_id}", event)
    add_page(app, "/admin/travel/{stream_id:path}", travel)
    add_page(app, "/admin/log", log)
    add_page(app, "/admin/live", live)


async def streams(page: Page) -> Response:
    categories = sorted(page.service.application.aggregates)
    category = text_param(page, "category")
    if category is not None and not category.replace("_", "").isalnum():
        raise InvalidInput(f"category is a name like Order, not {category!r}")
    prefix = text_param(page, "prefix")
    after = text_param(page, "after", 255)
    wanted = prefix if prefix is not None else (f"{category}-" if category else None)
    found = await page.service.store.list_streams(prefix=wanted, after=after, limit=PAGE_SIZE + 1)
    more = len(found) > PAGE_SIZE
    found = found[:PAGE_SIZE]
    return page.render(
        "streams.html",
        streams=found,
        categories=categories,
        category=category,
        prefix=prefix,
        after=after,
        next_after=found[-1].stream_id if more else None,
        travel={s.stream_id: _knows(page, s.stream_id) for s in found},
    )


def _knows(page: Page, stream_id: str) -> bool:
    try:
        page.service.application.aggregate_for(stream_id)
    except NotFound:
        return False
    return True


async def stream(page: Page) -> Response:
    stream_id = page.request.path_params["stream_id"]
    store = page.service.store
    version = await store.stream_version(stream_id)
    if version == 0:
        raise NotFound(f"no stream {stream_id!r}")
    start = int_param(page, "from", 1, 1, version) or 1
    events = [e async for e in store.read_stream(stream_id, from_version=start, limit=PAGE_SIZE)]
    return page.render(
        "stream.html",
        stream_id=stream_id,
        version=version,
        events=events,
        previous=max(1, start - PAGE_SIZE) if start > 1 else None,
        following=events[-1].version + 1 if events and events[-1].version < version else None,
        knows_aggregate=_knows(page, stream_id),
    )


@dataclass
class Node:
    link: CausalLink
    subject: bool
    children: list[Node] = field(default_factory=list)


def _tree(chain: CausalChain) -> list[Node]:
    nodes = {link.id: Node(link, link.id == chain.subject.id) for link in chain.conversation}
    roots: list[Node] = []
    for link in chain.conversation:  # each after its cause
        parent = nodes.get(link.caused_by) if link.caused_by else None
        (parent.children if parent is not None else roots).append(nodes[link.id])
    return roots


async def event(page: Page) -> Response:
    text = page.request.path_params["event_id"]
    try:
        event_id = uuid.UUID(text)
    except ValueError:
        raise NotFound(f"{text!r:.60} is not an event id") from None
    found = await page.service.store.read_event(event_id)
    if found is None:
        raise NotFound(f"no event with id {event_id}")
    chain = await causal_chain(page.service.store, event_id)
    cause = chain.causes[-1] if chain.causes else None
    return page.render(
        "event.html",
        event=found,
        chain=chain,
        nodes=_tree(chain),
        cause=cause,
        knows_aggregate=_knows(page, found.stream_id),
    )


async def travel(page: Page) -> Response:
    stream_id = page.request.path_params["stream_id"]
    service = page.service
    aggregate_type, aggregate_id = service.application.aggregate_for(stream_id)
    latest = await service.store.stream_version(stream_id)
    if latest == 0:
        raise NotFound(f"no stream {stream_id!r}")
    repository = service.bus.repository(aggregate_type)
    moment = _moment(page)
    if moment is not None:
        then = await repository.load(aggregate_id, as_of=moment)
        version = then.version
    else:
        version = int_param(page, "version", latest, 1, latest) or latest
        then = await repository.load(aggregate_id, version=version)
    state = then.model_dump(mode="json")
    previous: dict[str, Any] = {}
    if version > 1:
        previous = (await repository.load(aggregate_id, version=version - 1)).model_dump(
            mode="json"
        )
    changing = [
        e async for e in service.store.read_stream(stream_id, from_version=version, limit=1)
    ]
    context = {
        "stream_id": stream_id,
        "aggregate": aggregate_type.__name__,
        "latest": latest,
        "version": version,
        "moment": moment,
        "state": state,
        "changes": diff(previous, state),
        "event": changing[0] if changing else None,
    }
    return show(page, "travel.html", "_travel.html", **context)


def _moment(page: Page) -> datetime | None:
    """The time asked for: `at` (ISO 8601 with a zone), or the date-time picker's local
    time with the browser's offset in minutes (`tz`, set by the page's script; UTC
    without it)."""
    at = time_param(page, "at")
    if at is not None:
        return at
    local = text_param(page, "when", 40)
    if local is None:
        return None
    try:
        naive = datetime.fromisoformat(local)
    except ValueError:
        raise InvalidInput(f"when is a date and time (2026-11-23T12:00), not {local!r}") from None
    offset = int_param(page, "tz", 0, 0, 2 * 14 * 60) or 0  # minutes east of UTC, + 14 h
    zone = timedelta(minutes=offset - 14 * 60)
    if naive.tzinfo is not None:
        return naive
    return (naive - zone).replace(tzinfo=UTC)


async def log(page: Page) -> Response:
    after = int_param(page, "after", 0) or 0
    types = _names(text_param(page, "types", 2000), "types")
    categories = _names(text_param(page, "categories", 2000), "categories")
    since, until = time_param(page, "since"), time_param(page, "until")
    filtered = types is not None or categories is not None
    matches: list[RecordedEvent] = []
    scanned = 0
    last = after
    async for record in page.service.store.read_all(
        after=after, since=since, until=until, limit=SCAN_LIMIT if filtered else PAGE_SIZE + 1
    ):
        scanned += 1
        if (types is None or record.type in types) and (
            categories is None or record.category in categories
        ):
            if len(matches) == PAGE_SIZE:
                break
            matches.append(record)
        last = record.position
    more = len(matches) == PAGE_SIZE or (filtered and scanned >= SCAN_LIMIT)
    if not filtered:
        more = scanned > PAGE_SIZE
        matches = matches[:PAGE_SIZE]
        last = matches[-1].position if matches else after
    elif len(matches) == PAGE_SIZE:
        last = matches[-1].position
    return page.render(
        "log.html",
        events=matches,
        after=after,
        next_after=last if more else None,
        scanned=scanned,
        filtered=filtered,
        scan_limit=SCAN_LIMIT,
        types=text_param(page, "types", 2000) or "",
        categories=text_param(page, "categories", 2000) or "",
        since=text_param(page, "since", 64) or "",
        until=text_param(page, "until", 64) or "",
    )


def _names(text: str | None, what: str) -> frozenset[str] | None:
    if text is None:
        return None
    names = frozenset(part.strip() for part in text.split(",") if part.strip())
    for name in names:
        if not name.replace("_", "").replace(".", "").isalnum():
            raise InvalidInput(f"{what}: {name!r:.60} is not a name")
    return names or None


async def live(page: Page) -> Response:
    return page.render(
        "live.html",
        types=text_param(page, "types", 2000) or "",
        categories=text_param(page, "categories", 2000) or "",
    )
