"""Prometheus metrics: what this process counts, and what the store knows.

Counters and histograms (appends, reads, commands, projection batches, HTTP
requests) count as things happen, once :func:`enable_metrics` is called
(``create_app`` does it). Gauges of what the store knows (projection positions and
lag, dead letters, process instances, the visible head) are read when ``/metrics``
is scraped (:func:`exposition`), so every process answers the same.

Several worker processes: set ``PROMETHEUS_MULTIPROC_DIR`` to an empty folder before
they start (``eventledger serve --workers N`` does); each process then writes its
counts there, and a scrape of any of them adds up all of them.
"""

from __future__ import annotations

import os

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram

from eventledger.observability import instruments

__all__ = [
    "CONTENT_TYPE",
    "PrometheusInstruments",
    "enable_metrics",
    "metrics_registry",
    "multiprocess",
]

CONTENT_TYPE = CONTENT_TYPE_LATEST

# Seconds: appends and commands take from a few hundred microseconds to seconds.
DURATION_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)


class PrometheusInstruments:
    """The instruments as Prometheus metrics in `registry`."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.appends = Counter(
            "eventledger_appends",
            "Appends committed (one per append call or transaction that appended)",
            ["backend"],
            registry=registry,
        )
        self.events_appended = Counter(
            "eventledger_events_appended", "Events appended", ["backend"], registry=registry
        )
        self.append_seconds = Histogram(
            "eventledger_append_duration_seconds",
            "How long an append took, until it was committed",
            ["backend"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.events_read = Counter(
            "eventledger_events_read",
            "Events read from the log and from streams",
            ["backend"],
            registry=registry,
        )
        self.commands = Counter(
            "eventledger_commands",
            "Commands handled, by outcome: ok, rejected (the domain or the input said no),"
            " conflict (concurrent changes outlasted the retries), error",
            ["command", "outcome"],
            registry=registry,
        )
        self.command_seconds = Histogram(
            "eventledger_command_duration_seconds",
            "How long a command took, retries included",
            ["command", "outcome"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.events_handled = Counter(
            "eventledger_projection_events_handled",
            "Events a projection or process manager handled in this process",
            ["projection"],
            registry=registry,
        )
        self.batch_seconds = Histogram(
            "eventledger_projection_batch_duration_seconds",
            "How long a projection's batch took, handlers and commit",
            ["projection"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.requests = Counter(
            "eventledger_http_requests",
            "HTTP requests, by route template and status",
            ["method", "route", "status"],
            registry=registry,
        )
        self.request_seconds = Histogram(
            "eventledger_http_request_duration_seconds",
            "How long an HTTP request took to answer (a stream's headers, for live feeds)",
            ["method", "route"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.replica_reads = Counter(
            "eventledger_replica_reads",
            "Reads that could go to the read replica, by where they went (replica, primary)"
            " and why (ok; behind, down, failed: the primary answered instead)",
            ["source", "reason"],
            registry=registry,
        )
        self.query_cache_lookups = Counter(
            "eventledger_query_cache_lookups",
            "Read-model queries through the Redis query cache, by outcome: hit, miss (read"
            " from the database, then kept), busy (a change was committing), unvouched (no"
            " running read model vouched for it), unavailable (Redis did not answer),"
            " uncacheable",
            ["read_model", "outcome"],
            registry=registry,
        )
        self.query_cache_errors = Counter(
            "eventledger_query_cache_errors",
            "Calls to the query cache's Redis that failed or timed out, by operation",
            ["operation"],
            registry=registry,
        )

    def appended(self, backend: str, events: int, seconds: float) -> None:
        self.appends.labels(backend).inc()
        self.events_appended.labels(backend).inc(events)
        self.append_seconds.labels(backend).observe(seconds)

    def read(self, backend: str, events: int) -> None:
        self.events_read.labels(backend).inc(events)

    def command(self, name: str, outcome: str, seconds: float) -> None:
        self.commands.labels(name, outcome).inc()
        self.command_seconds.labels(name, outcome).observe(seconds)

    def handled(self, subscription: str, events: int, seconds: float) -> None:
        self.events_handled.labels(subscription).inc(events)
        self.batch_seconds.labels(subscription).observe(seconds)

    def request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.request_seconds.labels(method, route).observe(seconds)

    def replica_read(self, source: str, reason: str) -> None:
        self.replica_reads.labels(source, reason).inc()

    def query_cache(self, read_model: str, outcome: str) -> None:
        self.query_cache_lookups.labels(read_model, outcome).inc()

    def query_cache_error(self, operation: str) -> None:
        self.query_cache_errors.labels(operation).inc()


_enabled: PrometheusInstruments | None = None


def enable_metrics() -> PrometheusInstruments:
    """Count from now on, in this process (idempotent); the Prometheus instruments."""
    global _enabled
    if _enabled is None:
        _enabled = PrometheusInstruments(CollectorRegistry(auto_describe=True))
        instruments.install(_enabled)
    return _enabled


def metrics_registry() -> CollectorRegistry | None:
    """The registry of this process's counts, if metrics are on."""
    return None if _enabled is None else _enabled.registry


def multiprocess() -> bool:
    """Whether worker processes share their counts (``PROMETHEUS_MULTIPROC_DIR``)."""
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
