"""OpenTelemetry traces, when the application turns them on.

eventledger uses only ``opentelemetry-api`` (``pip install 'eventledger[tracing]'``
brings it with the SDK). Spans are made only once a tracer provider is set
(``opentelemetry.trace.set_tracer_provider``, or an auto-instrumentation agent);
until then, and when the API is not installed, :func:`span` costs one check.

Spans: an HTTP request (``SERVER``), a command, an append, a projection's batch (with
links to the traces of the events in it), and a process manager's handling of an
event, whose parent is the trace that appended the event, so that a request, the
events it caused, the process step that reacted and the next command form one trace.
The trace context travels in each event's metadata as ``traceparent`` (W3C).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

try:
    from opentelemetry import trace as _trace
    from opentelemetry.propagate import extract as _extract
    from opentelemetry.propagate import inject as _inject
except ImportError:  # tracing is an optional extra
    _trace = None  # type: ignore[assignment]

__all__ = ["TRACE_KEYS", "active", "set_attribute", "span", "trace_metadata"]

TRACE_KEYS = ("traceparent", "tracestate")
"""The metadata keys that carry an event's trace context."""

_KINDS = ("internal", "server", "client", "producer", "consumer")

_tracer: tuple[Any, Any] = (None, None)
"""The provider the tracer came from, and the tracer (asking for one per span costs
a quarter of a span's time)."""


def active() -> bool:
    """Whether spans are recorded: the API is installed and a tracer provider is set."""
    return _trace is not None and not isinstance(
        _trace.get_tracer_provider(), _trace.ProxyTracerProvider
    )


def _carrier(metadata: Mapping[str, Any] | None) -> dict[str, str] | None:
    if not metadata:
        return None
    found = {key: metadata[key] for key in TRACE_KEYS if isinstance(metadata.get(key), str)}
    return found if "traceparent" in found else None


@contextmanager
def span(
    name: str,
    *,
    kind: str = "internal",
    attributes: Mapping[str, Any] | None = None,
    parent: Mapping[str, Any] | None = None,
    links: Iterable[Mapping[str, Any]] = (),
) -> Iterator[Any]:
    """A span around the block (None when tracing is off). `parent` is a carrier (an
    event's metadata, a request's headers) whose trace this span continues; `links`
    are carriers of traces this span relates to (the events of a batch)."""
    if not active():
        yield None
        return
    assert _trace is not None
    tracer = _tracer_now()
    carrier = _carrier(parent)
    context = _extract(carrier) if carrier is not None else None
    linked = []
    for metadata in links:
        found = _carrier(metadata)
        if found is not None:
            linked_context = _trace.get_current_span(_extract(found)).get_span_context()
            if linked_context.is_valid:
                linked.append(_trace.Link(linked_context))
    with tracer.start_as_current_span(
        name,
        context=context,
        kind=_trace.SpanKind[kind.upper()] if kind in _KINDS else _trace.SpanKind.INTERNAL,
        attributes=dict(attributes or {}),
        links=linked,
    ) as current:
        yield current


def _tracer_now() -> Any:
    global _tracer
    assert _trace is not None
    provider = _trace.get_tracer_provider()
    if _tracer[0] is not provider:
        _tracer = (provider, provider.get_tracer("eventledger"))
    return _tracer[1]


def trace_metadata() -> dict[str, str]:
    """The current trace context as metadata entries (empty when none is recorded)."""
    if not active():
        return {}
    assert _trace is not None
    if not _trace.get_current_span().get_span_context().is_valid:
        return {}
    carrier: dict[str, str] = {}
    _inject(carrier)
    return {key: carrier[key] for key in TRACE_KEYS if key in carrier}


def set_attribute(current: Any, key: str, value: Any) -> None:
    """Set an attribute on a span from :func:`span` (nothing when tracing is off)."""
    if current is not None:
        current.set_attribute(key, value)
