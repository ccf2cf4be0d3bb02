"""Commands: validated requests for change, handled once, traceable to what they caused.

A command is a pydantic model. A handler, registered in a :class:`CommandHandlers`
beside the domain code, loads aggregates through its context and calls their
methods; the :class:`CommandBus` then saves every aggregate that changed, all in
one transaction together with the command's record, and answers with the
streams and versions written and the global position of the last event::

    >>> import asyncio
    >>> from eventledger import Aggregate, Event, applies, open_store
    >>> from eventledger.events import EventRegistry
    >>> registry = EventRegistry()
    >>> class Opened(Event, registry=registry):
    ...     owner: str
    >>> class Account(Aggregate):
    ...     owner: str = ""
    ...     @applies(Opened)
    ...     def _opened(self, event: Opened) -> None:
    ...         self.owner = event.owner
    >>> class OpenAccount(Command):
    ...     account_id: str
    ...     owner: str
    >>> handlers = CommandHandlers()
    >>> @handlers.handler
    ... async def open_account(command: OpenAccount, context: CommandContext) -> str:
    ...     account = Account(id=command.account_id)
    ...     account.record(Opened(owner=command.owner))
    ...     context.add(account)
    ...     return account.id
    >>> async def main() -> tuple[list[tuple[str, int]], bool, str]:
    ...     async with await open_store("memory://") as store:
    ...         bus = CommandBus(store, handlers, registry=registry)
    ...         first = await bus.send(OpenAccount(account_id="a-1", owner="alice"),
    ...                                idempotency_key="req-17")
    ...         again = await bus.send(OpenAccount(account_id="a-1", owner="alice"),
    ...                                idempotency_key="req-17")
    ...         return [(w.stream_id, w.version) for w in first.writes], again.replayed, again.value
    >>> asyncio.run(main())
    ([('Account-a-1', 1)], True, 'a-1')

Every event a command causes carries the command's correlation id, its id as
causation id, and the actor (see :func:`eventledger.causal_chain`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import inspect
import math
import random
import re
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import orjson
import pydantic

from eventledger import _json
from eventledger._annotations import annotated_types
from eventledger.aggregate import Aggregate
from eventledger.context import current_context, message_context
from eventledger.errors import (
    AggregateNotFound,
    AlreadyExists,
    CommandInvalid,
    ConflictError,
    DomainError,
    FieldError,
    IdempotencyKeyReused,
    InvalidInput,
    KeyTaken,
    NotFound,
    UnknownCommand,
    WrongExpectedVersion,
)
from eventledger.events import EventRegistry
from eventledger.observability import instruments, tracing
from eventledger.observability.logs import working_on
from eventledger.personal.markers import without_personal
from eventledger.records import NO_STREAM, AppendResult, ExpectedVersion, NewEvent
from eventledger.repository import Repository
from eventledger.storage import CommandLog, CommandRecord
from eventledger.stores.base import EventStore

__all__ = [
    "Command",
    "CommandBus",
    "CommandContext",
    "CommandHandlers",
    "CommandResult",
    "StreamWrite",
]

A = TypeVar("A", bound=Aggregate)
H = TypeVar("H", bound=Callable[..., Any])

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
MAX_KEY_LENGTH = 255
MAX_PAUSE = 0.1
"""The longest pause between two attempts of a command that met a conflict (seconds)."""
_SCOPE_SEPARATOR = "\x1f"  # never in a key or a scope (neither holds control characters)
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


class Command(pydantic.BaseModel):
    """Base class of commands. Subclass it with the command's fields.

    The command's name (how HTTP and the command log know it) is the class
    name unless given: ``class PlaceOrder(Command, name="orders.PlaceOrder")``.
    Unknown fields are refused, and a command cannot change once made.
    """

    model_config = pydantic.ConfigDict(frozen=True, extra="forbid")

    command_name: ClassVar[str] = "Command"

    def __init_subclass__(cls, *, name: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        chosen = name or cls.__name__
        if not isinstance(chosen, str) or len(chosen) > 200 or not _NAME.fullmatch(chosen):
            raise InvalidInput(
                f"{cls.__name__}: command name {chosen!r} must be an identifier, optionally"
                " dotted ('orders.PlaceOrder'), of at most 200 characters"
            )
        cls.command_name = chosen


@dataclass(frozen=True, slots=True)
class StreamWrite:
    """What a command appended to one stream."""

    stream_id: str
    version: int
    """The stream's version after the command."""
    position: int
    """The global position of the last event appended to this stream."""
    events: int


@dataclass(frozen=True, slots=True)
class CommandResult:
    """What a command did. `position` is the global position of its last event (0 if it
    appended none): wait for a read model to pass it to read your own writes."""

    command_id: str
    command: str
    writes: tuple[StreamWrite, ...]
    position: int
    value: Any = None
    """What the handler returned (JSON-ready), such as the id of what it created."""
    replayed: bool = False
    """True when this is the stored result of an earlier command with the same
    idempotency key: nothing was run or written this time."""

    def to_json(self) -> dict[str, Any]:
        return {
            "command_id": self.command_id,
            "command": self.command,
            "writes": [
                {
                    "stream_id": w.stream_id,
                    "version": w.version,
                    "position": w.position,
                    "events": w.events,
                }
                for w in self.writes
            ],
            "position": self.position,
            "value": self.value,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], *, replayed: bool = False) -> CommandResult:
        return cls(
            data["command_id"],
            data["command"],
            tuple(StreamWrite(**w) for w in data["writes"]),
            data["position"],
            data.get("value"),
            replayed,
        )


Handler = Callable[[Any, "CommandContext"], Any]


class CommandHandlers:
    """Command handlers, declared beside the domain; a :class:`CommandBus` runs them.

    A handler takes ``(command, context)``, may be async, and may return a
    JSON-ready value (the result's `value`). Register with the decorator
    (the command type comes from the annotation) or :meth:`register`.
    """

    def __init__(self) -> None:
        self._entries: dict[str, tuple[type[Command], Handler]] = {}

    def handler(self, function: H) -> H:
        """Register `function` for the command type its first parameter is annotated with."""
        self.register(_command_type_of(function), function)
        return function

    def register(self, command_type: type[Command], function: Handler) -> None:
        if not (isinstance(command_type, type) and issubclass(command_type, Command)):
            raise InvalidInput(f"handlers are registered for Command classes, not {command_type!r}")
        if not callable(function):
            raise InvalidInput(f"a command handler must be callable, not {function!r}")
        name = command_type.command_name
        if name in self._entries and self._entries[name][1] is not function:
            raise InvalidInput(f"{name} has a handler already: {self._entries[name][1]!r}")
        self._entries[name] = (command_type, function)

    def entries(self) -> dict[str, tuple[type[Command], Handler]]:
        return dict(self._entries)


class CommandContext:
    """What a handler works with: aggregates loaded and added here are saved together
    when it returns (one transaction), expecting the versions they were loaded at."""

    def __init__(
        self,
        bus: CommandBus,
        command: Command,
        command_id: uuid.UUID,
        correlation_id: str,
        causation_id: str,
        actor: str | None,
    ) -> None:
        self.bus = bus
        self.command = command
        self.command_id = command_id
        self.correlation_id = correlation_id
        self.causation_id = causation_id
        self.actor = actor
        self._tracked: dict[tuple[type[Aggregate], str], Aggregate] = {}

    async def load(self, aggregate_type: type[A], aggregate_id: str) -> A:
        """The aggregate as it is now; raises :class:`~eventledger.AggregateNotFound`.
        Loading the same one twice gives the same object."""
        key = (aggregate_type, aggregate_id)
        known = self._tracked.get(key)
        if known is not None:
            assert isinstance(known, aggregate_type)
            return known
        aggregate = await self.bus.repository(aggregate_type).load(aggregate_id)
        self._tracked[key] = aggregate
        return aggregate

    async def find(self, aggregate_type: type[A], aggregate_id: str) -> A | None:
        """Like :meth:`load`, but None when the aggregate does not exist."""
        try:
            return await self.load(aggregate_type, aggregate_id)
        except AggregateNotFound:
            return None

    def add(self, aggregate: Aggregate) -> None:
        """Save a new aggregate with the others (its stream must not exist yet)."""
        if not isinstance(aggregate, Aggregate):
            raise InvalidInput(f"add takes an Aggregate, not {type(aggregate).__name__}")
        key = (type(aggregate), aggregate.id)
        if self._tracked.get(key, aggregate) is not aggregate:
            raise InvalidInput(f"{type(aggregate).__name__} {aggregate.id!r} is in use already")
        self._tracked[key] = aggregate

    def _changed(self) -> list[Aggregate]:
        return [a for a in self._tracked.values() if a.pending_events]


@dataclass(slots=True)
class _Write:
    repository: Repository[Any]
    aggregate: Aggregate
    stream_id: str
    events: list[NewEvent]
    expected: ExpectedVersion


class CommandBus:
    """Validates commands, runs their handlers, saves what they changed.

    - `snapshot_every` maps aggregate types to snapshot intervals for their
      repositories (see :class:`~eventledger.Repository`);
    - a version conflict (another writer changed an aggregate first) runs the
      handler again on fresh state, after a random pause that grows with each
      attempt, for up to `retry_budget` seconds (and `max_attempts` attempts, if
      given); a conflict no retry can change (the handler creates an aggregate
      whose stream exists) raises :class:`~eventledger.AlreadyExists` at once;
    - idempotency keys are kept per caller: the same key from another actor (or
      `idempotency_scope`) is another command;
    - every command that wrote something is recorded with its payload, actor,
      correlation and causation ids and result (`record_commands=False` keeps
      only those with an idempotency key).
    """

    def __init__(
        self,
        store: EventStore,
        handlers: CommandHandlers | Iterable[CommandHandlers],
        *,
        registry: EventRegistry | None = None,
        snapshot_every: Mapping[type[Aggregate], int] | None = None,
        max_attempts: int | None = None,
        retry_budget: float = 2.0,
        record_commands: bool = True,
    ) -> None:
        if max_attempts is not None and (
            not isinstance(max_attempts, int) or not 1 <= max_attempts <= 1000
        ):
            raise InvalidInput(f"max_attempts must be between 1 and 1000, not {max_attempts!r}")
        if not isinstance(retry_budget, int | float) or not 0 <= retry_budget <= 600:
            raise InvalidInput(f"retry_budget is 0 to 600 seconds, not {retry_budget!r}")
        self.store = store
        self.registry = registry
        self.max_attempts = max_attempts
        self.retry_budget = float(retry_budget)
        self.record_commands = record_commands
        self.log: CommandLog = store.command_log()
        self._snapshot_every = dict(snapshot_every or {})
        self._repositories: dict[type[Aggregate], Repository[Any]] = {}
        self._entries: dict[str, tuple[type[Command], Handler]] = {}
        for group in [handlers] if isinstance(handlers, CommandHandlers) else handlers:
            for name, entry in group.entries().items():
                if name in self._entries and self._entries[name] != entry:
                    raise InvalidInput(f"two handlers are registered for {name}")
                self._entries[name] = entry

    # --- what the bus knows ------------------------------------------------------------------

    @property
    def command_types(self) -> dict[str, type[Command]]:
        """The registered commands by name."""
        return {name: entry[0] for name, entry in self._entries.items()}

    def command_type(self, name: str) -> type[Command]:
        try:
            return self._entries[name][0]
        except (KeyError, TypeError):
            known = ", ".join(sorted(self._entries)) or "none"
            raise UnknownCommand(f"no command named {name!r}; known: {known}") from None

    def repository(self, aggregate_type: type[A]) -> Repository[A]:
        """The repository the bus loads and saves `aggregate_type` with."""
        found = self._repositories.get(aggregate_type)
        if found is None:
            found = Repository(
                self.store,
                aggregate_type,
                registry=self.registry,
                snapshot_every=self._snapshot_every.get(aggregate_type),
            )
            self._repositories[aggregate_type] = found
        return found

    def parse(self, name: str, payload: Any) -> Command:
        """The command `name` made from a dict or JSON text; :class:`CommandInvalid`
        names every bad field."""
        command_type = self.command_type(name)
        try:
            if isinstance(payload, str | bytes | bytearray):
                return command_type.model_validate_json(payload)
            return command_type.model_validate(payload)
        except pydantic.ValidationError as error:
            raise CommandInvalid(name, _field_errors(error)) from None

    # --- running commands ----------------------------------------------------------------------

    async def dispatch(self, name: str, payload: Any, **options: Any) -> CommandResult:
        """Parse and send a command given by name (what the HTTP API does)."""
        return await self.send(self.parse(name, payload), **options)

    async def send(
        self,
        command: Command,
        *,
        idempotency_key: str | None = None,
        actor: str | None = None,
        correlation_id: str | None = None,
        causation_id: str | None = None,
        idempotency_scope: str | None = None,
    ) -> CommandResult:
        """Run the command's handler and save what it changed, in one transaction.

        With an `idempotency_key`, a repeat (even a concurrent one) returns the
        first result and runs nothing; the same key with another command or
        payload raises :class:`~eventledger.IdempotencyKeyReused`. Keys belong to
        their caller: `idempotency_scope` (default: the actor), so another caller's
        key never answers for this one. Correlation and causation ids and the actor
        default to the current message context; a command that starts a chain is
        its own correlation and causation.
        """
        if not isinstance(command, Command):
            raise InvalidInput(f"send takes a Command, not {type(command).__name__}")
        name = command.command_name
        started = time.perf_counter()
        outcome = "error"
        with (
            tracing.span(f"command {name}", attributes={"eventledger.command": name}) as span,
            working_on(command=name),
        ):
            try:
                result = await self._send(
                    command,
                    idempotency_key,
                    actor,
                    correlation_id,
                    causation_id,
                    idempotency_scope,
                )
                outcome = "ok"
                return result
            except ConflictError:
                outcome = "conflict"
                raise
            except (DomainError, InvalidInput, NotFound):
                outcome = "rejected"
                raise
            finally:
                tracing.set_attribute(span, "eventledger.outcome", outcome)
                instruments.current.command(name, outcome, time.perf_counter() - started)

    async def _send(
        self,
        command: Command,
        idempotency_key: str | None,
        actor: str | None,
        correlation_id: str | None,
        causation_id: str | None,
        idempotency_scope: str | None,
    ) -> CommandResult:
        name = command.command_name
        command_type, handler = self._entry(name)
        if type(command) is not command_type:
            raise InvalidInput(f"{name} is handled here as {command_type!r}, not {type(command)!r}")
        plain_key = _check_key(idempotency_key)
        payload = command.model_dump(mode="json")
        _refuse_unstorable(name, payload)
        digest = _digest(name, payload)
        context = current_context()
        command_id = uuid.uuid4()
        correlation = _check_id(correlation_id, "correlation_id") or context.correlation_id
        causation = _check_id(causation_id, "causation_id") or context.causation_id
        actor = _check_id(actor, "actor") or context.actor
        scope = _check_id(idempotency_scope, "idempotency_scope") or actor or ""
        key = None if plain_key is None else f"{scope}{_SCOPE_SEPARATOR}{plain_key}"
        # A chain's first message is its own cause; a request's correlation id (set by
        # the HTTP layer, say) stands for the request as the cause.
        causation = causation or correlation or str(command_id)
        correlation = correlation or str(command_id)
        if key is not None:
            first = await self.log.by_key(key)
            if first is not None:
                return _replay(first, name, digest, plain_key or "")
        deadline = time.monotonic() + self.retry_budget
        attempt = 0
        while True:
            attempt += 1
            work = CommandContext(self, command, command_id, correlation, causation, actor)
            with message_context(
                correlation_id=correlation, causation_id=str(command_id), actor=actor
            ):
                value = _json_ready(name, await _call(handler, command, work))
                writes = self._writes(work)
            if not writes and key is None:
                return CommandResult(str(command_id), name, (), 0, value)
            try:
                result, appended = await self._commit(
                    writes,
                    CommandRecord(
                        command_id,
                        name,
                        key,
                        digest,
                        without_personal(command_type, payload),
                        correlation,
                        causation,
                        actor,
                        {},
                    ),
                    value,
                )
            except KeyTaken:
                # A concurrent repeat of the key committed first: its result is the answer.
                assert key is not None
                first = await self.log.by_key(key)
                assert first is not None, "a taken key is a committed key"
                return _replay(first, name, digest, plain_key or "")
            except ConflictError as conflict:
                if key is not None and (first := await self.log.by_key(key)) is not None:
                    return _replay(first, name, digest, plain_key or "")
                _refuse_if_created_already(name, conflict)
                pause = random.uniform(0, min(MAX_PAUSE, 0.004 * 2**attempt))  # noqa: S311
                out_of_attempts = self.max_attempts is not None and attempt >= self.max_attempts
                if out_of_attempts or time.monotonic() + pause > deadline:
                    raise ConflictError(
                        f"{name} kept colliding with concurrent changes to the same aggregate"
                        f" and gave up after {attempt} attempts in"
                        f" {self.retry_budget - (deadline - time.monotonic()):.2f} s: {conflict}"
                    ) from conflict
                await asyncio.sleep(pause)
                continue
            for write, append in zip(writes, appended, strict=True):
                await write.repository.saved(write.aggregate, append)
            return result

    def _entry(self, name: str) -> tuple[type[Command], Handler]:
        self.command_type(name)
        return self._entries[name]

    def _writes(self, work: CommandContext) -> list[_Write]:
        writes = []
        for aggregate in work._changed():
            repository = self.repository(type(aggregate))
            pending = repository.pending_append(aggregate)
            assert pending is not None
            writes.append(_Write(repository, aggregate, *pending))
        return writes

    async def _commit(
        self, writes: list[_Write], record: CommandRecord, value: Any
    ) -> tuple[CommandResult, list[AppendResult]]:
        if len(writes) == 1 and (self.record_commands or record.idempotency_key is not None):
            write = writes[0]
            # One stream and a record: one round trip where the backend can.
            one = await self.log.append_recorded(
                write.stream_id, write.events, write.expected, record, value
            )
            if one is not None:
                return _result(record, writes, [one], value), [one]
        appended: list[AppendResult] = []
        async with self.store.transaction() as tx:
            for write in writes:
                appended.append(
                    await tx.append(write.stream_id, write.events, expected_version=write.expected)
                )
            result = _result(record, writes, appended, value)
            if self.record_commands or record.idempotency_key is not None:
                await self.log.record(tx, _with_result(record, result))
        return result, appended


def _result(
    record: CommandRecord, writes: list[_Write], appended: list[AppendResult], value: Any
) -> CommandResult:
    return CommandResult(
        str(record.id),
        record.name,
        tuple(
            StreamWrite(w.stream_id, a.version, a.position, len(w.events))
            for w, a in zip(writes, appended, strict=True)
        ),
        max((a.position for a in appended), default=0),
        value,
    )


def _refuse_if_created_already(name: str, conflict: ConflictError) -> None:
    """A handler that creates an aggregate whose stream exists decides the same on any
    retry: say so at once."""
    if isinstance(conflict, WrongExpectedVersion) and conflict.expected in (NO_STREAM, 0):
        raise AlreadyExists(
            f"{name} creates {conflict.stream_id!r}, which exists already (it has"
            f" {conflict.actual} events): load it and change it, or choose another id"
        ) from conflict


_SMALLEST_INT, _LARGEST_INT = -(2**63), 2**64 - 1  # what every backend's JSON keeps


def _refuse_unstorable(name: str, payload: Any, path: tuple[str | int, ...] = ()) -> None:
    """What no backend keeps, named by field before anything runs (the command's record
    and its idempotency hash are JSON): a NUL character, an integer beyond 64 bits, NaN
    or an infinity (a field typed `int` or `float` without bounds lets them through)."""
    if isinstance(payload, str):
        if "\x00" in payload:
            raise CommandInvalid(
                name, [FieldError(path, "must not contain the NUL character", "string_nul")]
            )
    elif isinstance(payload, dict):
        for key, value in payload.items():
            _refuse_unstorable(name, value, (*path, key))
    elif isinstance(payload, list):
        for index, value in enumerate(payload):
            _refuse_unstorable(name, value, (*path, index))
    elif isinstance(payload, bool):
        pass
    elif isinstance(payload, int):
        if not _SMALLEST_INT <= payload <= _LARGEST_INT:
            raise CommandInvalid(
                name,
                [
                    FieldError(
                        path,
                        "must fit in 64 bits (no backend stores a larger number; send it as"
                        " a string)",
                        "int_too_large",
                    )
                ],
            )
    elif isinstance(payload, float) and not math.isfinite(payload):
        raise CommandInvalid(name, [FieldError(path, "must be a finite number", "finite_number")])


def _with_result(record: CommandRecord, result: CommandResult) -> CommandRecord:
    return dataclasses.replace(record, result=result.to_json())


def _replay(first: CommandRecord, name: str, digest: str, key: str) -> CommandResult:
    if first.name != name or first.payload_hash != digest:
        error = IdempotencyKeyReused(
            f"idempotency key {key!r} was first used for {first.name} {first.id} with other"
            " data; a new command needs a new key"
        )
        error.first = first  # type: ignore[attr-defined]
        raise error
    return CommandResult.from_json(first.result, replayed=True)


def _digest(name: str, payload: Any) -> str:
    canonical = orjson.dumps({"command": name, "payload": payload}, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()


def _check_key(key: object) -> str | None:
    if key is None:
        return None
    if not isinstance(key, str) or not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise InvalidInput(
            f"an idempotency key is a printable string of 1 to {MAX_KEY_LENGTH} characters,"
            f" not {key!r:.80}"
        )
    return key


def _check_id(value: object, name: str) -> str | None:
    if value is None:
        return None
    if (
        not isinstance(value, str)
        or not value
        or len(value) > 255
        or _CONTROL.search(value) is not None
    ):
        raise InvalidInput(
            f"{name} is a string of 1 to 255 characters without control characters,"
            f" not {value!r:.80}"
        )
    return value


async def _call(handler: Handler, command: Command, work: CommandContext) -> Any:
    outcome = handler(command, work)
    if inspect.isawaitable(outcome):
        outcome = await outcome
    return outcome


def _json_ready(name: str, value: Any) -> Any:
    if isinstance(value, pydantic.BaseModel):
        value = value.model_dump(mode="json")
    try:
        _json.dumps(value)
    except _json.JSONEncodeError as error:
        raise InvalidInput(
            f"the handler of {name} returned something not JSON-ready: {error}"
        ) from None
    return value


def _field_errors(error: pydantic.ValidationError) -> list[FieldError]:
    return [
        FieldError(tuple(item["loc"]), item["msg"], item["type"])
        for item in error.errors(include_url=False, include_input=False)
    ]


def _command_type_of(function: Callable[..., Any]) -> type[Command]:
    found = annotated_types(
        function,
        Command,
        position=0,
        arity=(2,),
        usage="(command, context)",
        instead="handlers.register(CommandType, function)",
    )
    if len(found) != 1:
        raise InvalidInput(f"{function.__name__}: annotate the command with one Command class")
    return found[0]
