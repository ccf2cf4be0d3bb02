"""Projections: classes with one handler per event type they care about.

Three kinds of read model:

- :class:`DocumentProjection`: one JSON document per id, with declared indexes,
  queried by field equality, ranges, ordering and pages; in the store's
  database, so writes and checkpoint commit together (exactly once);
- :class:`SqlProjection`: plain SQL tables it owns, written in the batch's
  transaction (exactly once); SQLite and PostgreSQL;
- :class:`InMemoryProjection`: Python objects, rebuilt from the log at start and
  then kept live; for small systems, with their memory use in the status.

Handlers are marked with :func:`on` (types from the annotation, or named:
``@on(OrderPaid)``, or a stored type name for raw events: ``@on("LegacyType")``)
and take ``(self, event)`` or ``(self, event, context)``; they may be async.
"""

from __future__ import annotations

import inspect
import re
import sys
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar, Union, overload

from eventledger.errors import InvalidInput
from eventledger.events import Event, EventRegistry, default_registry
from eventledger.failures import RetryPolicy
from eventledger.projections._storage import FIELD_NAME, KINDS
from eventledger.projections.documents import Documents
from eventledger.records import JSONObject, RecordedEvent
from eventledger.stores.base import EventStore, StoreTransaction

if TYPE_CHECKING:
    from eventledger.commands import CommandBus

__all__ = [
    "Context",
    "DocumentProjection",
    "From",
    "InMemoryProjection",
    "Projection",
    "SqlProjection",
    "on",
]

_NAME = re.compile(r"[a-z][a-z0-9_]{0,40}")
_NAMED = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
HandlerTarget = type[Event] | str


F = TypeVar("F", bound=Callable[..., Any])


@overload
def on(function: F, /) -> F: ...
@overload
def on(*targets: type[Event] | str) -> Callable[[F], F]: ...
def on(*targets: Any) -> Any:
    """Mark a method as the handler of event types (see the module's docs)."""
    if len(targets) == 1 and inspect.isfunction(targets[0]):
        targets[0].__handles__ = None  # type: ignore[attr-defined]  # from the annotation, later
        return targets[0]
    for target in targets:
        if not (
            isinstance(target, str) or (isinstance(target, type) and issubclass(target, Event))
        ):
            raise InvalidInput(f"@on takes Event subclasses or stored type names, not {target!r}")

    def mark(function: Callable[..., Any]) -> Callable[..., Any]:
        function.__handles__ = tuple(targets)  # type: ignore[attr-defined]
        return function

    return mark


@dataclass(slots=True)
class Context:
    """What a handler knows besides the event: where it is recorded, and where to write."""

    record: RecordedEvent
    tx: StoreTransaction | None
    docs: Documents | None
    tables: Mapping[str, str]

    @property
    def position(self) -> int:
        return self.record.position

    @property
    def stream_id(self) -> str:
        return self.record.stream_id

    @property
    def aggregate_id(self) -> str:
        """The stream id after its category: ``Order-o-1`` → ``o-1``."""
        head, sep, tail = self.record.stream_id.partition("-")
        return tail if sep else head

    @property
    def recorded_at(self) -> datetime:
        return self.record.recorded_at

    @property
    def metadata(self) -> JSONObject:
        return self.record.metadata

    async def execute(self, sql: str, **params: Any) -> None:
        """Run SQL in the batch's transaction, portably: ``{table}`` placeholders name this
        generation's tables, ``:name`` placeholders take `params`."""
        if self.tx is None:
            raise InvalidInput("this projection has no SQL transaction")
        text, args = self._portable(sql, params)
        await self.tx.execute(text, *args)

    async def fetch(self, sql: str, **params: Any) -> list[Sequence[Any]]:
        """Like :meth:`execute`, returning rows (reads see the batch's own writes)."""
        if self.tx is None:
            raise InvalidInput("this projection has no SQL transaction")
        text, args = self._portable(sql, params)
        return await self.tx.fetch(text, *args)

    def _portable(self, sql: str, params: Mapping[str, Any]) -> tuple[str, list[Any]]:
        assert self.tx is not None
        postgres = self.tx.dialect == "postgres"
        args: list[Any] = []

        def placeholder(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in params:
                raise InvalidInput(f"no value for :{name} in {sql!r}")
            args.append(params[name])
            return f"${len(args)}" if postgres else "?"

        text = _NAMED.sub(placeholder, sql.format(**self.tables))
        return text, args

    def table(self, name: str) -> str:
        """The table a :class:`SqlProjection` writes for `name` in this generation."""
        try:
            return self.tables[name]
        except KeyError:
            raise InvalidInput(f"no table {name!r}; tables: {', '.join(self.tables)}") from None


class Projection:
    """Base of projections. Subclass one of the three kinds below."""

    name: ClassVar[str] = ""
    """The read model's name (default: the class name in snake_case)."""
    categories: ClassVar[tuple[str, ...]] = ()
    """Only events of streams in these categories (default: all)."""
    retry: ClassVar[RetryPolicy] = RetryPolicy()
    registry: ClassVar[EventRegistry | None] = None
    """Where stored type names are looked up (default: the default registry)."""

    __handlers__: ClassVar[dict[HandlerTarget, tuple[str, bool]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" not in cls.__dict__ or not cls.__dict__["name"]:
            cls.name = re.sub(r"(?<!^)(?=[A-Z])", "_", cls.__name__).lower()
        if not _NAME.fullmatch(cls.name):
            raise InvalidInput(
                f"{cls.__name__}: projection name {cls.name!r} must be lower-case letters, digits"
                " and '_', starting with a letter, at most 41 characters"
            )
        handlers: dict[HandlerTarget, tuple[str, bool]] = {}
        for klass in reversed(cls.__mro__):
            for attribute, member in vars(klass).items():
                if not inspect.isfunction(member):
                    continue
                targets = getattr(member, "__handles__", ())
                if targets is None:
                    targets = _types_from_annotation(cls, member)
                if targets:
                    wants_context = len(inspect.signature(member).parameters) >= 3
                    for target in targets:
                        handlers[target] = (attribute, wants_context)
        cls.__handlers__ = handlers

    def __init__(self) -> None:
        self._relevant: dict[str, bool] = {}

    @property
    def event_registry(self) -> EventRegistry:
        return self.registry or default_registry

    def handles(self, record: RecordedEvent) -> bool:
        """Whether this projection has anything to do with a recorded event."""
        if self.categories and record.category not in self.categories:
            return False
        known = self._relevant.get(record.type)
        if known is None:
            known = self._relevant[record.type] = self._handler_for_type(record.type) is not None
        return known

    def _handler_for_type(self, stored_type: str) -> tuple[str, bool] | None:
        if stored_type in self.__handlers__:
            return self.__handlers__[stored_type]
        event_class = self.event_registry.get(stored_type)
        if event_class is None:
            return None
        for klass in event_class.__mro__:
            if klass in self.__handlers__:
                return self.__handlers__[klass]
        return None

    async def handle(self, record: RecordedEvent, context: Context) -> None:
        """Run the handler for `record` (decoding it into its class when typed)."""
        found = self._handler_for_type(record.type)
        if found is None:
            return
        attribute, wants_context = found
        payload: Any = record
        if record.type not in self.__handlers__:
            payload = self.event_registry.decode(record)
        method = getattr(self, attribute)
        outcome = method(payload, context) if wants_context else method(payload)
        if inspect.isawaitable(outcome):
            await outcome

    # What each kind does around a batch; the runner calls these.

    physical_tables: ClassVar[bool] = True
    sends_commands: ClassVar[bool] = False
    """Process managers: batches are handled before their transaction (each command
    commits on its own), rebuilds and resets are refused, and a command bus is needed."""

    def attach(self, bus: CommandBus) -> None:
        """Receive the runner's command bus (process managers send with it)."""

    def start_batch(self, store: EventStore) -> OutsideBatch:
        """A batch handled before its transaction (only where `sends_commands`)."""
        raise InvalidInput(
            f"{type(self).__name__} handles its batches inside the runner's transaction;"
            " only projections that send commands handle them before it"
        )

    async def before_step(self, store: EventStore) -> None:
        """Runs at each step of the runner's loop while this projection is active."""

    def table_names(self, generation: int) -> dict[str, str]:
        return {}

    async def create(self, tx: StoreTransaction, storage: Any, generation: int) -> None:
        """Create the read model's tables for a generation (idempotent)."""

    async def drop(self, tx: StoreTransaction, storage: Any, generation: int) -> None:
        """Drop a generation's tables."""

    async def point_views(self, tx: StoreTransaction, storage: Any, generation: int) -> None:
        """Make the queries see `generation`."""


class OutsideBatch(Protocol):
    """What a process manager's batch does for the runner."""

    async def prefetch(self, records: Sequence[RecordedEvent]) -> None: ...
    async def handle(self, record: RecordedEvent) -> None: ...
    async def write(self, tx: StoreTransaction) -> None: ...


class From:
    """In a declarative map: the value of a field of the event (``From("customer_id")``)."""

    def __init__(self, path: str) -> None:
        if not FIELD_NAME.fullmatch(path):
            raise InvalidInput(f"From takes a field name or dotted path, not {path!r}")
        self.path = path.split(".")

    def __call__(self, event: Any, context: Context) -> Any:
        value: Any = event.to_data() if isinstance(event, Event) else event.data
        for part in self.path:
            value = value.get(part) if isinstance(value, Mapping) else None
        return value


MapValue = Any  # a constant, From(...), or a callable (event, context) -> value


class DocumentProjection(Projection):
    """A read model of JSON documents, one per id, with declared indexes.

    ``indexes = {"status": "text", "total": "number"}`` names the fields queries
    may filter and order on. Handlers write through ``context.docs``. For simple
    read models, ``maps = {OrderPaid: {"status": "paid", "paid": From("amount")}}``
    merges fields into the document of :meth:`document_id` without a handler.
    """

    indexes: ClassVar[Mapping[str, str]] = {}
    maps: ClassVar[Mapping[HandlerTarget, Mapping[str, MapValue]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        for target in cls.maps:
            if not (
                isinstance(target, str) or (isinstance(target, type) and issubclass(target, Event))
            ):
                raise InvalidInput(f"{cls.__name__}.maps keys are Event classes, not {target!r}")
        super().__init_subclass__(**kwargs)
        for field, kind in cls.indexes.items():
            if not FIELD_NAME.fullmatch(field) or kind not in KINDS:
                raise InvalidInput(
                    f"{cls.__name__}.indexes: {field!r}: {kind!r} must map a field name to one"
                    f" of {', '.join(KINDS)}"
                )
        for target in cls.maps:
            cls.__handlers__.setdefault(target, ("_apply_map", True))

    def document_id(self, record: RecordedEvent) -> str | None:
        """The document an event belongs to, for declarative maps and prefetching
        (default: the aggregate id, the stream id after its category). None: unknown."""
        head, sep, tail = record.stream_id.partition("-")
        return tail if sep else head

    def table(self, generation: int) -> str:
        return f"rm_{self.name}_g{generation}"

    @property
    def view(self) -> str:
        return f"rm_{self.name}"

    async def create(self, tx: StoreTransaction, storage: Any, generation: int) -> None:
        await storage.create_collection(tx, self.table(generation), self.indexes)

    async def drop(self, tx: StoreTransaction, storage: Any, generation: int) -> None:
        await storage.drop_collection(tx, self.table(generation))

    async def point_views(self, tx: StoreTransaction, storage: Any, generation: int) -> None:
        await storage.point_view(tx, self.view, self.table(generation))

    async def _apply_map(self, event: Any, context: Context) -> None:
        target = type(event) if isinstance(event, Event) else event.type
        mapping = self.maps.get(target)
        if mapping is None and isinstance(event, Event):
            mapping = next(
                (m for k, m in self.maps.items() if isinstance(k, type) and isinstance(event, k)),
                None,
            )
        doc_id = self.document_id(context.record)
        if mapping is None or doc_id is None or context.docs is None:
            return
        changes = {
            field: value(event, context) if callable(value) else value
            for field, value in mapping.items()
        }
        await context.docs.update(doc_id, changes)


class SqlProjection(Projection):
    """A read model in plain SQL tables the projection owns.

    ``tables = {"daily_sales": "CREATE TABLE {daily_sales} (day TEXT PRIMARY KEY, ...)"}``
    gives each table's DDL (several statements separated by ``;``), with the
    table's name as a placeholder, so that a rebuild can build a fresh copy.
    Handlers write with ``context.tx`` and ``context.table("daily_sales")``;
    queries read the view of the same name. SQLite and PostgreSQL only.
    """

    tables: ClassVar[Mapping[str, str]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for logical in cls.tables:
            if not _NAME.fullmatch(logical):
                raise InvalidInput(f"{cls.__name__}: table name {logical!r} is not valid")

    def table_names(self, generation: int) -> dict[str, str]:
        return {logical: f"{logical}_g{generation}" for logical in self.tables}

    async def create(self, tx: StoreTransaction, storage: Any, generation: int) -> None:
        for logical, physical in self.table_names(generation).items():
            if await _table_exists(tx, physical):
                continue
            for statement in self.tables[logical].format(**self.table_names(generation)).split(";"):
                if statement.strip():
                    await tx.execute(statement)

    async def drop(self, tx: StoreTransaction, storage: Any, generation: int) -> None:
        cascade = " CASCADE" if tx.dialect == "postgres" else ""  # views are remade after
        for physical in self.table_names(generation).values():
            await tx.execute(f"DROP TABLE IF EXISTS {physical}{cascade}")

    async def point_views(self, tx: StoreTransaction, storage: Any, generation: int) -> None:
        for logical, physical in self.table_names(generation).items():
            await tx.execute(f"DROP VIEW IF EXISTS {logical}")
            await tx.execute(f"CREATE VIEW {logical} AS SELECT * FROM {physical}")


async def _table_exists(tx: StoreTransaction, table: str) -> bool:
    if tx.dialect == "postgres":
        return bool(await tx.fetchval("SELECT to_regclass($1) IS NOT NULL", table))
    return bool(
        await tx.fetchval(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?", table
        )
    )


class InMemoryProjection(Projection):
    """A read model held in this process: rebuilt from the log when the runner starts,
    then kept live. Keep its state in attributes set in ``__init__``; handlers change them.
    """

    physical_tables = False

    def memory_bytes(self) -> int:
        """About how much memory the state takes (its attributes, followed deeply)."""
        return _deep_size({k: v for k, v in vars(self).items() if not k.startswith("_")})


def _deep_size(value: Any, seen: set[int] | None = None) -> int:
    seen = set() if seen is None else seen
    if id(value) in seen:
        return 0
    seen.add(id(value))
    size = sys.getsizeof(value)
    if isinstance(value, Mapping):
        size += sum(_deep_size(k, seen) + _deep_size(v, seen) for k, v in value.items())
    elif isinstance(value, list | tuple | set | frozenset):
        size += sum(_deep_size(item, seen) for item in value)
    elif hasattr(value, "__dict__") and not isinstance(value, type):
        size += _deep_size(vars(value), seen)
    return size


def _types_from_annotation(cls: type, function: Callable[..., Any]) -> tuple[type[Event], ...]:
    parameters = list(inspect.signature(function).parameters.values())
    if len(parameters) < 2:
        raise InvalidInput(
            f"{cls.__name__}.{function.__name__}: a handler takes (self, event[, context])"
        )
    try:
        hints = typing.get_type_hints(function, localns=dict(vars(cls)))
    except NameError as error:
        raise InvalidInput(
            f"{cls.__name__}.{function.__name__}: cannot resolve the event annotation ({error});"
            " name the types instead: @on(EventType)"
        ) from None
    annotation = hints.get(parameters[1].name)
    if annotation is None:
        raise InvalidInput(
            f"{cls.__name__}.{function.__name__}: annotate the event, or use @on(EventType)"
        )
    options: Iterable[Any] = (
        typing.get_args(annotation)
        if typing.get_origin(annotation) in (Union, types.UnionType)
        else (annotation,)
    )
    found = tuple(options)
    for option in found:
        if not (isinstance(option, type) and issubclass(option, Event)):
            raise InvalidInput(
                f"{cls.__name__}.{function.__name__}: {option!r} is not an Event class"
            )
    return found
