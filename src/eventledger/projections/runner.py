"""Running projections: catch up, stay live, retry, park, rebuild, and report.

One :class:`ProjectionRunner` runs many projections, each in a task of its
own. Per projection, it reads the log after its checkpoint in batches; a batch's
read-model writes and the new checkpoint commit in one transaction (documents and
SQL tables live in the store's database), so no event is applied twice or
missed, whenever the process dies. When several processes run the same
projection, a lease renewed in every batch lets exactly one of them work;
another takes over within `lease_ttl` seconds after the holder dies, and a
holder that lost its lease cannot commit (the lease is checked in the batch's
transaction).

In-memory projections are rebuilt from the log at start by every process that
runs them; they keep no checkpoint and take no lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import traceback
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from eventledger.errors import EventLedgerError, InvalidInput, NotFound, OperationalError
from eventledger.failures import OnFailure, ProjectionFailed
from eventledger.projections._storage import DeadLetter, ReadSideStorage, storage_for
from eventledger.projections.base import (
    Context,
    DocumentProjection,
    InMemoryProjection,
    Projection,
    SqlProjection,
)
from eventledger.projections.documents import DocumentQueries, Documents
from eventledger.records import RecordedEvent
from eventledger.stores.base import EventStore, StoreTransaction

if TYPE_CHECKING:
    from eventledger.commands import CommandBus

__all__ = [
    "ProjectionRunner",
    "ProjectionStatus",
    "ProjectionTimeout",
    "RebuildProgress",
    "wait_until",
]

log = logging.getLogger("eventledger.projections")


class ProjectionTimeout(EventLedgerError, TimeoutError):
    """A projection did not reach a position in time."""


class LeaseLost(EventLedgerError):
    """Another process took the projection over."""


@dataclass(frozen=True, slots=True)
class RebuildProgress:
    generation: int
    events_done: int
    events_total: int
    events_per_second: float
    seconds_left: float | None


@dataclass(frozen=True, slots=True)
class ProjectionStatus:
    name: str
    state: str
    """starting, standby (another process runs it), catching_up, running, rebuilding,
    stopped or failed."""
    position: int
    head_position: int
    events_behind: int
    seconds_behind: float
    generation: int
    last_error: str | None
    active: bool
    rebuild: RebuildProgress | None = None
    memory_bytes: int | None = None


class _HandlerFailed(Exception):
    def __init__(self, index: int, error: BaseException) -> None:
        super().__init__(str(error))
        self.index = index
        self.error = error
        self.text = f"{type(error).__name__}: {error}"
        self.trace = "".join(traceback.format_exception(error))


@dataclass
class _Shadow:
    generation: int
    projection: Projection
    position: int = 0
    done: int = 0
    total: int = 0
    started: float = field(default_factory=time.monotonic)
    finished: asyncio.Future[None] | None = None


class _Worker:
    """Runs one projection."""

    def __init__(self, runner: ProjectionRunner, projection: Projection) -> None:
        self.runner = runner
        self.projection = projection
        self.name = projection.name
        self.store = runner.store
        self.storage = runner.storage
        self.in_memory = isinstance(projection, InMemoryProjection)
        self.state = "starting"
        self.active = False
        self.position = 0
        self.generation = 1
        self.last_error: str | None = None
        self.stopped_on: tuple[int, RecordedEvent] | None = None
        self.shadow: _Shadow | None = None
        self.commands: asyncio.Queue[tuple[str, Any, asyncio.Future[Any]]] = asyncio.Queue()
        self.command_waiting = asyncio.Event()
        self.settled = asyncio.Event()  # set once the worker is active or in standby
        self.changed = asyncio.Condition()
        self.last_renewal = 0.0
        self.task: asyncio.Task[None] | None = None

    # --- the loop -------------------------------------------------------------------------

    async def run(self) -> None:
        while not self.runner.stopping:
            try:
                await self._step()
            except LeaseLost:
                log.warning("%s: another process took over", self.name)
                self.active = False
                self.state = "standby"
            except asyncio.CancelledError:
                raise
            except Exception as error:  # keep running; the status shows it
                self.last_error = f"{type(error).__name__}: {error}"
                log.exception("%s: %s; trying again", self.name, self.last_error)
                await self._pause(self.runner.poll_interval)
        self.state = "stopped"

    async def _step(self) -> None:
        if not self.active and not await self._become_active():
            self.state = "standby"
            self.settled.set()
            await self._pause(self.runner.lease_ttl / 3)
            return
        self.settled.set()
        await self._do_commands()
        if self.state == "failed":
            await self._renew_if_due()
            await self._wait_for_command(self.runner.lease_ttl / 3)
            return
        if self.shadow is not None:
            await self._shadow_step()
        since = self.store.append_generation
        await self._before_step()
        page = await self._read(self.position)
        if page:
            self.state = "catching_up" if len(page) == self.runner.batch_size else "running"
            await self._process(page)
            if self.state != "failed" and self.shadow is not None:
                self.state = "rebuilding"
            return
        self.state = "rebuilding" if self.shadow is not None else "running"
        await self._renew_if_due()
        if self.shadow is None:
            await self._wait_for_events(since)

    async def _wait_for_events(self, since: int) -> None:
        timeout = min(self.runner.poll_interval, self.runner.lease_ttl / 3)
        waiter = asyncio.ensure_future(self.store.wait_for_appends(since, timeout))
        command = asyncio.ensure_future(self._command_arrives())
        try:
            await asyncio.wait({waiter, command}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (waiter, command):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def _command_arrives(self) -> None:
        await self.command_waiting.wait()

    async def _wait_for_command(self, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._command_arrives(), timeout)

    async def _pause(self, seconds: float) -> None:
        # Sleep, but wake for a command (or the runner stopping, which cancels us).
        await self._wait_for_command(seconds)

    async def _read(self, after: int) -> list[RecordedEvent]:
        return [e async for e in self.store.read_all(after=after, limit=self.runner.batch_size)]

    # --- activation and leases ----------------------------------------------------------------

    async def _become_active(self) -> bool:
        if self.in_memory:
            self.projection = type(self.projection)()
            self.position = 0
            self.active = True
            return True
        if not await self.storage.acquire_lease(
            self.name, self.runner.owner, self.runner.lease_ttl
        ):
            return False
        self.last_renewal = time.monotonic()
        async with self.store.transaction() as tx:
            await self._tx_setup(tx, self.projection)
            generation = await self.storage.generation(self.name)
            if generation is None:
                generation = 1
                await self.storage.set_generation(tx, self.name, generation)
            await self.projection.create(tx, self.storage, generation)
            await self.projection.point_views(tx, self.storage, generation)
        self.generation = generation
        self.position = await self.storage.get_checkpoint(self.name) or 0
        self.active = True
        self.stopped_on = None
        parked = await self.storage.dead_letters(self.name, "parked")
        if parked and self.projection.retry.on_failure is OnFailure.STOP:
            letter = parked[-1]
            if letter.position > self.position:
                record = await self._record_at(letter)
                if record is not None:
                    self.stopped_on = (letter.id, record)
                    self.state = "failed"
                    self.last_error = letter.error
        log.info("%s: active at position %d (generation %d)", self.name, self.position, generation)
        return True

    async def _renew_if_due(self) -> None:
        if self.in_memory or time.monotonic() - self.last_renewal < self.runner.lease_ttl / 3:
            return
        if not await self.storage.acquire_lease(
            self.name, self.runner.owner, self.runner.lease_ttl
        ):
            raise LeaseLost(self.name)
        self.last_renewal = time.monotonic()

    async def _tx_setup(self, tx: StoreTransaction, projection: Projection) -> None:
        if isinstance(projection, SqlProjection) and tx.dialect == "postgres":
            schema = getattr(self.store, "schema", "public")
            await tx.execute(f'SET LOCAL search_path TO "{schema}"')
        if isinstance(projection, SqlProjection) and tx.dialect == "memory":
            raise InvalidInput(f"{self.name}: SQL projections need a SQLite or PostgreSQL store")

    # --- batches ----------------------------------------------------------------------------

    async def _process(self, page: list[RecordedEvent]) -> None:
        projection = self.projection
        relevant = [e for e in page if projection.handles(e)]
        try:
            await self._commit(projection, relevant, page[-1].position, self.generation, self.name)
        except _HandlerFailed as failure:
            failing = relevant[failure.index]
            await self._commit(
                projection,
                relevant[: failure.index],
                failing.position - 1,
                self.generation,
                self.name,
            )
            await self._retry_then_park(failing, failure)

    async def _commit(
        self,
        projection: Projection,
        records: Sequence[RecordedEvent],
        checkpoint: int,
        generation: int,
        checkpoint_name: str,
    ) -> None:
        if checkpoint < 0:
            return
        if projection.sends_commands:
            await self._commit_process(projection, records, checkpoint, checkpoint_name)
            return
        if isinstance(projection, InMemoryProjection):
            for index, record in enumerate(records):
                try:
                    await projection.handle(record, Context(record, None, None, {}))
                except Exception as error:
                    raise _HandlerFailed(index, error) from error
            await self._moved(projection, checkpoint, checkpoint_name)
            return
        async with self.store.transaction() as tx:
            if not await self.storage.hold_lease(
                tx, self.name, self.runner.owner, self.runner.lease_ttl
            ):
                raise LeaseLost(self.name)
            await self._tx_setup(tx, projection)
            docs = None
            if isinstance(projection, DocumentProjection):
                docs = Documents(self.storage, projection.table(generation), tx)
                ids = [i for r in records if (i := projection.document_id(r)) is not None]
                await docs.prefetch(ids)
            tables = projection.table_names(generation)
            for index, record in enumerate(records):
                try:
                    await projection.handle(record, Context(record, tx, docs, tables))
                except Exception as error:
                    raise _HandlerFailed(index, error) from error
            if docs is not None:
                await docs.flush()
            await self.storage.set_checkpoint(tx, checkpoint_name, checkpoint)
        self.last_renewal = time.monotonic()
        await self._moved(projection, checkpoint, checkpoint_name)

    async def _commit_process(
        self,
        manager: Projection,
        records: Sequence[RecordedEvent],
        checkpoint: int,
        checkpoint_name: str,
    ) -> None:
        # Handle first (each command a transaction of its own), then write the instances
        # and the checkpoint together. Dying in between only repeats sends, which the
        # commands' idempotency keys turn into no-ops.
        batch = manager.start_batch(self.store)
        await batch.prefetch(records)
        for index, record in enumerate(records):
            try:
                await batch.handle(record)
            except Exception as error:
                raise _HandlerFailed(index, error) from error
        async with self.store.transaction() as tx:
            if not await self.storage.hold_lease(
                tx, self.name, self.runner.owner, self.runner.lease_ttl
            ):
                raise LeaseLost(self.name)
            await batch.write(tx)
            await self.storage.set_checkpoint(tx, checkpoint_name, checkpoint)
        self.last_renewal = time.monotonic()
        await self._moved(manager, checkpoint, checkpoint_name)

    async def _before_step(self) -> None:
        if self.state != "failed":
            await self.projection.before_step(self.store)

    async def _moved(self, projection: Projection, checkpoint: int, checkpoint_name: str) -> None:
        if checkpoint_name == self.name:
            self.position = checkpoint
            await self._announce()
        elif self.shadow is not None:
            self.shadow.position = checkpoint

    async def _announce(self) -> None:
        async with self.changed:
            self.changed.notify_all()

    async def _retry_then_park(self, record: RecordedEvent, failure: _HandlerFailed) -> None:
        policy = self.projection.retry
        for attempt in range(2, policy.max_attempts + 1):
            await asyncio.sleep(policy.delay(attempt - 1))
            try:
                await self._commit(
                    self.projection, [record], record.position, self.generation, self.name
                )
                return
            except _HandlerFailed as again:
                failure = again
        log.error(
            "%s: parked event %s (%s at position %d) after %d attempts: %s",
            self.name,
            record.id,
            record.type,
            record.position,
            policy.max_attempts,
            failure.text,
        )
        skip = policy.on_failure is OnFailure.SKIP
        if self.in_memory:
            letter_id = 0
            if skip:
                await self._moved(self.projection, record.position, self.name)
        else:
            async with self.store.transaction() as tx:
                if not await self.storage.hold_lease(
                    tx, self.name, self.runner.owner, self.runner.lease_ttl
                ):
                    raise LeaseLost(self.name)
                letter_id = await self.storage.park(
                    tx, self.name, record, policy.max_attempts, failure.text, failure.trace
                )
                if skip:
                    await self.storage.set_checkpoint(tx, self.name, record.position)
            if skip:
                await self._moved(self.projection, record.position, self.name)
        self.last_error = (
            f"{failure.text} (event {record.id}, {record.type}, position {record.position})"
        )
        if not skip:
            self.state = "failed"
            self.stopped_on = (letter_id, record)
            await self._announce()

    # --- rebuilding ---------------------------------------------------------------------------

    def _refuse_for_processes(self, what: str) -> None:
        if self.projection.sends_commands:
            raise InvalidInput(
                f"{self.name} is a process manager: a {what} would send its commands again"
            )

    async def _start_rebuild(self, finished: asyncio.Future[None]) -> None:
        self._refuse_for_processes("rebuild")
        if self.shadow is not None:
            raise InvalidInput(f"{self.name} is rebuilding already")
        generation = self.generation + 1
        fresh = type(self.projection)()
        if not self.in_memory:
            async with self.store.transaction() as tx:
                await self._tx_setup(tx, fresh)
                await fresh.drop(tx, self.storage, generation)
                await fresh.create(tx, self.storage, generation)
                await self.storage.set_checkpoint(tx, self._shadow_name(generation), 0)
        total = await self.store.count_events()
        self.shadow = _Shadow(generation, fresh, total=total, finished=finished)
        log.info("%s: rebuilding into generation %d (%d events)", self.name, generation, total)

    def _shadow_name(self, generation: int) -> str:
        return f"{self.name}@{generation}"

    async def _shadow_step(self) -> None:
        shadow = self.shadow
        assert shadow is not None
        # Several shadow batches for each live one, so that the copy catches up.
        for _ in range(self.runner.rebuild_batches_per_step):
            if shadow.position >= self.position:
                await self._swap(shadow)
                return
            page = await self._read(shadow.position)
            if not page:
                await self._swap(shadow)
                return
            relevant = [e for e in page if shadow.projection.handles(e)]
            try:
                await self._commit(
                    shadow.projection,
                    relevant,
                    page[-1].position,
                    shadow.generation,
                    self._shadow_name(shadow.generation),
                )
            except _HandlerFailed as failure:
                await self._abandon_rebuild(shadow, failure)
                return
            shadow.done += len(page)

    async def _swap(self, shadow: _Shadow) -> None:
        old = self.generation
        if not self.in_memory:
            async with self.store.transaction() as tx:
                if not await self.storage.hold_lease(
                    tx, self.name, self.runner.owner, self.runner.lease_ttl
                ):
                    raise LeaseLost(self.name)
                await self._tx_setup(tx, shadow.projection)
                await shadow.projection.point_views(tx, self.storage, shadow.generation)
                await self.storage.set_generation(tx, self.name, shadow.generation)
                await self.storage.set_checkpoint(tx, self.name, shadow.position)
                await self.storage.delete_checkpoint(tx, self._shadow_name(shadow.generation))
                await self.projection.drop(tx, self.storage, old)
        self.projection = shadow.projection
        self.generation = shadow.generation
        self.position = max(self.position, shadow.position) if self.in_memory else shadow.position
        self.shadow = None
        log.info("%s: now serving generation %d", self.name, self.generation)
        if shadow.finished is not None and not shadow.finished.done():
            shadow.finished.set_result(None)
        await self._announce()

    async def _abandon_rebuild(self, shadow: _Shadow, failure: _HandlerFailed) -> None:
        self.shadow = None
        message = f"rebuild of {self.name} failed at an event: {failure.text}"
        self.last_error = message
        if not self.in_memory:
            async with self.store.transaction() as tx:
                await self._tx_setup(tx, shadow.projection)
                await shadow.projection.drop(tx, self.storage, shadow.generation)
                await self.storage.delete_checkpoint(tx, self._shadow_name(shadow.generation))
        if shadow.finished is not None and not shadow.finished.done():
            shadow.finished.set_exception(ProjectionFailed(message))

    def rebuild_progress(self) -> RebuildProgress | None:
        shadow = self.shadow
        if shadow is None:
            return None
        elapsed = max(time.monotonic() - shadow.started, 1e-9)
        rate = shadow.done / elapsed
        left = max(shadow.total - shadow.done, 0)
        return RebuildProgress(
            shadow.generation,
            shadow.done,
            max(shadow.total, shadow.done),
            rate,
            left / rate if rate > 0 else None,
        )

    # --- commands (run inside the worker's task) -------------------------------------------------

    async def _do_commands(self) -> None:
        self.command_waiting.clear()
        while not self.commands.empty():
            command, argument, future = self.commands.get_nowait()
            try:
                result = await getattr(self, f"_command_{command}")(argument)
            except Exception as error:
                if not future.done():
                    future.set_exception(error)
            else:
                if not future.done() and command != "rebuild":
                    future.set_result(result)

    async def _command_rebuild(self, future: asyncio.Future[None]) -> None:
        await self._start_rebuild(future)

    async def _command_reset(self, _: None) -> None:
        self._refuse_for_processes("reset")
        if self.in_memory:
            self.projection = type(self.projection)()
            self.position = 0
        else:
            async with self.store.transaction() as tx:
                if not await self.storage.hold_lease(
                    tx, self.name, self.runner.owner, self.runner.lease_ttl
                ):
                    raise LeaseLost(self.name)
                await self._tx_setup(tx, self.projection)
                await self.projection.drop(tx, self.storage, self.generation)
                await self.projection.create(tx, self.storage, self.generation)
                await self.projection.point_views(tx, self.storage, self.generation)
                await self.storage.set_checkpoint(tx, self.name, 0)
            self.position = 0
        self.stopped_on = None
        self.state = "catching_up"
        self.last_error = None

    async def _command_retry(self, letter_id: int) -> None:
        letter, record = await self._letter(letter_id)
        stopped_here = self.stopped_on is not None and self.stopped_on[1].id == record.id
        checkpoint = max(self.position, record.position)
        try:
            await self._commit(self.projection, [record], checkpoint, self.generation, self.name)
        except _HandlerFailed as failure:
            raise ProjectionFailed(
                f"retrying dead letter {letter_id} of {self.name} failed again: {failure.text}"
            ) from failure.error
        async with self.store.transaction() as tx:
            await self.storage.resolve(tx, letter.id, "retried")
        if stopped_here:
            self._resume()

    async def _command_skip(self, letter_id: int) -> None:
        letter, record = await self._letter(letter_id)
        stopped_here = self.stopped_on is not None and self.stopped_on[1].id == record.id
        async with self.store.transaction() as tx:
            await self.storage.resolve(tx, letter.id, "skipped")
            if stopped_here:
                await self.storage.set_checkpoint(
                    tx, self.name, max(self.position, record.position)
                )
        if stopped_here:
            self.position = max(self.position, record.position)
            self._resume()

    def _resume(self) -> None:
        self.stopped_on = None
        self.state = "catching_up"
        self.last_error = None

    async def _letter(self, letter_id: int) -> tuple[DeadLetter, RecordedEvent]:
        letter = await self.storage.dead_letter(letter_id)
        if letter is None or letter.subscription != self.name:
            raise InvalidInput(f"{self.name} has no dead letter {letter_id}")
        if letter.status != "parked":
            raise InvalidInput(f"dead letter {letter_id} is {letter.status} already")
        record = await self._record_at(letter)
        if record is None:
            raise InvalidInput(f"the event of dead letter {letter_id} is no longer in the log")
        return letter, record

    async def _record_at(self, letter: DeadLetter) -> RecordedEvent | None:
        async for record in self.store.read_all(after=letter.position - 1, limit=1):
            if record.id == letter.event_id:
                return record
        return None

    async def submit(self, command: str, argument: Any = None) -> Any:
        if not self.settled.is_set():  # just started: is it ours, or another process's?
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.settled.wait(), self.runner.lease_ttl + 1)
        if not self.active:
            owner = await self.storage.lease_owner(self.name)
            raise InvalidInput(
                f"{self.name} is run by another process ({owner or 'unknown'}) right now;"
                " send the command there"
            )
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if command == "rebuild":
            argument = future
        await self.commands.put((command, argument, future))
        self.command_waiting.set()
        return await future

    # --- status ---------------------------------------------------------------------------

    async def status(self) -> ProjectionStatus:
        position = self.position
        if not self.active and not self.in_memory:
            position = await self.storage.get_checkpoint(self.name) or 0
        head = await self.store.head_position()
        behind = await self.store.count_events(after=position, limit=10_000_000)
        seconds = 0.0
        async for record in self.store.read_all(after=position, limit=1):
            seconds = max(0.0, (datetime.now(UTC) - record.recorded_at).total_seconds())
        memory = (
            self.projection.memory_bytes()
            if isinstance(self.projection, InMemoryProjection)
            else None
        )
        return ProjectionStatus(
            self.name,
            self.state,
            position,
            head,
            behind,
            seconds,
            self.generation,
            self.last_error,
            self.active,
            self.rebuild_progress(),
            memory,
        )


class ProjectionRunner:
    """Runs projections against one store until stopped.

    >>> import asyncio
    >>> from eventledger import NewEvent, open_store
    >>> from eventledger.projections import InMemoryProjection, on
    >>> class Tally(InMemoryProjection):
    ...     def __init__(self) -> None:
    ...         super().__init__()
    ...         self.count = 0
    ...     @on("Counted")
    ...     def counted(self, event: RecordedEvent) -> None:
    ...         self.count += 1
    >>> async def main() -> int:
    ...     async with await open_store("memory://") as store:
    ...         async with ProjectionRunner(store, [Tally()]) as runner:
    ...             result = await store.append("Tally-1", [NewEvent("Counted", {})])
    ...             await runner.wait_until("tally", result.position, timeout=5)
    ...             return runner.get("tally").count
    >>> asyncio.run(main())
    1
    """

    def __init__(
        self,
        store: EventStore,
        projections: Iterable[Projection],
        *,
        batch_size: int = 500,
        lease_ttl: float = 5.0,
        poll_interval: float = 1.0,
        rebuild_batches_per_step: int = 10,
        owner: str | None = None,
        commands: CommandBus | None = None,
    ) -> None:
        self.store = store
        self.commands = commands
        self.storage: ReadSideStorage = storage_for(store)
        self.batch_size = batch_size
        self.lease_ttl = lease_ttl
        self.poll_interval = poll_interval
        self.rebuild_batches_per_step = rebuild_batches_per_step
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.stopping = False
        self._workers: dict[str, _Worker] = {}
        for projection in projections:
            if not isinstance(projection, Projection):
                raise InvalidInput(f"expected a Projection, not {projection!r}")
            if projection.name in self._workers:
                raise InvalidInput(f"two projections are named {projection.name!r}")
            if isinstance(projection, SqlProjection) and store.dialect == "memory":
                raise InvalidInput(
                    f"{projection.name}: SQL projections need a SQLite or PostgreSQL store"
                )
            if projection.sends_commands:
                if commands is None:
                    raise InvalidInput(
                        f"{projection.name} is a process manager: give the runner the command"
                        " bus it sends with (ProjectionRunner(..., commands=bus))"
                    )
                projection.attach(commands)
            self._workers[projection.name] = _Worker(self, projection)

    async def start(self) -> None:
        self.stopping = False
        for worker in self._workers.values():
            if worker.task is None or worker.task.done():
                worker.task = asyncio.ensure_future(worker.run())

    async def stop(self) -> None:
        """Stop after the batches in flight; release the leases."""
        self.stopping = True
        tasks = [w.task for w in self._workers.values() if w.task is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for worker in self._workers.values():
            worker.state = "stopped"
            if not worker.in_memory:
                # Also when the worker was stopped while taking the lease: the row may
                # be ours though it never became active. Only our own lease is deleted.
                with contextlib.suppress(OperationalError, EventLedgerError):
                    await self.storage.release_lease(worker.name, self.owner)
            worker.active = False

    async def __aenter__(self) -> ProjectionRunner:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def names(self) -> list[str]:
        """The names of the projections and processes this runner runs."""
        return list(self._workers)

    def _worker(self, name: str) -> _Worker:
        try:
            return self._workers[name]
        except KeyError:
            raise InvalidInput(
                f"no projection named {name!r} here; known: {', '.join(self._workers) or 'none'}"
            ) from None

    # --- reading the read models ------------------------------------------------------------------

    def get(self, name: str) -> Projection:
        """The projection object (for an in-memory one, its current state)."""
        return self._worker(name).projection

    def documents(self, name: str) -> DocumentQueries:
        """Queries on a document read model (the generation queries see)."""
        projection = self._worker(name).projection
        if not isinstance(projection, DocumentProjection):
            raise InvalidInput(f"{name} is not a document projection")
        return DocumentQueries(self.storage, projection.view, projection.indexes)

    async def query(self, name: str, sql: str, *args: Any) -> list[Sequence[Any]]:
        """Run a query on a SQL projection's tables, named as placeholders
        (``"SELECT * FROM {daily_sales}"``)."""
        projection = self._worker(name).projection
        if not isinstance(projection, SqlProjection):
            raise InvalidInput(f"{name} is not a SQL projection")
        schema = getattr(self.store, "schema", None)
        views = {
            t: f'"{schema}".{t}' if self.store.dialect == "postgres" else t
            for t in projection.tables
        }
        return await self.store.fetch(sql.format(**views), *args)

    async def rows(
        self,
        name: str,
        table: str,
        *,
        order_by: Sequence[str] = (),
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[list[str], list[dict[str, Any]]]:
        """One page of a SQL projection's table (as queries see it): its column names and
        rows. `order_by` names columns (``"-revenue_cents"`` for descending)."""
        projection = self._worker(name).projection
        if not isinstance(projection, SqlProjection):
            raise InvalidInput(f"{name} is not a SQL projection")
        if table not in projection.tables:
            raise NotFound(f"{name} has no table {table!r}; tables: {', '.join(projection.tables)}")
        if not isinstance(limit, int) or not 1 <= limit <= 1000:
            raise InvalidInput(f"limit must be between 1 and 1000, not {limit!r}")
        if not isinstance(offset, int) or offset < 0:
            raise InvalidInput(f"offset must be an int >= 0, not {offset!r}")
        columns = await self._columns(table)
        order = []
        for item in order_by:
            column = item.lstrip("-")
            if column not in columns:
                raise InvalidInput(
                    f"order_by {item!r}: {table} has the columns {', '.join(columns)}"
                )
            order.append(f'"{column}" {"DESC" if item.startswith("-") else "ASC"}')
        order.append("1")  # a stable order for paging
        postgres = self.store.dialect == "postgres"
        view = f'"{getattr(self.store, "schema", "")}".{table}' if postgres else table
        marks = ("$1", "$2") if postgres else ("?", "?")
        rows = await self.store.fetch_records(
            f"SELECT * FROM {view} ORDER BY {', '.join(order)} LIMIT {marks[0]} OFFSET {marks[1]}",
            limit,
            offset,
        )
        return columns, rows

    async def _columns(self, table: str) -> list[str]:
        if self.store.dialect == "postgres":
            found = await self.store.fetch(
                "SELECT column_name FROM information_schema.columns"
                " WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position",
                getattr(self.store, "schema", "public"),
                table,
            )
            return [str(row[0]) for row in found]
        found = await self.store.fetch(f'SELECT name FROM pragma_table_info("{table}")')
        return [str(row[0]) for row in found]

    # --- waiting, status, operations --------------------------------------------------------------

    async def wait_until(self, name: str, position: int, timeout: float = 10.0) -> None:
        """Wait until projection `name` has handled everything up to `position` (the
        position of your append). Raises :class:`ProjectionTimeout` after `timeout`
        seconds, :class:`ProjectionFailed` at once if it stopped on a failure."""
        worker = self._worker(name)
        deadline = time.monotonic() + timeout
        while True:
            if worker.active or worker.in_memory:
                reached = worker.position
                if reached >= position:
                    return
                if worker.state == "failed":
                    raise ProjectionFailed(f"{name} stopped on a failure: {worker.last_error}")
            else:  # starting, or another process runs it: its checkpoint tells
                reached = await self.storage.get_checkpoint(name) or 0
                if reached >= position:
                    return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ProjectionTimeout(
                    f"{name} reached position {reached}, not {position}, within {timeout} s"
                    f" (state: {worker.state})"
                )
            async with worker.changed:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(worker.changed.wait(), min(remaining, 0.05))

    async def status(self, name: str | None = None) -> list[ProjectionStatus]:
        workers = [self._worker(name)] if name else list(self._workers.values())
        return [await worker.status() for worker in workers]

    async def rebuild(self, name: str) -> None:
        """Rebuild a read model from the start into a fresh copy while the old one keeps
        serving; returns once queries see the new one. Progress is in :meth:`status`."""
        await self._worker(name).submit("rebuild")

    async def reset(self, name: str) -> None:
        """Empty a read model and start it again from the beginning (queries see it fill)."""
        await self._worker(name).submit("reset")

    async def dead_letters(self, name: str | None = None) -> list[DeadLetter]:
        """Events parked after their handler kept failing (not yet retried or skipped)."""
        if name is not None:
            self._worker(name)
        return await self.storage.dead_letters(name, "parked")

    async def retry(self, name: str, letter_id: int) -> None:
        """Apply a parked event again (after a fix); a stopped projection goes on."""
        await self._worker(name).submit("retry", letter_id)

    async def skip(self, name: str, letter_id: int) -> None:
        """Give up on a parked event; a projection stopped on it goes on after it."""
        await self._worker(name).submit("skip", letter_id)


async def wait_until(store: EventStore, name: str, position: int, timeout: float = 10.0) -> None:
    """Wait until the projection `name` (run anywhere) has checkpointed `position`."""
    storage = storage_for(store)
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        reached = await storage.get_checkpoint(name) or 0
        if reached >= position:
            return
        if time.monotonic() >= deadline:
            raise ProjectionTimeout(
                f"{name} reached position {reached}, not {position}, within {timeout} s"
            )
        await asyncio.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 2, 0.1)
