"""The shared state of one in-memory log, and transactions on it.

Everything a memory store keeps (events, and what the read side, the command log,
process managers and API keys keep) lives in one :class:`MemoryLog`, guarded by
one lock, so that a transaction's changes apply together.
"""

from __future__ import annotations

import itertools
import threading
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from eventledger import _json
from eventledger._validation import PreparedEvent
from eventledger.errors import ConflictError, DuplicateEventId, InvalidInput, WrongExpectedVersion
from eventledger.records import AppendResult, ExpectedVersion, RecordedEvent, Snapshot
from eventledger.storage import (
    CommandRecord,
    DeadLetter,
    InstanceRow,
    LeaseInfo,
    StoredKey,
    SubjectKey,
    TimeoutRow,
)
from eventledger.stores._repeats import expected_holds
from eventledger.stores.base import StoreTransaction

__all__ = ["MemoryLog", "MemoryTransaction", "in_transaction"]


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
    gone: bool = False
    """Deleted for good (eventledger.retention): kept only to hold its position."""

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
    deleted_before: int = 1
    """Versions below it were deleted for good (eventledger.retention)."""
    hidden_before: int | None = None
    """A soft delete: versions below it are hidden."""

    @property
    def floor(self) -> int:
        """The first version reads may show."""
        return max(self.deleted_before, self.hidden_before or 1)


class MemoryLog:
    """The shared state of one in-memory log. Positions are list index + 1."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.events: list[_Stored] = []
        self.times: list[datetime] = []
        self.streams: dict[str, _Stream] = {}
        self.ids: dict[uuid.UUID, _Stored] = {}
        self.correlations: dict[str, list[int]] = {}
        self.deleted = 0
        """How many events were deleted for good (their positions stay, marked gone)."""
        self.snapshots: dict[str, dict[int, tuple[Snapshot, bytes]]] = {}
        # The read side (see eventledger.projections): what SQL stores keep in tables.
        self.checkpoints: dict[str, int] = {}
        self.leases: dict[str, LeaseInfo] = {}
        self.dead_letters: dict[int, DeadLetter] = {}
        self.read_models: dict[str, int] = {}
        self.documents: dict[str, dict[str, bytes]] = {}
        self.views: dict[str, str] = {}
        self.dead_letter_ids = itertools.count(1)
        # Commands, process managers and API keys.
        self.commands: dict[uuid.UUID, CommandRecord] = {}
        self.command_keys: dict[str, uuid.UUID] = {}
        self.process_instances: dict[tuple[str, str], InstanceRow] = {}
        self.process_timeouts: dict[uuid.UUID, tuple[TimeoutRow, bool]] = {}
        self.api_keys: dict[str, StoredKey] = {}
        # Personal data: the subjects' data keys and the streams holding their values.
        self.subject_keys: dict[str, SubjectKey] = {}
        self.subject_streams: dict[str, set[str]] = {}


class MemoryTransaction(StoreTransaction):
    """Changes to the memory store's read side, applied together when it commits."""

    def __init__(self, log: MemoryLog) -> None:
        self.log = log
        self._changes: list[Callable[[], None]] = []
        self._checks: list[Callable[[], None]] = []
        # Appends wait for the commit. Optimistic: the transaction saw the log at
        # length `_base`; if anything else was appended before it commits, it fails
        # with a ConflictError (run it again) rather than hand out wrong positions.
        self._base: int | None = None
        self._pending: list[tuple[str, list[PreparedEvent]]] = []
        self._pending_versions: dict[str, int] = {}
        self.command_keys: set[str] = set()
        """Idempotency keys recorded in this transaction (a second one is refused)."""

    def defer(self, change: Callable[[], None]) -> None:
        """Run `change` (under the log's lock) when the transaction commits."""
        self.note_statement()
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

    def commit(self) -> None:
        with self.log.lock:
            for check in self._checks:
                check()
            if self._pending:
                if len(self.log.events) != self._base:
                    raise _moved_on()
                now = log_time(self.log)
                for stream_id, events in self._pending:
                    record_events(self.log, stream_id, events, now)
            for change in self._changes:
                change()

    async def _execute(self, sql: str, *args: Any) -> None:
        raise _no_sql()

    async def _executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        raise _no_sql()

    async def _fetch(self, sql: str, *args: Any) -> list[Sequence[Any]]:
        raise _no_sql()


def in_transaction(tx: StoreTransaction) -> MemoryTransaction:
    """The memory transaction `tx` is (the memory backend's concerns take only these)."""
    if not isinstance(tx, MemoryTransaction):
        raise InvalidInput(f"expected a transaction of a memory store, not {tx!r}")
    return tx


def _moved_on() -> ConflictError:
    return ConflictError(
        "other appends reached the memory log while this transaction ran; run it again"
    )


def log_time(log: MemoryLog) -> datetime:
    now = datetime.now(UTC)
    if log.times and log.times[-1] > now:
        now = log.times[-1]  # keep time from running backwards along the log
    return now


def record_events(
    log: MemoryLog, stream_id: str, events: list[PreparedEvent], now: datetime
) -> AppendResult:
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
