"""The in-memory store: for tests and small tools. Nothing survives the process.

``memory://`` opens a fresh, private log. ``memory://name`` opens the log
called `name` in this process, shared by every store opened with the same
URL for as long as one of them is open, so that several store instances
can work on one log the way separate connections share a database.
"""

from __future__ import annotations

import bisect
import itertools
import threading
import uuid
import weakref
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from eventledger import _json
from eventledger._validation import PreparedEvent
from eventledger.errors import ConflictError, DuplicateEventId, InvalidInput, WrongExpectedVersion
from eventledger.records import (
    AppendResult,
    ExpectedVersion,
    RecordedEvent,
    Snapshot,
    StreamInfo,
)
from eventledger.stores._notify import AppendSignal, signal_for
from eventledger.stores._repeats import FoundEvent, expected_holds, resolve_repeat
from eventledger.stores.base import DEFAULT_PAGE_SIZE, EventStore, StoreTransaction

__all__ = ["MemoryStore", "MemoryTransaction"]


@dataclass(slots=True)
class _Stored:
    id: uuid.UUID
    stream_id: str
    version: int
    position: int
    type: str
    schema_version: int
    data: bytes
    metadata: bytes
    recorded_at: datetime

    def decode(self) -> RecordedEvent:
        return RecordedEvent(
            self.id,
            self.stream_id,
            self.version,
            self.position,
            self.type,
            self.schema_version,
            _json.loads(self.data),
            _json.loads(self.metadata),
            self.recorded_at,
        )


@dataclass(slots=True)
class _Stream:
    positions: list[int] = field(default_factory=list)
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    updated_at: datetime = field(default_factory=lambda: datetime.now(UTC))


class _Log:
    """The shared state of one in-memory log. Positions are list index + 1."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.events: list[_Stored] = []
        self.times: list[datetime] = []
        self.streams: dict[str, _Stream] = {}
        self.ids: dict[uuid.UUID, _Stored] = {}
        self.correlations: dict[str, list[int]] = {}
        self.snapshots: dict[str, dict[int, tuple[Snapshot, bytes]]] = {}
        # The read side (see eventledger.projections): what SQL stores keep in tables.
        self.checkpoints: dict[str, int] = {}
        self.leases: dict[str, tuple[str, float]] = {}
        self.dead_letters: list[dict[str, Any]] = []
        self.read_models: dict[str, int] = {}
        self.documents: dict[str, dict[str, bytes]] = {}
        self.views: dict[str, str] = {}
        self.dead_letter_ids = itertools.count(1)
        # Commands and process managers (see eventledger.commands, eventledger.process).
        self.commands: dict[uuid.UUID, Any] = {}
        self.command_keys: dict[str, uuid.UUID] = {}
        self.process_instances: dict[tuple[str, str], Any] = {}
        self.process_timeouts: dict[uuid.UUID, Any] = {}
        self.api_keys: dict[str, Any] = {}


_named_logs: weakref.WeakValueDictionary[str, _Log] = weakref.WeakValueDictionary()
_named_logs_lock = threading.Lock()


class MemoryTransaction(StoreTransaction):
    """Changes to the memory store's read side, applied together when it commits."""

    dialect = "memory"

    def __init__(self, log: _Log) -> None:
        self.log = log
        self._changes: list[Callable[[], None]] = []
        self._checks: list[Callable[[], None]] = []
        # Appends wait for the commit. Optimistic: the transaction saw the log at
        # length `_base`; if anything else was appended before it commits, it fails
        # with a ConflictError (run it again) rather than hand out wrong positions.
        self._base: int | None = None
        self._pending: list[tuple[str, list[PreparedEvent]]] = []
        self._pending_versions: dict[str, int] = {}

    def defer(self, change: Callable[[], None]) -> None:
        """Run `change` (under the log's lock) when the transaction commits."""
        self._changes.append(change)

    def require(self, check: Callable[[], None]) -> None:
        """Run `check` (under the log's lock) before the commit changes anything; an
        exception it raises fails the commit with nothing applied."""
        self._checks.append(check)

    async def _append(
        self, stream_id: str, expected: ExpectedVersion, events: list[PreparedEvent]
    ) -> AppendResult:
        log = self.log
        with log.lock:
            if self._base is None:
                self._base = len(log.events)
            elif len(log.events) != self._base:
                raise _moved_on()
            found = [str(e.id) for e in events if e.id in log.ids]
            if found:
                raise DuplicateEventId(
                    stream_id, found, "inside a transaction every appended event must be new"
                )
            stream = log.streams.get(stream_id)
            actual = self._pending_versions.get(stream_id, len(stream.positions) if stream else 0)
        if not expected_holds(expected, actual):
            raise WrongExpectedVersion(stream_id, expected, actual)
        self._pending.append((stream_id, events))
        self._pending_versions[stream_id] = actual + len(events)
        position = self._base + sum(len(batch) for _, batch in self._pending)
        return AppendResult(actual + len(events), position)

    def _commit(self) -> None:
        with self.log.lock:
            for check in self._checks:
                check()
            if self._pending:
                if len(self.log.events) != self._base:
                    raise _moved_on()
                now = _now(self.log)
                for stream_id, events in self._pending:
                    _write(self.log, stream_id, events, now)
            for change in self._changes:
                change()

    async def execute(self, sql: str, *args: Any) -> None:
        raise _no_sql()

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        raise _no_sql()

    async def fetch(self, sql: str, *args: Any) -> list[Sequence[Any]]:
        raise _no_sql()


def _moved_on() -> ConflictError:
    return ConflictError(
        "other appends reached the memory log while this transaction ran; run it again"
    )


def _now(log: _Log) -> datetime:
    now = datetime.now(UTC)
    if log.times and log.times[-1] > now:
        now = log.times[-1]  # keep time from running backwards along the log
    return now


def _write(log: _Log, stream_id: str, events: list[PreparedEvent], now: datetime) -> AppendResult:
    """Record checked events at the end of the log (the caller holds its lock)."""
    stream = log.streams.get(stream_id)
    if stream is None:
        stream = log.streams[stream_id] = _Stream(created_at=now, updated_at=now)
    actual = len(stream.positions)
    for offset, event in enumerate(events, start=1):
        stored = _Stored(
            event.id,
            stream_id,
            actual + offset,
            len(log.events) + 1,
            event.type,
            event.schema_version,
            event.data,
            event.metadata,
            now,
        )
        log.events.append(stored)
        log.times.append(now)
        log.ids[event.id] = stored
        stream.positions.append(stored.position)
        if b'"correlation_id"' in event.metadata:
            correlation = _json.loads(event.metadata).get("correlation_id")
            if isinstance(correlation, str):
                log.correlations.setdefault(correlation, []).append(stored.position)
    stream.updated_at = now
    return AppendResult(len(stream.positions), len(log.events))


def _no_sql() -> InvalidInput:
    return InvalidInput(
        "the memory store has no SQL; use a document or in-memory read model with it,"
        " or a SQLite or PostgreSQL store for SQL read models"
    )


class MemoryStore(EventStore):
    """An event store held in this process's memory."""

    dialect = "memory"

    def __init__(self, name: str = "") -> None:
        self.url = f"memory://{name}"
        if not name:
            self._log = _Log()
            self._signal = AppendSignal()
            return
        self._signal = signal_for(f"memory://{name}")
        with _named_logs_lock:
            log = _named_logs.get(name)
            if log is None:
                log = _Log()
                _named_logs[name] = log
            self._log = log

    async def _append(
        self, stream_id: str, expected: ExpectedVersion, events: list[PreparedEvent]
    ) -> AppendResult:
        log = self._log
        with log.lock:
            stream = log.streams.get(stream_id)
            actual = len(stream.positions) if stream else 0
            found = [log.ids[e.id] for e in events if e.id in log.ids]
            if found:
                return resolve_repeat(
                    stream_id,
                    expected,
                    [e.id for e in events],
                    (FoundEvent(f.id, f.stream_id, f.version, f.position) for f in found),
                )
            if not expected_holds(expected, actual):
                raise WrongExpectedVersion(stream_id, expected, actual)
            return _write(log, stream_id, events, _now(log))

    async def _read_stream(
        self,
        stream_id: str,
        from_version: int | None,
        backwards: bool,
        limit: int | None,
        as_of: datetime | None,
    ) -> AsyncIterator[RecordedEvent]:
        log = self._log
        with log.lock:
            stream = log.streams.get(stream_id)
            positions = list(stream.positions) if stream else []
        if backwards:
            end = len(positions) if from_version is None else min(from_version, len(positions))
            chosen = positions[:end][::-1]
        else:
            chosen = positions[(from_version or 1) - 1 :]
        yielded = 0
        for position in chosen:
            stored = log.events[position - 1]
            if as_of is not None and stored.recorded_at > as_of:
                if backwards:
                    continue
                break
            yield stored.decode()
            yielded += 1
            if limit is not None and yielded >= limit:
                return

    async def _read_all(
        self, after: int, limit: int | None, since: datetime | None
    ) -> AsyncIterator[RecordedEvent]:
        log = self._log
        index = after
        if since is not None:
            with log.lock:
                index = max(index, bisect.bisect_left(log.times, since))
        remaining = limit
        while remaining is None or remaining > 0:
            page_size = (
                DEFAULT_PAGE_SIZE if remaining is None else min(remaining, DEFAULT_PAGE_SIZE)
            )
            with log.lock:
                page = log.events[index : index + page_size]
            if not page:
                return
            for stored in page:
                yield stored.decode()
            index += len(page)
            if remaining is not None:
                remaining -= len(page)

    async def _stream_version(self, stream_id: str) -> int:
        with self._log.lock:
            stream = self._log.streams.get(stream_id)
            return len(stream.positions) if stream else 0

    async def _list_streams(self, prefix: str, after: str | None, limit: int) -> list[StreamInfo]:
        with self._log.lock:
            names = sorted(
                name
                for name in self._log.streams
                if name.startswith(prefix) and (after is None or name > after)
            )[:limit]
            return [
                StreamInfo(
                    name,
                    len(self._log.streams[name].positions),
                    self._log.streams[name].created_at,
                    self._log.streams[name].updated_at,
                )
                for name in names
            ]

    async def _count_events(self, after: int, limit: int | None) -> int:
        with self._log.lock:
            count = max(0, len(self._log.events) - after)
        return count if limit is None else min(count, limit)

    async def _head_position(self) -> int:
        with self._log.lock:
            return len(self._log.events)

    async def _read_event(self, event_id: uuid.UUID) -> RecordedEvent | None:
        with self._log.lock:
            stored = self._log.ids.get(event_id)
        return None if stored is None else stored.decode()

    async def _read_correlated(self, correlation_id: str, limit: int) -> list[RecordedEvent]:
        with self._log.lock:
            positions = list(self._log.correlations.get(correlation_id, ()))[:limit]
            chosen = [self._log.events[p - 1] for p in positions]
        return [stored.decode() for stored in chosen]

    async def _save_snapshot(self, snapshot: Snapshot, state: bytes) -> None:
        kept = snapshot._replace(state={}, recorded_at=datetime.now(UTC))
        with self._log.lock:
            self._log.snapshots.setdefault(snapshot.stream_id, {})[snapshot.version] = (kept, state)

    async def _load_snapshot(self, stream_id: str, max_version: int | None) -> Snapshot | None:
        with self._log.lock:
            versions = self._log.snapshots.get(stream_id, {})
            usable = [v for v in versions if max_version is None or v <= max_version]
            if not usable:
                return None
            kept, state = versions[max(usable)]
        return kept._replace(state=_json.loads(state))

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[StoreTransaction]:
        self._check_open()
        tx = MemoryTransaction(self._log)
        yield tx
        tx._commit()
        if tx.appended:
            self._appended()

    def transaction(self) -> AbstractAsyncContextManager[StoreTransaction]:
        return self._transaction()

    @property
    def log(self) -> _Log:
        """The shared state of this log (for the read side's memory storage)."""
        return self._log

    async def _close(self) -> None:
        pass
