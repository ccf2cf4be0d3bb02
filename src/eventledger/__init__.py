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
from eventledger.stores import EventStore, open_store

__version__ = "0.1.0"

__all__ = [
    "ANY",
    "NO_STREAM",
    "STREAM_EXISTS",
    "AppendResult",
    "ConflictError",
    "DuplicateEventId",
    "EventLedgerError",
    "EventStore",
    "ExpectedState",
    "ExpectedVersion",
    "IntegrityError",
    "InvalidInput",
    "NewEvent",
    "OperationalError",
    "RecordedEvent",
    "SchemaVersionError",
    "Snapshot",
    "StoreClosed",
    "StreamInfo",
    "UnsupportedStoreURL",
    "WrongExpectedVersion",
    "open_store",
    "stream_category",
]
