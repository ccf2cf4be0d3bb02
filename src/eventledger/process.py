"""Process managers (sagas): business processes that span aggregates and time.

A process manager reacts to events by sending commands. Each instance (one per
order, say) has durable state; handlers are marked :func:`starts` (an event
that begins an instance), :func:`~eventledger.projections.on` (continues one)
and :func:`ends` (ends it). Events map to instances by :meth:`ProcessManager.instance_id`
(default: the aggregate id of the event's stream)::

    class Fulfilment(ProcessManager):
        state_type = FulfilmentState

        @starts
        def placed(self, event: OrderCreated, process: Process[FulfilmentState]) -> None:
            process.send(ReserveStock(...), compensation=ReleaseStock(...))
            process.schedule("payment", timedelta(minutes=30))

        @ends
        def paid(self, event: OrderPaid, process: Process[FulfilmentState]) -> None:
            process.cancel_timeout("payment")
            process.send(ShipOrder(...))

        @on_timeout("payment")
        def overdue(self, process: Process[FulfilmentState]) -> None:
            process.fail("not paid in time", then=[CancelOrder(...)])

A :class:`~eventledger.projections.ProjectionRunner` given a command bus runs
them, with the same checkpoints, leases, retries and dead letters as
projections. What makes it safe:

- **Commands are sent exactly once per triggering event**: each command's
  idempotency key is derived from the event's id and the command's place among
  the commands the event caused. When the process dies after sending and before
  its checkpoint commits, the event is handled again, from the state before it,
  and the repeated sends return the first results without running anything.
  Handlers must therefore decide from the event and the state alone (no clock,
  no random ids in commands).
- **Deadlines are events**: a due deadline becomes a ``DeadlineReached`` event
  in the process's own stream (``{category}-{instance id}``), handled in log
  order like any other. Deadlines survive restarts; a deadline cancelled before
  its event is handled is ignored.
- **Compensation**: a command sent with ``compensation=`` arms it once the
  command succeeded. When a later command is refused by the domain (a
  :class:`~eventledger.DomainError` or a missing aggregate),
  :meth:`ProcessManager.on_rejected` runs; by default it fails the process,
  which sends the armed compensations in reverse order.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

import pydantic

from eventledger.commands import Command, CommandBus
from eventledger.errors import InvalidInput
from eventledger.events import Event
from eventledger.projections.base import Projection, RunScope, on
from eventledger.records import NewEvent, RecordedEvent
from eventledger.storage import Concern, InstanceRow
from eventledger.stores.base import EventStore

if TYPE_CHECKING:
    from eventledger.subscriptions import Consumer

__all__ = [
    "DeadlineReached",
    "Process",
    "ProcessInstance",
    "ProcessManager",
    "ends",
    "on",
    "on_timeout",
    "starts",
]

log = logging.getLogger("eventledger.process")

S = TypeVar("S", bound=pydantic.BaseModel)
F = TypeVar("F", bound=Callable[..., Any])

ACTIVE, COMPLETED, FAILED = "active", "completed", "failed"


class DeadlineReached(Event, name="eventledger.DeadlineReached"):
    """A process instance's deadline passed (recorded in the process's own stream)."""

    process: str
    instance_id: str
    timeout: str
    timeout_id: str
    due_at: datetime


def starts(*targets: Any) -> Any:
    """Mark a handler of events that start an instance (and continue a running one)."""
    return _with_role("start", targets)


def ends(*targets: Any) -> Any:
    """Mark a handler of events that end an instance (completed, unless it failed)."""
    return _with_role("end", targets)


def _with_role(role: str, targets: tuple[Any, ...]) -> Any:
    if len(targets) == 1 and inspect.isfunction(targets[0]):
        marked: Any = on(targets[0])
        marked.__process_role__ = role
        return marked
    mark = on(*targets)

    def decorate(function: F) -> F:
        decorated: Any = mark(function)
        decorated.__process_role__ = role
        return function

    return decorate


def on_timeout(name: str) -> Callable[[F], F]:
    """Mark the handler of a deadline scheduled with ``process.schedule(name, ...)``;
    it takes ``(self, process)``."""
    _check_name(name, "a deadline")

    def decorate(function: F) -> F:
        function.__timeout__ = name  # type: ignore[attr-defined]
        return function

    return decorate


class _NoState(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")


@dataclasses.dataclass(frozen=True, slots=True)
class ProcessInstance:
    """An instance as stored: for status pages and tests."""

    process: str
    instance_id: str
    status: str
    state: dict[str, Any]
    compensations: list[dict[str, Any]]
    """Armed compensations (sent in reverse order if the process fails)."""
    deadlines: dict[str, str]
    """Pending deadlines by name, with their due times (ISO 8601)."""
    reason: str | None
    """Why the process failed."""
    started_at: datetime
    updated_at: datetime


class _Instance:
    """A working copy of one instance within a batch."""

    def __init__(self, manager: ProcessManager, row: InstanceRow) -> None:
        self.row = row
        self.state = manager.state_type.model_validate(row.state)
        book = row.bookkeeping
        self.compensations: list[dict[str, Any]] = list(book.get("compensations", []))
        self.timeouts: dict[str, dict[str, str]] = dict(book.get("timeouts", {}))
        self.reason: str | None = book.get("reason")

    @property
    def status(self) -> str:
        return self.row.status

    def to_row(self, now: datetime) -> InstanceRow:
        book: dict[str, Any] = {"compensations": self.compensations, "timeouts": self.timeouts}
        if self.reason is not None:
            book["reason"] = self.reason
        return dataclasses.replace(
            self.row,
            state=self.state.model_dump(mode="json"),
            bookkeeping=book,
            updated_at=now,
        )


class Process(Generic[S]):
    """What a handler works with: the instance's state, and what it may do next."""

    def __init__(
        self, manager: ProcessManager, instance: _Instance, trigger: RecordedEvent
    ) -> None:
        self.manager = manager
        self.instance_id = instance.row.instance_id
        self.state: S = instance.state  # type: ignore[assignment]
        self.trigger = trigger
        """The event being handled (a ``DeadlineReached`` in a deadline handler)."""
        self._instance = instance
        self._sends: list[tuple[Command, Command | None]] = []
        self._scheduled: list[tuple[str, datetime]] = []
        self._cancelled: list[str] = []

    @property
    def status(self) -> str:
        return self._instance.row.status

    def send(self, command: Command, *, compensation: Command | None = None) -> None:
        """Send a command once this handler returns. `compensation` undoes it if the
        process fails later (armed once the command succeeded)."""
        if not isinstance(command, Command):
            raise InvalidInput(f"send takes a Command, not {type(command).__name__}")
        if compensation is not None and not isinstance(compensation, Command):
            raise InvalidInput(f"a compensation is a Command, not {type(compensation).__name__}")
        self._sends.append((command, compensation))

    def schedule(self, name: str, after: timedelta) -> None:
        """Schedule deadline `name` at the triggering event's time plus `after` (replacing
        one of the same name); its :func:`on_timeout` handler runs when it passes."""
        _check_name(name, "a deadline")
        if name not in self.manager.__timeout_handlers__:
            raise InvalidInput(
                f"{type(self.manager).__name__} has no @on_timeout({name!r}) handler"
            )
        if not isinstance(after, timedelta) or after < timedelta(0):
            raise InvalidInput(f"after is a timedelta >= 0, not {after!r}")
        self._scheduled.append((name, self.trigger.recorded_at + after))

    def cancel_timeout(self, name: str) -> None:
        """Cancel deadline `name` if it is pending (no harm if it is not)."""
        self._cancelled.append(name)

    def complete(self) -> None:
        """End the instance successfully: later events for it are ignored."""
        if self._instance.row.status == ACTIVE:
            self._instance.row.status = COMPLETED

    def fail(self, reason: str, *, then: Iterable[Command] = ()) -> None:
        """End the instance as failed: send the armed compensations, last armed first,
        then the commands in `then` (say, cancelling the order)."""
        instance = self._instance
        if instance.row.status == FAILED:
            log.warning("%s %s: failed again: %s", self.manager.name, self.instance_id, reason)
            return
        instance.row.status = FAILED
        instance.reason = reason
        self.compensate()
        for command in then:
            self.send(command)

    def compensate(self) -> None:
        """Send the armed compensations, last armed first, and disarm them (what
        :meth:`fail` does; call it alone to undo without failing, say on a
        cancellation the process ends with)."""
        instance = self._instance
        bus = self.manager._bus
        if bus is None:
            raise InvalidInput("compensations need the runner's command bus")
        for armed in reversed(instance.compensations):
            self._sends.append((bus.parse(armed["command"], armed["payload"]), None))
        instance.compensations = []


class ProcessManager(Projection):
    """Base class of process managers (see the module's docs).

    Class options: `state_type` (a pydantic model with defaults for every
    field: the state of a new instance), `category` (the stream category of the
    process's own events; default the class name), and the projection options
    `name`, `categories` and `retry`.
    """

    state_type: ClassVar[type[pydantic.BaseModel]] = _NoState
    category: ClassVar[str] = ""
    __roles__: ClassVar[dict[str, str]] = {}
    __timeout_handlers__: ClassVar[dict[str, str]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        roles: dict[str, str] = {}
        timeouts: dict[str, str] = {}
        for klass in reversed(cls.__mro__):
            for attribute, member in vars(klass).items():
                role = getattr(member, "__process_role__", None)
                if role is not None:
                    roles[attribute] = role
                timeout = getattr(member, "__timeout__", None)
                if timeout is not None:
                    timeouts[timeout] = attribute
        cls.__roles__ = roles
        cls.__timeout_handlers__ = timeouts
        if "category" not in cls.__dict__ or not cls.category:
            cls.category = cls.__name__
        _check_name(cls.category, "a category")
        if not (
            isinstance(cls.state_type, type) and issubclass(cls.state_type, pydantic.BaseModel)
        ):
            raise InvalidInput(f"{cls.__name__}.state_type must be a pydantic model class")
        cls.__handlers__[DeadlineReached.event_type] = ("_deadline", True)

    def __init__(self) -> None:
        super().__init__()
        self._bus: CommandBus | None = None

    def handles(self, record: RecordedEvent) -> bool:
        if record.type == DeadlineReached.event_type:
            return record.data.get("process") == self.name
        return super().handles(record)

    def instance_id(self, record: RecordedEvent, event: Any) -> str | None:
        """The instance an event belongs to (None: none). Default: the aggregate id of
        the event's stream (``Order-o-1`` → ``o-1``)."""
        head, sep, tail = record.stream_id.partition("-")
        return tail if sep else head

    def on_rejected(self, command: Command, error: Exception, process: Process[Any]) -> Any:
        """A command this process sent was refused by the domain. Default: fail the
        process (which sends the armed compensations). May be async."""
        process.fail(f"{command.command_name} was refused: {error}")

    # --- what the runner asks ----------------------------------------------------------------

    needs: ClassVar[tuple[Concern, ...]] = ("read_side", "processes", "command_log")
    rebuildable: ClassVar[bool] = False

    def consumer(self, scope: RunScope, generation: int | None = None) -> Consumer:
        """Handles batches before their transaction (each command commits on its own), then
        writes the instances with the checkpoint."""
        from eventledger._process_runtime import ProcessConsumer

        if scope.commands is None:
            raise InvalidInput(f"{self.name}: a process manager needs the runner's command bus")
        self._bus = scope.commands
        return ProcessConsumer(self, scope, scope.commands)

    async def fire_due_deadlines(self, store: EventStore, now: datetime, limit: int = 100) -> int:
        """Append a ``DeadlineReached`` event for each due deadline; returns how many."""
        storage = store.process_storage()
        due = await storage.due(self.name, now, limit)
        for timeout in due:
            event = NewEvent(
                DeadlineReached.event_type,
                DeadlineReached(
                    process=self.name,
                    instance_id=timeout.instance_id,
                    timeout=timeout.name,
                    timeout_id=str(timeout.id),
                    due_at=timeout.due_at,
                ).to_data(),
                timeout.metadata,
                id=timeout.id,  # firing twice records it once
            )
            await store.append(f"{self.category}-{timeout.instance_id}", [event])
            await storage.mark_fired(timeout.id)
        return len(due)

    async def instances(
        self,
        store: EventStore,
        *,
        status: str | None = None,
        limit: int = 100,
        offset: int = 0,
        after: tuple[datetime, str] | None = None,
    ) -> list[ProcessInstance]:
        """Instances, most recently changed first. Page with `after`: the last
        instance's ``(updated_at, instance_id)`` (cheaper than `offset` on long lists)."""
        if status not in (None, ACTIVE, COMPLETED, FAILED):
            raise InvalidInput(f"status is active, completed or failed, not {status!r}")
        if after is not None:
            moment, last = after
            if not isinstance(moment, datetime) or moment.tzinfo is None:
                raise InvalidInput(f"after starts with an aware datetime, not {moment!r}")
            _check_instance_id(last)
        rows = await store.process_storage().list_instances(
            self.name, status, limit, offset, after=after
        )
        return [_public(row) for row in rows]

    async def instance(self, store: EventStore, instance_id: str) -> ProcessInstance | None:
        _check_instance_id(instance_id)
        rows = await store.process_storage().instances(self.name, [instance_id])
        row = rows.get(instance_id)
        return None if row is None else _public(row)


def _public(row: InstanceRow) -> ProcessInstance:
    book = row.bookkeeping
    return ProcessInstance(
        row.process,
        row.instance_id,
        row.status,
        row.state,
        list(book.get("compensations", [])),
        {name: t["due_at"] for name, t in book.get("timeouts", {}).items()},
        book.get("reason"),
        row.started_at,
        row.updated_at,
    )


async def _maybe_await(outcome: Any) -> Any:
    if inspect.isawaitable(outcome):
        return await outcome
    return outcome


def _check_name(name: object, what: str) -> None:
    if not isinstance(name, str) or not name or len(name) > 100 or not name.isidentifier():
        raise InvalidInput(f"{what} is named by an identifier of at most 100, not {name!r}")


def _check_instance_id(instance_id: object) -> None:
    if (
        not isinstance(instance_id, str)
        or not instance_id
        or len(instance_id) > 200
        or "\x00" in instance_id
    ):
        raise InvalidInput(
            "an instance id is a non-empty string of at most 200 characters and no NUL"
            f" character, not {instance_id!r}"
        )
