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

from eventledger.aggregate import Aggregate, applies
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
    AggregateNotFound,
    AggregateStateError,
    AlreadyExists,
    CommandInvalid,
    ConflictError,
    DomainError,
    DuplicateEventId,
    EventDecodeError,
    EventLedgerError,
    EventTooLarge,
    FieldError,
    IdempotencyKeyReused,
    IntegrityError,
    InvalidInput,
    KeyTaken,
    LeaseLost,
    NotFound,
    OperationalError,
    ProjectionFailed,
    ProjectionTimeout,
    SchemaVersionError,
    StoreClosed,
    UnknownCommand,
    UnknownEventType,
    UnsupportedFeature,
    UnsupportedStoreURL,
    WrongExpectedVersion,
)
from eventledger.events import Event, EventRegistry, default_registry
from eventledger.failures import OnFailure, RetryPolicy
from eventledger.process import (
    DeadlineReached,
    Process,
    ProcessInstance,
    ProcessManager,
    ends,
    on_timeout,
    starts,
)
from eventledger.projections import (
    Context,
    DocumentProjection,
    DocumentQueries,
    From,
    InMemoryProjection,
    Projection,
    ProjectionRunner,
    ProjectionStatus,
    SqlProjection,
    on,
    wait_until,
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
from eventledger.storage import DeadLetter, Range
from eventledger.stores import EventStore, StoreTransaction, open_store, register_backend

__version__ = "0.1.0"

__all__ = [
    "ANY",
    "NO_STREAM",
    "STREAM_EXISTS",
    "Aggregate",
    "AggregateNotFound",
    "AggregateStateError",
    "AlreadyExists",
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
    "Context",
    "DeadLetter",
    "DeadlineReached",
    "DocumentProjection",
    "DocumentQueries",
    "DomainError",
    "DuplicateEventId",
    "Event",
    "EventDecodeError",
    "EventLedgerError",
    "EventRegistry",
    "EventStore",
    "EventTooLarge",
    "ExpectedState",
    "ExpectedVersion",
    "FieldError",
    "From",
    "HistoryEntry",
    "IdempotencyKeyReused",
    "InMemoryProjection",
    "IntegrityError",
    "InvalidInput",
    "KeyTaken",
    "LeaseLost",
    "MessageContext",
    "NewEvent",
    "NotFound",
    "OnFailure",
    "OperationalError",
    "Process",
    "ProcessInstance",
    "ProcessManager",
    "Projection",
    "ProjectionFailed",
    "ProjectionRunner",
    "ProjectionStatus",
    "ProjectionTimeout",
    "Range",
    "RecordedEvent",
    "Repository",
    "RetryPolicy",
    "SchemaVersionError",
    "Service",
    "Snapshot",
    "SqlProjection",
    "StoreClosed",
    "StoreTransaction",
    "StreamInfo",
    "StreamWrite",
    "UnknownCommand",
    "UnknownEventType",
    "UnsupportedFeature",
    "UnsupportedStoreURL",
    "WrongExpectedVersion",
    "applies",
    "causal_chain",
    "current_context",
    "default_registry",
    "ends",
    "message_context",
    "on",
    "on_timeout",
    "open_store",
    "register_backend",
    "starts",
    "stream_category",
    "wait_until",
]
