"""What ``/metrics`` answers: this process's counts, and gauges of what the store
knows, read at the moment of the scrape."""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from eventledger.app import Service
from eventledger.observability.prometheus import metrics_registry, multiprocess
from eventledger.process import ProcessManager

__all__ = ["exposition"]

MAX_LETTERS_COUNTED = 100_000


class _Fixed(Collector):
    """Gauges whose values were read before the scrape's text is made."""

    def __init__(self, metrics: Iterable[Metric]) -> None:
        self.metrics = list(metrics)

    def collect(self) -> Iterator[Metric]:
        yield from self.metrics


async def store_gauges(service: Service) -> list[Metric]:
    """The store's state now: head, visible-head lag, projections, dead letters,
    process instances."""
    store = service.store
    head = GaugeMetricFamily(
        "eventledger_head_position", "The position of the last event readers can see"
    )
    head.add_metric([], await store.head_position())
    horizon = await store.horizon()
    held = GaugeMetricFamily(
        "eventledger_visible_head_lag_events",
        "Committed events readers cannot see yet (an older writer is still running)",
    )
    held.add_metric([], horizon.events_held)
    position = GaugeMetricFamily(
        "eventledger_projection_position",
        "The position a projection has handled",
        labels=["projection"],
    )
    lag_events = GaugeMetricFamily(
        "eventledger_projection_lag_events",
        "Events a projection has still to handle",
        labels=["projection"],
    )
    lag_seconds = GaugeMetricFamily(
        "eventledger_projection_lag_seconds",
        "How old the oldest event a projection has still to handle is",
        labels=["projection"],
    )
    state = GaugeMetricFamily(
        "eventledger_projection_state",
        "1 for a projection's state now (running, catching_up, rebuilding, stalled,"
        " failed, standby, ...)",
        labels=["projection", "state"],
    )
    statuses = await service.runner.status()
    for status in statuses:
        position.add_metric([status.name], status.position)
        lag_events.add_metric([status.name], status.events_behind)
        lag_seconds.add_metric([status.name], status.seconds_behind)
        state.add_metric([status.name, status.state], 1)
    letters = GaugeMetricFamily(
        "eventledger_dead_letters",
        "Parked events waiting for a retry or a skip",
        labels=["projection"],
    )
    parked = Tally(
        letter.subscription
        for letter in await store.read_side().dead_letters(
            None, "parked", limit=MAX_LETTERS_COUNTED
        )
    )
    for status in statuses:
        letters.add_metric([status.name], parked.get(status.name, 0))
    instances = GaugeMetricFamily(
        "eventledger_process_instances",
        "Process-manager instances by state",
        labels=["process", "state"],
    )
    storage = store.process_storage()
    for name in service.runner.names:
        if isinstance(service.runner.get(name), ProcessManager):
            counts = await storage.count_instances(name)
            for status_name in ("active", "completed", "failed"):
                instances.add_metric([name, status_name], counts.get(status_name, 0))
    return [head, held, position, lag_events, lag_seconds, state, letters, instances]


async def exposition(service: Service) -> bytes:
    """The text ``/metrics`` answers (Prometheus' text format)."""
    gauges = CollectorRegistry(auto_describe=False)
    gauges.register(_Fixed(await store_gauges(service)))
    text = generate_latest(gauges)
    if multiprocess():
        shared = CollectorRegistry(auto_describe=False)
        MultiProcessCollector(shared)  # type: ignore[no-untyped-call]
        text += generate_latest(shared)
    else:
        own = metrics_registry()
        if own is not None:
            text += generate_latest(own)
    return text
