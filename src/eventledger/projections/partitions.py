"""Partitioned projections: a document or SQL read model split by stream into partitions
that several processes share (see :mod:`eventledger.subscriptions.partitions` for how the
partitions are leased and shared out, and docs/partitions.md).

A projection declares ``partitions = N`` (a class attribute). The runner then runs it as
N subscriptions, ``<name>#0`` to ``<name>#N-1``, each handling the events of the streams
that hash to it, in order; all of them write the same read-model tables, so queries are
unchanged. What a partitioned projection must not do: let events of two streams that may
fall in different partitions write the same document or row, unless it tolerates their
order across streams being lost (a document keyed per stream, or per aggregate, is safe).

Process managers and in-memory read models are not partitioned (a process manager's
instances and timeouts are kept by one subscription; an in-memory model lives in every
process anyway).
"""

from __future__ import annotations

from eventledger.errors import InvalidInput
from eventledger.projections.base import DocumentProjection, Projection, RunScope, SqlProjection
from eventledger.subscriptions import SubscriptionSettings
from eventledger.subscriptions.partitions import (
    PartitionedSubscription,
    check_partitions,
    find_partition,
)

__all__ = ["find_partition", "is_partitioned", "partitioned_subscription"]


def is_partitioned(projection: Projection) -> bool:
    """Whether `projection` declares more than one partition (checking the count)."""
    return check_partitions(projection.name, projection.partitions) > 1


def partitioned_subscription(
    projection: Projection, scope: RunScope, settings: SubscriptionSettings
) -> PartitionedSubscription:
    """The subscription that runs `projection`'s partitions held by this process."""
    count = check_partitions(projection.name, projection.partitions)
    if not isinstance(projection, DocumentProjection | SqlProjection) or (
        "command_log" in projection.needs
    ):
        raise InvalidInput(
            f"{projection.name}: only document and SQL read models can be partitioned, not"
            f" {type(projection).__name__} (set partitions = 1)"
        )
    consumers = [projection.consumer(scope) for _ in range(count)]
    return PartitionedSubscription(scope.store, scope.read_side, consumers, settings)
