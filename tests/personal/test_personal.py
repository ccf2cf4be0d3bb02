"""Crypto-shredding on every backend: personal values read back as written until their
subject is forgotten, then only as markers; nothing else changes; aggregates still
load; snapshots go; new values of a forgotten subject are refused; and a rebuild after
forget holds none of them."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

import pytest
import pytest_asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventledger import (
    Aggregate,
    Application,
    Command,
    CommandContext,
    CommandHandlers,
    Event,
    EventRegistry,
    EventStore,
    NewEvent,
    Repository,
    SubjectForgottenError,
    applies,
    open_store,
)
from eventledger.personal import (
    LocalKeyWrapper,
    Personal,
    Redacted,
    SealBroken,
    export,
    forget,
    use_key_wrapper,
)

pytestmark = pytest.mark.postgres

SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

kit = EventRegistry()


class Address(Event, registry=EventRegistry()):
    street: str
    city: str


class CustomerJoined(Event, registry=kit):
    customer_id: str
    email: Annotated[str | Redacted, Personal(subject="customer_id")]
    address: Annotated[dict[str, str] | Redacted, Personal(subject="customer_id")]
    plan: str


class EmailChanged(Event, registry=kit):
    customer_id: str
    email: Annotated[str | Redacted, Personal(subject="customer_id")]


class Customer(Aggregate, category="Customer"):
    email: str | Redacted = ""
    plan: str = ""
    changes: int = 0

    def change_email(self, email: str) -> None:
        if isinstance(self.email, Redacted):
            raise ValueError("this customer was forgotten")
        self.record(EmailChanged(customer_id=self.id, email=email))

    @applies
    def _joined(self, event: CustomerJoined) -> None:
        self.email, self.plan = event.email, event.plan

    @applies
    def _changed(self, event: EmailChanged) -> None:
        self.email = event.email
        self.changes += 1


class Join(Command):
    customer_id: str
    email: Annotated[str, Personal(subject="customer_id")]


handlers = CommandHandlers()


@handlers.handler
async def join(command: Join, context: CommandContext) -> None:
    customer = Customer(id=command.customer_id)
    customer.record(
        CustomerJoined(customer_id=command.customer_id, email=command.email, address={}, plan="p")
    )
    context.add(customer)


@pytest_asyncio.fixture
async def stores(postgres_schema_url: str, tmp_path: Path) -> AsyncIterator[list[EventStore]]:
    opened = [
        await open_store(f"memory://{uuid.uuid4().hex}"),
        await open_store(f"sqlite:///{tmp_path}/personal.db"),
        await open_store(postgres_schema_url),
    ]
    yield opened
    for store in opened:
        await store.close()


json_leaf = st.one_of(
    st.text(max_size=30).filter(lambda t: "\x00" not in t),
    st.integers(min_value=-(2**53), max_value=2**53),
    st.booleans(),
)
personal_value = st.one_of(
    json_leaf, st.dictionaries(st.sampled_from("abc"), json_leaf, max_size=3)
)
subjects = st.sampled_from(["ann", "bob", "cid-ü", "d 4"])


@st.composite
def events_with_personal_values(draw: st.DrawFn) -> list[tuple[str, NewEvent]]:
    made = []
    for n in range(draw(st.integers(1, 6))):
        subject = draw(subjects)
        other = draw(subjects)
        data = {
            "who": subject,
            "other": other,
            "n": n,
            "secret": draw(personal_value),
            "deep": {"note": draw(personal_value), "kept": draw(json_leaf)},
        }
        personal = {"secret": "who", "deep.note": "other"}
        made.append((f"Thing-{subject}", NewEvent("Happened", data, {"k": n}, personal=personal)))
    return made


async def read(store: EventStore, streams: set[str]) -> dict[str, list[dict[str, Any]]]:
    return {s: [e.data async for e in store.read_stream(s)] for s in sorted(streams)}


@SETTINGS
@given(batch=events_with_personal_values(), forgotten=subjects)
async def test_reads_equal_the_originals_until_forget_then_show_only_markers(
    stores: list[EventStore], batch: list[tuple[str, NewEvent]], forgotten: str
) -> None:
    suffix = uuid.uuid4().hex[:8]  # each example has subjects and streams of its own
    written: dict[str, list[dict[str, Any]]] = {}
    events = []
    for stream, event in batch:
        data = {**event.data, "who": event.data["who"] + suffix}
        data["other"] = event.data["other"] + suffix
        written.setdefault(stream + suffix, []).append(data)
        events.append((stream + suffix, data, event))
    gone = forgotten + suffix
    after = []
    for store in stores:
        for stream, data, event in events:
            fresh = NewEvent(event.type, data, event.metadata, personal=event.personal)
            await store.append(stream, [fresh])
        assert await read(store, set(written)) == written
        in_log = [e.data async for e in store.read_all() if e.stream_id.endswith(suffix)]
        assert in_log == [data for _, data, _ in events]
        await forget(store, gone)
        after.append(await read(store, set(written)))
    assert after[0] == after[1] == after[2]
    for stream, datas in after[0].items():
        for data, original in zip(datas, written[stream], strict=True):
            assert data["n"] == original["n"]
            assert data["deep"]["kept"] == original["deep"]["kept"]
            marker = {"$redacted": gone}
            assert data["secret"] == (marker if original["who"] == gone else original["secret"])
            assert data["deep"]["note"] == (
                marker if original["other"] == gone else original["deep"]["note"]
            )


async def test_aggregates_still_load_and_decide_after_forget(any_store: EventStore) -> None:
    customers = Repository(any_store, Customer, registry=kit)
    ann = Customer(id="ann")
    ann.record(
        CustomerJoined(
            customer_id="ann",
            email="ann@example.com",
            address={"street": "1 Main St", "city": "Springfield"},
            plan="gold",
        )
    )
    ann.change_email("ann@home.example")
    await customers.save(ann)
    loaded = await customers.load("ann")
    assert (loaded.email, loaded.plan, loaded.changes) == ("ann@home.example", "gold", 1)
    forgotten = await forget(any_store, "ann")
    assert forgotten.streams == ["Customer-ann"]
    assert forgotten.had_key
    loaded = await customers.load("ann")
    assert (loaded.email, loaded.plan, loaded.changes) == (Redacted("ann"), "gold", 1)
    with pytest.raises(ValueError, match="forgotten"):
        loaded.change_email("new@example.com")
    history = [entry.event for entry in await customers.history("ann")]
    assert [type(e).__name__ for e in history] == ["CustomerJoined", "EmailChanged"]
    assert isinstance(history[0], CustomerJoined)
    assert history[0].address == Redacted("ann")
    # The event that says so carries no personal data.
    (said,) = [e async for e in any_store.read_stream("Subject-ann")]
    assert (said.type, said.data) == (
        "SubjectForgotten",
        {"subject": "ann", "streams": ["Customer-ann"]},
    )


async def test_snapshots_with_the_subjects_values_are_discarded(any_store: EventStore) -> None:
    from eventledger import Snapshot

    await any_store.append(
        "Customer-bob",
        [CustomerJoined(customer_id="bob", email="b@x", address={}, plan="p").to_new_event()],
    )
    await any_store.save_snapshot(Snapshot("Customer-bob", 1, "Customer", "f", {"email": "b@x"}))
    await any_store.save_snapshot(Snapshot("Other-1", 1, "Other", "f", {"n": 1}))
    await forget(any_store, "bob")
    assert await any_store.load_snapshot("Customer-bob") is None
    assert await any_store.load_snapshot("Other-1") is not None


async def test_a_forgotten_subject_gets_no_new_personal_values(any_store: EventStore) -> None:
    joined = CustomerJoined(customer_id="cy", email="c@x", address={}, plan="p")
    await any_store.append("Customer-cy", [joined.to_new_event()])
    await forget(any_store, "cy")
    with pytest.raises(SubjectForgottenError, match="'cy' was forgotten"):
        await any_store.append(
            "Customer-cy", [EmailChanged(customer_id="cy", email="d@x").to_new_event()]
        )
    # Nothing was half written, and events without the subject's values still go in.
    assert await any_store.stream_version("Customer-cy") == 1
    await any_store.append("Customer-cy", [NewEvent("PlanChanged", {"plan": "q"})])
    # A subject forgotten before any value of theirs was stored is refused too.
    await forget(any_store, "never-seen")
    with pytest.raises(SubjectForgottenError):
        await any_store.append(
            "Customer-x", [EmailChanged(customer_id="never-seen", email="e@x").to_new_event()]
        )


async def test_export_returns_every_value_of_the_subject_in_clear(any_store: EventStore) -> None:
    await any_store.append(
        "Customer-dee",
        [
            CustomerJoined(
                customer_id="dee", email="dee@x", address={"city": "Oslo"}, plan="p"
            ).to_new_event(),
            EmailChanged(customer_id="dee", email="dee@y").to_new_event(),
        ],
    )
    await any_store.append(
        "Customer-eve", [EmailChanged(customer_id="eve", email="eve@x").to_new_event()]
    )
    found = await export(any_store, "dee")
    assert found.streams == ["Customer-dee"]
    assert not found.forgotten
    assert [(v.version, v.path, v.value) for v in found.values] == [
        (1, "address", {"city": "Oslo"}),
        (1, "email", "dee@x"),
        (2, "email", "dee@y"),
    ]
    assert found.to_json()["values"][0]["event_type"] == "CustomerJoined"
    await forget(any_store, "dee")
    after = await export(any_store, "dee")
    assert (after.forgotten, after.values) == (True, [])


async def test_two_writers_of_a_new_subject_agree_on_one_key(any_store_url: str) -> None:
    one, two = await open_store(any_store_url), await open_store(any_store_url)
    try:
        writes = [
            store.append(
                f"Customer-f{n}",
                [EmailChanged(customer_id="fay", email=f"fay{n}@x").to_new_event()],
            )
            for n, store in enumerate([one, two, one, two])
        ]
        await asyncio.gather(*writes)
        for store in (one, two):
            emails = [
                e.data["email"] for n in range(4) async for e in store.read_stream(f"Customer-f{n}")
            ]
            assert emails == ["fay0@x", "fay1@x", "fay2@x", "fay3@x"]
    finally:
        await one.close()
        await two.close()


async def test_a_retried_append_returns_its_first_result(any_store: EventStore) -> None:
    event = EmailChanged(customer_id="gil", email="g@x").to_new_event()
    first = await any_store.append("Customer-gil", [event])
    again = await any_store.append("Customer-gil", [event])
    assert again == first
    assert await any_store.stream_version("Customer-gil") == 1


async def test_the_wrong_key_encryption_key_is_a_clear_error(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/keys.db"
    async with await open_store(url) as store:
        await store.append(
            "Customer-h", [EmailChanged(customer_id="h", email="h@x").to_new_event()]
        )
    async with await open_store(url) as store:
        use_key_wrapper(store, LocalKeyWrapper(b"\x01" * 32))
        with pytest.raises(SealBroken, match="does not unwrap with this key-encryption key"):
            _ = [e async for e in store.read_stream("Customer-h")]


async def test_without_a_key_encryption_key_personal_values_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("EVENTLEDGER_KEY_ENCRYPTION_KEY")
    async with await open_store(f"sqlite:///{tmp_path}/nokey.db") as store:
        with pytest.raises(Exception, match="EVENTLEDGER_KEY_ENCRYPTION_KEY"):
            await store.append(
                "Customer-i", [EmailChanged(customer_id="i", email="i@x").to_new_event()]
            )
        assert await store.stream_version("Customer-i") == 0
        await store.append("Customer-i", [NewEvent("Plain", {"n": 1})])  # others go in


async def test_the_command_log_keeps_no_personal_value(any_store: EventStore) -> None:
    application = Application("t", commands=handlers, aggregates=[Customer], registry=kit)
    service = await application.start(any_store, projections=False)
    bus = service.bus
    done = await bus.send(Join(customer_id="jo", email="jo@example.com"), idempotency_key="k1")
    record = await any_store.command_log().by_id(uuid.UUID(done.command_id))
    assert record is not None
    assert record.payload == {"customer_id": "jo", "email": {"$redacted": "jo"}}
    again = await bus.send(Join(customer_id="jo", email="jo@example.com"), idempotency_key="k1")
    assert again.command_id == done.command_id
