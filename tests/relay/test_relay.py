"""The relay to NATS JetStream, in process, against the real NATS: every event once, in
the log's order, with its headers; filters; leases; personal data; oversized events."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import orjson
import pytest

from eventledger import EventStore, NewEvent, ProjectionFailed
from eventledger.errors import InvalidInput
from eventledger.failures import RetryPolicy
from eventledger.records import RecordedEvent
from eventledger.relay import RelayRunner, event_subject, subject_token, token_text
from eventledger.relay import messages as wire
from tests.relay.conftest import (
    Message,
    Target,
    delete_stream,
    eventually,
    messages_of,
    new_target,
)

NOW = datetime.now(UTC)
FAST = RetryPolicy(max_attempts=2, initial_delay=0.001, max_delay=0.01)


async def logged(store: EventStore) -> list[RecordedEvent]:
    return [e async for e in store.read_all()]


async def relay_all(store: EventStore, target: Target, **options: object) -> RelayRunner:
    """Run a relay until it handed on the whole log, then stop it."""
    relay = target.relay(**options)
    runner = RelayRunner(store, [relay], batch_size=7, poll_interval=0.1)
    async with runner:
        await runner.wait_until(relay.name, await store.head_position(), timeout=30)
    return runner


def assert_carries(message: Message, event: RecordedEvent, prefix: str) -> None:
    headers = message.headers
    assert message.subject == event_subject(prefix, event.stream_id, event.type)
    assert headers["Nats-Msg-Id"] == str(event.id)
    assert headers["Eventledger-Position"] == str(event.position)
    assert headers["Eventledger-Stream-Id"] == event.stream_id
    assert headers["Eventledger-Version"] == str(event.version)
    assert headers["Eventledger-Type"] == event.type
    assert headers["Eventledger-Schema-Version"] == str(event.schema_version)
    assert headers["Eventledger-Recorded-At"] == event.recorded_at.isoformat()
    assert headers.get("Eventledger-Correlation-Id") == event.metadata.get("correlation_id")
    assert headers.get("Eventledger-Causation-Id") == event.metadata.get("causation_id")
    assert json.loads(headers.get("Eventledger-Metadata", "{}")) == event.metadata
    assert orjson.loads(message.body) == event.data
    assert wire.from_message(message.subject, message.body, headers) == event


async def test_every_event_lands_once_in_the_logs_order_with_its_headers(
    store: EventStore, target: Target
) -> None:
    for n in range(3):
        await store.append(
            f"Order-{n}",
            [
                NewEvent(
                    "orders.OrderPlaced",
                    {"n": n, "lines": [{"sku": "é", "qty": i}]},
                    metadata={"correlation_id": f"corr-{n}", "causation_id": f"cause-{i}"},
                )
                for i in range(10)
            ],
        )
    # Names NATS would not take as tokens: dots, spaces, wildcards, '%', non-ASCII, empty.
    await store.append("Ordér x.*>%-7", [NewEvent("Odd", {"a": 1}, metadata={"actor": "ü"})])
    await store.append("-anonymous", [NewEvent("Nameless", {})])
    await store.append("Order-0", [NewEvent("orders.OrderShipped", {"at": "now"})])
    events = await logged(store)

    runner = await relay_all(store, target)

    found = await messages_of(target)
    assert [m.headers["Nats-Msg-Id"] for m in found] == [str(e.id) for e in events]
    for message, event in zip(found, events, strict=True):
        assert_carries(message, event, target.prefix)
    relay = runner.get("nats")
    assert (relay.published, relay.duplicates) == (len(events), 0)  # type: ignore[attr-defined]
    assert found[-3].subject == f"{target.prefix}.Ord%C3%A9r%20x%2E%2A%3E%25.Odd"
    assert found[-2].subject == f"{target.prefix}.%.Nameless"
    assert await store.read_side().get_checkpoint("nats") == events[-1].position


async def test_a_second_run_publishes_nothing_again(store: EventStore, target: Target) -> None:
    await store.append("Tick-1", [NewEvent("Ticked", {"n": i}) for i in range(20)])
    await relay_all(store, target)
    await store.append("Tick-1", [NewEvent("Ticked", {"n": 20})])
    runner = await relay_all(store, target)  # goes on from its checkpoint
    assert runner.get("nats").published == 1  # type: ignore[attr-defined]
    assert len(await messages_of(target)) == 21


async def test_status_shows_the_relays_lag_and_checkpoint(
    store: EventStore, target: Target
) -> None:
    result = await store.append("Tick-1", [NewEvent("Ticked", {"n": i}) for i in range(30)])
    runner = RelayRunner(store, [target.relay()], batch_size=10, poll_interval=0.1)
    (before,) = await runner.status()
    assert (before.name, before.position, before.events_behind) == ("nats", 0, 30)
    async with runner:
        await runner.wait_until("nats", result.position, timeout=30)
        (after,) = await runner.status()
    assert (after.state, after.position, after.events_behind, after.active) == (
        "running",
        result.position,
        0,
        True,
    )
    # What `eventledger projections status` and `eventledger top` read:
    assert await store.read_side().checkpoints() == {"nats": result.position}


async def test_only_the_categories_and_types_asked_for_are_published(
    store: EventStore, target: Target
) -> None:
    await store.append("Order-1", [NewEvent("Placed", {}), NewEvent("Priced", {})])
    await store.append("Order-2", [NewEvent("Shipped", {})])
    await store.append("Customer-1", [NewEvent("Placed", {})])
    events = await logged(store)

    await relay_all(store, target, categories=["Order"], types=["Placed", "Shipped"])

    found = await messages_of(target)
    wanted = [e for e in events if e.category == "Order" and e.type in ("Placed", "Shipped")]
    assert [m.headers["Nats-Msg-Id"] for m in found] == [str(e.id) for e in wanted]
    assert await store.read_side().get_checkpoint("nats") == events[-1].position


async def test_two_relays_of_one_name_publish_through_one_lease(
    store: EventStore, target: Target
) -> None:
    await store.append("Tick-1", [NewEvent("Ticked", {"n": i}) for i in range(200)])
    first = RelayRunner(
        store, [target.relay()], batch_size=10, lease_ttl=1.0, poll_interval=0.05, owner="a"
    )
    second = RelayRunner(
        store, [target.relay()], batch_size=10, lease_ttl=1.0, poll_interval=0.05, owner="b"
    )
    await first.start()
    await first.wait_until("nats", 1, timeout=20)  # a has the lease
    await second.start()
    try:
        await first.wait_until("nats", await store.head_position(), timeout=30)
        (standing_by,) = await second.status()
        assert (standing_by.state, standing_by.active) == ("standby", False)
        assert second.get("nats").published == 0  # type: ignore[attr-defined]
        await first.stop()  # releases its lease: b takes over and goes on
        more = [NewEvent("Ticked", {"n": 200 + i}) for i in range(50)]
        await second.wait_until("nats", (await store.append("Tick-1", more)).position, 30)
        assert second.get("nats").published == 50  # type: ignore[attr-defined]
    finally:
        await first.stop()
        await second.stop()
    events = await logged(store)
    found = await messages_of(target)
    assert [m.headers["Nats-Msg-Id"] for m in found] == [str(e.id) for e in events]


async def test_personal_values_go_out_redacted_unless_asked_for_in_clear(
    store: EventStore, nats_url: str
) -> None:
    await store.append(
        "Customer-c1",
        [
            NewEvent(
                "Registered",
                {"customer_id": "c1", "email": "ann@example.com", "plan": "basic"},
                personal={"email": "customer_id"},
            )
        ],
    )
    safe, clear = new_target(nats_url), new_target(nats_url)
    try:
        await relay_all(store, safe)
        await relay_all(store, clear, name="nats-clear", personal="clear")
        (redacted,) = await messages_of(safe)
        (in_clear,) = await messages_of(clear)
    finally:
        await delete_stream(safe)
        await delete_stream(clear)
    assert orjson.loads(redacted.body) == {
        "customer_id": "c1",
        "email": {"$redacted": "c1"},
        "plan": "basic",
    }
    assert b"ann@example.com" not in redacted.body + str(redacted.headers).encode()
    assert orjson.loads(in_clear.body)["email"] == "ann@example.com"
    # Which fields are personal, and whose, travels in the metadata either way.
    assert json.loads(redacted.headers["Eventledger-Metadata"])["_personal"] == {"email": "c1"}


async def test_an_event_too_large_for_nats_is_parked_and_the_relay_stops_at_it(
    store: EventStore, target: Target
) -> None:
    await store.append("Blob-1", [NewEvent("Small", {"n": 1})])
    big = await store.append("Blob-1", [NewEvent("Large", {"text": "x" * 1_100_000})])
    last = await store.append("Blob-1", [NewEvent("Small", {"n": 2})])
    runner = RelayRunner(store, [target.relay(retry=FAST)], batch_size=10, poll_interval=0.05)
    async with runner:
        with pytest.raises(ProjectionFailed, match="max_payload"):
            await runner.wait_until("nats", last.position, timeout=30)
        (status,) = await runner.status()
        assert (status.state, status.position) == ("failed", big.position - 1)
        # Nothing after it went out: the stream never holds a later event before it.
        assert [m.headers["Eventledger-Type"] for m in await messages_of(target)] == ["Small"]
        (letter,) = await runner.dead_letters("nats")
        assert letter.position == big.position
        await runner.skip("nats", letter.id)  # an operator's decision, never the relay's
        await runner.wait_until("nats", last.position, timeout=30)
    assert [orjson.loads(m.body) for m in await messages_of(target)] == [{"n": 1}, {"n": 2}]


async def test_a_stream_that_does_not_take_the_subjects_is_refused_with_a_reason(
    target: Target,
) -> None:
    import nats

    client = await nats.connect(target.url)
    await client.jetstream().add_stream(name=target.stream, subjects=[f"other{target.prefix}.>"])
    await client.close()
    relay = target.relay()
    with pytest.raises(InvalidInput, match=rf"takes the subjects .*not {target.prefix}\.>"):
        await relay.connect()
    await relay.close()


@pytest.mark.parametrize(
    "name", ["", "Order", "orders.OrderPlaced", "a b", "*", ">", "%", "%25", "ünï-cödé", "a.b.c"]
)
def test_subject_tokens_are_safe_and_give_the_name_back(name: str) -> None:
    token = subject_token(name)
    assert token
    assert not any(c in token for c in ". *>\t\r\n")
    assert token.isascii()
    assert token_text(token) == name


def test_a_relay_refuses_settings_it_cannot_work_with(target: Target) -> None:
    with pytest.raises(InvalidInput, match="prefix"):
        target.relay(subject_prefix="a.*")
    with pytest.raises(InvalidInput, match="stream name"):
        target.relay(stream="a.b")
    with pytest.raises(InvalidInput, match="personal"):
        target.relay(personal="plain")


def test_a_message_counts_its_size_as_the_server_does() -> None:
    record = RecordedEvent(uuid.uuid4(), "Order-1", 1, 9, "Placed", 1, {"a": "é"}, {}, NOW)
    subject, body, headers, size = wire.to_message(record, "eventledger")
    assert subject == "eventledger.Order.Placed"
    assert size == len(body) + len(b"NATS/1.0\r\n\r\n") + sum(
        len(f"{k}: {v}\r\n".encode()) for k, v in headers.items()
    )


async def test_a_stream_that_refuses_messages_stalls_the_relay_which_parks_nothing(
    store: EventStore, target: Target
) -> None:
    import nats
    from nats.js.api import DiscardPolicy, StreamConfig

    client = await nats.connect(target.url)
    js = client.jetstream()
    limited = StreamConfig(
        name=target.stream, subjects=[f"{target.prefix}.>"], max_msgs=5, discard=DiscardPolicy.NEW
    )
    await js.add_stream(limited)
    try:
        last = await store.append("Tick-1", [NewEvent("Ticked", {"n": i}) for i in range(8)])
        relay = target.relay(ack_timeout=1.0)
        async with RelayRunner(store, [relay], batch_size=10, poll_interval=0.05) as runner:

            async def stalled() -> bool:
                (status,) = await runner.status()
                return status.state == "stalled"

            await eventually(stalled, 30, "stalled on the full stream")
            (status,) = await runner.status()
            assert status.position == 0
            assert "maximum messages exceeded" in (status.last_error or "")
            assert await store.read_side().dead_letters("nats", "parked") == []
            limited.max_msgs = -1  # the operator lifts the limit: the relay goes on
            await js.update_stream(limited)
            await runner.wait_until("nats", last.position, timeout=60)
    finally:
        await client.close()
    events = [e async for e in store.read_all()]
    ids = [m.headers["Nats-Msg-Id"] for m in await messages_of(target)]
    assert ids == [str(e.id) for e in events]


async def test_the_streams_own_message_size_limit_parks_an_event_over_it(
    store: EventStore, target: Target
) -> None:
    import nats

    client = await nats.connect(target.url)
    await client.jetstream().add_stream(
        name=target.stream, subjects=[f"{target.prefix}.>"], max_msg_size=4000
    )
    await client.close()
    big = await store.append("Blob-1", [NewEvent("Large", {"text": "x" * 5000})])
    async with RelayRunner(store, [target.relay(retry=FAST)], poll_interval=0.05) as runner:
        with pytest.raises(ProjectionFailed, match=f"max_msg_size of stream {target.stream}"):
            await runner.wait_until("nats", big.position, timeout=30)
    assert await messages_of(target) == []
