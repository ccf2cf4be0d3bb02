"""What goes into the event store and what comes out of it.

>>> e = NewEvent("OrderCreated", {"customer": "alice"})
>>> e.type, e.data, e.metadata, e.schema_version
('OrderCreated', {'customer': 'alice'}, {}, 1)
>>> isinstance(e.id, uuid.UUID)
True
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple, TypeAlias

__all__ = [
    "ANY",
    "NO_STREAM",
    "STREAM_EXISTS",
    "AppendResult",
    "ExpectedState",
    "ExpectedVersion",
    "Horizon",
    "HorizonHolder",
    "JSONObject",
    "NewEvent",
    "RecordedEvent",
    "Snapshot",
    "StreamInfo",
]

JSONObject: TypeAlias = dict[str, Any]


class ExpectedState(enum.Enum):
    """What an append expects of its stream when it does not name a version."""

    ANY = "ANY"
    """No check: append whatever the stream's state."""
    NO_STREAM = "NO_STREAM"
    """The stream must not exist yet (same as expected version 0)."""
    STREAM_EXISTS = "STREAM_EXISTS"
    """The stream must already have at least one event."""

    def __repr__(self) -> str:
        return self.name


ANY = ExpectedState.ANY
NO_STREAM = ExpectedState.NO_STREAM
STREAM_EXISTS = ExpectedState.STREAM_EXISTS

ExpectedVersion: TypeAlias = ExpectedState | int
"""`ANY`, `NO_STREAM`, `STREAM_EXISTS`, or the exact version you read (0 = no stream)."""


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event to append. Its `id` makes a retried append idempotent."""

    type: str
    data: JSONObject
    metadata: JSONObject = field(default_factory=dict)
    id: uuid.UUID = field(default_factory=uuid.uuid4)
    schema_version: int = 1
    personal: Mapping[str, str] | None = None
    """Which fields hold personal data: a dotted path to each, and the path of the
    field that holds its subject's id (``{"email": "customer_id"}``). The store seals
    them with the subject's key (:mod:`eventledger.personal`); an event class sets it
    from its :class:`~eventledger.personal.Personal` fields."""


class RecordedEvent(NamedTuple):
    """An event as the store recorded it. Immutable.

    `version` counts from 1 within the stream; `position` orders every event
    of the store (it increases along the global order but need not be dense).
    `recorded_at` is timezone-aware UTC and never decreases within a stream.
    """

    id: uuid.UUID
    stream_id: str
    version: int
    position: int
    type: str
    schema_version: int
    data: JSONObject
    metadata: JSONObject
    recorded_at: datetime

    @property
    def category(self) -> str:
        """The stream's category: its id up to the first ``-`` (``Order-12`` → ``Order``)."""
        return stream_category(self.stream_id)

    def to_json(self) -> dict[str, Any]:
        """The event as JSON-ready data (what the HTTP API and ``eventledger tail --json``
        show): the id as text, the time in ISO 8601."""
        return {
            "id": str(self.id),
            "stream_id": self.stream_id,
            "version": self.version,
            "position": self.position,
            "type": self.type,
            "schema_version": self.schema_version,
            "data": self.data,
            "metadata": self.metadata,
            "recorded_at": self.recorded_at.isoformat(),
        }


class AppendResult(NamedTuple):
    """The stream's version after an append and the global position of its last event."""

    version: int
    position: int


class Snapshot(NamedTuple):
    """The state of an aggregate after the event at `version` of its stream.

    `kind` names what the state is (the aggregate type) and `fingerprint` its
    shape; whoever restores a snapshot checks both and ignores a mismatch.
    """

    stream_id: str
    version: int
    kind: str
    fingerprint: str
    state: JSONObject
    recorded_at: datetime | None = None


class StreamInfo(NamedTuple):
    """One stream in a listing."""

    stream_id: str
    version: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class HorizonHolder:
    """A transaction that holds readers back: it may still add events below the
    position they would go on from. What the database says about it (PostgreSQL)."""

    transaction_id: int
    pid: int | None = None
    database: str | None = None
    user: str | None = None
    application_name: str | None = None
    state: str | None = None
    """``active``, ``idle in transaction``, ... or ``prepared``."""
    transaction_start: datetime | None = None
    query: str | None = None
    """The first 80 characters of its current or last statement."""
    prepared_gid: str | None = None

    def describe(self) -> str:
        """One line for a person: who it is and what it does.

        >>> print(HorizonHolder(771, pid=4242, database="shop", user="alice",
        ...                     state="idle in transaction", query="UPDATE stock").describe())
        transaction 771 of pid 4242 (user alice, database shop), idle in transaction: 'UPDATE stock'
        """
        if self.prepared_gid is not None:
            return (
                f"prepared transaction {self.prepared_gid!r} (transaction {self.transaction_id},"
                f" database {self.database}); COMMIT PREPARED or ROLLBACK PREPARED it"
            )
        if self.pid is None:
            return f"transaction {self.transaction_id} (its backend could not be found)"
        who = ", ".join(
            part
            for part in (
                f"user {self.user}" if self.user else "",
                f"database {self.database}" if self.database else "",
                f"application {self.application_name!r}" if self.application_name else "",
                f"since {self.transaction_start.isoformat(timespec='seconds')}"
                if self.transaction_start
                else "",
            )
            if part
        )
        what = f", {self.state}" if self.state else ""
        query = f": {self.query!r}" if self.query else ""
        return f"transaction {self.transaction_id} of pid {self.pid} ({who}){what}{query}"


@dataclass(frozen=True, slots=True)
class Horizon:
    """How far readers can see: the last committed event, the last a reader may take
    now, and who holds them back when the two differ."""

    committed_head: int
    visible_head: int
    events_held: int
    """Committed events readers must not take yet (counted up to a million)."""
    holder: HorizonHolder | None = None

    @property
    def lagging(self) -> bool:
        return self.events_held > 0


def stream_category(stream_id: str) -> str:
    """The category of a stream: the part before the first ``-``.

    >>> stream_category("Order-12"), stream_category("Order-12-3"), stream_category("ledger")
    ('Order', 'Order', 'ledger')
    """
    head, _, _ = stream_id.partition("-")
    return head
