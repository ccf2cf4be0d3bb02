"""Observability: Prometheus metrics, OpenTelemetry traces and structured logs.

- :mod:`.instruments`: what instrumented code reports (appends, reads, commands,
  projection batches, HTTP requests); nothing is counted until metrics are on.
- :mod:`.prometheus`: the Prometheus instruments (:func:`~.prometheus.enable_metrics`)
  and :mod:`.scrape`, what ``GET /metrics`` answers (with gauges read from the store).
- :mod:`.tracing`: spans through ``opentelemetry-api`` once a tracer provider is set,
  and the trace context in each event's metadata.
- :mod:`.logs`: the message context in every log record; text or JSON lines.

The guide: ``docs/operations.md``.
"""

from __future__ import annotations
