"""Who and what caused a change: the metadata every saved event carries.

Set it once around a unit of work; every event saved inside gets it::

    >>> with message_context(actor="user:42", correlation_id="req-1") as context:
    ...     event_metadata()["actor"], event_metadata()["correlation_id"]
    ('user:42', 'req-1')

Without a correlation id in the context, each save starts a chain of its own:
a new id serves as both correlation and causation id. Contexts nest; an inner
one inherits what it does not set. The context lives in a ``ContextVar``, so
concurrent tasks keep theirs apart.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from eventledger._validation import check_metadata_keys
from eventledger.observability import tracing
from eventledger.records import JSONObject

__all__ = ["MessageContext", "current_context", "event_metadata", "message_context"]

CORRELATION_ID = "correlation_id"
CAUSATION_ID = "causation_id"
ACTOR = "actor"


@dataclass(frozen=True, slots=True)
class MessageContext:
    correlation_id: str | None = None
    causation_id: str | None = None
    actor: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


_current: ContextVar[MessageContext] = ContextVar("eventledger_message_context")
_EMPTY = MessageContext()


def current_context() -> MessageContext:
    """The correlation id, causation id and actor in effect here (set by
    :func:`message_context`; empty outside one)."""
    return _current.get(_EMPTY)


@contextmanager
def message_context(
    *,
    correlation_id: str | None = None,
    causation_id: str | None = None,
    actor: str | None = None,
    **extra: Any,
) -> Iterator[MessageContext]:
    """Set correlation id, causation id, actor and extra metadata keys for the block."""
    check_metadata_keys(extra, "message_context")
    parent = current_context()
    context = MessageContext(
        correlation_id or parent.correlation_id,
        causation_id or parent.causation_id,
        actor or parent.actor,
        {**parent.extra, **extra},
    )
    token = _current.set(context)
    try:
        yield context
    finally:
        _current.reset(token)


def event_metadata(extra: Mapping[str, Any] | None = None) -> JSONObject:
    """The metadata for events saved now: the context's, then `extra` on top."""
    context = current_context()
    correlation = context.correlation_id or str(uuid.uuid4())
    metadata: JSONObject = {
        CORRELATION_ID: correlation,
        CAUSATION_ID: context.causation_id or correlation,
    }
    if context.actor:
        metadata[ACTOR] = context.actor
    metadata.update(tracing.trace_metadata())  # the trace it was written in, if traced
    metadata.update(context.extra)
    if extra:
        metadata.update(extra)
    return metadata
