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
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, overload

from eventledger._annotations import annotated_types
from eventledger.errors import InvalidInput
from eventledger.events import Event, EventRegistry, default_registry
from eventledger.failures import RetryPolicy
from eventledger.projections.context import Context, RunScope
from eventledger.records import RecordedEvent
from eventledger.storage import FIELD_NAME, INDEX_KINDS, Concern, SqlTables
from eventledger.stores.base import StoreTransaction

if TYPE_CHECKING:
    from eventledger.subscriptions import Consumer

__all__ = [
    "Context",
    "DocumentProjection",
    "From",
    "InMemoryProjection",
    "Projection",
    "RunScope",
    "SqlProjection",
    "on",
]

_NAME = re.compile(r"[a-z][a-z0-9_]{0,40}")
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


class Projection:
    """Base of projections. Subclass one of the three kinds below."""

    name: ClassVar[str] = ""
    """The read model's name (default: the class name in snake_case)."""
    categories: ClassVar[tuple[str, ...]] = ()
    """Only events of streams in these categories (default: all)."""
    retry: ClassVar[RetryPolicy] = RetryPolicy()
    registry: ClassVar[EventRegistry | None] = None
    """Where stored type names are looked up (default: the default registry)."""
    partitions: ClassVar[int] = 1
    """Split into this many partitions by a hash of the stream id, each with its own
    checkpoint and lease, shared out between the processes that run it (document and SQL
    read models; see :mod:`eventledger.projections.partitions`)."""

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
                    targets = annotated_types(
                        member,
                        Event,
                        position=1,
                        owner=cls,
                        arity=(2, 3),
                        usage="(self, event) or (self, event, context)",
                        instead="@on(EventType)",
                    )
                if targets:
                    wants_context = len(inspect.signature(member).parameters) >= 3
                    for target in targets:
                        handlers[target] = (attribute, wants_context)
        cls.__handlers__ = handlers

    def __init__(self) -> None:
        self._relevant: dict[str, bool] = {}
        # Per stored type: the bound handler, whether it takes the context, whether the
        # event is decoded into its class, whether it is a coroutine function; None when
        # no handler takes the type.
        self._bound: dict[str, tuple[Callable[..., Any], bool, bool, bool] | None] = {}

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
        try:
            bound = self._bound[record.type]
        except KeyError:
            bound = self._bind(record.type)
        if bound is None:
            return
        method, wants_context, typed, is_coroutine = bound
        payload: Any = self.event_registry.decode(record) if typed else record
        if is_coroutine:
            await (method(payload, context) if wants_context else method(payload))
            return
        outcome = method(payload, context) if wants_context else method(payload)
        if inspect.isawaitable(outcome):
            await outcome

    def _bind(self, stored_type: str) -> tuple[Callable[..., Any], bool, bool, bool] | None:
        found = self._handler_for_type(stored_type)
        bound = None
        if found is not None:
            attribute, wants_context = found
            method = getattr(self, attribute)
            typed = stored_type not in self.__handlers__
            bound = (method, wants_context, typed, inspect.iscoroutinefunction(method))
        self._bound[stored_type] = bound
        return bound

    # What the runner asks of each kind.

    needs: ClassVar[tuple[Concern, ...]] = ("read_side",)
    """What the store must keep for this kind of projection (see :mod:`eventledger.storage`)."""
    rebuildable: ClassVar[bool] = True
    """Whether the runner may rebuild or reset it (process managers would send their
    commands again)."""

    def consumer(self, scope: RunScope, generation: int | None = None) -> Consumer:
        """The subscription consumer that runs this projection (into `generation`; None:
        the generation queries see, found when it becomes active)."""
        from eventledger.projections.consumers import StoredConsumer

        return StoredConsumer(self, scope, generation)

    def table_names(self, generation: int) -> dict[str, str]:
        return {}

    async def begin(self, tx: StoreTransaction, scope: RunScope) -> None:
        """Get a batch's transaction ready for the handlers."""

    async def create(self, tx: StoreTransaction, scope: RunScope, generation: int) -> None:
        """Create the read model's tables for a generation (idempotent)."""

    async def drop(self, tx: StoreTransaction, scope: RunScope, generation: int) -> None:
        """Drop a generation's tables."""

    async def point_views(self, tx: StoreTransaction, scope: RunScope, generation: int) -> None:
        """Make the queries see `generation`."""


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
            if not FIELD_NAME.fullmatch(field) or kind not in INDEX_KINDS:
                raise InvalidInput(
                    f"{cls.__name__}.indexes: {field!r}: {kind!r} must map a field name to one"
                    f" of {', '.join(INDEX_KINDS)}"
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

    async def create(self, tx: StoreTransaction, scope: RunScope, generation: int) -> None:
        await scope.read_side.create_collection(tx, self.table(generation), self.indexes)

    async def drop(self, tx: StoreTransaction, scope: RunScope, generation: int) -> None:
        await scope.read_side.drop_collection(tx, self.table(generation))

    async def point_views(self, tx: StoreTransaction, scope: RunScope, generation: int) -> None:
        await scope.read_side.point_view(tx, self.view, self.table(generation))

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

    needs: ClassVar[tuple[Concern, ...]] = ("read_side", "sql_tables")

    def table_names(self, generation: int) -> dict[str, str]:
        return {logical: f"{logical}_g{generation}" for logical in self.tables}

    async def begin(self, tx: StoreTransaction, scope: RunScope) -> None:
        await _sql(scope).prepare(tx)  # the handlers' unqualified table names find ours

    async def create(self, tx: StoreTransaction, scope: RunScope, generation: int) -> None:
        sql = _sql(scope)
        await sql.prepare(tx)
        for logical, physical in self.table_names(generation).items():
            if await sql.table_exists(tx, physical):
                continue
            for statement in self.tables[logical].format(**self.table_names(generation)).split(";"):
                if statement.strip():
                    await tx.execute(statement)

    async def drop(self, tx: StoreTransaction, scope: RunScope, generation: int) -> None:
        sql = _sql(scope)
        await sql.prepare(tx)
        for physical in self.table_names(generation).values():
            await sql.drop_table(tx, physical)  # views on it go too; point_views remakes them

    async def point_views(self, tx: StoreTransaction, scope: RunScope, generation: int) -> None:
        sql = _sql(scope)
        await sql.prepare(tx)
        for logical, physical in self.table_names(generation).items():
            await sql.point_view(tx, logical, physical)


def _sql(scope: RunScope) -> SqlTables:
    if scope.sql is None:
        scope.store.require("sql_tables")
        raise AssertionError("unreachable")  # pragma: no cover
    return scope.sql


class InMemoryProjection(Projection):
    """A read model held in this process: rebuilt from the log when the runner starts,
    then kept live. Keep its state in attributes set in ``__init__``; handlers change them.
    """

    needs: ClassVar[tuple[Concern, ...]] = ()

    def consumer(self, scope: RunScope, generation: int | None = None) -> Consumer:
        from eventledger.projections.consumers import InMemoryConsumer

        return InMemoryConsumer(self)

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
