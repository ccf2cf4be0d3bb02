"""Retention and deleting streams: soft delete and restore, hard deletion of a stream's
events with a tombstone, and retention policies per category. See
docs/personal-data.md, "Retention and deleting streams".

Every change records an event in the stream :data:`RETENTION_STREAM`, in the same
transaction, so that projections hear it: ``StreamDeleted`` (``hard`` false or true),
``StreamRestored`` and ``StreamTruncated``, each with the ``stream_id`` and the
``before_version`` it concerns.

>>> import asyncio
>>> from eventledger import NewEvent, open_store
>>> async def main() -> tuple[int, int, int, list[str]]:
...     async with await open_store("memory://") as store:
...         for n in range(5):
...             await store.append("Reading-1", [NewEvent("Measured", {"n": n})])
...         await delete_stream(store, "Reading-1")  # soft: hidden, still in the log
...         hidden = len([e async for e in store.read_stream("Reading-1")])
...         await restore_stream(store, "Reading-1")
...         trimmed = await apply_retention(store, [RetentionPolicy("Reading", max_count=2)])
...         left = [e.data["n"] async for e in store.read_stream("Reading-1")]
...         kinds = [e.type async for e in store.read_all() if e.stream_id == RETENTION_STREAM]
...         return hidden, trimmed[0].deleted, len(left), kinds
>>> asyncio.run(main())
(0, 3, 2, ['StreamDeleted', 'StreamRestored', 'StreamTruncated'])
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from eventledger import _validation as check
from eventledger.context import event_metadata
from eventledger.errors import InvalidInput, NotFound
from eventledger.records import NewEvent
from eventledger.storage import RetentionStorage, StreamExtent
from eventledger.stores.base import EventStore

__all__ = [
    "DEFAULT_BATCH",
    "RETENTION_STREAM",
    "STREAM_DELETED",
    "STREAM_RESTORED",
    "STREAM_TRUNCATED",
    "Deleted",
    "RetentionPolicy",
    "Trimmed",
    "apply_retention",
    "delete_stream",
    "restore_stream",
    "truncate_stream",
]

RETENTION_STREAM = "$retention"
"""The stream that holds the events below (one stream, apart from the streams deleted,
so that a restored stream's own events are what they were)."""
STREAM_DELETED = "StreamDeleted"
STREAM_RESTORED = "StreamRestored"
STREAM_TRUNCATED = "StreamTruncated"
DEFAULT_BATCH = 1000
"""At most this many events are deleted per transaction (each with its tombstone)."""


@dataclass(frozen=True, slots=True)
class Deleted:
    """What one deletion did: the stream, whether for good (`hard`), the version below
    which its events are gone or hidden, how many events that was, and the position of
    the event that records it."""

    stream_id: str
    hard: bool
    before_version: int
    events: int
    position: int


@dataclass(frozen=True, slots=True)
class Trimmed:
    """What retention did (or, in a dry run, would do) to one stream."""

    stream_id: str
    category: str
    before_version: int
    deleted: int


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """How long the streams of a category keep their events: at most `max_age` old,
    and at most the last `max_count` of each stream (either or both).

    >>> RetentionPolicy("Reading", max_age=timedelta(days=30)).prefix
    'Reading-'
    >>> RetentionPolicy("Reading")
    Traceback (most recent call last):
    ...
    eventledger.errors.InvalidInput: a retention policy for 'Reading' needs max_age, \
max_count or both
    """

    category: str
    max_age: timedelta | None = None
    max_count: int | None = None

    def __post_init__(self) -> None:
        if (
            not isinstance(self.category, str)
            or not self.category
            or "-" in self.category
            or self.category != self.category.strip()
        ):
            raise InvalidInput(
                f"a category is a stream id's part before its first '-' (Order for"
                f" Order-12), not {self.category!r}"
            )
        check.check_stream_id(self.prefix)
        if self.max_age is None and self.max_count is None:
            raise InvalidInput(
                f"a retention policy for {self.category!r} needs max_age, max_count or both"
            )
        if self.max_age is not None and (
            not isinstance(self.max_age, timedelta) or self.max_age <= timedelta(0)
        ):
            raise InvalidInput(f"max_age must be a positive timedelta, not {self.max_age!r}")
        if self.max_count is not None:
            check.check_int(self.max_count, "max_count", minimum=1)

    @property
    def prefix(self) -> str:
        """The streams it covers start with this."""
        return f"{self.category}-"

    def before_version(self, extent: StreamExtent, last_too_old: int) -> int:
        """The version below which a stream's events go: `last_too_old` is the highest
        version recorded before the age limit (0: none)."""
        before = 1
        if self.max_count is not None:
            before = max(before, extent.version - self.max_count + 1)
        if self.max_age is not None:
            before = max(before, last_too_old + 1)
        return before


def _storage(store: EventStore) -> RetentionStorage:
    store.require("retention")
    return store.retention_storage()


def _check(stream_id: str) -> str:
    stream_id = check.check_stream_id(stream_id)
    if stream_id == RETENTION_STREAM:
        raise InvalidInput(f"{RETENTION_STREAM!r} records deletions; it cannot be deleted")
    return stream_id


def _event(kind: str, data: dict[str, Any]) -> NewEvent:
    return NewEvent(kind, data, event_metadata())


async def delete_stream(store: EventStore, stream_id: str, *, hard: bool = False) -> Deleted:
    """Delete a stream.

    Soft (the default): the stream reads as if it did not exist (``read_stream``,
    ``read_event``, ``list_streams``) while its events stay in the global log, and
    :func:`restore_stream` brings it back. An append to it recreates it: its version
    goes on (``stream_version`` still tells the real one; expect that or ``ANY``), and
    only events appended since show until it is restored.

    `hard`: its events are deleted for good, a batch per transaction (see
    :func:`truncate_stream`); the last transaction records ``StreamDeleted`` with
    ``hard: true``. Positions of other events never change, and the stream's
    versions are never reused: the next append continues after its last version.

    Raises :class:`~eventledger.NotFound` for a stream without events (or one
    soft-deleted already, unless `hard`).
    """
    stream_id = _check(stream_id)
    storage = _storage(store)
    if hard:
        return (await _delete_events(store, storage, stream_id, None, DEFAULT_BATCH))[-1]
    async with store.transaction(appends=True) as tx:
        extent = await storage.lock_stream(tx, stream_id)
        end = extent.version + 1
        if extent.first is None or (extent.hidden_before or 0) >= end:
            raise NotFound(f"no stream {stream_id!r} to delete (it has no events to show)")
        await storage.hide_stream(tx, stream_id, end, datetime.now(UTC))
        visible = extent.version - max(extent.first, extent.hidden_before or 1) + 1
        data = {"stream_id": stream_id, "hard": False, "before_version": end, "events": visible}
        appended = await tx.append(RETENTION_STREAM, [_event(STREAM_DELETED, data)])
    return Deleted(stream_id, False, end, visible, appended.position)


async def restore_stream(store: EventStore, stream_id: str) -> Deleted:
    """Undo a soft delete: the stream's events (those not deleted for good) read again,
    and ``StreamRestored`` is recorded. Raises :class:`~eventledger.NotFound` if the
    stream is not soft-deleted."""
    stream_id = _check(stream_id)
    storage = _storage(store)
    async with store.transaction(appends=True) as tx:
        extent = await storage.lock_stream(tx, stream_id)
        if extent.hidden_before is None:
            raise NotFound(f"the stream {stream_id!r} is not deleted; nothing to restore")
        await storage.show_stream(tx, stream_id)
        shown = 0 if extent.first is None else extent.hidden_before - extent.first
        data = {"stream_id": stream_id, "before_version": extent.hidden_before, "events": shown}
        appended = await tx.append(RETENTION_STREAM, [_event(STREAM_RESTORED, data)])
    return Deleted(stream_id, False, extent.hidden_before, max(shown, 0), appended.position)


async def truncate_stream(
    store: EventStore, stream_id: str, before_version: int, *, batch: int = DEFAULT_BATCH
) -> list[Deleted]:
    """Delete a stream's events below `before_version` for good, at most `batch` per
    transaction, each transaction with a ``StreamTruncated`` tombstone (``hard: true``,
    the ``before_version`` it reached). Nothing else moves: the remaining events keep
    their positions and versions, and appends go on after the last version. Snapshots
    below ``before_version - 1`` go too (they could not be brought up to date).

    A follower of ``read_all`` sees each event at most once, in order; one that has
    not reached a deleted event yet never sees it. Returns one :class:`Deleted` per
    transaction (none when nothing was there to delete).
    """
    stream_id = _check(stream_id)
    before = check.check_int(before_version, "before_version", minimum=1)
    return await _delete_events(store, _storage(store), stream_id, before, batch)


async def _delete_events(
    store: EventStore,
    storage: RetentionStorage,
    stream_id: str,
    before: int | None,
    batch: int,
) -> list[Deleted]:
    """Delete below `before` (None: everything, ending with ``StreamDeleted``)."""
    batch = check.check_int(batch, "batch", minimum=1)
    done: list[Deleted] = []
    everything = before is None
    while True:
        async with store.transaction(appends=True) as tx:
            extent = await storage.lock_stream(tx, stream_id)
            if before is None:  # what is there now; later appends stay
                if extent.first is None:
                    raise NotFound(f"no stream {stream_id!r} to delete (no events left)")
                before = extent.version + 1
            target = min(before, extent.version + 1)
            first = extent.first if extent.first is not None else extent.deleted_before
            if target <= first and not (everything and not done):
                return done
            end = min(target, first + batch)
            last = end == target
            count = await storage.delete_events(tx, stream_id, end, whole=everything and last)
            kind = STREAM_DELETED if everything and last else STREAM_TRUNCATED
            data = {"stream_id": stream_id, "hard": True, "before_version": end, "events": count}
            appended = await tx.append(RETENTION_STREAM, [_event(kind, data)])
        done.append(Deleted(stream_id, True, end, count, appended.position))
        if last:
            return done


async def apply_retention(
    store: EventStore,
    policies: Sequence[RetentionPolicy],
    *,
    dry_run: bool = False,
    now: datetime | None = None,
    batch: int = DEFAULT_BATCH,
) -> list[Trimmed]:
    """Enforce `policies`: in every stream of their categories (soft-deleted ones too),
    delete for good the events too old or beyond the count to keep, stream by stream,
    at most `batch` events per transaction, each with a ``StreamTruncated`` tombstone
    (see :func:`truncate_stream`). With `dry_run` nothing changes: the result says what
    would go. `now` is when ages are counted from (default: now)."""
    storage = _storage(store)
    for policy in policies:
        if not isinstance(policy, RetentionPolicy):
            raise InvalidInput(f"expected a RetentionPolicy, not {policy!r}")
    moment = check.check_datetime(now, "now") or datetime.now(UTC)
    trimmed: list[Trimmed] = []
    for policy in policies:
        after: str | None = None
        while True:
            page = await storage.streams(policy.prefix, after, 100)
            for extent in page:
                old = 0
                if policy.max_age is not None:
                    try:
                        cutoff = moment - policy.max_age
                    except OverflowError:
                        cutoff = None
                    if cutoff is not None:
                        old = await storage.last_version_before(extent.stream_id, cutoff)
                before = policy.before_version(extent, old)
                first = extent.first if extent.first is not None else math.inf
                if before <= first:
                    continue
                if dry_run:
                    count = before - int(first)
                else:
                    done = await truncate_stream(store, extent.stream_id, before, batch=batch)
                    count = sum(d.events for d in done)
                if count:
                    trimmed.append(Trimmed(extent.stream_id, policy.category, before, count))
            if len(page) < 100:
                break
            after = page[-1].stream_id
    return trimmed
