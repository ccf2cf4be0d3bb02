"""Reads from a read replica over HTTP: the store each read route uses, the headers that
say which one answered, and reads made again on the primary when the replica fails.

With ``create_app(..., read_url=...)`` (``eventledger serve --read-url``), the read
routes (streams, the log, events and their causes, read-model documents and tables)
take their store from :func:`read_store`, :func:`read_model_queries` or
:func:`read_repository`, which ask the app's :class:`~eventledger.replica.ReadReplica`.
Commands, operations, live feeds and everything else use the primary. Without a read
URL these give the primary's store, and nothing changes.

- A request may say which position its answer must reflect:
  ``Eventledger-Min-Position: <position>`` (the ``position`` of a command's answer).
  The replica answers once it has reached it (its visible log, or the read model's
  checkpoint), within the replica's wait; otherwise the primary answers.
- Every answer of a read route says where it came from: ``Eventledger-Read-From:
  replica`` or ``primary``, and when the primary answered in the replica's place,
  ``Eventledger-Fallback: behind`` (not caught up in time), ``down`` (it does not
  answer) or ``failed`` (the read failed on it: made again on the primary).

:class:`ReplicaReads` (a middleware) adds those headers, and makes a read again on the
primary when the replica failed it (a 5xx or an error before any answer was sent), so
that a replica going down costs callers a slower answer, never an error.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from eventledger.aggregate import Aggregate
from eventledger.errors import InvalidInput, OperationalError
from eventledger.projections.queries import ReadModelQueries
from eventledger.replica import Choice, ReadReplica, read_url_for
from eventledger.repository import Repository
from eventledger.stores.base import EventStore

__all__ = [
    "FALLBACK",
    "MIN_POSITION",
    "READ_FROM",
    "ReplicaReads",
    "read_model_queries",
    "read_repository",
    "read_store",
    "replica_readiness",
    "start_replica",
    "stop_replica",
]

log = logging.getLogger("eventledger.http")

MIN_POSITION = "Eventledger-Min-Position"
READ_FROM = "Eventledger-Read-From"
FALLBACK = "Eventledger-Fallback"
_KEY = "eventledger.read"  # the scope key of the request's _Read
_MAX_POSITION = (1 << 63) - 1
A = TypeVar("A", bound=Aggregate)


@dataclass
class _Read:
    """Where one request's reads go: chosen once, at the first read."""

    choice: Choice | None = None


def _replica(request: Request) -> ReadReplica | None:
    replica: ReadReplica | None = getattr(request.app.state, "replica", None)
    return replica


def owed_position(request: Request) -> int | None:
    """The position of ``Eventledger-Min-Position``, if the request sends one."""
    text = request.headers.get(MIN_POSITION)
    if text is None:
        return None
    text = text.strip()
    if not text.isdigit() or not text.isascii() or int(text) > _MAX_POSITION:
        raise InvalidInput(
            f"{MIN_POSITION} is a position (an integer from 0 to 2**63-1, e.g. the position"
            f" of a command's answer), not {text!r:.40}"
        )
    return int(text)


async def _choose(request: Request, read_model: str | None = None) -> Choice | None:
    replica = _replica(request)
    if replica is None:
        return None
    record = request.scope.get(_KEY)
    if not isinstance(record, _Read):  # served without ReplicaReads: choose per call
        record = _Read()
    if record.choice is None:  # one source for every read of a request
        record.choice = await replica.choose(owed_position(request), read_model)
    return record.choice


async def read_store(request: Request) -> EventStore:
    """The store this request reads the log and streams from."""
    choice = await _choose(request)
    if choice is not None:
        return choice.store
    store: EventStore = request.app.state.service.store
    return store


async def read_model_queries(request: Request, name: str) -> ReadModelQueries:
    """Queries on read models (document and SQL) where this request reads read model
    `name`: the replica's copy of its tables, or the primary's."""
    choice = await _choose(request, name)
    replica = _replica(request)
    if choice is not None and choice.source == "replica" and replica is not None:
        assert replica.queries is not None  # the replica is open when it is chosen
        return replica.queries
    queries: ReadModelQueries = request.app.state.service.runner.queries
    return queries


async def read_repository(request: Request, aggregate_type: type[A]) -> Repository[A]:
    """A repository to load `aggregate_type` with for this request (loads only)."""
    primary: Repository[A] = request.app.state.service.bus.repository(aggregate_type)
    choice = await _choose(request)
    if choice is None or choice.source == "primary":
        return primary
    return Repository(
        choice.store,
        aggregate_type,
        registry=primary.registry,
        snapshot_every=primary.snapshot_every,
    )


async def start_replica(app: Any, read_url: str, store: EventStore | str) -> None:
    """Open the app's read replica beside its primary (`store`, as `create_app` was given
    it: its URL's ``schema`` is the replica's unless the read URL names one). A replica
    that does not answer yet leaves reads on the primary until it does."""
    service = app.state.service
    url = read_url_for(read_url, store if isinstance(store, str) else None)
    app.state.replica = ReadReplica(url, service.store)
    await app.state.replica.open()


async def stop_replica(app: Any) -> None:
    replica: ReadReplica | None = getattr(app.state, "replica", None)
    if replica is not None:
        app.state.replica = None
        await replica.close()


async def replica_readiness(request: Request) -> dict[str, Any]:
    """``{"replica": {...}}`` for ``/readyz`` when the app has a read replica: up or
    down, and how far behind (a replica that is down does not make the app unready:
    the primary answers its reads)."""
    replica = _replica(request)
    if replica is None:
        return {}
    status = await replica.status()
    return {
        "replica": {
            "url": status.url,
            "state": status.state,
            "head_position": status.head_position,
            "behind_events": status.behind_events,
            "lag_seconds": None if status.lag_seconds is None else round(status.lag_seconds, 3),
            "error": status.error,
        }
    }


def _headers(choice: Choice) -> list[tuple[bytes, bytes]]:
    headers = [(READ_FROM.lower().encode(), choice.source.encode())]
    if choice.reason is not None:
        headers.append((FALLBACK.lower().encode(), choice.reason.encode()))
    return headers


class ReplicaReads:
    """Say where each read came from, and make a read the replica failed again on the
    primary (GET and HEAD requests whose route chose the replica)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        record = _Read()
        received: list[Message] = []
        withheld: list[Message] = []
        started = False

        async def remembering() -> Message:
            message = await receive()
            received.append(message)
            return message

        async def sending(message: Message) -> None:
            nonlocal started
            choice = record.choice
            if withheld or (
                message["type"] == "http.response.start"
                and choice is not None
                and choice.source == "replica"
                and message["status"] >= 500
            ):
                withheld.append(message)  # the replica failed the read: not for the caller
                return
            if message["type"] == "http.response.start":
                started = True
                if choice is not None:
                    message = {
                        **message,
                        "headers": [*message.get("headers", ()), *_headers(choice)],
                    }
            await send(message)

        failure: BaseException
        try:
            await self.app({**scope, _KEY: record}, remembering, sending)
        except Exception as error:
            if started or record.choice is None or record.choice.source != "replica":
                raise
            log.warning("a read failed on the read replica; made again on the primary: %r", error)
            failure = error
        else:
            if not withheld:
                return
            failure = OperationalError(f"the read replica answered {_said(withheld)}")
        replica: ReadReplica | None = getattr(scope["app"].state, "replica", None)
        again = _Read(None if replica is None else replica.fell_back(failure))
        replayed = list(received)

        async def replaying() -> Message:
            return replayed.pop(0) if replayed else await receive()

        async def marked(message: Message) -> None:
            if message["type"] == "http.response.start" and again.choice is not None:
                headers = [*message.get("headers", ()), *_headers(again.choice)]
                message = {**message, "headers": headers}
            await send(message)

        await self.app({**scope, _KEY: again}, replaying, marked)


def _said(withheld: list[Message]) -> str:
    """A withheld answer as one line: its status and its problem's detail."""
    status = withheld[0].get("status")
    body = b"".join(m.get("body", b"") for m in withheld if m["type"] == "http.response.body")
    try:
        detail = json.loads(body).get("detail", "")
    except (ValueError, AttributeError):
        detail = ""
    return f"{status}: {detail}"[:300] if detail else str(status)
