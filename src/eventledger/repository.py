"""Loading and saving aggregates: optimistic concurrency, time travel, snapshots.

>>> import asyncio
>>> from eventledger import open_store
>>> from eventledger.aggregate import Aggregate, applies
>>> from eventledger.events import Event, EventRegistry
>>> docs = EventRegistry()
>>> class Added(Event, registry=docs):
...     amount: int
>>> class Counter(Aggregate):
...     total: int = 0
...     def add(self, amount: int) -> None:
...         self.record(Added(amount=amount))
...     @applies(Added)
...     def _added(self, event: Added) -> None:
...         self.total += event.amount
>>> async def main() -> tuple[int, int, int]:
...     async with await open_store("memory://") as store:
...         counters = Repository(store, Counter, registry=docs)
...         counter = Counter(id="c1")
...         counter.add(5)
...         await counters.save(counter)
...         await counters.update("c1", lambda c: c.add(2))
...         now = await counters.load("c1")
...         then = await counters.load("c1", version=1)
...         return now.total, now.version, then.total
>>> asyncio.run(main())
(7, 2, 5)
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Generic, NamedTuple, TypeVar

from eventledger import _validation as check
from eventledger.aggregate import Aggregate, AggregateNotFound
from eventledger.context import event_metadata
from eventledger.errors import ConflictError, InvalidInput, WrongExpectedVersion
from eventledger.events import Event, EventRegistry, UnknownEventType, default_registry
from eventledger.records import (
    NO_STREAM,
    AppendResult,
    ExpectedVersion,
    JSONObject,
    NewEvent,
    RecordedEvent,
    Snapshot,
)
from eventledger.stores.base import DEFAULT_PAGE_SIZE as PAGE
from eventledger.stores.base import EventStore, StoreTransaction

__all__ = ["HistoryEntry", "Repository"]

A = TypeVar("A", bound=Aggregate)
log = logging.getLogger("eventledger.repository")


class HistoryEntry(NamedTuple):
    """One step in an aggregate's timeline."""

    version: int
    position: int
    recorded_at: datetime
    type: str
    event: Event | None
    """The typed event, or None when no class is registered for `type` (see `raw`)."""
    metadata: JSONObject
    raw: RecordedEvent


class Repository(Generic[A]):
    """Loads and saves aggregates of one type in an event store.

    `snapshot_every=N` keeps a snapshot each time a save passes a multiple of N
    events; loads then start from the latest usable snapshot and replay only
    what follows. Snapshots of another shape of the aggregate are ignored.
    """

    def __init__(
        self,
        store: EventStore,
        aggregate_type: type[A],
        *,
        registry: EventRegistry | None = None,
        snapshot_every: int | None = None,
    ) -> None:
        if not (isinstance(aggregate_type, type) and issubclass(aggregate_type, Aggregate)):
            raise InvalidInput(f"Repository needs an Aggregate subclass, not {aggregate_type!r}")
        if snapshot_every is not None:
            check.check_int(snapshot_every, "snapshot_every", minimum=1)
        self.store = store
        self.aggregate_type = aggregate_type
        self.registry = registry or default_registry
        self.snapshot_every = snapshot_every

    # --- loading ---------------------------------------------------------------------------

    async def load(
        self, aggregate_id: str, *, version: int | None = None, as_of: datetime | None = None
    ) -> A:
        """The aggregate as it is now, after event `version`, or as it was at `as_of`
        (with both: after `version`, which must have been recorded by `as_of`).

        Raises :class:`~eventledger.AggregateNotFound` when it has no events (then).
        """
        check.check_optional_int(version, "version", minimum=1)
        check.check_datetime(as_of, "as_of")
        stream_id = self.aggregate_type.stream_id_for(_check_id(aggregate_id))
        if as_of is not None:
            then = await self._version_at(stream_id, as_of)
            if then == 0:
                raise AggregateNotFound(
                    f"{self.aggregate_type.__name__} {aggregate_id!r} did not exist at {as_of}"
                )
            if version is not None and version > then:
                raise AggregateNotFound(
                    f"{self.aggregate_type.__name__} {aggregate_id!r} had {then} events at"
                    f" {as_of}, not {version}"
                )
            version = then if version is None else version
        aggregate = await self._from_snapshot(aggregate_id, stream_id, version)
        start = aggregate.version + 1 if aggregate is not None else 1
        if aggregate is None:
            aggregate = self.aggregate_type(id=aggregate_id)
        remaining = None if version is None else version - start + 1
        while remaining != 0:
            # A page at a time: one store call and one decode pass per page.
            size = PAGE if remaining is None else min(remaining, PAGE)
            page = await self.store.read_stream_page(stream_id, from_version=start, limit=size)
            if page:
                aggregate._replay(self.registry.decode_page(page), [e.version for e in page])
            if len(page) < size:
                break
            start = page[-1].version + 1
            if remaining is not None:
                remaining -= len(page)
        if aggregate.version == 0:
            raise AggregateNotFound(
                f"{self.aggregate_type.__name__} {aggregate_id!r} has no events"
            )
        if version is not None and aggregate.version < version:
            raise AggregateNotFound(
                f"{self.aggregate_type.__name__} {aggregate_id!r} has {aggregate.version}"
                f" events, not {version}"
            )
        return aggregate

    async def exists(self, aggregate_id: str) -> bool:
        stream_id = self.aggregate_type.stream_id_for(_check_id(aggregate_id))
        return await self.store.stream_version(stream_id) > 0

    async def history(self, aggregate_id: str) -> list[HistoryEntry]:
        """Every event of the aggregate, oldest first, with versions, times and metadata.

        Events of a type no class is registered for are kept, with `event` None.
        """
        stream_id = self.aggregate_type.stream_id_for(_check_id(aggregate_id))
        entries: list[HistoryEntry] = []
        async for recorded in self.store.read_stream(stream_id):
            try:
                event: Event | None = self.registry.decode(recorded)
            except UnknownEventType:
                event = None
            entries.append(
                HistoryEntry(
                    recorded.version,
                    recorded.position,
                    recorded.recorded_at,
                    recorded.type,
                    event,
                    recorded.metadata,
                    recorded,
                )
            )
        if not entries:
            raise AggregateNotFound(
                f"{self.aggregate_type.__name__} {aggregate_id!r} has no events"
            )
        return entries

    # --- saving -----------------------------------------------------------------------------

    async def save(
        self, aggregate: A, *, metadata: Mapping[str, Any] | None = None
    ) -> AppendResult | None:
        """Append the aggregate's pending events, expecting the version it was loaded at.

        Every event gets the current message context's metadata (correlation id,
        causation id, actor) plus `metadata`. A concurrent change raises
        :class:`~eventledger.WrongExpectedVersion` and writes nothing. Returns
        None when there was nothing to save.
        """
        pending = self.pending_append(aggregate, metadata)
        if pending is None:
            return None
        stream_id, events, expected = pending
        result = await self.store.append(stream_id, events, expected_version=expected)
        await self.saved(aggregate, result)
        return result

    async def save_in(
        self,
        tx: StoreTransaction,
        aggregate: A,
        *,
        metadata: Mapping[str, Any] | None = None,
    ) -> AppendResult | None:
        """Append the aggregate's pending events as part of a store transaction (with other
        aggregates' events, say). Call :meth:`saved` once the transaction committed."""
        pending = self.pending_append(aggregate, metadata)
        if pending is None:
            return None
        stream_id, events, expected = pending
        return await tx.append(stream_id, events, expected_version=expected)

    def pending_append(
        self, aggregate: A, metadata: Mapping[str, Any] | None = None
    ) -> tuple[str, list[NewEvent], ExpectedVersion] | None:
        """What saving the aggregate appends: its stream, its new events (with the
        message context's metadata) and the version expected; None if nothing is new."""
        if not isinstance(aggregate, self.aggregate_type):
            raise InvalidInput(
                f"this repository saves {self.aggregate_type.__name__},"
                f" not {type(aggregate).__name__}"
            )
        pending = aggregate.pending_events
        if not pending:
            return None
        shared = event_metadata(metadata)
        expected = aggregate.saved_version or NO_STREAM
        return aggregate.stream_id, [event.to_new_event(shared) for event in pending], expected

    async def saved(self, aggregate: A, result: AppendResult) -> None:
        """After its events were appended: forget them, and take a snapshot when due."""
        count = len(aggregate.pending_events)
        aggregate.mark_saved()
        if self.snapshot_every and (
            result.version // self.snapshot_every > (result.version - count) // self.snapshot_every
        ):
            await self._take_snapshot(aggregate)

    async def update(
        self,
        aggregate_id: str,
        decide: Callable[[A], Any],
        *,
        retries: int = 3,
        metadata: Mapping[str, Any] | None = None,
    ) -> A:
        """Load, run `decide` (sync or async) on the aggregate, save; when another writer
        got there first, do it all again on a fresh load, up to `retries` more times."""
        check.check_int(retries, "retries", minimum=0, maximum=100)
        for attempt in range(retries + 1):
            aggregate = await self.load(aggregate_id)
            outcome = decide(aggregate)
            if inspect.isawaitable(outcome):
                await outcome
            try:
                await self.save(aggregate, metadata=metadata)
            except WrongExpectedVersion as conflict:
                if attempt == retries:
                    raise ConflictError(
                        f"{self.aggregate_type.__name__} {aggregate_id!r} kept changing under"
                        f" this update; gave up after {retries + 1} attempts ({conflict})"
                    ) from conflict
                continue
            return aggregate
        raise AssertionError("unreachable")  # pragma: no cover

    # --- internals ----------------------------------------------------------------------------

    def _not_found(self, aggregate_id: str) -> AggregateNotFound:
        return AggregateNotFound(f"{self.aggregate_type.__name__} {aggregate_id!r} has no events")

    async def _version_at(self, stream_id: str, moment: datetime) -> int:
        async for recorded in self.store.read_stream(
            stream_id, backwards=True, limit=1, as_of=moment
        ):
            return recorded.version
        return 0

    async def _from_snapshot(
        self, aggregate_id: str, stream_id: str, version: int | None
    ) -> A | None:
        if not self.snapshot_every:
            return None
        snapshot = await self.store.load_snapshot(stream_id, max_version=version)
        if snapshot is None:
            return None
        kind = self.aggregate_type.__name__
        fingerprint = self.aggregate_type.snapshot_fingerprint()
        if snapshot.kind != kind or snapshot.fingerprint != fingerprint:
            log.info(
                "ignoring the snapshot of %s at version %d: taken by %s %s, this is %s %s",
                stream_id,
                snapshot.version,
                snapshot.kind,
                snapshot.fingerprint,
                kind,
                fingerprint,
            )
            return None
        aggregate = self.aggregate_type.from_snapshot(snapshot.state, snapshot.version)
        if aggregate.id != aggregate_id:
            log.warning("ignoring the snapshot of %s: it holds id %r", stream_id, aggregate.id)
            return None
        return aggregate

    async def _take_snapshot(self, aggregate: A) -> None:
        snapshot = Snapshot(
            aggregate.stream_id,
            aggregate.version,
            self.aggregate_type.__name__,
            self.aggregate_type.snapshot_fingerprint(),
            aggregate.to_snapshot(),
        )
        try:
            await self.store.save_snapshot(snapshot)
        except Exception:
            # The events are saved; a missing snapshot only makes later loads replay more.
            log.exception(
                "could not save a snapshot of %s at version %d",
                snapshot.stream_id,
                snapshot.version,
            )


def _check_id(aggregate_id: object) -> str:
    if not isinstance(aggregate_id, str) or not aggregate_id:
        raise InvalidInput(f"an aggregate id must be a non-empty string, not {aggregate_id!r}")
    return aggregate_id
