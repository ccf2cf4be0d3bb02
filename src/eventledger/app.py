"""An application: the commands, aggregates, read models and processes of one service.

Declare it once, beside the domain; run it in-process, behind the HTTP server
(``eventledger serve module:application``) or from the command line::

    >>> import asyncio
    >>> from eventledger import Application
    >>> application = Application("empty")
    >>> async def main() -> list[str]:
    ...     async with application.run("memory://") as service:
    ...         return [status.name for status in await service.runner.status()]
    >>> asyncio.run(main())
    []
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from eventledger.aggregate import Aggregate
from eventledger.commands import CommandBus, CommandHandlers
from eventledger.errors import InvalidInput, NotFound
from eventledger.events import EventRegistry, default_registry
from eventledger.projections.base import Projection
from eventledger.projections.caching import ReadModelCache
from eventledger.projections.runner import ProjectionRunner
from eventledger.records import stream_category
from eventledger.retention import RetentionPolicy
from eventledger.retention_schedule import RetentionSchedule
from eventledger.stores import open_store
from eventledger.stores.base import EventStore

__all__ = ["Application", "Service"]

ProjectionSource = Projection | type[Projection] | Callable[[], Projection]


class Application:
    """What a service is made of. Projections and process managers are given as classes
    (or factories), so each run gets fresh instances. `retry_budget` is how long a
    command that meets concurrent changes to its aggregates keeps trying (seconds).
    `retention` are the policies that ``eventledger retention apply`` and the server's
    retention schedule enforce (see :mod:`eventledger.retention`)."""

    def __init__(
        self,
        name: str = "eventledger",
        *,
        commands: CommandHandlers | Iterable[CommandHandlers] = (),
        aggregates: Iterable[type[Aggregate]] = (),
        projections: Iterable[ProjectionSource] = (),
        registry: EventRegistry | None = None,
        snapshot_every: Mapping[type[Aggregate], int] | None = None,
        runner_options: Mapping[str, Any] | None = None,
        retry_budget: float = 2.0,
        retention: Iterable[RetentionPolicy] = (),
    ) -> None:
        self.name = name
        self.retention = list(retention)
        categories: set[str] = set()
        for policy in self.retention:
            if not isinstance(policy, RetentionPolicy):
                raise InvalidInput(f"retention takes RetentionPolicy objects, not {policy!r}")
            if policy.category in categories:
                raise InvalidInput(f"two retention policies for the category {policy.category!r}")
            categories.add(policy.category)
        self.retry_budget = retry_budget
        self.handlers = [commands] if isinstance(commands, CommandHandlers) else list(commands)
        self.aggregates: dict[str, type[Aggregate]] = {}
        for aggregate in aggregates:
            if not (isinstance(aggregate, type) and issubclass(aggregate, Aggregate)):
                raise InvalidInput(f"aggregates are Aggregate classes, not {aggregate!r}")
            if aggregate.category in self.aggregates:
                raise InvalidInput(f"two aggregates use the stream category {aggregate.category!r}")
            self.aggregates[aggregate.category] = aggregate
        self.projection_sources = list(projections)
        self.registry = registry or default_registry
        self.snapshot_every = dict(snapshot_every or {})
        self.runner_options = dict(runner_options or {})

    def aggregate_for(self, stream_id: str) -> tuple[type[Aggregate], str]:
        """The aggregate type whose streams have this stream's category, and its id."""
        category = stream_category(stream_id)
        aggregate = self.aggregates.get(category)
        if aggregate is None or len(stream_id) <= len(category) + 1:
            known = ", ".join(sorted(self.aggregates)) or "none"
            raise NotFound(
                f"no aggregate keeps its events in stream {stream_id!r}; categories: {known}"
            )
        return aggregate, stream_id[len(category) + 1 :]

    def make_projections(self) -> list[Projection]:
        made = []
        for source in self.projection_sources:
            projection = source if isinstance(source, Projection) else source()
            if not isinstance(projection, Projection):
                raise InvalidInput(f"{source!r} did not make a Projection")
            made.append(projection)
        return made

    async def start(
        self,
        store: EventStore | str,
        *,
        projections: bool = True,
        retention_every: timedelta | None = None,
        cache: ReadModelCache | None = None,
    ) -> Service:
        """Open the store (given by URL) and start the runner; `projections=False` runs
        no projections or processes here (another process runs them). With
        `retention_every`, the application's retention policies are applied that often
        (by one process at a time: see :mod:`eventledger.retention_schedule`). With
        `cache` (an :class:`eventledger.cache.QueryCache`), read-model queries go through
        it and the runner tells it of every change."""
        if retention_every is not None and not self.retention:
            raise InvalidInput(
                f"{self.name} has no retention policies to apply every {retention_every}:"
                " give Application(retention=[RetentionPolicy(...)])"
            )
        opened = await open_store(store) if isinstance(store, str) else store
        schedule = None
        try:
            bus = CommandBus(
                opened,
                self.handlers,
                registry=self.registry,
                snapshot_every=self.snapshot_every,
                retry_budget=self.retry_budget,
            )
            options = dict(self.runner_options)
            if cache is not None:
                options["cache"] = cache
            runner = ProjectionRunner(opened, self.make_projections(), commands=bus, **options)
            if retention_every is not None:
                schedule = RetentionSchedule(
                    opened, self.retention, retention_every, owner=runner.owner
                )
            if projections:
                await runner.start()
        except BaseException:
            if isinstance(store, str):
                await opened.close()
            raise
        if schedule is not None:
            schedule.start()
        service = Service(self, opened, bus, runner, owns_store=isinstance(store, str))
        service.retention = schedule
        return service

    @asynccontextmanager
    async def run(
        self,
        store: EventStore | str,
        *,
        projections: bool = True,
        retention_every: timedelta | None = None,
        cache: ReadModelCache | None = None,
    ) -> AsyncIterator[Service]:
        service = await self.start(
            store, projections=projections, retention_every=retention_every, cache=cache
        )
        try:
            yield service
        finally:
            await service.stop()


class Service:
    """An application running against a store."""

    def __init__(
        self,
        application: Application,
        store: EventStore,
        bus: CommandBus,
        runner: ProjectionRunner,
        *,
        owns_store: bool,
    ) -> None:
        self.application = application
        self.store = store
        self.bus = bus
        self.runner = runner
        self.retention: RetentionSchedule | None = None
        """The retention schedule this process runs (None: none)."""
        self._owns_store = owns_store

    async def stop(self) -> None:
        if self.retention is not None:
            await self.retention.stop()
        await self.runner.stop()
        if self._owns_store:
            await self.store.close()
