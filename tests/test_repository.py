"""The repository on every store: save, load, conflicts, time travel, history, snapshots."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pydantic
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventledger import (
    Aggregate,
    AggregateNotFound,
    ConflictError,
    Event,
    EventRegistry,
    EventStore,
    InvalidInput,
    NewEvent,
    Repository,
    Snapshot,
    WrongExpectedVersion,
    applies,
    message_context,
)
from eventledger.examples.orders.domain import Order, OrderLine, OrderPaid, OrderStatus
from eventledger.stores.base import DEFAULT_PAGE_SIZE as PAGE

LINES = [OrderLine(sku="A", quantity=2, unit_price=Decimal("5.00"))]

kit = EventRegistry()


class Pushed(Event, registry=kit):
    item: str


class Popped(Event, registry=kit):
    pass


class Reversed(Event, registry=kit):
    pass


class Stack(Aggregate):
    items: list[str] = pydantic.Field(default_factory=list)

    def push(self, item: str) -> None:
        self.record(Pushed(item=item))

    def pop(self) -> None:
        if self.items:
            self.record(Popped())

    def reverse(self) -> None:
        self.record(Reversed())

    @applies
    def _pushed(self, event: Pushed) -> None:
        self.items = [*self.items, event.item]

    @applies
    def _popped(self, event: Popped) -> None:
        self.items = self.items[:-1]

    @applies
    def _reversed(self, event: Reversed) -> None:
        self.items = self.items[::-1]


async def test_a_saved_aggregate_loads_as_it_was(any_store: EventStore) -> None:
    orders = Repository(any_store, Order)
    order = Order.create("o-1", "alice", LINES)
    result = await orders.save(order)
    assert result is not None
    assert result.version == 1
    assert order.pending_events == ()
    loaded = await orders.load("o-1")
    assert loaded == order
    assert (loaded.version, loaded.status, loaded.total) == (1, OrderStatus.CREATED, Decimal(10))
    assert await orders.save(loaded) is None, "nothing pending, nothing written"
    assert await orders.exists("o-1")
    assert not await orders.exists("o-2")


async def test_a_missing_aggregate_is_not_found(any_store: EventStore) -> None:
    orders = Repository(any_store, Order)
    with pytest.raises(AggregateNotFound, match="Order 'nope' has no events"):
        await orders.load("nope")
    with pytest.raises(AggregateNotFound):
        await orders.history("nope")


async def test_creating_an_aggregate_twice_is_a_conflict(any_store: EventStore) -> None:
    orders = Repository(any_store, Order)
    await orders.save(Order.create("o-1", "alice", LINES))
    with pytest.raises(WrongExpectedVersion, match="expected NO_STREAM, actual 1"):
        await orders.save(Order.create("o-1", "bob", LINES))


async def test_a_stale_aggregate_cannot_be_saved(any_store: EventStore) -> None:
    orders = Repository(any_store, Order)
    await orders.save(Order.create("o-1", "alice", LINES))
    first = await orders.load("o-1")
    second = await orders.load("o-1")
    first.pay(Decimal("10.00"), "p-1")
    await orders.save(first)
    second.cancel("too slow")
    with pytest.raises(WrongExpectedVersion) as caught:
        await orders.save(second)
    assert (caught.value.expected, caught.value.actual) == (1, 2)
    assert (await orders.load("o-1")).status is OrderStatus.PAID


async def test_update_decides_again_on_a_fresh_load_after_a_conflict(
    any_store: EventStore,
) -> None:
    stacks = Repository(any_store, Stack, registry=kit)
    start = Stack(id="s")
    start.push("base")
    await stacks.save(start)

    def pusher(n: int) -> Callable[[Stack], None]:
        return lambda stack: stack.push(f"i{n}")

    await asyncio.gather(*(stacks.update("s", pusher(n), retries=20) for n in range(8)))
    stack = await stacks.load("s")
    assert stack.version == 9
    assert sorted(stack.items) == sorted(["base", *(f"i{n}" for n in range(8))])


async def test_update_gives_up_after_its_retries(any_store: EventStore) -> None:
    stacks = Repository(any_store, Stack, registry=kit)
    start = Stack(id="s")
    start.push("a")
    await stacks.save(start)

    async def interfere(stack: Stack) -> None:
        other = await stacks.load("s")
        other.push("sneaky")
        await stacks.save(other)
        stack.push("mine")

    with pytest.raises(ConflictError, match="gave up after 3 attempts"):
        await stacks.update("s", interfere, retries=2)


async def test_load_at_a_version_and_at_a_time(any_store: EventStore) -> None:
    orders = Repository(any_store, Order)
    await orders.save(Order.create("o-1", "alice", LINES))
    await asyncio.sleep(0.02)
    between = datetime.now(UTC)
    await asyncio.sleep(0.02)
    order = await orders.load("o-1")
    order.pay(Decimal("10.00"), "p-1")
    await orders.save(order)
    then = await orders.load("o-1", as_of=between)
    assert (then.status, then.version) == (OrderStatus.CREATED, 1)
    assert (await orders.load("o-1", version=1)).status is OrderStatus.CREATED
    assert (await orders.load("o-1", version=2)).status is OrderStatus.PAID
    with pytest.raises(AggregateNotFound, match="did not exist"):
        await orders.load("o-1", as_of=between - timedelta(hours=1))
    with pytest.raises(AggregateNotFound, match="has 2 events, not 3"):
        await orders.load("o-1", version=3)
    # Both: that version, which must have been recorded by then.
    assert (await orders.load("o-1", version=1, as_of=between)).version == 1
    with pytest.raises(AggregateNotFound, match="had 1 events at"):
        await orders.load("o-1", version=2, as_of=between)


async def test_history_lists_every_event_with_its_metadata(any_store: EventStore) -> None:
    orders = Repository(any_store, Order)
    with message_context(actor="user:7", correlation_id="req-1", tenant="acme"):
        await orders.save(Order.create("o-1", "alice", LINES), metadata={"source": "test"})
    await orders.update("o-1", lambda o: o.pay(Decimal("10.00"), "p-1"))
    # An event type this code has no class for stays readable.
    await any_store.append("Order-o-1", [NewEvent("LegacyNote", {"text": "hi"})])
    history = await orders.history("o-1")
    assert [(h.version, h.type) for h in history] == [
        (1, "OrderCreated"),
        (2, "OrderPaid"),
        (3, "LegacyNote"),
    ]
    first, second, legacy = history
    assert first.metadata == {
        "correlation_id": "req-1",
        "causation_id": "req-1",
        "actor": "user:7",
        "tenant": "acme",
        "source": "test",
    }
    assert second.event == OrderPaid(amount=Decimal("10.00"), payment_id="p-1")
    assert second.metadata["correlation_id"] == second.metadata["causation_id"]
    assert second.metadata["correlation_id"] != "req-1"
    assert "actor" not in second.metadata
    assert legacy.event is None
    assert legacy.raw.data == {"text": "hi"}
    assert first.recorded_at <= second.recorded_at <= legacy.recorded_at


async def test_snapshots_are_taken_every_n_events_and_used(any_store: EventStore) -> None:
    stacks = Repository(any_store, Stack, registry=kit, snapshot_every=3)
    stack = Stack(id="s")
    for n in range(7):
        stack.push(str(n))
        await stacks.save(stack)
    snapshot = await any_store.load_snapshot("Stack-s")
    assert snapshot is not None
    assert snapshot.version == 6
    assert snapshot.state["items"] == [str(n) for n in range(6)]
    # Prove the snapshot is what the load starts from: doctor it, and the load shows it.
    doctored = snapshot._replace(state={**snapshot.state, "items": ["from", "snapshot"]})
    await any_store.save_snapshot(doctored)
    assert (await stacks.load("s")).items == ["from", "snapshot", "6"]
    # A load at a version below the snapshot replays from an earlier one.
    assert (await stacks.load("s", version=4)).items == ["0", "1", "2", "3"]
    # A repository without snapshots ignores them.
    plain = Repository(any_store, Stack, registry=kit)
    assert (await plain.load("s")).items == [str(n) for n in range(7)]


async def test_a_snapshot_of_another_shape_is_ignored(
    any_store: EventStore, caplog: pytest.LogCaptureFixture
) -> None:
    stacks = Repository(any_store, Stack, registry=kit, snapshot_every=2)
    stack = Stack(id="s")
    for n in range(3):
        stack.push(str(n))
    await stacks.save(stack)
    await any_store.save_snapshot(
        Snapshot("Stack-s", 3, "Stack", "1:an-older-shape", {"id": "s", "items": ["stale"]})
    )
    with caplog.at_level(logging.INFO, logger="eventledger.repository"):
        assert (await stacks.load("s")).items == ["0", "1", "2"]
    assert "ignoring the snapshot of Stack-s at version 3" in caplog.text


async def test_a_save_of_another_aggregate_type_is_refused(any_store: EventStore) -> None:
    orders = Repository(any_store, Order)
    with pytest.raises(InvalidInput, match="saves Order, not Stack"):
        await orders.save(Stack(id="s"))  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="non-empty string"):
        await orders.load("")
    with pytest.raises(InvalidInput, match="snapshot_every"):
        Repository(any_store, Order, snapshot_every=0)


OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("push"), st.sampled_from("abcdef")),
        st.tuples(st.just("pop"), st.none()),
        st.tuples(st.just("reverse"), st.none()),
    ),
    min_size=1,
    max_size=30,
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    operations=OPERATIONS,
    save_every=st.integers(min_value=1, max_value=4),
    snapshot_every=st.integers(min_value=1, max_value=5),
    data=st.data(),
)
async def test_snapshots_never_change_what_a_load_returns(
    any_store: EventStore,
    operations: list[tuple[str, str | None]],
    save_every: int,
    snapshot_every: int,
    data: st.DataObject,
) -> None:
    with_snapshots = Repository(any_store, Stack, registry=kit, snapshot_every=snapshot_every)
    without = Repository(any_store, Stack, registry=kit)
    stack_id = uuid.uuid4().hex
    stack = Stack(id=stack_id)
    for n, (operation, item) in enumerate(operations, start=1):
        if operation == "push":
            stack.push(str(item))
        elif operation == "pop":
            stack.pop()
        else:
            stack.reverse()
        if n % save_every == 0:
            await with_snapshots.save(stack)
    await with_snapshots.save(stack)
    if stack.version == 0:
        return
    assert await with_snapshots.load(stack_id) == await without.load(stack_id) == stack
    version = data.draw(st.integers(min_value=1, max_value=stack.version))
    assert await with_snapshots.load(stack_id, version=version) == await without.load(
        stack_id, version=version
    )


class Ledger(Aggregate):
    """Remembers the version each push was recorded at, as aggregates often do."""

    at: list[int] = pydantic.Field(default_factory=list)

    @applies
    def _pushed(self, event: Pushed) -> None:
        self.at = [*self.at, self.version + 1]


async def test_a_handler_sees_the_same_version_on_a_load_as_when_it_recorded(
    any_store: EventStore,
) -> None:
    ledgers = Repository(any_store, Ledger, registry=kit)
    ledger = Ledger(id="l-1")
    for n in range(PAGE + 3):  # across a page boundary of the load
        ledger.record(Pushed(item=str(n)))
    assert ledger.at == list(range(1, PAGE + 4))
    await ledgers.save(ledger)
    loaded = await ledgers.load("l-1")
    assert (loaded.at, loaded.version) == (ledger.at, PAGE + 3)
    then = await ledgers.load("l-1", version=PAGE + 1)
    assert (then.at, then.version) == (ledger.at[: PAGE + 1], PAGE + 1)
