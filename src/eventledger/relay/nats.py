"""The outbox relay to NATS JetStream: a durable consumer of the log that publishes each
event to a JetStream stream (see :mod:`eventledger.relay` and docs/relay.md).

A page of events is published at once (asynchronous publishes), and the page's
checkpoint commits only after JetStream acknowledged every message of it: at least
once to NATS. ``Nats-Msg-Id`` is the event id, so JetStream drops the copies a
restarted relay publishes again within the stream's duplicate window: exactly once
in the stream, in the log's order.

NATS being unreachable, slow or refusing a message is never an event's fault: it
raises :class:`~eventledger.OperationalError`, the subscription waits (with a bounded
backoff, its status ``stalled`` with the error) and publishes the same page again. Only
an event too large for the server's ``max_payload`` is the event's fault: it is
retried, then parked, and the relay stops there (it never skips an event by itself).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, Literal

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.js.api import StorageType, StreamConfig
from nats.js.client import JetStreamContext

from eventledger.errors import EventTooLarge, InvalidInput, OperationalError
from eventledger.failures import RetryPolicy, describe_error
from eventledger.records import RecordedEvent, stream_category
from eventledger.relay import messages
from eventledger.stores.base import StoreTransaction
from eventledger.subscriptions import HandlerFailed

__all__ = ["DEFAULT_STREAM", "DEFAULT_URL", "NatsRelay", "PersonalData"]

log = logging.getLogger("eventledger.relay")

DEFAULT_URL = "nats://127.0.0.1:4222"
DEFAULT_STREAM = "EVENTLEDGER"
DEFAULT_PREFIX = "eventledger"

PersonalData = Literal["redact", "clear"]
"""What the relay publishes of personal values: ``redact`` (the default) puts the
redaction marker ``{"$redacted": subject}`` in their place, as for a forgotten subject;
``clear`` publishes them as reads show them (decrypted), and forgetting a subject
cannot reach the copies in NATS."""

_NATS_FAILURES = (nats.errors.Error, OSError, TimeoutError)
_EXPECTED_STREAM_BYTES = len("Nats-Expected-Stream: \r\n")
"""The header nats-py adds to each publish that names its stream (without the name)."""


class NatsRelay:
    """Publishes the log, or the events of some categories and types, to a JetStream
    stream. Run it with :class:`~eventledger.relay.RelayRunner` (or ``eventledger relay``).

    - `name`: the relay's checkpoint and lease; one process at a time runs a name.
    - `stream`: the JetStream stream, created when missing (file storage, subjects
      ``<subject_prefix>.>``, duplicate window `duplicate_window` seconds) unless
      `create_stream` is False; an existing stream must take those subjects.
    - `categories`, `types`: publish only events of these stream categories and event
      types (empty: all); the checkpoint moves past the others.
    - `personal`: see :data:`PersonalData`.
    - `ack_timeout`: how long a page waits for JetStream's acknowledgements before it
      counts as failed (and is published again).
    - `connect_options`: more keyword arguments for :func:`nats.connect` (credentials,
      TLS); the relay reconnects by itself, so reconnection options are its own.
    """

    durable = True

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        name: str = "nats",
        stream: str = DEFAULT_STREAM,
        subject_prefix: str = DEFAULT_PREFIX,
        categories: Iterable[str] = (),
        types: Iterable[str] = (),
        personal: PersonalData = "redact",
        create_stream: bool = True,
        duplicate_window: float = 120.0,
        ack_timeout: float = 10.0,
        connect_timeout: float = 2.0,
        retry: RetryPolicy | None = None,
        connect_options: Mapping[str, Any] | None = None,
    ) -> None:
        if not isinstance(name, str) or not name or "@" in name:
            raise InvalidInput(f"a relay's name is a non-empty text without '@', not {name!r}")
        if not isinstance(stream, str) or not stream or any(c in stream for c in " .*>/\\\t"):
            raise InvalidInput(
                f"a JetStream stream name has no spaces, '.', '*', '>', '/' or '\\', not {stream!r}"
            )
        if personal not in ("redact", "clear"):
            raise InvalidInput(f"personal is 'redact' or 'clear', not {personal!r}")
        for label, seconds in (
            ("duplicate_window", duplicate_window),
            ("ack_timeout", ack_timeout),
            ("connect_timeout", connect_timeout),
        ):
            if not seconds > 0:
                raise InvalidInput(f"{label} is a number of seconds above 0, not {seconds!r}")
        self.url = url
        self.name = name
        self.stream = stream
        self.subject_prefix = messages.check_prefix(subject_prefix)
        self.categories = frozenset(categories)
        self.types = frozenset(types)
        self.personal: PersonalData = personal
        self.create_stream = create_stream
        self.duplicate_window = duplicate_window
        self.ack_timeout = ack_timeout
        self.connect_timeout = connect_timeout
        self.retry: RetryPolicy = retry or RetryPolicy()
        self.connect_options = dict(connect_options or {})
        self.published = 0
        """Messages JetStream stored, in this process."""
        self.duplicates = 0
        """Messages JetStream dropped as copies of one it had (a page published again)."""
        self._client: Client | None = None
        self._js: JetStreamContext | None = None
        self._last_nats_error: BaseException | None = None
        self._stream_max_msg_size: int | None = None
        self.lease_guard: Callable[[], Awaitable[None]] | None = None
        """Renews this relay's lease or raises :class:`~eventledger.LeaseLost` (set by
        :class:`~eventledger.relay.RelayRunner`): called before a page that follows a
        quiet spell of `lease_guard_after` seconds (a stall, say), during which another
        process may have taken the relay over; busy relays renew with every checkpoint."""
        self.lease_guard_after = 1.0
        self._last_acked = 0.0

    def __repr__(self) -> str:
        return f"NatsRelay({self.url!r}, name={self.name!r}, stream={self.stream!r})"

    # --- the Consumer protocol --------------------------------------------------------------

    def handles(self, record: RecordedEvent) -> bool:
        if self.types and record.type not in self.types:
            return False
        return not self.categories or stream_category(record.stream_id) in self.categories

    async def activate(self, tx: StoreTransaction | None) -> None:
        pass  # NATS is reached outside the store's transactions (before_step, batches)

    def batch(self, records: Sequence[RecordedEvent]) -> _PublishBatch:
        return _PublishBatch(self, records)

    async def before_step(self) -> None:
        await self.connect()

    def memory_bytes(self) -> int | None:
        return None

    # --- NATS -------------------------------------------------------------------------------

    async def connect(self) -> JetStreamContext:
        """Connect (again) when not connected, and make sure the stream takes the relay's
        subjects. :class:`~eventledger.OperationalError` when NATS cannot be reached,
        :class:`~eventledger.InvalidInput` when the stream does not fit."""
        client = self._client
        if client is not None and client.is_connected and self._js is not None:
            return self._js
        await self.close()
        options: dict[str, Any] = {
            "name": f"eventledger relay {self.name}",
            "connect_timeout": max(1, round(self.connect_timeout)),
            **self.connect_options,
            # One attempt (and one retry) here; the subscription's loop waits and calls
            # again, so the client never buffers a page while it reconnects.
            "allow_reconnect": False,
            "max_reconnect_attempts": 1,
            "reconnect_time_wait": 0.1,
            "error_cb": self._nats_error,
        }
        self._last_nats_error = None
        try:
            client = await asyncio.wait_for(
                nats.connect(self.url, **options), self.connect_timeout * 2 + 1
            )
        except _NATS_FAILURES as error:
            reason = self._last_nats_error or error
            raise OperationalError(
                f"cannot reach NATS at {self.url}: {describe_error(reason)}"
            ) from error
        self._client = client
        try:
            # No cap on publishes awaiting their ack: a page is bounded, and awaited whole.
            js = client.jetstream(timeout=self.ack_timeout, publish_async_max_pending=1 << 30)
            await self._ensure_stream(js)
        except BaseException:
            await self.close()
            raise
        self._js = js
        log.info("%s: connected to %s, stream %s", self.name, self.url, self.stream)
        return js

    async def _ensure_stream(self, js: JetStreamContext) -> None:
        wanted = f"{self.subject_prefix}.>"
        try:
            try:
                info = await js.stream_info(self.stream)
            except nats.js.errors.NotFoundError:
                if not self.create_stream:
                    raise InvalidInput(
                        f"NATS at {self.url} has no JetStream stream {self.stream}: create it"
                        f" with the subjects {wanted}, or let the relay create it"
                    ) from None
                config = StreamConfig(
                    name=self.stream,
                    subjects=[wanted],
                    storage=StorageType.FILE,
                    duplicate_window=self.duplicate_window,
                )
                try:
                    await js.add_stream(config)
                    log.info("%s: created JetStream stream %s (%s)", self.name, self.stream, wanted)
                    self._stream_max_msg_size = None
                    return
                except nats.js.errors.BadRequestError:
                    info = await js.stream_info(self.stream)  # another relay made it first
        except nats.js.errors.ServiceUnavailableError as error:
            raise OperationalError(
                f"NATS at {self.url} answers, but JetStream does not (is it enabled, with"
                f" `nats-server -js`?): {describe_error(error)}"
            ) from error
        except nats.js.errors.APIError as error:
            raise OperationalError(
                f"NATS at {self.url} refused to set up stream {self.stream}: {error}"
            ) from error
        except (nats.errors.NoRespondersError, nats.js.errors.NoStreamResponseError) as error:
            raise OperationalError(
                f"NATS at {self.url} has no JetStream (start nats-server with -js)"
            ) from error
        except _NATS_FAILURES as error:
            raise OperationalError(
                f"cannot set up stream {self.stream} on NATS at {self.url}: {describe_error(error)}"
            ) from error
        subjects = list(info.config.subjects or [])
        if not any(covers(subject, wanted) for subject in subjects):
            raise InvalidInput(
                f"JetStream stream {self.stream} takes the subjects {subjects}, not {wanted}:"
                f" add {wanted} to it, or give the relay another stream or subject prefix"
            )
        largest = info.config.max_msg_size
        self._stream_max_msg_size = largest if largest is not None and largest >= 0 else None

    def largest_message(self) -> tuple[int, str] | None:
        """The largest message NATS takes here, in bytes, and which limit says so (None:
        not connected)."""
        if self._client is None:
            return None
        limits = [(self._client.max_payload, f"max_payload of {self.url}")]
        if self._stream_max_msg_size is not None:
            limits.append((self._stream_max_msg_size, f"max_msg_size of stream {self.stream}"))
        return min(limits)

    async def close(self) -> None:
        """Close the connection to NATS (after the acknowledgements it waits for)."""
        client, self._client, self._js = self._client, None, None
        if client is not None and not client.is_closed:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.close(), self.connect_timeout + 1)

    async def _nats_error(self, error: Exception) -> None:
        # nats-py reports connection errors here (and, in some versions, JetStream error
        # replies to asynchronous publishes): keep the last for messages and status.
        self._last_nats_error = error
        log.debug("%s: NATS says %s", self.name, describe_error(error))

    async def publish(self, page: Sequence[tuple[str, bytes, dict[str, str]]]) -> None:
        """Publish `page` in order and wait until JetStream acknowledged each message;
        :class:`~eventledger.OperationalError` for anything short of that, within
        `ack_timeout` seconds."""
        if not page:
            return
        js = await self.connect()
        self._last_nats_error = None
        acks: list[asyncio.Future[Any]] = []
        try:
            try:
                async with asyncio.timeout(self.ack_timeout):
                    # The messages go out together (nothing here waits for the network
                    # until the page is written), then the acks are awaited.
                    for subject, body, headers in page:
                        acks.append(
                            await js.publish_async(
                                subject, body, headers=headers, stream=self.stream
                            )
                        )
                    await asyncio.wait(acks)
            except TimeoutError:
                answered = sum(1 for ack in acks if ack.done())
                said = self._last_nats_error
                await self.close()  # one that does not answer is dropped: the next try connects
                raise OperationalError(
                    f"NATS at {self.url} acknowledged {answered} of {len(page)} messages of a"
                    f" page within {self.ack_timeout:g} s"
                    + (f" (it said {describe_error(said)})" if said else "")
                    + "; the page is published again (JetStream drops the copies)"
                ) from None
            stored = duplicates = 0
            for ack in acks:
                error = ack.exception()
                if error is not None:
                    raise error
                if ack.result().duplicate:
                    duplicates += 1
                else:
                    stored += 1
            self.published += stored
            self.duplicates += duplicates
            self._last_acked = time.monotonic()
        except (nats.errors.NoRespondersError, nats.js.errors.NoStreamResponseError) as error:
            self._js = None  # the stream is gone: make it again on the next try
            raise OperationalError(
                f"no JetStream stream on {self.url} takes {self.subject_prefix}.> any more"
                f" (was {self.stream} deleted?); it is made again on the next try"
            ) from error
        except nats.js.errors.APIError as error:
            raise OperationalError(
                f"JetStream stream {self.stream} on {self.url} refused a message:"
                f" {describe_error(error)}"
            ) from error
        except _NATS_FAILURES as error:
            await self.close()
            raise OperationalError(
                f"cannot publish to NATS at {self.url}: {describe_error(error)}"
            ) from error
        finally:
            for ack in acks:
                if not ack.done():
                    ack.cancel()  # frees its slot in the client's table of pending publishes


class _PublishBatch:
    def __init__(self, relay: NatsRelay, records: Sequence[RecordedEvent]) -> None:
        self.relay = relay
        self.records = records

    async def prepare(self) -> None:
        # Published before the transaction; the checkpoint commits after every ack.
        relay = self.relay
        if not self.records:
            return
        await relay.connect()
        guard = relay.lease_guard
        if guard is not None and time.monotonic() - relay._last_acked > relay.lease_guard_after:
            # A holder whose lease lapsed while it waited must not publish a page that its
            # successor may have published longer ago than the duplicate window.
            await guard()
        largest = relay.largest_message()
        page = []
        for index, record in enumerate(self.records):
            shown = record if relay.personal == "clear" else messages.redacted(record)
            subject, body, headers, size = messages.to_message(shown, relay.subject_prefix)
            size += _EXPECTED_STREAM_BYTES + len(relay.stream)
            if largest is not None and size > largest[0]:
                # Nothing of the page is published past the event it fails at, so that
                # the stream never holds a later event before it.
                raise HandlerFailed(
                    index,
                    EventTooLarge(
                        f"event {record.id} ({record.type}, position {record.position}) makes"
                        f" a NATS message of {size} bytes, over the {largest[1]}"
                        f" ({largest[0]} bytes): raise it, then retry the dead letter"
                    ),
                )
            page.append((subject, body, headers))
        await relay.publish(page)

    async def commit(self, tx: StoreTransaction | None) -> None:
        pass  # the checkpoint is all that commits


def covers(pattern: str, subject: str) -> bool:
    """Whether the subject filter `pattern` takes every subject `subject` stands for
    (both may end in the wildcard ``>``, and `pattern` may hold ``*``).

    >>> covers(">", "eventledger.>"), covers("eventledger.>", "eventledger.>")
    (True, True)
    >>> covers("eventledger.*", "eventledger.>"), covers("acme.>", "eventledger.>")
    (False, False)
    """
    wanted = subject.split(".")
    tokens = pattern.split(".")
    for index, word in enumerate(tokens):
        if word == ">":
            return index < len(wanted)
        if index >= len(wanted) or wanted[index] == ">":
            return False
        if word not in ("*", wanted[index]):
            return False
    return len(tokens) == len(wanted)
