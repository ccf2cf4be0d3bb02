"""eventledger: event sourcing and CQRS for Python.

>>> import asyncio
>>> from eventledger import NO_STREAM, NewEvent, open_store
>>> async def main() -> list[str]:
...     async with await open_store("memory://") as store:
...         await store.append("Order-1", [NewEvent("OrderCreated", {"customer": "alice"})],
...                            expected_version=NO_STREAM)
...         return [e.type async for e in store.read_stream("Order-1")]
>>> asyncio.run(main())
['OrderCreated']
"""

from eventledger.aggregate import (
    Aggregate,
    AggregateNotFound,
    AggregateStateError,
    DomainError,
    applies,
)
from eventledger.context import MessageContext, current_context, message_context
from eventledger.errors import (
    ConflictError,
    DuplicateEventId,
    EventLedgerError,
    IntegrityError,
    InvalidInput,
    OperationalError,
    SchemaVersionError,
    StoreClosed,
    UnsupportedStoreURL,
    WrongExpectedVersion,
)
from eventledger.events import (
    Event,
    EventDecodeError,
    EventRegistry,
    UnknownEventType,
    default_registry,
)
from eventledger.records import (
    ANY,
    NO_STREAM,
    STREAM_EXISTS,
    AppendResult,
    ExpectedState,
    ExpectedVersion,
    NewEvent,
    RecordedEvent,
    Snapshot,
    StreamInfo,
    stream_category,
)
from eventledger.repository import HistoryEntry, Repository
from eventledger.stores import EventStore, open_store

__version__ = "0.1.0"

__all__ = [
    "ANY",
    "NO_STREAM",
    "STREAM_EXISTS",
    "Aggregate",
    "AggregateNotFound",
    "AggregateStateError",
    "AppendResult",
    "ConflictError",
    "DomainError",
    "DuplicateEventId",
    "Event",
    "EventDecodeError",
    "EventLedgerError",
    "EventRegistry",
    "EventStore",
    "ExpectedState",
    "ExpectedVersion",
    "HistoryEntry",
    "IntegrityError",
    "InvalidInput",
    "MessageContext",
    "NewEvent",
    "OperationalError",
    "RecordedEvent",
    "Repository",
    "SchemaVersionError",
    "Snapshot",
    "StoreClosed",
    "StreamInfo",
    "UnknownEventType",
    "UnsupportedStoreURL",
    "WrongExpectedVersion",
    "applies",
    "current_context",
    "default_registry",
    "message_context",
    "open_store",
    "stream_category",
]
