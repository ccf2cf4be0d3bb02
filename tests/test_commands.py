"""The command bus on every store: validation, atomic saves, retries, idempotency, causes."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from eventledger import (
    Aggregate,
    AggregateNotFound,
    Command,
    CommandBus,
    CommandContext,
    CommandHandlers,
    CommandInvalid,
    ConflictError,
    DomainError,
    Event,
    EventStore,
    IdempotencyKeyReused,
    InvalidInput,
    RecordedEvent,
    UnknownCommand,
    applies,
    causal_chain,
    message_context,
    open_store,
)
from eventledger.events import EventRegistry

registry = EventRegistry()


class Deposited(Event, registry=registry):
    cents: int


class Withdrawn(Event, registry=registry):
    cents: int


class Overdrawn(DomainError):
    pass


class Account(Aggregate):
    balance: int = 0

    def deposit(self, cents: int) -> None:
        self.record(Deposited(cents=cents))

    def withdraw(self, cents: int) -> None:
        if cents > self.balance:
            raise Overdrawn(f"account {self.id} has {self.balance}, not {cents}")
        self.record(Withdrawn(cents=cents))

    @applies
    def _deposited(self, event: Deposited) -> None:
        self.balance += event.cents

    @applies
    def _withdrawn(self, event: Withdrawn) -> None:
        self.balance -= event.cents


class Deposit(Command):
    account_id: str
    cents: int


class Transfer(Command):
    source: str
    target: str
    cents: int


class Misbehave(Command):
    how: str


handlers = CommandHandlers()
calls: list[str] = []


@handlers.handler
async def deposit(command: Deposit, context: CommandContext) -> int:
    calls.append(command.account_id)
    account = await context.find(Account, command.account_id)
    if account is None:
        account = Account(id=command.account_id)
        context.add(account)
    await asyncio.sleep(0)  # let concurrent commands interleave
    account.deposit(command.cents)
    return account.balance


@handlers.handler
async def transfer(command: Transfer, context: CommandContext) -> None:
    source = await context.load(Account, command.source)
    target = await context.load(Account, command.target)
    source.withdraw(command.cents)
    target.deposit(command.cents)


@handlers.handler
async def misbehave(command: Misbehave, context: CommandContext) -> object:
    account = Account(id=f"m-{uuid.uuid4().hex[:6]}")
    account.deposit(1)
    context.add(account)
    if command.how == "raise":
        raise ValueError("the handler broke")
    return {"not": {"json"}}


@pytest_asyncio.fixture
async def store(any_store_url: str) -> AsyncIterator[EventStore]:
    calls.clear()
    store = await open_store(any_store_url)
    yield store
    await store.close()


@pytest.fixture
def bus(store: EventStore) -> CommandBus:
    return CommandBus(store, handlers, registry=registry)


async def first_event(store: EventStore, stream_id: str) -> RecordedEvent:
    async for event in store.read_stream(stream_id, limit=1):
        return event
    raise AssertionError(f"{stream_id} is empty")


async def balance(bus: CommandBus, account_id: str) -> int:
    return (await bus.repository(Account).load(account_id)).balance


async def test_a_command_saves_what_its_handler_changed_and_says_where(bus: CommandBus) -> None:
    result = await bus.send(Deposit(account_id="a-1", cents=500))
    assert result.command == "Deposit"
    assert result.value == 500
    assert [(w.stream_id, w.version, w.events) for w in result.writes] == [("Account-a-1", 1, 1)]
    assert result.position == result.writes[0].position == await bus.store.head_position()
    assert not result.replayed
    record = await bus.log.by_id(uuid.UUID(result.command_id))
    assert record is not None
    assert (record.name, record.payload) == ("Deposit", {"account_id": "a-1", "cents": 500})


async def test_changes_to_several_aggregates_commit_together(bus: CommandBus) -> None:
    await bus.send(Deposit(account_id="a", cents=100))
    await bus.send(Deposit(account_id="b", cents=0))
    result = await bus.send(Transfer(source="a", target="b", cents=30))
    assert [(w.stream_id, w.version) for w in result.writes] == [
        ("Account-a", 2),
        ("Account-b", 2),
    ]
    assert (await balance(bus, "a"), await balance(bus, "b")) == (70, 30)


async def test_a_broken_rule_writes_nothing_to_any_aggregate(bus: CommandBus) -> None:
    await bus.send(Deposit(account_id="a", cents=10))
    await bus.send(Deposit(account_id="b", cents=0))
    head = await bus.store.head_position()
    with pytest.raises(Overdrawn):
        await bus.send(Transfer(source="a", target="b", cents=11))
    with pytest.raises(AggregateNotFound):
        await bus.send(Transfer(source="a", target="nobody", cents=1))
    assert await bus.store.head_position() == head


async def test_a_failing_handler_writes_nothing(bus: CommandBus) -> None:
    with pytest.raises(ValueError, match="the handler broke"):
        await bus.send(Misbehave(how="raise"))
    with pytest.raises(InvalidInput, match="not JSON-ready"):
        await bus.send(Misbehave(how="return a set"))
    assert await bus.store.head_position() == 0


async def test_concurrent_commands_on_one_aggregate_lose_no_update(
    bus: CommandBus, any_store_url: str
) -> None:
    await bus.send(Deposit(account_id="shared", cents=0))
    stores = [await open_store(any_store_url) for _ in range(4)]
    buses = [CommandBus(s, handlers, registry=registry, max_attempts=50) for s in stores]
    try:
        results = await asyncio.gather(
            *(b.send(Deposit(account_id="shared", cents=1)) for b in buses for _ in range(5))
        )
    finally:
        for s in stores:
            await s.close()
    assert len(results) == 20
    assert await balance(bus, "shared") == 20
    versions = sorted(r.writes[0].version for r in results)
    assert versions == list(range(2, 22))


async def test_a_command_that_keeps_colliding_gives_up_with_a_conflict(
    store: EventStore,
) -> None:
    interfering = CommandHandlers()

    @interfering.handler
    async def deposit_while_others_do(command: Deposit, context: CommandContext) -> None:
        account = await context.load(Account, command.account_id)
        account.deposit(command.cents)
        # Someone else always gets there first.
        await store.append("Account-busy", [Deposited(cents=0).to_new_event()])

    await CommandBus(store, handlers, registry=registry).send(Deposit(account_id="busy", cents=1))
    bus = CommandBus(store, interfering, registry=registry, max_attempts=3)
    with pytest.raises(ConflictError, match="gave up after 3 attempts"):
        await bus.send(Deposit(account_id="busy", cents=5))


async def test_a_repeated_idempotency_key_returns_the_first_result_and_runs_nothing(
    bus: CommandBus,
) -> None:
    first = await bus.send(Deposit(account_id="k", cents=5), idempotency_key="pay-1")
    head = await bus.store.head_position()
    again = await bus.send(Deposit(account_id="k", cents=5), idempotency_key="pay-1")
    assert again.replayed
    assert (again.command_id, again.writes, again.position, again.value) == (
        first.command_id,
        first.writes,
        first.position,
        first.value,
    )
    assert await bus.store.head_position() == head
    assert calls == ["k"]


async def test_concurrent_repeats_of_a_key_run_the_command_once(
    bus: CommandBus, any_store_url: str
) -> None:
    stores = [await open_store(any_store_url) for _ in range(4)]
    buses = [CommandBus(s, handlers, registry=registry) for s in stores]
    try:
        results = await asyncio.gather(
            *(
                b.send(Deposit(account_id="once", cents=7), idempotency_key="charge-42")
                for b in buses
                for _ in range(3)
            )
        )
    finally:
        for s in stores:
            await s.close()
    assert len({r.command_id for r in results}) == 1
    assert sum(not r.replayed for r in results) == 1
    assert await balance(bus, "once") == 7
    assert await bus.store.stream_version("Account-once") == 1


async def test_a_key_reused_for_another_command_or_payload_is_refused(bus: CommandBus) -> None:
    await bus.send(Deposit(account_id="r", cents=1), idempotency_key="k-1")
    with pytest.raises(IdempotencyKeyReused, match="k-1"):
        await bus.send(Deposit(account_id="r", cents=2), idempotency_key="k-1")
    with pytest.raises(IdempotencyKeyReused):
        await bus.send(Misbehave(how="raise"), idempotency_key="k-1")
    with pytest.raises(InvalidInput):
        await bus.send(Deposit(account_id="r", cents=1), idempotency_key="")
    with pytest.raises(InvalidInput):
        await bus.send(Deposit(account_id="r", cents=1), idempotency_key="x" * 300)
    assert await balance(bus, "r") == 1


async def test_a_key_is_kept_even_for_a_command_that_changed_nothing(bus: CommandBus) -> None:
    nothing = CommandHandlers()

    @nothing.handler
    def look(command: Deposit, context: CommandContext) -> str:  # handlers may be sync
        return "looked"

    quiet = CommandBus(bus.store, nothing, registry=registry)
    first = await quiet.send(Deposit(account_id="q", cents=1), idempotency_key="look-1")
    assert (first.writes, first.position, first.value) == ((), 0, "looked")
    again = await quiet.send(Deposit(account_id="q", cents=1), idempotency_key="look-1")
    assert again.replayed
    assert again.command_id == first.command_id


async def test_invalid_payloads_name_every_bad_field(bus: CommandBus) -> None:
    with pytest.raises(CommandInvalid) as caught:
        await bus.dispatch("Transfer", {"source": 5, "cents": "lots", "extra": 1})
    paths = {error.path for error in caught.value.errors}
    assert paths == {("source",), ("target",), ("cents",), ("extra",)}
    assert "Transfer is not valid" in str(caught.value)
    with pytest.raises(CommandInvalid):
        await bus.dispatch("Deposit", b"{not json")
    with pytest.raises(CommandInvalid):
        await bus.dispatch("Deposit", [1, 2])
    with pytest.raises(UnknownCommand, match="known: Deposit, Misbehave, Transfer"):
        await bus.dispatch("Withdraw", {})
    result = await bus.dispatch("Deposit", '{"account_id": "j", "cents": 3}')
    assert result.value == 3


async def test_events_carry_the_command_s_correlation_causation_and_actor(
    bus: CommandBus,
) -> None:
    with message_context(actor="user:7", correlation_id="req-9"):
        result = await bus.send(Deposit(account_id="m", cents=1))
    event = await bus.store.read_event((await first_event(bus.store, "Account-m")).id)
    assert event is not None
    assert event.metadata["correlation_id"] == "req-9"
    assert event.metadata["causation_id"] == result.command_id
    assert event.metadata["actor"] == "user:7"
    record = await bus.log.by_id(uuid.UUID(result.command_id))
    assert record is not None
    assert (record.correlation_id, record.causation_id, record.actor) == (
        "req-9",
        "req-9",
        "user:7",
    )
    started = await bus.send(Deposit(account_id="n", cents=1), actor="system:cron")
    record = await bus.log.by_id(uuid.UUID(started.command_id))
    assert record is not None
    assert record.correlation_id == record.causation_id == started.command_id
    assert record.actor == "system:cron"


async def test_the_causal_chain_of_an_event_runs_through_commands_both_ways(
    bus: CommandBus,
) -> None:
    opened = await bus.send(Deposit(account_id="c", cents=10), actor="user:1")
    cause = await first_event(bus.store, "Account-c")
    # A follow-up caused by that event (what a process manager does).
    await bus.send(
        Deposit(account_id="d", cents=1),
        correlation_id=cause.metadata["correlation_id"],
        causation_id=str(cause.id),
        actor="process:bonus",
    )
    unrelated = await bus.send(Deposit(account_id="e", cents=1))
    chain = await causal_chain(bus.store, cause.id)
    assert [(link.kind, link.name) for link in chain.causes] == [("command", "Deposit")]
    assert chain.causes[0].id == opened.command_id
    assert [(link.kind, link.name, link.stream_id) for link in chain.effects] == [
        ("command", "Deposit", None),
        ("event", "Deposited", "Account-d"),
    ]
    assert unrelated.command_id not in {link.id for link in chain.conversation}
    last = await first_event(bus.store, "Account-d")
    back = await causal_chain(bus.store, str(last.id))
    assert [link.name for link in back.causes] == ["Deposit", "Deposited", "Deposit"]
    assert back.effects == ()
    assert "> " in back.render()
    assert "process:bonus" in back.render()


class Measure(Command):
    account_id: str
    count: int  # no bounds: any integer validates
    readings: list[float] = []


measuring = CommandHandlers()


@measuring.handler
async def measure(command: Measure, context: CommandContext) -> None:
    account = Account(id=command.account_id)
    account.deposit(1)
    context.add(account)


@pytest.mark.parametrize(
    ("fields", "path", "kind"),
    [
        ({"count": 2**64}, ("count",), "int_too_large"),
        ({"count": -(2**63) - 1}, ("count",), "int_too_large"),
        ({"count": 1, "readings": [1.5, float("nan")]}, ("readings", 1), "finite_number"),
        ({"count": 1, "readings": [float("-inf")]}, ("readings", 0), "finite_number"),
    ],
)
async def test_numbers_no_backend_stores_are_refused_by_field_before_anything_runs(
    store: EventStore, fields: dict[str, object], path: tuple[object, ...], kind: str
) -> None:
    bus = CommandBus(store, measuring, registry=registry)
    for key in (None, "k-1"):  # with a key, the record and its hash are JSON too
        with pytest.raises(CommandInvalid) as caught:
            await bus.send(Measure(account_id="m", **fields), idempotency_key=key)  # type: ignore[arg-type]
        ((error_path, error_kind),) = [(e.path, e.kind) for e in caught.value.errors]
        assert (error_path, error_kind) == (path, kind)
    assert await store.stream_version("Account-m") == 0
    # The ends of the range are numbers every backend keeps.
    for count in (2**64 - 1, -(2**63)):
        await bus.send(Measure(account_id=f"m{count}", count=count, readings=[1e308]))
