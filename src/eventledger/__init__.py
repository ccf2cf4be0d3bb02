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
from eventledger.app import Application, Service
from eventledger.causation import CausalChain, CausalLink, causal_chain
from eventledger.commands import (
    Command,
    CommandBus,
    CommandContext,
    CommandHandlers,
    CommandResult,
    StreamWrite,
)
from eventledger.context import MessageContext, current_context, message_context
from eventledger.errors import (
    CommandInvalid,
    ConflictError,
    DuplicateEventId,
    EventLedgerError,
    FieldError,
    IdempotencyKeyReused,
    IntegrityError,
    InvalidInput,
    NotFound,
    OperationalError,
    SchemaVersionError,
    StoreClosed,
    UnknownCommand,
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
from eventledger.keys import ApiKey, ApiKeys
from eventledger.process import (
    DeadlineReached,
    Process,
    ProcessInstance,
    ProcessManager,
    ends,
    on_timeout,
    starts,
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
    "ApiKey",
    "ApiKeys",
    "AppendResult",
    "Application",
    "CausalChain",
    "CausalLink",
    "Command",
    "CommandBus",
    "CommandContext",
    "CommandHandlers",
    "CommandInvalid",
    "CommandResult",
    "ConflictError",
    "DeadlineReached",
    "DomainError",
    "DuplicateEventId",
    "Event",
    "EventDecodeError",
    "EventLedgerError",
    "EventRegistry",
    "EventStore",
    "ExpectedState",
    "ExpectedVersion",
    "FieldError",
    "HistoryEntry",
    "IdempotencyKeyReused",
    "IntegrityError",
    "InvalidInput",
    "MessageContext",
    "NewEvent",
    "NotFound",
    "OperationalError",
    "Process",
    "ProcessInstance",
    "ProcessManager",
    "RecordedEvent",
    "Repository",
    "SchemaVersionError",
    "Service",
    "Snapshot",
    "StoreClosed",
    "StreamInfo",
    "StreamWrite",
    "UnknownCommand",
    "UnknownEventType",
    "UnsupportedStoreURL",
    "WrongExpectedVersion",
    "applies",
    "causal_chain",
    "current_context",
    "default_registry",
    "ends",
    "message_context",
    "on_timeout",
    "open_store",
    "starts",
    "stream_category",
]
