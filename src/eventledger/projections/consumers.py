"""Projections as subscription consumers (see :mod:`eventledger.subscriptions`).

- :class:`StoredConsumer`: document and SQL read models, written in the batch's
  transaction with the checkpoint (exactly once);
- :class:`InMemoryConsumer`: in-memory read models, rebuilt from the log in each
  process, with no checkpoint or lease.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from eventledger.errors import InvalidInput
from eventledger.failures import RetryPolicy
from eventledger.projections.base import (
    Context,
    DocumentProjection,
    InMemoryProjection,
    Projection,
    RunScope,
)
from eventledger.projections.caching import Change
from eventledger.projections.documents import Documents
from eventledger.records import RecordedEvent
from eventledger.stores.base import StoreTransaction
from eventledger.subscriptions import Consumer, HandlerFailed

__all__ = ["InMemoryConsumer", "ProjectionConsumer", "StoredConsumer", "projection_of"]


@runtime_checkable
class ProjectionConsumer(Consumer, Protocol):
    """A consumer that runs a projection (a read model or a process manager)."""

    projection: Projection
    generation: int


def projection_of(consumer: Consumer) -> ProjectionConsumer:
    if not isinstance(consumer, ProjectionConsumer):
        raise InvalidInput(f"{consumer.name} is not run by a projection")
    return consumer


class StoredConsumer:
    """A read model kept in the store's database, one generation of it."""

    durable = True

    def __init__(self, projection: Projection, scope: RunScope, generation: int | None) -> None:
        self.projection = projection
        self.scope = scope
        self.name = projection.name
        self.retry: RetryPolicy = projection.retry
        self.generation = generation or 1

    def handles(self, record: RecordedEvent) -> bool:
        return self.projection.handles(record)

    async def activate(self, tx: StoreTransaction | None) -> None:
        # The generation queries see: another process may have rebuilt it meanwhile.
        assert tx is not None
        read_side = self.scope.read_side
        generation = await read_side.generation(self.name)
        if generation is None:
            generation = 1
            await read_side.set_generation(tx, self.name, generation)
        self.generation = generation
        await self.projection.create(tx, self.scope, generation)
        await self.projection.point_views(tx, self.scope, generation)
        await self.scope.changing(tx, self.projection, taking_over=True)

    def batch(self, records: Sequence[RecordedEvent]) -> _StoredBatch:
        return _StoredBatch(self, records)

    async def before_step(self) -> None:
        await self.scope.serving(self.projection)

    def memory_bytes(self) -> int | None:
        return None


class _StoredBatch:
    def __init__(self, consumer: StoredConsumer, records: Sequence[RecordedEvent]) -> None:
        self.consumer = consumer
        self.records = records
        self.docs: Documents | None = None
        self.change: Change | None = None

    async def prepare(self) -> None:
        # Document handlers run before the transaction, so that it lasts only as long as
        # the writes (SQLite's file lock, say); SQL handlers write in it. The query cache
        # is told before it too (a Redis that does not answer costs no lock time).
        projection = self.consumer.projection
        if self.records:
            self.change = await self.consumer.scope.change_ahead(projection)
        if isinstance(projection, DocumentProjection):
            scope, generation = self.consumer.scope, self.consumer.generation
            self.docs = Documents(scope.read_side, projection.table(generation))
            ids = [i for r in self.records if (i := projection.document_id(r)) is not None]
            await self.docs.prefetch(ids)
            await self._handle(None)

    async def commit(self, tx: StoreTransaction | None) -> None:
        assert tx is not None
        if self.change is not None:
            self.change.commits_with(tx)
        if self.docs is not None:
            await self.docs.flush(tx)
            return
        await self.consumer.projection.begin(tx, self.consumer.scope)
        await self._handle(tx)

    async def _handle(self, tx: StoreTransaction | None) -> None:
        consumer = self.consumer
        projection, scope = consumer.projection, consumer.scope
        tables = projection.table_names(consumer.generation)
        for index, record in enumerate(self.records):
            try:
                await projection.handle(record, Context(record, tx, self.docs, tables, scope.sql))
            except Exception as error:
                raise HandlerFailed(index, error) from error


class InMemoryConsumer:
    """A read model held in this process; `projection` is replaced by a fresh instance each
    time the consumer is activated."""

    durable = False

    def __init__(self, projection: InMemoryProjection) -> None:
        self.projection = projection
        self.name = projection.name
        self.retry: RetryPolicy = projection.retry
        self.generation = 1

    def handles(self, record: RecordedEvent) -> bool:
        return self.projection.handles(record)

    async def activate(self, tx: StoreTransaction | None) -> None:
        self.projection = type(self.projection)()

    def batch(self, records: Sequence[RecordedEvent]) -> _InMemoryBatch:
        return _InMemoryBatch(self.projection, records)

    async def before_step(self) -> None:
        pass

    def memory_bytes(self) -> int | None:
        return self.projection.memory_bytes()


class _InMemoryBatch:
    def __init__(self, projection: InMemoryProjection, records: Sequence[RecordedEvent]) -> None:
        self.projection = projection
        self.records = records

    async def prepare(self) -> None:
        for index, record in enumerate(self.records):
            try:
                await self.projection.handle(record, Context(record, None, None, {}))
            except Exception as error:
                raise HandlerFailed(index, error) from error

    async def commit(self, tx: StoreTransaction | None) -> None:
        pass
