"""Reading what a relay published, in another service: a durable JetStream pull consumer
that gives :class:`~eventledger.RecordedEvent` objects (see docs/relay.md).

Ack semantics: an event counts as handled only once you :meth:`RelayedEvents.ack` it.
Until then JetStream keeps it; if you do not ack within `ack_wait` seconds (your
process died, say), it is delivered again, to this consumer or to another process
that opened the same durable. So handle each event idempotently (at-least-once), and
ack after your own writes committed. The durable remembers what was acked: reopening
it, here or in another process, goes on after the last acked event.

Order: events come in the stream's order (for one relay: the log's order). An event
delivered again after `ack_wait`, or after :meth:`RelayedEvents.nak`, comes after
events delivered meanwhile; with ``max_ack_pending=1`` nothing is delivered while an
event waits for its ack, which keeps the order strictly, at the cost of throughput.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import deque
from collections.abc import Sequence
from typing import Any

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from eventledger.errors import EventDecodeError, InvalidInput, OperationalError
from eventledger.failures import describe_error
from eventledger.records import RecordedEvent
from eventledger.relay import messages
from eventledger.relay.nats import DEFAULT_PREFIX, DEFAULT_STREAM, DEFAULT_URL

__all__ = ["RelayedEvents", "consume"]

log = logging.getLogger("eventledger.relay")

_PROBE = 0.25
"""Seconds a fetch of many events waits (those already in the stream come at once)."""


def consume(
    url: str = DEFAULT_URL,
    *,
    durable: str,
    stream: str = DEFAULT_STREAM,
    subjects: Sequence[str] | None = None,
    batch: int = 100,
    ack_wait: float = 30.0,
    max_ack_pending: int = 1000,
    new_only: bool = False,
    connect_timeout: float = 10.0,
    connect_options: dict[str, Any] | None = None,
) -> RelayedEvents:
    """The events of JetStream stream `stream` through the durable pull consumer
    `durable` (made when missing), as an async context manager and iterator:

    .. code-block:: python

        async with consume("nats://127.0.0.1:4222", durable="billing",
                           subjects=["eventledger.Order.>"]) as events:
            async for event in events:      # a RecordedEvent; waits for new ones
                await bill(event)
                await events.ack(event)     # handled: never delivered again

    `subjects` are subject filters (default: everything the stream takes under the
    ``eventledger`` prefix); several need NATS 2.10 or later. `new_only` starts a new
    durable at the end of the stream instead of its beginning. The durable's settings
    are fixed when it is made; to change them, delete it (``nats consumer rm``).
    """
    return RelayedEvents(
        url,
        durable=durable,
        stream=stream,
        subjects=list(subjects) if subjects is not None else [f"{DEFAULT_PREFIX}.>"],
        batch=batch,
        ack_wait=ack_wait,
        max_ack_pending=max_ack_pending,
        new_only=new_only,
        connect_timeout=connect_timeout,
        connect_options=connect_options or {},
    )


class RelayedEvents:
    """A durable consumer of a relay's stream (made by :func:`consume`)."""

    def __init__(
        self,
        url: str,
        *,
        durable: str,
        stream: str,
        subjects: list[str],
        batch: int,
        ack_wait: float,
        max_ack_pending: int,
        new_only: bool,
        connect_timeout: float,
        connect_options: dict[str, Any],
    ) -> None:
        if not durable or any(c in durable for c in " .*>/\\\t"):
            raise InvalidInput(
                f"a durable name has no spaces, '.', '*', '>', '/' or '\\', not {durable!r}"
            )
        if not subjects:
            raise InvalidInput("give at least one subject filter (eventledger.>)")
        if batch < 1 or ack_wait <= 0 or max_ack_pending < 1:
            raise InvalidInput("batch and max_ack_pending are >= 1, ack_wait above 0 s")
        self.url = url
        self.durable = durable
        self.stream = stream
        self.subjects = subjects
        self.batch = batch
        self.ack_wait = ack_wait
        self.max_ack_pending = max_ack_pending
        self.new_only = new_only
        self.connect_timeout = connect_timeout
        self.connect_options = connect_options
        self._client: Client | None = None
        self._subscription: Any = None  # JetStreamContext.PullSubscription
        self._buffer: deque[tuple[RecordedEvent, Msg]] = deque()
        self._delivered: dict[uuid.UUID, Msg] = {}
        self._waiting = False
        """The last fetch found nothing: wait for one event at a time."""

    async def __aenter__(self) -> RelayedEvents:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def open(self) -> None:
        """Connect and bind to the durable (made when missing)."""
        try:
            self._client = await asyncio.wait_for(
                nats.connect(
                    self.url,
                    name=f"eventledger consumer {self.durable}",
                    max_reconnect_attempts=-1,  # once connected, ride out NATS restarts
                    reconnect_time_wait=1,
                    error_cb=_quiet,
                    **self.connect_options,
                ),
                self.connect_timeout,
            )
        except (TimeoutError, nats.errors.Error, OSError) as error:
            raise OperationalError(
                f"cannot reach NATS at {self.url} within {self.connect_timeout:g} s:"
                f" {describe_error(error)}"
            ) from error
        try:
            js = self._client.jetstream()
            await self._ensure_durable(js)
            self._subscription = await js.pull_subscribe_bind(
                durable=self.durable, stream=self.stream
            )
        except BaseException:
            await self.close()
            raise

    async def _ensure_durable(self, js: Any) -> None:
        try:
            info = await js.consumer_info(self.stream, self.durable)
        except nats.js.errors.NotFoundError as error:
            if "stream" in str(error.description or "").lower():
                raise InvalidInput(
                    f"NATS at {self.url} has no JetStream stream {self.stream} (a relay makes"
                    " it when it starts)"
                ) from None
            info = None
        if info is not None:
            filters = info.config.filter_subjects or (
                [info.config.filter_subject] if info.config.filter_subject else []
            )
            if sorted(filters) != sorted(self.subjects):
                raise InvalidInput(
                    f"durable {self.durable} of stream {self.stream} exists with the subjects"
                    f" {filters}, not {self.subjects}: delete it (nats consumer rm"
                    f" {self.stream} {self.durable}) or use another durable name"
                )
            return
        several = len(self.subjects) > 1
        version = self._client.connected_server_version if self._client else None
        if several and version is not None and (version.major, version.minor) < (2, 10):
            raise InvalidInput(
                f"several subject filters need NATS 2.10 or later; {self.url} runs {version}:"
                " use one filter with wildcards, or one durable per subject"
            )
        config = ConsumerConfig(
            durable_name=self.durable,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.NEW if self.new_only else DeliverPolicy.ALL,
            ack_wait=self.ack_wait,
            max_ack_pending=self.max_ack_pending,
            filter_subjects=self.subjects if several else None,
            filter_subject=None if several else self.subjects[0],
        )
        await js.add_consumer(self.stream, config=config)

    async def close(self) -> None:
        """Send the acks still in flight and disconnect; unacked events stay with the
        durable (delivered again after `ack_wait`)."""
        client, self._client, self._subscription = self._client, None, None
        self._buffer.clear()
        self._delivered.clear()
        if client is not None and not client.is_closed:
            with contextlib.suppress(TimeoutError, nats.errors.Error, OSError):
                await client.flush(timeout=5)
            await client.close()

    def __aiter__(self) -> RelayedEvents:
        return self

    async def __anext__(self) -> RecordedEvent:
        return await self.next()

    async def next(self, timeout: float | None = None) -> RecordedEvent:
        """The next event; waits for one (at most `timeout` seconds, then
        :class:`TimeoutError`)."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while not self._buffer:
            if self._subscription is None:
                raise InvalidInput("open the consumer first (async with consume(...))")
            wait = 5.0 if deadline is None else min(5.0, deadline - loop.time())
            if wait <= 0:
                raise TimeoutError(f"no event for durable {self.durable} within {timeout} s")
            # nats-py's fetch of n waits out its timeout when fewer than n messages come:
            # fetch many only for a moment (what is there comes at once), then one at a
            # time, which returns as soon as an event arrives.
            size = min(self.batch, self.max_ack_pending)  # never more than it may hold
            if self._waiting:
                size, wait = 1, max(wait, 0.01)
            else:
                wait = min(wait, _PROBE)
            try:
                fetched = await self._subscription.fetch(size, timeout=wait)
            except TimeoutError:  # nats.errors.TimeoutError is one too
                self._waiting = True
                continue
            except (nats.errors.ConnectionReconnectingError, nats.errors.OutboundBufferLimitError):
                await asyncio.sleep(0.5)  # NATS is restarting: the client reconnects
                continue
            self._waiting = False
            for msg in fetched:
                try:
                    event = messages.from_message(msg.subject, msg.data, msg.headers)
                except EventDecodeError as error:
                    log.warning("%s: %s; terminated it (not delivered again)", self.durable, error)
                    await msg.term()
                    continue
                self._buffer.append((event, msg))
        event, msg = self._buffer.popleft()
        self._delivered[event.id] = msg
        return event

    def _message(self, event: RecordedEvent) -> Msg:
        try:
            return self._delivered.pop(event.id)
        except KeyError:
            raise InvalidInput(
                f"event {event.id} was not delivered by this consumer, or was acked already"
            ) from None

    async def ack(self, event: RecordedEvent) -> None:
        """`event` is handled: the durable never delivers it again."""
        await self._message(event).ack()

    async def nak(self, event: RecordedEvent, delay: float | None = None) -> None:
        """`event` is not handled: deliver it again (after `delay` seconds)."""
        await self._message(event).nak(delay=delay)

    async def in_progress(self, event: RecordedEvent) -> None:
        """Still working on `event`: its `ack_wait` starts again."""
        msg = self._delivered.get(event.id)
        if msg is None:
            raise InvalidInput(f"event {event.id} is not waiting for an ack here")
        await msg.in_progress()


async def _quiet(error: Exception) -> None:
    log.debug("NATS says %s", describe_error(error))
