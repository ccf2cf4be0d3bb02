"""The event store contract that every backend implements.

Public methods check their arguments here, once for every backend, and then
call the backend's underscored method with clean values. A backend never sees
bad input, so all of them fail the same way on it.
"""

from __future__ import annotations

import abc
import asyncio
import functools
import time
import uuid
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Iterable,
    Iterator,
    Sequence,
)
from contextlib import AbstractAsyncContextManager, contextmanager
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple, Self, TypeVar, cast

from eventledger import _json
from eventledger import _validation as check
from eventledger._validation import PreparedEvent
from eventledger.errors import (
    ConflictError,
    DuplicateEventId,
    InvalidInput,
    StoreClosed,
    UnsupportedFeature,
)
from eventledger.observability import instruments, tracing
from eventledger.records import (
    ANY,
    AppendResult,
    ExpectedVersion,
    Horizon,
    NewEvent,
    RecordedEvent,
    Snapshot,
    StreamInfo,
)
from eventledger.stores._notify import AppendSignal

if TYPE_CHECKING:
    from eventledger.personal.keyring import Keyring
    from eventledger.storage import (
        CommandLog,
        Concern,
        KeyStorage,
        PersonalDataStorage,
        ProcessStorage,
        ReadSideStorage,
        RetentionStorage,
        SqlTables,
    )

__all__ = ["EventStore", "StoreTransaction"]


class TimeWindow(NamedTuple):
    """Times a read keeps events between, and the last position that can hold one."""

    since: datetime | None
    until: datetime | None
    upto: int | None


M = TypeVar("M", bound=Callable[..., Coroutine[Any, Any, Any]])

DEFAULT_PAGE_SIZE = 500
MAX_LIST_LIMIT = 10_000
MAX_VERSION = (1 << 63) - 1
MAX_POSITION = (1 << 63) - 1


class StoreTransaction(abc.ABC):
    """A transaction on the store's own database: appends to several streams, and
    rows that belong with them (a read model's writes and its checkpoint, a command's
    idempotency record), commit together or not at all.

    :meth:`execute` and the ``fetch`` methods take SQL in the backend's own dialect;
    :meth:`~eventledger.storage.SqlTables.bind` makes portable SQL with ``:name``
    placeholders the backend's. A backend without SQL (memory) refuses them.

    A transaction that appends must append before it runs anything else, unless it
    was opened with ``store.transaction(appends=True)``: on PostgreSQL, readers wait
    only for transactions that declared themselves writers before they wrote
    anything (see ``docs/ordering.md``), and every backend keeps the same rule.
    """

    appends_declared: bool = False
    """Opened with ``appends=True``: it may append after other statements."""
    max_event_size: int = check.DEFAULT_MAX_EVENT_SIZE
    _failed: str | None = None
    _appended_ids: set[uuid.UUID] | None = None
    _statements: int = 0
    _statements_of_others: int = 0
    _library_depth: int = 0
    _first_append_at: float = 0.0
    _on_commit: list[Callable[[], None]] | None = None
    owner: EventStore | None = None
    """The store the transaction runs on (backends set it)."""

    def on_commit(self, callback: Callable[[], None]) -> None:
        """Run `callback` once the transaction has committed (not if it rolls back)."""
        if self._on_commit is None:
            self._on_commit = []
        self._on_commit.append(callback)

    async def append(
        self,
        stream_id: str,
        events: Iterable[NewEvent],
        *,
        expected_version: ExpectedVersion = ANY,
    ) -> AppendResult:
        """Append to a stream as part of this transaction; visible to readers once it
        commits, together with everything else it did.

        Checks are those of :meth:`EventStore.append`, with one difference: the
        unit of retry is the whole transaction, so ids already recorded (even
        by an identical earlier append) raise :class:`~eventledger.DuplicateEventId`.
        A version conflict raises :class:`~eventledger.WrongExpectedVersion` (or,
        when another transaction appended to the same stream at the same time,
        :class:`~eventledger.ConflictError`). After a failed append the transaction
        can only be rolled back: let the exception leave the ``async with``.
        """
        if self._failed is not None:
            raise InvalidInput(
                f"this transaction failed earlier ({self._failed}); let it roll back and run"
                " it again"
            )
        if self._statements and self._appended_ids is None and not self.appends_declared:
            raise InvalidInput(
                "this transaction ran other statements before its first append; append"
                " first, or open it with store.transaction(appends=True)"
            )
        stream_id = check.check_stream_id(stream_id)
        expected = check.check_expected_version(expected_version)
        events = _listed(events)
        prepared = check.prepare_events(events, self.max_event_size)
        seen = self._appended_ids if self._appended_ids is not None else set()
        reused = [str(e.id) for e in prepared if e.id in seen]
        if reused:
            self._failed = "event ids used twice"
            raise DuplicateEventId(stream_id, reused, "this transaction appended them already")
        sealing = None
        if self.owner is not None and _any_personal(events):
            try:
                sealed, sealing = await self.owner.keyring.seal(stream_id, list(events))
            except BaseException as error:
                self._failed = f"{type(error).__name__} on {stream_id!r}"
                raise
            prepared = check.prepare_events(sealed, self.max_event_size)
        if not seen:
            self._first_append_at = time.perf_counter()
        try:
            with tracing.span(
                f"append {stream_id}",
                attributes={
                    "eventledger.stream_id": stream_id,
                    "eventledger.events": len(prepared),
                },
            ):
                result = await self._append(stream_id, expected, prepared)
                if sealing is not None and self.owner is not None:
                    await self.owner.keyring.record(self, sealing)
        except BaseException as error:
            self._failed = f"{type(error).__name__} on {stream_id!r}"
            raise
        seen.update(e.id for e in prepared)
        self._appended_ids = seen
        return result

    @property
    def appended(self) -> bool:
        """Whether this transaction appended events."""
        return bool(self._appended_ids)

    async def _append(
        self, stream_id: str, expected: ExpectedVersion, events: list[PreparedEvent]
    ) -> AppendResult:
        raise InvalidInput(f"{type(self).__name__} cannot append events")

    @property
    def statements(self) -> int:
        """How many statements ran in this transaction (appends not counted)."""
        return self._statements

    @property
    def statements_of_others(self) -> int:
        """How many of those statements eventledger's storage did not run itself: SQL
        that may leave settings, cursors, listeners or session locks behind, so the
        connection's session is reset after the commit (PostgreSQL)."""
        return self._statements_of_others

    @contextmanager
    def library_statements(self) -> Iterator[None]:
        """Statements run inside are eventledger's own storage SQL (command records,
        documents, checkpoints, process state), which leaves the session as it found it:
        their connection needs no reset. Not for SQL of one's own."""
        self._library_depth += 1
        try:
            yield
        finally:
            self._library_depth -= 1

    def note_statement(self) -> None:
        """Count a statement run in this transaction (backends that write without SQL
        call it for their writes)."""
        self._statements += 1
        if not self._library_depth:
            self._statements_of_others += 1

    async def execute(self, sql: str, *args: Any) -> None:
        """Run a statement in this transaction."""
        self.note_statement()
        await self._execute(sql, *args)

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        """Run a statement once for each row of arguments."""
        self.note_statement()
        await self._executemany(sql, rows)

    async def fetch(self, sql: str, *args: Any) -> list[Sequence[Any]]:
        """Run a query in this transaction (it sees the transaction's own writes)."""
        self.note_statement()
        return await self._fetch(sql, *args)

    async def fetch_records(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        """Like :meth:`fetch`, each row a dict by column name."""
        self.note_statement()
        return await self._fetch_records(sql, *args)

    @abc.abstractmethod
    async def _execute(self, sql: str, *args: Any) -> None: ...

    @abc.abstractmethod
    async def _executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None: ...

    @abc.abstractmethod
    async def _fetch(self, sql: str, *args: Any) -> list[Sequence[Any]]: ...

    async def _fetch_records(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        raise InvalidInput(f"{type(self).__name__} has no SQL")

    async def fetchrow(self, sql: str, *args: Any) -> Sequence[Any] | None:
        rows = await self.fetch(sql, *args)
        return rows[0] if rows else None

    async def fetchval(self, sql: str, *args: Any) -> Any:
        row = await self.fetchrow(sql, *args)
        return None if row is None else row[0]


class EventStore(abc.ABC):
    """An append-only log of events, grouped in streams, in one global order.

    Use it as an async context manager, or call :meth:`close` when done.
    """

    url: str
    """The URL the store was opened with (without credentials)."""

    backend: ClassVar[str] = ""
    """The backend's name (``"memory"``, ``"sqlite"``, ``"postgres"``), for people to read:
    code asks :attr:`capabilities` instead."""

    capabilities: ClassVar[frozenset[Concern]] = frozenset()
    """What the backend keeps besides the log (see :mod:`eventledger.storage`)."""

    ephemeral: ClassVar[bool] = False
    """Nothing the store keeps outlives the process (the memory store)."""

    max_event_size: int = check.DEFAULT_MAX_EVENT_SIZE
    """Bytes of JSON (data and metadata) an event may take; ``max_event_size=N`` in
    any store URL changes it."""

    @property
    def schema_version(self) -> int:
        """The version of the database schema the store is at (0: it has none)."""
        return 0

    _closed: bool = False
    _signal: AppendSignal

    async def append(
        self,
        stream_id: str,
        events: Iterable[NewEvent],
        *,
        expected_version: ExpectedVersion = ANY,
    ) -> AppendResult:
        """Append `events` to the end of a stream, atomically: all are recorded or none.

        `expected_version` is `ANY`, `NO_STREAM`, `STREAM_EXISTS` or the exact
        version you read (0 means no stream); a mismatch raises
        :class:`~eventledger.WrongExpectedVersion` and writes nothing.

        Appending events whose ids were already appended at the same place
        returns the first result and writes nothing, so a retry after a lost
        answer is safe. The same ids anywhere else raise
        :class:`~eventledger.DuplicateEventId`.
        """
        self._check_open()
        stream_id = check.check_stream_id(stream_id)
        expected = check.check_expected_version(expected_version)
        events = _listed(events)
        if _any_personal(events):
            return await self._append_personal(stream_id, expected, list(events))
        return await self._append_plain(stream_id, expected, events)

    async def _append_plain(
        self, stream_id: str, expected: ExpectedVersion, events: Iterable[NewEvent]
    ) -> AppendResult:
        prepared = check.prepare_events(events, self.max_event_size)
        return await self.measured_append(
            stream_id, len(prepared), lambda: self._append(stream_id, expected, prepared)
        )

    async def measured_append(
        self, stream_id: str, count: int, write: Callable[[], Awaitable[AppendResult]]
    ) -> AppendResult:
        """Run `write`, an append of `count` events committed on its own, in its span;
        count it and wake this process's readers once it returns (for backends and their
        storage modules)."""
        started = time.perf_counter()
        with tracing.span(
            f"append {stream_id}",
            attributes={
                "eventledger.stream_id": stream_id,
                "eventledger.events": count,
                "eventledger.backend": self.backend,
            },
        ):
            result = await write()
        instruments.current.appended(self.backend, count, time.perf_counter() - started)
        self._appended()
        return result

    async def _append_personal(
        self, stream_id: str, expected: ExpectedVersion, events: list[NewEvent]
    ) -> AppendResult:
        """Append events with personal values, sealed. New subjects' keys (and which
        streams hold their values) are stored in the same transaction as the events;
        with none to store, the append is the plain one."""
        from eventledger.personal.keyring import KeyMadeElsewhere

        check.prepare_events(events, self.max_event_size)  # refuse bad input before sealing
        for _ in range(3):
            sealed, sealing = await self.keyring.seal(stream_id, events)
            if sealing is None or not (sealing.keys or sealing.links):
                return await self._append_plain(stream_id, expected, sealed)
            try:
                async with self.transaction(appends=True) as tx:
                    result = await tx.append(stream_id, sealed, expected_version=expected)
                    await self.keyring.record(tx, sealing)
                return result
            except KeyMadeElsewhere:
                pass
            # Another writer made a key for the same new subject: seal with theirs.
        raise ConflictError(
            f"appending to {stream_id!r}: other writers kept making keys for the same new"
            " subjects; append again"
        )

    @property
    def keyring(self) -> Keyring:
        """Seals and opens personal values (:mod:`eventledger.personal`)."""
        keyring = self.__dict__.get("_keyring")
        if keyring is None:
            from eventledger.personal.keyring import Keyring

            keyring = self.__dict__["_keyring"] = Keyring(self)
        return keyring

    def read_stream(
        self,
        stream_id: str,
        *,
        from_version: int | None = None,
        backwards: bool = False,
        limit: int | None = None,
        as_of: datetime | None = None,
    ) -> AsyncIterator[RecordedEvent]:
        """The events of one stream in version order (descending when `backwards`).

        Forwards, reading starts at `from_version` (default 1); backwards, at
        `from_version` (default: the last event) going down. `as_of` keeps only
        events recorded at or before that time: the stream as it was then.
        A stream that does not exist yields nothing. Arguments are checked
        when called, before iteration starts.
        """
        self._check_open()
        stream_id = check.check_stream_id(stream_id)
        start = check.check_optional_int(from_version, "from_version", minimum=1)
        count = check.check_optional_int(limit, "limit", minimum=0)
        when = check.check_datetime(as_of, "as_of")
        if not isinstance(backwards, bool):
            raise InvalidInput(f"backwards must be a bool, not {backwards!r}")
        if count == 0:
            return _nothing()
        return self._paged_stream(stream_id, start, backwards, count, when)

    async def _paged_stream(
        self,
        stream_id: str,
        from_version: int | None,
        backwards: bool,
        limit: int | None,
        as_of: datetime | None,
    ) -> AsyncIterator[RecordedEvent]:
        if backwards:
            cursor = from_version if from_version is not None else MAX_VERSION
        else:
            cursor = from_version or 1
        remaining = limit
        while remaining is None or remaining > 0:
            size = _page_size(remaining)
            page = await self._opened(
                await self._read_stream_page(stream_id, cursor, backwards, size, as_of)
            )
            instruments.current.read(self.backend, len(page))
            for event in page:
                yield event
            if len(page) < size:
                return
            cursor = page[-1].version + (-1 if backwards else 1)
            if remaining is not None:
                remaining -= len(page)

    def read_all(
        self,
        *,
        after: int | None = None,
        limit: int | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> AsyncIterator[RecordedEvent]:
        """Every event of the store in the one global order.

        Starts after position `after` (a position you have seen; default: the
        beginning). `since` and `until` keep only events recorded at or after,
        and at or before, those times (all events of January: ``since=Jan 1,
        until=Jan 31 23:59:59.999999``).
        A reader that has seen position P never later sees an event before P,
        however many writers are committing: remember the last position and
        pass it back as `after` to go on. Reading pages through the log, so
        memory stays flat whatever its length. Arguments are checked when
        called, before iteration starts.
        """
        self._check_open()
        start = check.check_optional_int(after, "after", minimum=0) or 0
        count = check.check_optional_int(limit, "limit", minimum=0)
        when = check.check_datetime(since, "since")
        end = check.check_datetime(until, "until")
        if count == 0 or (when is not None and end is not None and end < when):
            return _nothing()
        return self._paged_all(start, count, when, end)

    async def read_page(
        self, *, after: int = 0, limit: int = DEFAULT_PAGE_SIZE
    ) -> list[RecordedEvent]:
        """The next events of the log after position `after`, at most `limit` (1 to
        10,000), in one call: what :meth:`read_all` yields, a page at a time, for readers
        that handle events in batches (projections, the relay, the live feed). Fewer
        than `limit` events means the reader is at the end of what it can see now; pass
        the last event's position back as `after` to go on.

        >>> import asyncio
        >>> from eventledger import NewEvent, open_store
        >>> async def main():
        ...     async with await open_store("memory://") as store:
        ...         await store.append("Order-1", [NewEvent("Placed", {}), NewEvent("Paid", {})])
        ...         page = await store.read_page(limit=1)
        ...         rest = await store.read_page(after=page[-1].position)
        ...         return [e.type for e in page], [e.type for e in rest]
        >>> asyncio.run(main())
        (['Placed'], ['Paid'])
        """
        self._check_open()
        start = check.check_int(after, "after", minimum=0)
        size = check.check_int(limit, "limit", minimum=1, maximum=MAX_LIST_LIMIT)
        page = await self._opened(await self._read_all_page(start, size, None))
        instruments.current.read(self.backend, len(page))
        return page

    async def read_stream_page(
        self, stream_id: str, *, from_version: int = 1, limit: int = DEFAULT_PAGE_SIZE
    ) -> list[RecordedEvent]:
        """The events of one stream from version `from_version` on, at most `limit` (1 to
        10,000), in one call: what :meth:`read_stream` yields, a page at a time, for
        readers that apply events in batches (the repository's loads). Fewer than `limit`
        events means the stream ends there; go on from the last event's version + 1.

        >>> import asyncio
        >>> from eventledger import NewEvent, open_store
        >>> async def main():
        ...     async with await open_store("memory://") as store:
        ...         await store.append("Order-1", [NewEvent("Placed", {}), NewEvent("Paid", {})])
        ...         page = await store.read_stream_page("Order-1", limit=1)
        ...         rest = await store.read_stream_page("Order-1", from_version=2)
        ...         return [e.type for e in page], [e.type for e in rest]
        >>> asyncio.run(main())
        (['Placed'], ['Paid'])
        """
        self._check_open()
        stream_id = check.check_stream_id(stream_id)
        start = check.check_int(from_version, "from_version", minimum=1)
        size = check.check_int(limit, "limit", minimum=1, maximum=MAX_LIST_LIMIT)
        page = await self._opened(await self._read_stream_page(stream_id, start, False, size, None))
        instruments.current.read(self.backend, len(page))
        return page

    async def _paged_all(
        self, after: int, limit: int | None, since: datetime | None, until: datetime | None
    ) -> AsyncIterator[RecordedEvent]:
        window = None
        if since is not None or until is not None:
            if since is not None:
                first = await self._first_position_since(since)
                if first is None:
                    return
                after = max(after, first - 1)
            upto = None
            if until is not None:
                # Every event after this position was recorded later than `until`.
                upto = await self._last_position_until(until)
                if upto is None or upto <= after:
                    return
            window = TimeWindow(since, until, upto)

        async def opened_page(after: int, size: int) -> list[RecordedEvent]:
            return await self._opened(await self._read_all_page(after, size, window))

        def fetch(after: int, size: int) -> asyncio.Future[list[RecordedEvent]]:
            return asyncio.ensure_future(opened_page(after, size))

        # While the caller works through one page, the next is already on its way: the
        # database's work overlaps with the caller's. At most two pages in memory.
        remaining = limit
        size = _page_size(remaining)
        pending: asyncio.Future[list[RecordedEvent]] | None = fetch(after, size)
        try:
            while pending is not None:
                page = await pending
                pending = None
                if remaining is not None:
                    remaining -= len(page)
                if len(page) == size and (remaining is None or remaining > 0):
                    size = _page_size(remaining)
                    pending = fetch(page[-1].position, size)
                instruments.current.read(self.backend, len(page))
                for event in page:
                    yield event
        finally:
            if pending is not None:
                # The caller stopped early: let the fetch finish and free its connection.
                pending.add_done_callback(_ignore_result)

    async def stream_version(self, stream_id: str) -> int:
        """The stream's current version: the number of its events, 0 if it does not exist."""
        self._check_open()
        return await self._stream_version(check.check_stream_id(stream_id))

    async def list_streams(
        self, *, prefix: str | None = None, after: str | None = None, limit: int = 100
    ) -> list[StreamInfo]:
        """One page of streams, ordered by id.

        Pass the last id of a page as `after` to get the next one. `prefix`
        keeps streams whose id starts with it (``"Order-"`` for a category).
        """
        self._check_open()
        if prefix is not None and not isinstance(prefix, str):
            raise InvalidInput(f"prefix must be a string, not {type(prefix).__name__}")
        if after is not None and not isinstance(after, str):
            raise InvalidInput(f"after must be a stream id string, not {after!r}")
        for name, text in (("prefix", prefix), ("after", after)):
            if text is not None and "\x00" in text:
                # No stream id holds one (check_stream_id refuses control characters).
                raise InvalidInput(f"{name} must not contain a NUL character, not {text!r}")
        count = check.check_int(limit, "limit", minimum=1, maximum=MAX_LIST_LIMIT)
        return await self._list_streams(prefix or "", after, count)

    async def save_snapshot(self, snapshot: Snapshot) -> None:
        """Keep a snapshot of a stream's state at a version (replacing one at the same
        version). Snapshots are a cache: they never change what the events say."""
        self._check_open()
        if not isinstance(snapshot, Snapshot):
            raise InvalidInput(f"expected a Snapshot, not {type(snapshot).__name__}")
        check.check_stream_id(snapshot.stream_id)
        check.check_int(snapshot.version, "snapshot version", minimum=1)
        for name in ("kind", "fingerprint"):
            value = getattr(snapshot, name)
            if not isinstance(value, str) or not value or len(value) > 200:
                raise InvalidInput(f"snapshot {name} must be a non-empty string")
        if not isinstance(snapshot.state, dict):
            raise InvalidInput(
                f"snapshot state must be a dict, not {type(snapshot.state).__name__}"
            )
        try:
            state = _json.dumps(snapshot.state)
        except _json.JSONEncodeError as error:
            raise InvalidInput(f"snapshot state cannot be stored as JSON: {error}") from None
        await self._save_snapshot(snapshot, state)

    async def load_snapshot(
        self, stream_id: str, *, max_version: int | None = None
    ) -> Snapshot | None:
        """The latest snapshot of a stream at or below `max_version`, or None."""
        self._check_open()
        stream_id = check.check_stream_id(stream_id)
        limit = check.check_optional_int(max_version, "max_version", minimum=0)
        return await self._load_snapshot(stream_id, limit)

    async def read_event(self, event_id: uuid.UUID | str) -> RecordedEvent | None:
        """The event with this id, or None. Only events a reader of `read_all` can see."""
        self._check_open()
        event = await self._read_event(check.check_event_id(event_id))
        if event is None:
            return None
        (event,) = await self._opened([event])
        return event

    async def read_correlated(
        self, correlation_id: str, *, limit: int = 10_000
    ) -> list[RecordedEvent]:
        """The events whose metadata carries this ``correlation_id`` (everything one
        request set off, directly or not), in the global order; at most `limit`."""
        self._check_open()
        if not isinstance(correlation_id, str) or not 0 < len(correlation_id) <= 255:
            raise InvalidInput(
                f"a correlation id is a non-empty string of at most 255, not {correlation_id!r}"
            )
        count = check.check_int(limit, "limit", minimum=1, maximum=MAX_LIST_LIMIT * 10)
        return await self._opened(await self._read_correlated(correlation_id, count))

    async def _opened(self, page: list[RecordedEvent]) -> list[RecordedEvent]:
        """The page with personal values in clear, or redacted where forgotten."""
        for event in page:
            if check.PERSONAL_METADATA_KEY in event.metadata:
                return await self.keyring.open_page(page)
        return page

    async def count_events(
        self, *, after: int = 0, upto: int | None = None, limit: int | None = None
    ) -> int:
        """How many events a reader can see after position `after` and, when given, at or
        before position `upto` (at most `limit`)."""
        self._check_open()
        start = check.check_int(after, "after", minimum=0)
        end = check.check_optional_int(upto, "upto", minimum=0)
        cap = check.check_optional_int(limit, "limit", minimum=0)
        if end is not None and end <= start:
            return 0
        return await self._count_events(start, MAX_POSITION if end is None else end, cap)

    async def horizon(self) -> Horizon:
        """How far readers can see now, and who holds them back if anyone does (on
        PostgreSQL, an appending transaction that has not committed yet, named)."""
        self._check_open()
        return await self._horizon()

    async def _horizon(self) -> Horizon:
        head = await self._head_position()
        return Horizon(head, head, 0)

    async def head_position(self) -> int:
        """The position of the last event a reader can see now; 0 for an empty store."""
        self._check_open()
        return await self._head_position()

    # --- what the backend keeps besides the log (see eventledger.storage) --------------------

    def require(self, *concerns: Concern) -> None:
        """Raise :class:`~eventledger.UnsupportedFeature` unless the backend keeps all of
        `concerns`; features call it when they are set up."""
        missing = [c for c in concerns if c not in self.capabilities]
        if missing:
            kept = ", ".join(sorted(self.capabilities)) or "nothing but the log"
            raise UnsupportedFeature(
                f"the {self.backend or type(self).__name__} store {self.url} does not keep"
                f" {', '.join(missing)} (it keeps {kept}); open a store whose backend does"
            )

    def read_side(self) -> ReadSideStorage:
        """Checkpoints, leases, dead letters and documents (projections and processes)."""
        self.require("read_side")
        raise NotImplementedError  # pragma: no cover - a backend that lists it overrides this

    def sql_tables(self) -> SqlTables:
        """The SQL tables of SQL read models."""
        self.require("sql_tables")
        raise NotImplementedError  # pragma: no cover

    def command_log(self) -> CommandLog:
        """Handled commands and idempotency keys."""
        self.require("command_log")
        raise NotImplementedError  # pragma: no cover

    def process_storage(self) -> ProcessStorage:
        """Process-manager instances and deadlines."""
        self.require("processes")
        raise NotImplementedError  # pragma: no cover

    def key_storage(self) -> KeyStorage:
        """The HTTP server's API keys."""
        self.require("api_keys")
        raise NotImplementedError  # pragma: no cover

    def personal_data_storage(self) -> PersonalDataStorage:
        """The subjects' data keys (:mod:`eventledger.personal`)."""
        self.require("personal_data")
        raise NotImplementedError  # pragma: no cover

    def retention_storage(self) -> RetentionStorage:
        """Soft-delete marks and deleting events (:mod:`eventledger.retention`)."""
        self.require("retention")
        raise NotImplementedError  # pragma: no cover

    async def scrub(self, *, full: bool = False) -> None:
        """Leave nothing of deleted rows in the database's files (see
        :func:`eventledger.personal.scrub`). A store without files does nothing."""
        self._check_open()

    # --- the read side's access to the database ------------------------------------------

    @abc.abstractmethod
    def transaction(
        self, *, appends: bool = False
    ) -> AbstractAsyncContextManager[StoreTransaction]:
        """A transaction on the store's database (commits on a clean exit). With
        `appends`, it may append events after running other statements (see
        :class:`StoreTransaction`)."""

    async def fetch(self, sql: str, *args: Any) -> list[Sequence[Any]]:
        """Run a read-only query outside any transaction (SQL stores only)."""
        self._check_open()
        async with self.transaction() as tx:
            return await tx.fetch(sql, *args)

    async def fetch_records(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        """Like :meth:`fetch`, each row a dict by column name."""
        self._check_open()
        async with self.transaction() as tx:
            return await tx.fetch_records(sql, *args)

    @property
    def append_generation(self) -> int:
        """Rises whenever this process appends to this log; see :meth:`wait_for_appends`."""
        return self._signal.generation

    async def wait_for_appends(self, since: int, timeout: float) -> bool:
        """Wait until an append after `append_generation` was `since` (in this process, or
        in another where the backend can tell), or `timeout` seconds. True on a wake-up."""
        self._check_open()
        return await self._signal.wait(since, timeout)

    def _appended(self) -> None:
        self._signal.ring()

    def _committed(self, tx: StoreTransaction) -> None:
        """A transaction committed: count its appends and wake readers (backends call
        this after their COMMIT)."""
        if tx.appended:
            instruments.current.appended(
                self.backend,
                len(tx._appended_ids or ()),
                time.perf_counter() - tx._first_append_at,
            )
            self._appended()
        for callback in tx._on_commit or ():
            callback()

    async def close(self) -> None:
        """Release connections. Closing twice is harmless."""
        if not self._closed:
            self._closed = True
            await self._close()

    @property
    def closed(self) -> bool:
        return self._closed

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        state = " closed" if self._closed else ""
        return f"<{type(self).__name__} {self.url}{state}>"

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosed(f"the store {self.url} is closed; open a new one with open_store()")

    # What a backend implements. Arguments are already checked.

    @abc.abstractmethod
    async def _append(
        self, stream_id: str, expected: ExpectedVersion, events: list[PreparedEvent]
    ) -> AppendResult: ...

    @abc.abstractmethod
    async def _read_stream_page(
        self, stream_id: str, cursor: int, backwards: bool, size: int, as_of: datetime | None
    ) -> list[RecordedEvent]:
        """Up to `size` events of a stream from version `cursor` on (down, when
        `backwards`), recorded at or before `as_of` when given."""

    @abc.abstractmethod
    async def _read_all_page(
        self, after: int, size: int, window: TimeWindow | None
    ) -> list[RecordedEvent]:
        """Up to `size` events after position `after` that a reader may see now; with a
        `window`, only those recorded within its times, at positions up to its `upto`."""

    @abc.abstractmethod
    async def _first_position_since(self, since: datetime) -> int | None:
        """The position of the first event recorded at or after `since`, if any."""

    @abc.abstractmethod
    async def _last_position_until(self, until: datetime) -> int | None:
        """The position of the last event recorded at or before `until`, if any."""

    @abc.abstractmethod
    async def _stream_version(self, stream_id: str) -> int: ...

    @abc.abstractmethod
    async def _list_streams(
        self, prefix: str, after: str | None, limit: int
    ) -> list[StreamInfo]: ...

    @abc.abstractmethod
    async def _head_position(self) -> int: ...

    @abc.abstractmethod
    async def _read_event(self, event_id: uuid.UUID) -> RecordedEvent | None: ...

    @abc.abstractmethod
    async def _read_correlated(self, correlation_id: str, limit: int) -> list[RecordedEvent]: ...

    @abc.abstractmethod
    async def _count_events(self, after: int, upto: int, limit: int | None) -> int: ...

    @abc.abstractmethod
    async def _save_snapshot(self, snapshot: Snapshot, state: bytes) -> None: ...

    @abc.abstractmethod
    async def _load_snapshot(self, stream_id: str, max_version: int | None) -> Snapshot | None: ...

    @abc.abstractmethod
    async def _close(self) -> None: ...


def _listed(events: Iterable[NewEvent]) -> Iterable[NewEvent]:
    """The events as a list, to be looked at twice (a single value is left for the
    checks to refuse)."""
    if isinstance(events, list | NewEvent | str | bytes | dict):
        return events
    return list(events)


def _any_personal(events: Iterable[NewEvent]) -> bool:
    if not isinstance(events, list):
        return False  # a single value: the checks refuse it
    return any(isinstance(e, NewEvent) and e.personal for e in events)


def _page_size(remaining: int | None) -> int:
    return DEFAULT_PAGE_SIZE if remaining is None else min(remaining, DEFAULT_PAGE_SIZE)


def _ignore_result(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


async def _nothing() -> AsyncIterator[RecordedEvent]:
    return
    yield  # an async generator that yields nothing


def library_sql(method: M) -> M:
    """Mark a storage method whose first argument is the transaction: the statements it
    runs there are eventledger's own (see :meth:`StoreTransaction.library_statements`)."""

    @functools.wraps(method)
    async def run(self: object, tx: StoreTransaction, *args: Any, **kwargs: Any) -> Any:
        with tx.library_statements():
            return await method(self, tx, *args, **kwargs)

    return cast(M, run)
