"""What a backend stores besides the event log: one small protocol per concern.

An event store (:class:`~eventledger.EventStore`) is the log. The features
built on it keep state of their own, in the same database, so that it can
commit in the same transaction as the events or the checkpoint it belongs
with:

- :class:`ReadSideStorage`: checkpoints, leases, dead letters, read-model
  generations and document collections (projections, process managers,
  relays: every subscription);
- :class:`SqlTables`: plain SQL tables owned by SQL read models;
- :class:`CommandLog`: handled commands and their idempotency keys;
- :class:`ProcessStorage`: process-manager instances and their deadlines;
- :class:`KeyStorage`: the HTTP server's API keys (hashed);
- :class:`PersonalDataStorage`: the subjects' data keys;
- :class:`RetentionStorage`: soft-delete marks and deleted events of streams.

A backend package (``eventledger.stores.memory``, ``.sqlite``, ``.postgres``)
implements them all; its store hands them out (``store.read_side()``,
``store.command_log()``, ...) and lists them in ``store.capabilities``. A
concern a backend does not keep raises :class:`~eventledger.UnsupportedFeature`
when a feature that needs it is set up. Methods that take a ``tx`` write in
that transaction of the same store (:meth:`EventStore.transaction`), so that
they commit with what else it does. Every protocol has a conformance suite in
:mod:`eventledger.testing`.

>>> import asyncio
>>> from eventledger import open_store
>>> async def main() -> tuple[bool, int | None]:
...     async with await open_store("memory://") as store:
...         read_side = store.read_side()
...         async with store.transaction() as tx:
...             await read_side.set_checkpoint(tx, "order_list", 42)
...         return isinstance(read_side, ReadSideStorage), await read_side.get_checkpoint(
...             "order_list"
...         )
>>> asyncio.run(main())
(True, 42)
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol, runtime_checkable

from eventledger.records import AppendResult, ExpectedVersion, JSONObject, NewEvent, RecordedEvent
from eventledger.stores.base import EventStore, StoreTransaction

__all__ = [
    "CONCERNS",
    "CommandLog",
    "CommandRecord",
    "Concern",
    "DeadLetter",
    "EventStore",
    "InstanceRow",
    "KeyStorage",
    "LeaseInfo",
    "PersonalDataStorage",
    "ProcessStorage",
    "Range",
    "ReadSideStorage",
    "RetentionStorage",
    "SqlTables",
    "StoreTransaction",
    "StoredKey",
    "StreamExtent",
    "SubjectKey",
    "TimeoutRow",
    "Where",
]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

Concern = Literal[
    "read_side", "sql_tables", "command_log", "processes", "api_keys", "personal_data", "retention"
]
CONCERNS: tuple[Concern, ...] = (
    "read_side",
    "sql_tables",
    "command_log",
    "processes",
    "api_keys",
    "personal_data",
    "retention",
)
"""What a backend may keep besides the log, as named in ``store.capabilities``."""

FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
"""A document field: a name or a dotted path (``customer.address.city``)."""
INDEX_KINDS = ("text", "number", "boolean")
"""How an indexed document field is compared."""

# --- the read side ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """An event a subscription's handler kept failing on."""

    id: int
    subscription: str
    position: int
    event_id: uuid.UUID
    stream_id: str
    event_type: str
    attempts: int
    error: str
    traceback: str
    status: str
    """``parked``, then ``retried`` or ``skipped``."""
    parked_at: datetime
    resolved_at: datetime | None


@dataclass(frozen=True, slots=True)
class LeaseInfo:
    """Who holds a subscription's lease, and until when."""

    name: str
    owner: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Range:
    """A range condition for a document query: ``Range(gte=10, lt=20)``."""

    gt: Any = None
    gte: Any = None
    lt: Any = None
    lte: Any = None

    def bounds(self) -> list[tuple[str, Any]]:
        """The bounds given, as ``(operator, value)``: ``[(">=", 10), ("<", 20)]``."""
        ops = (("gt", ">"), ("gte", ">="), ("lt", "<"), ("lte", "<="))
        return [(op, getattr(self, name)) for name, op in ops if getattr(self, name) is not None]


Where = Mapping[str, Any]
"""Document query conditions by indexed field: a value (equal), a list (any of), a
:class:`Range`, or None (missing)."""


@runtime_checkable
class ReadSideStorage(Protocol):
    """Where subscriptions keep their place and read models keep their documents.

    Names are subscription names (a rebuild's shadow copy is ``name@generation``);
    tables are document collections, created and dropped by the read side.
    """

    # checkpoints: the position of the last event a subscription handled
    async def get_checkpoint(self, name: str) -> int | None: ...
    async def checkpoints(self) -> dict[str, int]: ...
    async def set_checkpoint(self, tx: StoreTransaction, name: str, position: int) -> None: ...
    async def delete_checkpoint(self, tx: StoreTransaction, name: str) -> None: ...

    # leases: one process at a time runs a subscription
    async def acquire_lease(self, name: str, owner: str, ttl: float) -> bool:
        """Take or renew the lease for `ttl` seconds; False if another owner holds it."""
        ...

    async def hold_lease(self, tx: StoreTransaction, name: str, owner: str, ttl: float) -> bool:
        """Renew the lease inside `tx`; False if another owner has it (abort the batch)."""
        ...

    async def release_lease(self, name: str, owner: str) -> None: ...
    async def lease(self, name: str) -> LeaseInfo | None:
        """The lease if it is held now (not expired), else None."""
        ...

    # dead letters
    async def park(
        self,
        tx: StoreTransaction,
        subscription: str,
        event: RecordedEvent,
        attempts: int,
        error: str,
        traceback: str,
    ) -> int:
        """Record a dead letter; returns its id."""
        ...

    async def dead_letters(
        self,
        subscription: str | None,
        status: str | None,
        *,
        after: int = 0,
        limit: int | None = None,
    ) -> list[DeadLetter]:
        """Dead letters, oldest first, optionally of one subscription and status; with
        `after` and `limit`, one page (ids above `after`, at most `limit` of them)."""
        ...

    async def dead_letter(self, letter_id: int) -> DeadLetter | None: ...
    async def resolve(self, tx: StoreTransaction, letter_id: int, status: str) -> None: ...

    # read-model generations: which copy of a read model queries see
    async def generation(self, name: str) -> int | None: ...
    async def set_generation(self, tx: StoreTransaction, name: str, generation: int) -> None: ...

    # document collections
    async def create_collection(
        self, tx: StoreTransaction, table: str, indexes: Mapping[str, str]
    ) -> None:
        """Create a collection (if missing) with an index per field: kind in INDEX_KINDS."""
        ...

    async def drop_collection(self, tx: StoreTransaction, table: str) -> None: ...
    async def point_view(self, tx: StoreTransaction, view: str, table: str) -> None:
        """Make `view` show `table` (queries read views; rebuilds swap them)."""
        ...

    async def get_raw_documents(
        self, tx: StoreTransaction | None, table: str, ids: Sequence[str]
    ) -> dict[str, bytes | str]:
        """The documents with these ids, as JSON text (in `tx`, or committed ones)."""
        ...

    async def write_documents(
        self,
        tx: StoreTransaction,
        table: str,
        upserts: Mapping[str, bytes | str],
        deletes: Iterable[str],
    ) -> None:
        """Create or replace documents (given as JSON text) and delete others."""
        ...

    async def find(
        self,
        table: str,
        indexes: Mapping[str, str],
        where: Where,
        order_by: Sequence[str],
        limit: int,
        offset: int,
    ) -> list[dict[str, Any]]:
        """Documents matching `where`, ordered by indexed fields (``-`` for descending;
        missing values last, ties by id)."""
        ...

    async def count(self, table: str, indexes: Mapping[str, str], where: Where) -> int: ...


@runtime_checkable
class SqlTables(Protocol):
    """Plain SQL tables owned by SQL read models, in the store's own database.

    Handlers write with ``:name`` placeholders (:meth:`bind` turns them into the
    backend's own); tables are created from their DDL by the read side, and
    queries read views named after the logical tables.
    """

    def bind(self, sql: str, params: Mapping[str, Any]) -> tuple[str, list[Any]]:
        """`sql` with ``:name`` placeholders made the backend's, and the arguments in order."""
        ...

    async def prepare(self, tx: StoreTransaction) -> None:
        """Get `tx` ready for unqualified table names (the store's schema first)."""
        ...

    async def table_exists(self, tx: StoreTransaction, table: str) -> bool: ...
    async def drop_table(self, tx: StoreTransaction, table: str) -> None: ...
    async def point_view(self, tx: StoreTransaction, view: str, table: str) -> None: ...
    def qualified(self, name: str) -> str:
        """How a query outside a transaction names the table or view `name`."""
        ...

    async def columns(self, table: str) -> list[str]:
        """The column names of a table or view, in order (empty if there is none)."""
        ...

    async def page(
        self, table: str, order_by: Sequence[tuple[str, bool]], limit: int, offset: int
    ) -> list[dict[str, Any]]:
        """One page of rows, ordered by ``(column, descending)`` pairs."""
        ...

    async def query(self, sql: str, *args: Any) -> list[Sequence[Any]]:
        """Run a read-only query in the backend's own SQL."""
        ...


# --- commands -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CommandRecord:
    """A command that was handled: what, by whom, why, and what it wrote."""

    id: uuid.UUID
    name: str
    idempotency_key: str | None
    payload_hash: str
    payload: JSONObject
    correlation_id: str
    causation_id: str
    actor: str | None
    result: JSONObject
    recorded_at: datetime = EPOCH


@runtime_checkable
class CommandLog(Protocol):
    """Handled commands: the idempotency record and the audit trail. A command's row is
    written in the transaction of its events; a second row with the same idempotency
    key must be refused by the database itself, not only checked first."""

    async def by_key(self, key: str) -> CommandRecord | None: ...
    async def by_id(self, command_id: uuid.UUID) -> CommandRecord | None: ...
    async def correlated(self, correlation_id: str, limit: int) -> list[CommandRecord]: ...
    async def record(self, tx: StoreTransaction, record: CommandRecord) -> None:
        """Add the record in `tx`; raises :class:`~eventledger.KeyTaken` if its key is
        recorded (then `tx` must roll back)."""
        ...

    async def append_recorded(
        self,
        stream_id: str,
        events: Sequence[NewEvent],
        expected: ExpectedVersion,
        record: CommandRecord,
        value: Any,
    ) -> AppendResult | None:
        """Append `events` to one stream and add `record` with them, all or nothing, in
        one round trip where the backend can (PostgreSQL: one statement, no BEGIN or
        COMMIT); the record's result is made from the append, as
        ``CommandResult.to_json`` makes it, with `value`. None where the backend cannot
        (the caller appends and records in a transaction). Raises what an append in a
        transaction raises, and :class:`~eventledger.KeyTaken` when the key is recorded
        (nothing is written then). The same call again (the same record id and event
        ids: a retry of a commit whose answer was lost) returns the first result and
        writes nothing; the record's id with other writes raises
        :class:`~eventledger.IntegrityError`."""
        ...


# --- process managers -----------------------------------------------------------------------


@dataclass(slots=True)
class InstanceRow:
    """One process-manager instance as stored."""

    process: str
    instance_id: str
    status: str
    state: JSONObject
    bookkeeping: JSONObject
    started_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class TimeoutRow:
    """A deadline of a process-manager instance."""

    id: uuid.UUID
    process: str
    instance_id: str
    name: str
    due_at: datetime
    metadata: JSONObject


@runtime_checkable
class ProcessStorage(Protocol):
    """Process-manager instances and deadlines; they change in the transaction that
    moves the process manager's checkpoint."""

    async def instances(self, process: str, ids: Sequence[str]) -> dict[str, InstanceRow]: ...
    async def list_instances(
        self,
        process: str,
        status: str | None,
        limit: int,
        offset: int,
        *,
        after: tuple[datetime, str] | None = None,
    ) -> list[InstanceRow]:
        """Instances, most recently updated first (ties by id). `after` is the last
        row of the page before, as ``(updated_at, instance_id)``: the page after it."""
        ...

    async def count_instances(self, process: str) -> dict[str, int]:
        """How many instances of `process` are in each status (absent: none)."""
        ...

    async def save(
        self,
        tx: StoreTransaction,
        rows: Iterable[InstanceRow],
        scheduled: Iterable[TimeoutRow],
        cancelled: Iterable[uuid.UUID],
    ) -> None:
        """Upsert instances, add deadlines (a known id is left alone) and remove others."""
        ...

    async def due(self, process: str, now: datetime, limit: int) -> list[TimeoutRow]:
        """Deadlines of `process` due at `now` and not fired yet, earliest first."""
        ...

    async def mark_fired(self, timeout_id: uuid.UUID) -> None: ...


# --- API keys -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoredKey:
    """An API key as stored: never the secret, only its SHA-256."""

    id: str
    owner: str
    secret_hash: str
    scopes: frozenset[str]
    created_at: datetime
    revoked_at: datetime | None = None
    expires_at: datetime | None = None
    """When the key stops being valid by itself (None: never)."""


@runtime_checkable
class KeyStorage(Protocol):
    """The HTTP server's API keys."""

    async def add_key(self, key: StoredKey) -> None: ...
    async def get_key(self, key_id: str) -> StoredKey | None: ...
    async def list_keys(self) -> list[StoredKey]:
        """Every key, revoked ones too, oldest first."""
        ...

    async def revoke_key(self, key_id: str, when: datetime) -> None:
        """Mark a key revoked at `when` (a key revoked already keeps its first time)."""
        ...

    async def expire_key(self, key_id: str, when: datetime) -> None:
        """Make a key expire at `when`, unless it expires sooner already (a rotation's
        old key: valid until the overlap ends)."""
        ...


# --- personal data ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SubjectKey:
    """A subject's data key as stored: wrapped by the key-encryption key, or gone
    (`wrapped` is None) once the subject was forgotten."""

    subject: str
    wrapped: bytes | None
    created_at: datetime
    forgotten_at: datetime | None = None


@runtime_checkable
class PersonalDataStorage(Protocol):
    """The subjects' data keys (see :mod:`eventledger.personal`), and which streams hold
    each subject's values."""

    async def subject_keys(self, subjects: Sequence[str]) -> dict[str, SubjectKey]:
        """The stored keys of those of `subjects` that have one (or had one)."""
        ...

    async def add_subject_keys(
        self,
        tx: StoreTransaction,
        keys: Sequence[SubjectKey],
        streams: Sequence[tuple[str, str]],
    ) -> dict[str, SubjectKey]:
        """In `tx`: store `keys` whose subject has none yet, and the (subject, stream)
        pairs not known yet. Returns the key each of `keys`' subjects has in `tx` after
        that (another transaction's, when one stored a key first)."""
        ...

    async def forget_subject(self, tx: StoreTransaction, subject: str, when: datetime) -> list[str]:
        """In `tx`: drop the subject's data key (a row stays, so that no new key is made
        for them), delete the snapshots of the streams that hold their values, and
        return those streams."""
        ...

    async def subject_streams(self, subject: str) -> list[str]:
        """The streams that hold values of `subject`, in id order."""
        ...


# --- retention and deleting streams ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StreamExtent:
    """What is left of a stream (see :mod:`eventledger.retention`): its `version` (it
    never goes down), the lowest version still stored (`first`, None when no event is
    left), events below `deleted_before` deleted for good, and versions below
    `hidden_before` hidden by a soft delete (None: not hidden)."""

    stream_id: str
    version: int
    first: int | None
    deleted_before: int = 1
    hidden_before: int | None = None


@runtime_checkable
class RetentionStorage(Protocol):
    """Soft-delete marks of streams, and deleting a stream's oldest events for good (see
    :mod:`eventledger.retention`). Events are only ever deleted from the start of a
    stream: what is left of it is one run of versions, ``first`` to ``version``."""

    async def lock_stream(self, tx: StoreTransaction, stream_id: str) -> StreamExtent:
        """In `tx`: what is left of the stream, locked against other transactions that
        lock it until `tx` ends."""
        ...

    async def hide_stream(
        self, tx: StoreTransaction, stream_id: str, before_version: int, when: datetime
    ) -> None:
        """In `tx`: hide the stream's versions below `before_version` (a soft delete),
        and drop its snapshots (a cache; a restored stream makes them anew)."""
        ...

    async def show_stream(self, tx: StoreTransaction, stream_id: str) -> None:
        """In `tx`: undo a soft delete (nothing if the stream is not hidden)."""
        ...

    async def delete_events(
        self, tx: StoreTransaction, stream_id: str, before_version: int, *, whole: bool = False
    ) -> int:
        """In `tx`: delete the stream's events below `before_version` for good, and its
        snapshots that no longer lead to a state (below ``before_version - 1``; all of
        them when the `whole` stream goes); returns how many events went."""
        ...

    async def streams(self, prefix: str, after: str | None, limit: int) -> list[StreamExtent]:
        """One page of the streams that hold events, hidden ones too, by id."""
        ...

    async def last_version_before(self, stream_id: str, when: datetime) -> int:
        """The highest version of the stream recorded before `when` (0: none)."""
        ...
