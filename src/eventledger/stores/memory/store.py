"""The in-memory store: for tests and small tools. Nothing survives the process.

``memory://`` opens a fresh, private log. ``memory://name`` opens the log
called `name` in this process, shared by every store opened with the same
URL for as long as one of them is open, so that several store instances
can work on one log the way separate connections share a database.
"""

from __future__ import annotations

import bisect
import threading
import uuid
import weakref
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, ClassVar

from eventledger import _json
from eventledger._validation import PreparedEvent
from eventledger.errors import WrongExpectedVersion
from eventledger.records import AppendResult, ExpectedVersion, RecordedEvent, Snapshot, StreamInfo
from eventledger.stores._notify import AppendSignal, signal_for
from eventledger.stores._repeats import FoundEvent, expected_holds, resolve_repeat
from eventledger.stores.base import EventStore, StoreTransaction, TimeWindow
from eventledger.stores.memory.log import MemoryLog, MemoryTransaction, log_time, record_events

if TYPE_CHECKING:
    from eventledger.storage import (
        CommandLog,
        Concern,
        KeyStorage,
        PersonalDataStorage,
        ProcessStorage,
        ReadSideStorage,
        RetentionStorage,
    )

__all__ = ["MemoryStore"]

_named_logs: weakref.WeakValueDictionary[str, MemoryLog] = weakref.WeakValueDictionary()
_named_logs_lock = threading.Lock()


class MemoryStore(EventStore):
    """An event store held in this process's memory."""

    backend = "memory"
    ephemeral = True
    capabilities: ClassVar[frozenset[Concern]] = frozenset(
        {"read_side", "command_log", "processes", "api_keys", "personal_data", "retention"}
    )

    def __init__(self, name: str = "") -> None:
        self.url = f"memory://{name}"
        if not name:
            self._log = MemoryLog()
            self._signal = AppendSignal()
            return
        self._signal = signal_for(f"memory://{name}")
        with _named_logs_lock:
            log = _named_logs.get(name)
            if log is None:
                log = MemoryLog()
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
            return record_events(log, stream_id, events, log_time(log))

    async def _read_stream_page(
        self, stream_id: str, cursor: int, backwards: bool, size: int, as_of: datetime | None
    ) -> list[RecordedEvent]:
        log = self._log
        with log.lock:
            stream = log.streams.get(stream_id)
            positions = stream.positions if stream else []
            floor = stream.floor if stream else 1  # deleted or hidden below it
            if as_of is not None:
                # Times never run backwards within a stream: "as of" is a prefix of it.
                times = [log.events[p - 1].recorded_at for p in positions]
                positions = positions[: bisect.bisect_right(times, as_of)]
            if backwards:
                end = min(cursor, len(positions))
                chosen = positions[max(floor - 1, end - size) : end][::-1]
            else:
                start = max(cursor, floor)
                chosen = positions[start - 1 : start - 1 + size]
            stored = [log.events[p - 1] for p in chosen]
        return [s.decode() for s in stored]

    async def _read_all_page(
        self, after: int, size: int, window: TimeWindow | None
    ) -> list[RecordedEvent]:
        # Times never run backwards along the memory log: the window is a range of it.
        end = after + size
        if window is not None and window.upto is not None:
            end = min(end, window.upto)
        with self._log.lock:
            if not self._log.deleted:
                page = self._log.events[after:end]
            else:  # skip deleted events: a page is short only at the end
                limit = len(self._log.events)
                if window is not None and window.upto is not None:
                    limit = min(limit, window.upto)
                page = []
                index = after
                while len(page) < size and index < limit:
                    if not self._log.events[index].gone:
                        page.append(self._log.events[index])
                    index += 1
        return [stored.decode() for stored in page]

    async def _last_position_until(self, until: datetime) -> int | None:
        with self._log.lock:
            count = bisect.bisect_right(self._log.times, until)
        return count or None

    async def _first_position_since(self, since: datetime) -> int | None:
        with self._log.lock:
            index = bisect.bisect_left(self._log.times, since)
            return index + 1 if index < len(self._log.times) else None

    async def _stream_version(self, stream_id: str) -> int:
        with self._log.lock:
            stream = self._log.streams.get(stream_id)
            return len(stream.positions) if stream else 0

    async def _list_streams(self, prefix: str, after: str | None, limit: int) -> list[StreamInfo]:
        with self._log.lock:
            names = sorted(
                name
                for name, stream in self._log.streams.items()
                if name.startswith(prefix)
                and (after is None or name > after)
                and len(stream.positions) >= stream.floor  # not deleted or hidden
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

    async def _count_events(self, after: int, upto: int, limit: int | None) -> int:
        with self._log.lock:
            end = min(len(self._log.events), upto)
            if self._log.deleted:
                count = sum(1 for s in self._log.events[after:end] if not s.gone)
            else:
                count = max(0, end - after)
        return count if limit is None else min(count, limit)

    async def _head_position(self) -> int:
        with self._log.lock:
            return len(self._log.events)

    async def _read_event(self, event_id: uuid.UUID) -> RecordedEvent | None:
        with self._log.lock:
            stored = self._log.ids.get(event_id)
            if stored is not None and stored.version < self._log.streams[stored.stream_id].floor:
                stored = None  # a soft-deleted stream's
        return None if stored is None else stored.decode()

    async def _read_correlated(self, correlation_id: str, limit: int) -> list[RecordedEvent]:
        with self._log.lock:
            positions = list(self._log.correlations.get(correlation_id, ()))[:limit]
            chosen = [self._log.events[p - 1] for p in positions]
        return [stored.decode() for stored in chosen if not stored.gone]

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
    async def _transaction(self, appends: bool) -> AsyncIterator[StoreTransaction]:
        self._check_open()
        tx = MemoryTransaction(self._log)
        tx.appends_declared = appends
        tx.max_event_size = self.max_event_size
        tx.owner = self
        yield tx
        tx.commit()
        self._committed(tx)

    def transaction(
        self, *, appends: bool = False
    ) -> AbstractAsyncContextManager[StoreTransaction]:
        return self._transaction(appends)

    # --- what the memory backend keeps besides the log ----------------------------------------

    def read_side(self) -> ReadSideStorage:
        from eventledger.stores.memory.read_side import MemoryReadSide

        return MemoryReadSide(self._log)

    def command_log(self) -> CommandLog:
        from eventledger.stores.memory.command_log import MemoryCommandLog

        return MemoryCommandLog(self._log)

    def process_storage(self) -> ProcessStorage:
        from eventledger.stores.memory.processes import MemoryProcessStorage

        return MemoryProcessStorage(self._log)

    def key_storage(self) -> KeyStorage:
        from eventledger.stores.memory.keys import MemoryKeyStorage

        return MemoryKeyStorage(self._log)

    def personal_data_storage(self) -> PersonalDataStorage:
        from eventledger.stores.memory.personal import MemoryPersonalDataStorage

        return MemoryPersonalDataStorage(self._log)

    def retention_storage(self) -> RetentionStorage:
        from eventledger.stores.memory.retention import MemoryRetentionStorage

        return MemoryRetentionStorage(self._log)

    async def _close(self) -> None:
        pass
