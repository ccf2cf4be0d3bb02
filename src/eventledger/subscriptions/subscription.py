"""The catch-up loop of one subscription (see :mod:`eventledger.subscriptions`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar

from eventledger.context import message_context
from eventledger.errors import (
    InvalidInput,
    LeaseLost,
    OperationalError,
    ProjectionFailed,
    ProjectionTimeout,
)
from eventledger.failures import OnFailure, describe_error
from eventledger.observability import instruments, tracing
from eventledger.observability.logs import working_on
from eventledger.records import Horizon, RecordedEvent
from eventledger.storage import DeadLetter, ReadSideStorage
from eventledger.stores.base import MAX_LIST_LIMIT, EventStore, StoreTransaction
from eventledger.subscriptions.consumer import (
    BEHIND_COUNTED,
    CatchUpCopy,
    Consumer,
    HandlerFailed,
    SubscriptionSettings,
    SubscriptionStatus,
)

__all__ = ["Subscription"]

log = logging.getLogger("eventledger.subscriptions")

STALLED_AFTER = 3
MAX_LINKS = 128
"""A batch's span links to the traces of at most this many of its events (the SDK's
default limit)."""
"""Failed steps in a row (the store down, say) after which the status says stalled."""
# Failures that are not an event's fault: they never park anything.
_NOT_THE_EVENTS = (LeaseLost, OperationalError)

T = TypeVar("T")


class Subscription:
    """Runs one consumer against one store until stopped (see the module's docs)."""

    def __init__(
        self,
        store: EventStore,
        read_side: ReadSideStorage,
        consumer: Consumer,
        settings: SubscriptionSettings,
    ) -> None:
        self.store = store
        self.read_side = read_side
        self.consumer = consumer
        self.settings = settings
        self.name = consumer.name
        self.durable = consumer.durable
        self.state = "starting"
        self.active = False
        self.position = 0
        self.last_error: str | None = None
        self.stopped_on: tuple[int, RecordedEvent] | None = None
        self.copy: CatchUpCopy | None = None
        self.changed = asyncio.Condition()
        self.settled = asyncio.Event()  # set once active or in standby
        self.task: asyncio.Task[None] | None = None
        self._stopping = False
        self._operations: asyncio.Queue[tuple[Callable[[], Awaitable[Any]], asyncio.Future[Any]]]
        self._operations = asyncio.Queue()
        self._operation_waiting = asyncio.Event()
        self._last_renewal = 0.0
        self._ahead: tuple[int, asyncio.Future[list[RecordedEvent]], int] | None = None
        """The page after a position, already asked for, and the store's append generation
        when it was (see :meth:`_next_page`)."""
        self._read_fresh = False
        """Whether the next page must come from the log (see :meth:`_drop_ahead`)."""
        self.on_activated: Callable[[Subscription], Awaitable[None]] | None = None
        """Runs in the subscription's task each time it becomes active (durable only)."""

    # --- life -------------------------------------------------------------------------------

    def start(self) -> None:
        self._stopping = False
        if self.task is None or self.task.done():
            self.task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        """Stop after the batch in flight and release the lease."""
        self._stopping = True
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task
        self._drop_ahead()
        self.state = "stopped"
        if self.durable:
            # Also when stopped while taking the lease: the row may be ours though we never
            # became active. Only our own lease is deleted.
            with contextlib.suppress(Exception):
                await self.read_side.release_lease(self.name, self.settings.owner)
        self.active = False

    async def _run(self) -> None:
        with working_on(projection=self.name):  # in every log line of this task
            await self._loop()

    async def _loop(self) -> None:
        errors = 0
        while not self._stopping:
            try:
                await self._step()
                errors = 0
            except LeaseLost:
                log.warning("%s: another process took over", self.name)
                self._drop_ahead()
                self.active = False
                self.state = "standby"
            except asyncio.CancelledError:
                raise
            except Exception as error:  # the store failed, say: keep trying; status shows it
                self._drop_ahead()  # read before whatever happens while we wait
                errors += 1
                self.last_error = describe_error(error)
                if errors >= STALLED_AFTER:
                    self.state = "stalled"
                log.exception("%s: %s; trying again", self.name, self.last_error)
                await self._pause(min(self.settings.poll_interval * errors, 30.0))
        self.state = "stopped"

    async def _step(self) -> None:
        ttl = self.settings.lease_ttl
        if not self.active and not await self._become_active():
            self._drop_ahead()
            self.state = "standby"
            self.settled.set()
            await self._pause(ttl / 3)
            return
        self.settled.set()
        await self._run_operations()
        if self.state == "failed":
            self._drop_ahead()
            await self._renew_if_due()
            await self._pause(ttl / 3)
            return
        if self.copy is not None:
            await self._copy_step(self.copy)
        since = self.store.append_generation
        if self.state != "failed":
            await self.consumer.before_step()
        page, asked_at = await self._next_page(self.position)
        # A page read ahead was asked for before this step began: an append since then
        # may be missing from it, so an empty one waits only for appends after the ask.
        since = min(since, asked_at)
        if page:
            self.state = "catching_up" if len(page) == self.settings.batch_size else "running"
            await self._process(page)
            if self.state != "failed" and self.copy is not None:
                self.state = "rebuilding"
            return
        self.state = "rebuilding" if self.copy is not None else "running"
        await self._renew_if_due()
        if self.copy is None:
            await self._wait_for_events(since)

    async def _wait_for_events(self, since: int) -> None:
        timeout = min(self.settings.poll_interval, self.settings.lease_ttl / 3)
        appended = asyncio.ensure_future(self.store.wait_for_appends(since, timeout))
        operation = asyncio.ensure_future(self._operation_waiting.wait())
        try:
            await asyncio.wait({appended, operation}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (appended, operation):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def _pause(self, seconds: float) -> None:
        # Sleep, but wake for an operation (or the stop, which cancels us).
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._operation_waiting.wait(), seconds)

    reads_ahead: ClassVar[bool] = True
    """While a full page is handled, the next one is read (the database's work overlaps
    the handlers'); off where pages are shared otherwise."""

    async def _next_page(self, after: int) -> tuple[list[RecordedEvent], int]:
        """The page after `after`, and the store's append generation when it was asked
        for: the one read ahead by the step before if it starts there, else read again
        (the position moved: a reset, a take-over). A step that ends without taking its
        page (it failed, stood by, or found its consumer failed) drops it: meanwhile a
        subject may be forgotten or a stream deleted for good, and a page read before
        must not be handed on."""
        ahead, self._ahead = self._ahead, None
        if ahead is not None and ahead[0] == after:
            page, asked_at = await ahead[1], ahead[2]
        else:
            if ahead is not None:
                ahead[1].cancel()
            asked_at = self.store.append_generation
            page = await self._read(after, self._read_fresh)
            self._read_fresh = False
        if self.reads_ahead and len(page) == self.settings.batch_size:
            last = page[-1].position
            generation = self.store.append_generation
            task = asyncio.ensure_future(self._read(last))
            task.add_done_callback(retrieved)
            self._ahead = (last, task, generation)
        return page, asked_at

    def _drop_ahead(self) -> None:
        """Forget the page read ahead: after a failure, a stand-by or a stop the next page
        is read fresh from the log (not from a page kept elsewhere either)."""
        self._read_fresh = True
        if self._ahead is not None:
            self._ahead[1].cancel()
            self._ahead = None

    async def _read(self, after: int, fresh: bool = False) -> list[RecordedEvent]:
        """The page after `after`, from the log (`fresh`: not from a page kept for
        others, where a subclass shares pages)."""
        size = self.settings.batch_size
        if size <= MAX_LIST_LIMIT:
            return await self.store.read_page(after=after, limit=size)
        return [e async for e in self.store.read_all(after=after, limit=size)]

    # --- activation and leases --------------------------------------------------------------

    async def _become_active(self) -> bool:
        if not self.durable:
            await self.consumer.activate(None)
            self.position = 0
            self.active = True
            return True
        settings = self.settings
        if not await self.read_side.acquire_lease(self.name, settings.owner, settings.lease_ttl):
            return False
        self._last_renewal = time.monotonic()
        async with self.store.transaction() as tx:
            await self.consumer.activate(tx)
        self.position = await self.read_side.get_checkpoint(self.name) or 0
        self.active = True
        self.stopped_on = None
        parked = await self.read_side.dead_letters(self.name, "parked")
        if parked and self.consumer.retry.on_failure is OnFailure.STOP:
            letter = parked[-1]
            if letter.position > self.position:
                record = await self._record_at(letter)
                if record is not None:
                    self.stopped_on = (letter.id, record)
                    self.state = "failed"
                    self.last_error = letter.error
        log.info("%s: active at position %d", self.name, self.position)
        if self.on_activated is not None:
            await self.on_activated(self)
        return True

    async def _renew_if_due(self) -> None:
        settings = self.settings
        if not self.durable or time.monotonic() - self._last_renewal < settings.lease_ttl / 3:
            return
        if not await self.read_side.acquire_lease(self.name, settings.owner, settings.lease_ttl):
            raise LeaseLost(f"another process took {self.name} over")
        self._last_renewal = time.monotonic()

    async def hold_lease(self, tx: StoreTransaction) -> None:
        """Renew the lease in `tx`, or raise :class:`~eventledger.LeaseLost` (operations
        that write for the subscription call it first)."""
        settings = self.settings
        if not await self.read_side.hold_lease(tx, self.name, settings.owner, settings.lease_ttl):
            raise LeaseLost(f"another process took {self.name} over")

    # --- batches ----------------------------------------------------------------------------

    async def _process(self, page: list[RecordedEvent]) -> None:
        consumer = self.consumer
        relevant = [e for e in page if consumer.handles(e)]
        try:
            await self.commit(consumer, relevant, page[-1].position, self.name)
        except HandlerFailed as failure:
            failing = relevant[failure.index]
            await self.commit(consumer, relevant[: failure.index], failing.position - 1, self.name)
            await self._retry_then_park(failing, failure)
        except _NOT_THE_EVENTS:
            raise  # the store, the lease: the loop waits and tries again
        except Exception as error:
            # The batch failed as a whole (a document write, an index, the checkpoint):
            # find the event it fails at, one at a time, and treat it like a handler's.
            log.warning("%s: a batch failed (%s); looking for the event", self.name, error)
            await self._one_at_a_time(relevant, page[-1].position)

    async def _one_at_a_time(self, records: list[RecordedEvent], end: int) -> None:
        for record in records:
            try:
                await self.commit(self.consumer, [record], record.position, self.name)
            except _NOT_THE_EVENTS:
                raise
            except Exception as error:
                failure = error if isinstance(error, HandlerFailed) else HandlerFailed(0, error)
                await self._retry_then_park(record, failure)
                return  # the next step goes on from here
        await self.commit(self.consumer, [], end, self.name)  # it failed no more

    async def commit(
        self,
        consumer: Consumer,
        records: Sequence[RecordedEvent],
        checkpoint: int,
        checkpoint_name: str,
    ) -> None:
        """Hand `records` to `consumer` and move `checkpoint_name` to `checkpoint`, together."""
        started = time.perf_counter()
        with tracing.span(
            f"projection {self.name} batch",
            kind="consumer",
            attributes={"eventledger.projection": self.name, "eventledger.events": len(records)},
            links=[record.metadata for record in records[:MAX_LINKS]],
        ):
            batch = consumer.batch(records)
            await batch.prepare()
            if not consumer.durable:
                await batch.commit(None)
            else:
                async with self.store.transaction() as tx:
                    await self.hold_lease(tx)
                    await batch.commit(tx)
                    await self.read_side.set_checkpoint(tx, checkpoint_name, checkpoint)
                self._last_renewal = time.monotonic()
        if records:
            instruments.current.handled(self.name, len(records), time.perf_counter() - started)
        if checkpoint_name == self.name:
            self.position = checkpoint
            await self.announce()
        elif self.copy is not None:
            self.copy.position = checkpoint

    async def announce(self) -> None:
        """Wake whoever waits for this subscription to move."""
        async with self.changed:
            self.changed.notify_all()

    async def _retry_then_park(self, record: RecordedEvent, failure: HandlerFailed) -> None:
        policy = self.consumer.retry
        for attempt in range(2, policy.max_attempts + 1):
            await asyncio.sleep(policy.delay(attempt - 1))
            try:
                await self.commit(self.consumer, [record], record.position, self.name)
                return
            except _NOT_THE_EVENTS:
                raise
            except HandlerFailed as again:
                failure = again
            except Exception as error:
                failure = HandlerFailed(0, error)
        correlation = record.metadata.get("correlation_id")
        with message_context(  # the log line names the chain the event belongs to
            correlation_id=correlation if isinstance(correlation, str) else None,
            causation_id=str(record.id),
        ):
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
        letter_id = 0
        if self.durable:
            async with self.store.transaction() as tx:
                await self.hold_lease(tx)
                letter_id = await self.read_side.park(
                    tx, self.name, record, policy.max_attempts, failure.text, failure.trace
                )
                if skip:
                    await self.read_side.set_checkpoint(tx, self.name, record.position)
        if skip:
            self.position = record.position
            await self.announce()
        self.last_error = (
            f"{failure.text} (event {record.id}, {record.type}, position {record.position})"
        )
        if not skip:
            self.state = "failed"
            self.stopped_on = (letter_id, record)
            await self.announce()

    # --- catch-up copies --------------------------------------------------------------------

    async def _copy_step(self, copy: CatchUpCopy) -> None:
        # Several batches of the copy for each live one, so that it catches up.
        for _ in range(self.settings.copy_batches_per_step):
            if copy.position >= self.position:
                await self._finish_copy(copy)
                return
            page = await self._read(copy.position)
            if not page:
                await self._finish_copy(copy)
                return
            relevant = [e for e in page if copy.consumer.handles(e)]
            try:
                await self.commit(copy.consumer, relevant, page[-1].position, copy.checkpoint_name)
            except HandlerFailed as failure:
                self.copy = None
                await copy.failed(copy, failure)
                return
            copy.done += len(page)

    async def _finish_copy(self, copy: CatchUpCopy) -> None:
        await copy.caught_up(copy)
        self.copy = None
        await self.announce()

    # --- operations (run in the subscription's task) ---------------------------------------

    async def submit(self, operation: Callable[[], Awaitable[T]]) -> T:
        """Run `operation` in the subscription's task between batches; its result or error.
        Refused while another process runs the subscription."""
        if not self.settled.is_set():  # just started: is it ours, or another process's?
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.settled.wait(), self.settings.lease_ttl + 1)
        if not self.active:
            lease = await self.read_side.lease(self.name)
            held = (
                f"{lease.owner}, whose lease runs until {lease.expires_at.isoformat()}"
                if lease
                else "no one at the moment; try again shortly"
            )
            raise InvalidInput(
                f"{self.name} is run by another process ({held}); send the command there"
            )
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        await self._operations.put((operation, future))
        self._operation_waiting.set()
        return await future

    async def _run_operations(self) -> None:
        self._operation_waiting.clear()
        while not self._operations.empty():
            operation, future = self._operations.get_nowait()
            try:
                result = await operation()
            except Exception as error:
                if not future.done():
                    future.set_exception(error)
            else:
                if not future.done():
                    future.set_result(result)

    def resume(self) -> None:
        """Go on after the event the subscription stopped on."""
        self.stopped_on = None
        self.state = "catching_up"
        self.last_error = None

    async def retry_letter(self, letter_id: int) -> None:
        """Apply a parked event again (run it with :meth:`submit`); a subscription stopped
        on it goes on."""
        letter, record = await self._letter(letter_id)
        stopped_here = self.stopped_on is not None and self.stopped_on[1].id == record.id
        checkpoint = max(self.position, record.position)
        try:
            await self.commit(self.consumer, [record], checkpoint, self.name)
        except HandlerFailed as failure:
            raise ProjectionFailed(
                f"retrying dead letter {letter_id} of {self.name} failed again: {failure.text}"
            ) from failure.error
        async with self.store.transaction() as tx:
            await self.read_side.resolve(tx, letter.id, "retried")
        if stopped_here:
            self.resume()

    async def skip_letter(self, letter_id: int) -> None:
        """Give up on a parked event (run it with :meth:`submit`); a subscription stopped on
        it goes on after it."""
        letter, record = await self._letter(letter_id)
        stopped_here = self.stopped_on is not None and self.stopped_on[1].id == record.id
        async with self.store.transaction() as tx:
            await self.read_side.resolve(tx, letter.id, "skipped")
            if stopped_here:
                await self.read_side.set_checkpoint(
                    tx, self.name, max(self.position, record.position)
                )
        if stopped_here:
            self.position = max(self.position, record.position)
            self.resume()

    async def _letter(self, letter_id: int) -> tuple[DeadLetter, RecordedEvent]:
        letter = await self.read_side.dead_letter(letter_id)
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

    # --- status -----------------------------------------------------------------------------

    async def reached(self) -> int:
        """The position handled so far (another process's checkpoint while in standby)."""
        if self.active or not self.durable:
            return self.position
        return await self.read_side.get_checkpoint(self.name) or 0

    async def wait_until(self, position: int, timeout: float) -> None:
        """Wait until this subscription has handled everything up to `position` (in this
        process or, in standby, in the one that runs it).
        :class:`~eventledger.ProjectionTimeout` after `timeout` seconds,
        :class:`~eventledger.ProjectionFailed` at once if it stopped on a failure."""
        deadline = time.monotonic() + timeout
        while True:
            reached = await self.reached()
            if reached >= position:
                return
            if self.active and self.state == "failed":
                raise ProjectionFailed(f"{self.name} stopped on a failure: {self.last_error}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ProjectionTimeout(
                    f"{self.name} reached position {reached}, not {position}, within"
                    f" {timeout} s (state: {self.state}, last error: {self.last_error})"
                )
            async with self.changed:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.changed.wait(), min(remaining, 0.05))

    async def status(self, generation: int, horizon: Horizon | None = None) -> SubscriptionStatus:
        position = await self.reached()
        head = await self.store.head_position()
        behind = await self.store.count_events(after=position, limit=BEHIND_COUNTED)
        seconds = 0.0
        async for record in self.store.read_all(after=position, limit=1):
            seconds = max(0.0, (datetime.now(UTC) - record.recorded_at).total_seconds())
        return SubscriptionStatus(
            self.name,
            self.state,
            position,
            head,
            behind,
            seconds,
            generation,
            self.last_error,
            self.active,
            self.copy.progress() if self.copy is not None else None,
            self.consumer.memory_bytes(),
            horizon if horizon is not None and horizon.lagging else None,
            behind_capped=behind >= BEHIND_COUNTED,
        )


def retrieved(task: asyncio.Future[Any]) -> None:
    """A done callback for a task whose result may never be asked for (a page read
    ahead, then dropped): its exception is retrieved, so asyncio does not log it."""
    if not task.cancelled():
        task.exception()
